package vault

import (
	"bytes"
	"fmt"
	"io"
	"testing"
)

var benchSizes = []int{1 << 10, 1 << 20}

func benchVault(b *testing.B) *Vault {
	b.Helper()
	v := mustOpen(b, b.TempDir())
	mustUser(b, v, "u1")
	return v
}

func sizeName(n int) string {
	if n >= 1<<20 {
		return fmt.Sprintf("%dMB", n>>20)
	}
	return fmt.Sprintf("%dKB", n>>10)
}

func BenchmarkSeal(b *testing.B) {
	v := benchVault(b)
	for _, size := range benchSizes {
		b.Run(sizeName(size), func(b *testing.B) {
			data := randomBytes(b, size)
			b.SetBytes(int64(size))
			for b.Loop() {
				if _, err := v.Seal("u1", []byte("images/1/prompt"), data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkOpen measures the hot path: the user's key is cached.
func BenchmarkOpen(b *testing.B) {
	v := benchVault(b)
	for _, size := range benchSizes {
		b.Run(sizeName(size), func(b *testing.B) {
			sealed := mustSeal(b, v, "u1", "images/1/prompt", randomBytes(b, size))
			b.SetBytes(int64(size))
			for b.Loop() {
				if _, err := v.Open("u1", []byte("images/1/prompt"), sealed); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkOpenUncached includes the keyring read and unwrap of a cache miss.
func BenchmarkOpenUncached(b *testing.B) {
	v := benchVault(b)
	sealed := mustSeal(b, v, "u1", "p", randomBytes(b, 1<<10))
	b.SetBytes(1 << 10)
	for b.Loop() {
		v.cache.evict("u1")
		if _, err := v.Open("u1", []byte("p"), sealed); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkStreamSeal(b *testing.B) {
	v := benchVault(b)
	data := randomBytes(b, 1<<20)
	var buf bytes.Buffer
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		buf.Reset()
		w, err := v.SealWriter("u1", []byte("media/u1/1.png"), &buf)
		if err != nil {
			b.Fatal(err)
		}
		w.Write(data)
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkStreamOpen(b *testing.B) {
	v := benchVault(b)
	data := randomBytes(b, 1<<20)
	sealed := sealStream(b, v, "u1", "media/u1/1.png", data, len(data))
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		r, err := v.OpenReader("u1", []byte("media/u1/1.png"), bytes.NewReader(sealed))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, r); err != nil {
			b.Fatal(err)
		}
	}
}
