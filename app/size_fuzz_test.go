package app

import (
	"errors"
	"testing"
)

// FuzzParseSize holds ParseSize to its promise: what it accepts is written
// back unchanged by FormatSize, what it refuses is an EINVALID error on the
// size field, and a size that also passes Validate is one the limits allow.
func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"1024x1024", "832x1216", "64x64", "2048x2048", "2064x16", "1000x1000",
		"0x0", "-64x64", "+64x64", "064x64", "1024", "x", "1024x", "x1024", "1024X1024", "1024×1024",
		" 1024x1024", "1024x1024x1024", "9223372036854775807x9223372036854775807", "99999999999999999999x1"} {
		f.Add(s)
	}
	limits := DefaultGenerationLimits()
	f.Fuzz(func(t *testing.T, s string) {
		w, h, err := ParseSize("size", s)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Code != EINVALID || e.Fields["size"] == "" {
				t.Fatalf("ParseSize(%q) error %#v, want EINVALID on field size", s, err)
			}
			return
		}
		if got := FormatSize(w, h); got != s {
			t.Fatalf("ParseSize(%q) = %d, %d, written back as %q: the size has more than one spelling", s, w, h, got)
		}
		p := GenerationParams{Prompt: "a fox", Width: w, Height: h, Steps: 1, Count: 1, Seed: RandomSeed}
		if err := p.Validate(limits); err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Code != EINVALID || (e.Fields["width"] == "" && e.Fields["height"] == "") {
				t.Fatalf("Validate(%dx%d) = %v, want EINVALID on width or height", w, h, err)
			}
			return
		}
		if w < minSide || h < minSide || w > limits.MaxSide || h > limits.MaxSide || w%16 != 0 || h%16 != 0 || w*h > limits.MaxPixels {
			t.Fatalf("%q passed as %dx%d, outside the limits %+v or not a multiple of 16", s, w, h, limits)
		}
	})
}
