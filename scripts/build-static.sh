#!/usr/bin/env bash
# Builds a fully static, stripped linux/amd64 zimage into dist/zimage.
# cgo stays on (github.com/chai2010/webp compiles libwebp's C sources) and is
# linked statically against glibc; netgo and osusergo keep the resolver and
# user lookups in pure Go so glibc's NSS (which cannot be linked statically)
# is never needed. Needs gcc and libc6-dev (Debian: apt-get install gcc libc6-dev).
set -euo pipefail
cd "$(dirname "$0")/.."
version=${VERSION:-$(scripts/version)}
mkdir -p dist
CGO_ENABLED=1 GOOS=linux GOARCH=amd64 go build -trimpath -tags netgo,osusergo \
  -ldflags "-s -w -X zimage/app/cli.version=${version} -linkmode external -extldflags -static" \
  -o dist/zimage .
ldd_out=$(ldd dist/zimage 2>&1 || true)
if grep -q "not a dynamic executable" <<<"$ldd_out"; then
  echo "dist/zimage: static ($(du -h dist/zimage | cut -f1)), version ${version}"
else
  echo "dist/zimage is not static:" >&2
  echo "$ldd_out" >&2
  exit 1
fi
