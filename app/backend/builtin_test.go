package backend

import (
	"bytes"
	"context"
	"image/png"
	"testing"
	"time"
)

func TestBuiltinDeterministic(t *testing.T) {
	b, _ := NewBuiltin(Options{Name: "cpu"})
	gen := func(prompt string, seed int64, w, h int) []byte {
		t.Helper()
		res, err := b.Generate(context.Background(), Request{Prompt: prompt, Width: w, Height: h, Steps: 4, Seed: seed, Count: 1}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if res.Model != BuiltinModel || res.Images[0].ContentType != "image/png" || res.Images[0].Seed != seed {
			t.Fatalf("result %q %s seed %d", res.Model, res.Images[0].ContentType, res.Images[0].Seed)
		}
		wantPNG(t, res.Images[0].Data, w, h)
		return res.Images[0].Data
	}
	a := gen("a red fox", 1, 160, 96)
	if !bytes.Equal(a, gen("a red fox", 1, 160, 96)) {
		t.Error("same prompt, seed and size gave different bytes")
	}
	for name, other := range map[string][]byte{
		"seed":   gen("a red fox", 2, 160, 96),
		"prompt": gen("a blue whale", 1, 160, 96),
	} {
		if bytes.Equal(a, other) {
			t.Errorf("a different %s gave the same picture", name)
		}
	}
	// The picture is not flat: a pleasant picture has many colours.
	img, err := png.Decode(bytes.NewReader(a))
	if err != nil {
		t.Fatal(err)
	}
	colours := map[[3]uint32]bool{}
	for y := 0; y < 96; y += 4 {
		for x := 0; x < 160; x += 4 {
			r, g, bl, _ := img.At(x, y).RGBA()
			colours[[3]uint32{r >> 10, g >> 10, bl >> 10}] = true
		}
	}
	if len(colours) < 50 {
		t.Errorf("only %d distinct colours: the picture is nearly flat", len(colours))
	}
}

func TestBuiltinCountStepsAndPreviews(t *testing.T) {
	b, _ := NewBuiltin(Options{Name: "cpu"})
	var log progressLog
	res, err := b.Generate(context.Background(), Request{Prompt: "p", Width: 256, Height: 128, Steps: 6, Seed: 10, Count: 3}, log.add)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Images) != 3 {
		t.Fatalf("%d images", len(res.Images))
	}
	single, _ := b.Generate(context.Background(), Request{Prompt: "p", Width: 256, Height: 128, Steps: 6, Seed: 12, Count: 1}, nil)
	if res.Images[2].Seed != 12 || !bytes.Equal(res.Images[2].Data, single.Images[0].Data) {
		t.Error("image 2 of a batch from seed 10 differs from a single image with seed 12")
	}
	steps := log.all()
	if len(steps) != 7 {
		t.Fatalf("%d progress calls, want 7 (start + 6 steps): %+v", len(steps), steps)
	}
	for i, p := range steps {
		if p.Step != i || p.Steps != 6 {
			t.Errorf("progress %d = %d/%d", i, p.Step, p.Steps)
		}
		if i >= 1 && i < 6 {
			wantPNG(t, p.Preview, 128, 64)
		}
	}
}

func TestBuiltinCancelTimeoutAndRejects(t *testing.T) {
	b, _ := NewBuiltinWithDelay(Options{Name: "cpu"}, 20*time.Millisecond)
	ctx, cancel := context.WithCancel(context.Background())
	_, err := b.Generate(ctx, Request{Prompt: "p", Width: 64, Height: 64, Steps: 100, Count: 1}, func(p Progress) {
		if p.Step == 2 {
			cancel()
		}
	})
	wantError(t, err, "cpu", ReasonCanceled, "canceled")

	slow, _ := NewBuiltinWithDelay(Options{Name: "cpu", Timeout: 50 * time.Millisecond}, 20*time.Millisecond)
	_, err = slow.Generate(context.Background(), Request{Prompt: "p", Width: 64, Height: 64, Steps: 100, Count: 1}, nil)
	wantError(t, err, "cpu", ReasonTimeout, "raise timeout")

	for _, tc := range []struct {
		req          Request
		reason, hint string
	}{
		{Request{Width: 0, Height: 64}, ReasonRejected, "choose another size"},
		{Request{Width: 5000, Height: 64}, ReasonRejected, "choose another size"},
		{Request{Width: 4096, Height: 4096, Count: 8}, ReasonRejected, "fewer images"},
		{Request{Width: 64, Height: 64, Model: "flux"}, ReasonModelMissing, "no AI model"},
	} {
		_, err := b.Generate(context.Background(), tc.req, nil)
		wantError(t, err, "cpu", tc.reason, tc.hint)
	}
	if m, _ := b.Models(context.Background()); len(m) != 1 || m[0] != BuiltinModel {
		t.Errorf("Models = %v", m)
	}
}

func BenchmarkBuiltin1024(b *testing.B) {
	be, _ := NewBuiltin(Options{})
	req := Request{Prompt: "a lighthouse at dusk", Width: 1024, Height: 1024, Steps: 8, Seed: 1, Count: 1}
	for b.Loop() {
		if _, err := be.Generate(context.Background(), req, func(Progress) {}); err != nil {
			b.Fatal(err)
		}
	}
}
