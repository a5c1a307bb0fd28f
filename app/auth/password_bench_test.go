package auth

import (
	"fmt"
	"testing"
)

// BenchmarkHashPassword measures the production parameters: its ns/op is
// what one signup or login costs, and B/op shows the memory one hash holds.
func BenchmarkHashPassword(b *testing.B) {
	h := NewHasher(DefaultParams, DefaultMaxConcurrentHashes)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := h.Hash("correct horse battery staple"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkArgon2Cost is how DefaultParams were chosen: 64 MiB with the
// candidate time and lane counts.
func BenchmarkArgon2Cost(b *testing.B) {
	for _, p := range []Params{
		{Memory: 64 * 1024, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32},
		{Memory: 64 * 1024, Time: 1, Threads: 2, SaltLen: 16, KeyLen: 32},
		{Memory: 64 * 1024, Time: 2, Threads: 2, SaltLen: 16, KeyLen: 32},
		{Memory: 64 * 1024, Time: 3, Threads: 2, SaltLen: 16, KeyLen: 32},
		{Memory: 64 * 1024, Time: 4, Threads: 2, SaltLen: 16, KeyLen: 32},
	} {
		b.Run(fmt.Sprintf("m=64MiB,t=%d,p=%d", p.Time, p.Threads), func(b *testing.B) {
			h := NewHasher(p, 1)
			for b.Loop() {
				if _, err := h.Hash("correct horse battery staple"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
