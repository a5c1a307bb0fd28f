package backend

import (
	"bytes"
	"context"
	"encoding/json"
	"image/png"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"zimage/app/backend/backendfake"
)

// comfyRealURLEnv names a real ComfyUI for TestComfyUIReal.
const comfyRealURLEnv = "ZIMAGE_COMFYUI_URL"

// comfyModelFreeWorkflow needs no model file, so any ComfyUI (even --cpu
// without models) runs it: EmptyImage → ImageAddNoise → SaveImage. The
// prompt goes to a CLIPTextEncode that nothing uses, so ComfyUI never runs
// it, and the workflow has no sampler: progress comes from progress_state,
// counted in nodes.
const comfyModelFreeWorkflow = `{
 "1": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 64, "batch_size": 1, "color": 0}},
 "2": {"class_type": "ImageAddNoise", "inputs": {"image": ["1", 0], "seed": 0, "strength": 0.5}},
 "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "zimage-real-test"}},
 "9": {"class_type": "CLIPTextEncode", "inputs": {"text": ""}}
}`

// TestComfyUIReal runs the adapter's checks against a real ComfyUI named by
// ZIMAGE_COMFYUI_URL (e.g. http://127.0.0.1:8188): generate, progress,
// cancel, history and output clean-up, and what the image carries. It is
// skipped when the variable is unset; see the README, "Checking a real
// ComfyUI".
func TestComfyUIReal(t *testing.T) {
	base := os.Getenv(comfyRealURLEnv)
	if base == "" {
		t.Skip(comfyRealURLEnv + " is not set: skipping the checks against a real ComfyUI (set it to e.g. http://127.0.0.1:8188)")
	}
	comfyServerChecks(t, base, false)
}

// TestComfyUIServerChecksOnFake runs TestComfyUIReal's checks against the
// fake, so they are known to pass where the fake is faithful; the fake
// sends progress_state, so progress is required here.
func TestComfyUIServerChecksOnFake(t *testing.T) {
	comfyServerChecks(t, backendfake.NewComfyUI(t, backendfake.ComfyUIConfig{}).URL, true)
}

func comfyServerChecks(t *testing.T, base string, wantProgress bool) {
	b, err := NewComfyUI(Options{Name: "real", Kind: KindComfyUI, URL: base, Timeout: 5 * time.Minute,
		Workflow:    []byte(comfyModelFreeWorkflow),
		WorkflowMap: map[string]string{"prompt": "9.text", "seed": "2.seed", "width": "1.width", "height": "1.height", "batch_size": "1.batch_size"}})
	if err != nil {
		t.Fatal(err)
	}
	c := b.(*comfyUI)
	ctx := context.Background()
	if err := c.Health(ctx); err != nil {
		t.Fatalf("health: %v", err)
	}

	// history says what the server still holds about a prompt.
	history := func(t *testing.T, id string) map[string]json.RawMessage {
		t.Helper()
		var all map[string]json.RawMessage
		if err := c.getJSON(ctx, "history/"+id, nil, &all); err != nil {
			t.Fatal(err)
		}
		return all
	}

	t.Run("generate", func(t *testing.T) {
		var token string
		var steps []Progress
		req := Request{JobID: "real1", Prompt: "a lighthouse at dusk", Width: 64, Height: 64, Seed: 7, Count: 2,
			Submitted: func(tok string) { token = tok }}
		res, err := c.Generate(ctx, req, func(p Progress) {
			if p.Preview == nil {
				steps = append(steps, p)
			}
		})
		if err != nil {
			t.Fatalf("Generate: %v", err)
		}
		if len(res.Images) != 2 {
			t.Fatalf("%d images, want 2", len(res.Images))
		}
		for _, img := range res.Images {
			cfg, err := png.DecodeConfig(bytes.NewReader(img.Data))
			if err != nil || cfg.Width != 64 || cfg.Height != 64 {
				t.Errorf("image: %dx%d, %v; want a 64x64 PNG", cfg.Width, cfg.Height, err)
			}
			// ComfyUI writes the graph, prompt included, into the PNG: the
			// media layer strips it (its own tests); here we only check the
			// prompt really is there, so that stripping matters.
			if !bytes.Contains(img.Data, []byte("a lighthouse at dusk")) {
				t.Log("the server wrote no prompt metadata (started with --disable-metadata?)")
			}
		}
		if n := len(steps); wantProgress && (n == 0 || steps[n-1].Step != steps[n-1].Steps) {
			t.Errorf("progress %v, want it to reach the last node", steps)
		} else if n == 0 {
			t.Log("no progress reported: a ComfyUI before 0.3.44 sends no progress_state, and this workflow has no sampler")
		}
		for i := 1; i < len(steps); i++ {
			if steps[i].Step < steps[i-1].Step && steps[i].Steps == steps[i-1].Steps {
				t.Errorf("progress went backwards: %v", steps)
			}
		}
		ids := strings.Fields(token)
		if len(ids) != 3 {
			t.Fatalf("token %q, want a client id and two prompt ids", token)
		}
		for _, id := range ids[1:] {
			if h := history(t, id); len(h) != 0 {
				t.Errorf("prompt %s is still in the server's history", id)
			}
		}
	})

	t.Run("cancel", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		var id string
		req := Request{JobID: "real2", Prompt: "canceled", Width: 64, Height: 64, Seed: 8, Count: 1,
			Submitted: func(tok string) {
				if f := strings.Fields(tok); len(f) == 2 {
					id = f[1]
				}
				cancel()
			}}
		_, err := c.Generate(cctx, req, nil)
		if Reason(err) != ReasonCanceled {
			t.Fatalf("err = %v, want canceled", err)
		}
		running, pending, err := c.queue(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if slices.Contains(running, id) || slices.Contains(pending, id) {
			t.Errorf("prompt %s is still in the server's queue after cancel", id)
		}
		if h := history(t, id); len(h) != 0 {
			t.Errorf("prompt %s is still in the server's history after cancel", id)
		}
	})

}
