package backend

import (
	"context"
	"errors"
	"strings"
	"testing"

	"zimage/app"
	"zimage/app/backend/backendfake"
)

// TestCheckParams runs the submit-time check against each kind of server
// as the fakes list their samplers and schedulers.
func TestCheckParams(t *testing.T) {
	comfy := newComfyTest(t, backendfake.NewComfyUI(t, backendfake.ComfyUIConfig{}), func(o *Options) { o.Name = "comfy" })
	forge := newTestA1111(t, backendfake.NewA1111(t, backendfake.A1111Config{}).URL, func(o *Options) { o.Name = "forge" })
	sdapi := newTestA1111(t, backendfake.NewA1111(t, backendfake.A1111Config{SDCpp: true}).URL, func(o *Options) { o.Name = "sdapi" })
	sdcpp := newTestOpenAI(t, backendfake.NewOpenAI(t, backendfake.OpenAIConfig{Flavour: backendfake.OpenAISDCpp}).URL, func(o *Options) { o.Name = "sdcpp" })
	local := newTestOpenAI(t, backendfake.NewOpenAI(t, backendfake.OpenAIConfig{Flavour: backendfake.OpenAILocalAI}).URL, func(o *Options) { o.Name = "localai" })
	pool, err := NewPool([]Backend{comfy, forge, sdapi, sdcpp, local}, nil, PoolOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	pool.Start(ctx) // only backends found healthy are asked
	for _, st := range pool.Status() {
		if !st.Healthy {
			t.Fatalf("backend %s is down: %s", st.Name, st.LastError)
		}
	}
	tests := []struct {
		name       string
		backend    string
		pc         ParamCheck
		wantField  string // "" means accepted
		wantText   string
		notApplied string
	}{
		{name: "comfy sampler", backend: "comfy", pc: ParamCheck{Sampler: "euler", Scheduler: "karras"}},
		{name: "comfy unknown sampler", backend: "comfy", pc: ParamCheck{Sampler: "Euler a"}, wantField: "sampler", wantText: `comfy has no sampler "Euler a". Choose one of: euler, euler_ancestral, dpmpp_2m, res_multistep, lcm`},
		{name: "comfy unknown scheduler", backend: "comfy", pc: ParamCheck{Scheduler: "turbo"}, wantField: "scheduler", wantText: "simple, normal, karras"},
		{name: "comfy zeroes the negative prompt", backend: "comfy", pc: ParamCheck{NegativePrompt: true, Guidance: 1}, notApplied: "negative_prompt"},
		{name: "forge sampler", backend: "forge", pc: ParamCheck{Sampler: "DPM++ 2M", Scheduler: "karras"}},
		{name: "forge unknown sampler", backend: "forge", pc: ParamCheck{Sampler: "euler"}, wantField: "sampler", wantText: "Euler a, Euler"},
		{name: "sd-server sdapi", backend: "sdapi", pc: ParamCheck{Sampler: "res_multistep", Scheduler: "normal"}},
		{name: "sd-server openai", backend: "sdcpp", pc: ParamCheck{Sampler: "euler", Scheduler: "simple", NegativePrompt: true, Guidance: 4}},
		{name: "sd-server unknown", backend: "sdcpp", pc: ParamCheck{Sampler: "Euler"}, wantField: "sampler", wantText: "euler, euler_a"},
		{name: "localai has no sampler", backend: "localai", pc: ParamCheck{Sampler: "euler"}, wantField: "sampler", wantText: "does not let you choose the sampler"},
		{name: "localai guidance", backend: "localai", pc: ParamCheck{Guidance: 4.5, NegativePrompt: true}, notApplied: "guidance"},
		{name: "any backend must have it", pc: ParamCheck{Sampler: "euler"}, wantField: "sampler"},
		{name: "defaults go anywhere", pc: ParamCheck{Guidance: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			na, err := pool.CheckParams(context.Background(), tt.backend, "", tt.pc)
			if got := strings.Join(na, ","); got != tt.notApplied {
				t.Errorf("not applied = %q, want %q", got, tt.notApplied)
			}
			if tt.wantField == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			var e *app.Error
			if !errors.As(err, &e) || e.Code != app.EINVALID || !strings.Contains(e.Fields[tt.wantField], tt.wantText) {
				t.Fatalf("got %v (fields %v), want EINVALID on %s saying %q", err, fieldsOf(e), tt.wantField, tt.wantText)
			}
		})
	}
}

// TestSamplerReachesServer: the chosen sampler and scheduler are written
// where each server reads them (the ComfyUI fake refuses names its
// KSampler does not list, as ComfyUI does).
func TestSamplerReachesServer(t *testing.T) {
	comfyFake := backendfake.NewComfyUI(t, backendfake.ComfyUIConfig{})
	comfy := newComfyTest(t, comfyFake, nil)
	req := zreq
	req.Count, req.Sampler, req.Scheduler = 1, "dpmpp_2m", "karras"
	if _, err := comfy.Generate(context.Background(), req, nil); err != nil {
		t.Fatal(err)
	}
	req.Sampler = "no-such-sampler"
	if _, err := comfy.Generate(context.Background(), req, nil); Reason(err) != ReasonRejected || !strings.Contains(err.Error(), "no-such-sampler") {
		t.Errorf("unknown sampler: %v, want it rejected by the server", err)
	}

	forgeFake := backendfake.NewA1111(t, backendfake.A1111Config{})
	forge := newTestA1111(t, forgeFake.URL, nil)
	req.Sampler, req.Scheduler = "DPM++ 2M", "karras"
	if _, err := forge.Generate(context.Background(), req, nil); err != nil {
		t.Fatal(err)
	}
	body := forgeFake.Txt2ImgBodies()[0]
	if body["sampler_name"] != "DPM++ 2M" || body["scheduler"] != "karras" {
		t.Errorf("txt2img got sampler %v scheduler %v", body["sampler_name"], body["scheduler"])
	}
}

func fieldsOf(e *app.Error) map[string]string {
	if e == nil {
		return nil
	}
	return e.Fields
}
