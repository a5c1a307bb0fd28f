#!/usr/bin/env bash
# Cold start to the first 200 on /healthz, idle RSS and binary size of the
# static release build.
set -euo pipefail
cd "$(dirname "$0")/../.."
[ -x dist/zimage ] || scripts/build-static.sh
go run ./scripts/bench/startup -bin dist/zimage -n "${N:-20}"
