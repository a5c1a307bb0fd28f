package backend

import (
	"context"
	"testing"
	"time"

	"zimage/app/backend/backendfake"
)

// A server that stops reporting while it executes the job is reported as
// stalled once, at the step it stopped on, while the job goes on; here the
// caller then gives up, as the queue does when another backend is free.
func TestStallIsReportedOnce(t *testing.T) {
	const stall = 200 * time.Millisecond
	tests := []struct {
		name string
		make func(t *testing.T) Backend
	}{
		{"comfyui", func(t *testing.T) Backend {
			fake := backendfake.NewComfyUI(t, backendfake.ComfyUIConfig{Fail: backendfake.ComfyHang, FailAtStep: 2, StepDelay: 10 * time.Millisecond})
			return newComfyTest(t, fake, func(o *Options) { o.StallTimeout = stall })
		}},
		{"a1111", func(t *testing.T) Backend {
			fake := backendfake.NewA1111(t, backendfake.A1111Config{Fail: backendfake.A1111Hang, FailAtStep: 2, StepDelay: 10 * time.Millisecond})
			b := newTestA1111(t, fake.URL, func(o *Options) { o.StallTimeout = stall })
			b.pollEvery = 20 * time.Millisecond
			return b
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := tt.make(t)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			var stalls []Progress
			_, err := b.Generate(ctx, Request{Prompt: "p", Width: 64, Height: 64, Steps: 8, Seed: 1, Count: 1}, func(p Progress) {
				if p.Stalled > 0 {
					stalls = append(stalls, p)
					time.AfterFunc(3*stall, cancel) // long enough to see a second report, if one came
				}
			})
			if Reason(err) != ReasonCanceled {
				t.Errorf("err = %v, want canceled by the caller", err)
			}
			if len(stalls) != 1 || stalls[0].Stalled < stall || stalls[0].Steps != 8 || stalls[0].Step < 1 {
				t.Errorf("stall reports = %+v, want one, after >= %s, at the step it stopped on", stalls, stall)
			}
		})
	}
}

// Loading a model says nothing for minutes: no stall is reported before
// the first sampling step.
func TestNoStallBeforeSampling(t *testing.T) {
	fake := backendfake.NewComfyUI(t, backendfake.ComfyUIConfig{LoadDelay: 600 * time.Millisecond})
	c := newComfyTest(t, fake, func(o *Options) { o.StallTimeout = 100 * time.Millisecond })
	_, err := c.Generate(context.Background(), comfyRequest(64, 64, 1), func(p Progress) {
		if p.Stalled > 0 {
			t.Errorf("stall reported while the model loaded: %+v", p)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
}
