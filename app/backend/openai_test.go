package backend

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"zimage/app/backend/backendfake"
)

func newTestOpenAI(t testing.TB, url string, change func(*Options)) Backend {
	t.Helper()
	o := Options{Name: "local-ai", Kind: KindOpenAI, URL: url}
	if change != nil {
		change(&o)
	}
	b, err := NewOpenAI(o)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestOpenAIGenerate(t *testing.T) {
	tests := []struct {
		name    string
		cfg     backendfake.OpenAIConfig
		model   string
		checkRq func(t *testing.T, r backendfake.OpenAIRequest)
	}{
		{name: "openai b64", cfg: backendfake.OpenAIConfig{Flavour: backendfake.OpenAIStrict}, model: "z-image-turbo"},
		{name: "openai url", cfg: backendfake.OpenAIConfig{Flavour: backendfake.OpenAIStrict, AlwaysURL: true}},
		{name: "localai url", cfg: backendfake.OpenAIConfig{Flavour: backendfake.OpenAILocalAI, AlwaysURL: true}, checkRq: func(t *testing.T, r backendfake.OpenAIRequest) {
			if r.Steps != 8 || r.Seed != 7 || r.NegativePrompt != "blurry" || r.Prompt != zreq.Prompt {
				t.Errorf("LocalAI read steps %d seed %d prompt %q negative %q", r.Steps, r.Seed, r.Prompt, r.NegativePrompt)
			}
		}},
		{name: "localai b64", cfg: backendfake.OpenAIConfig{Flavour: backendfake.OpenAILocalAI}},
		{name: "sd-server", cfg: backendfake.OpenAIConfig{Flavour: backendfake.OpenAISDCpp}, model: "anything", checkRq: func(t *testing.T, r backendfake.OpenAIRequest) {
			if r.Steps != 8 || r.Seed != 7 || r.NegativePrompt != "blurry" || r.Prompt != zreq.Prompt || r.Guidance != 1 {
				t.Errorf("sd-server read %+v", r)
			}
		}},
		{name: "vllm-omni", cfg: backendfake.OpenAIConfig{Flavour: backendfake.OpenAIVLLM}, checkRq: func(t *testing.T, r backendfake.OpenAIRequest) {
			if r.Steps != 8 || r.Seed != 7 || r.NegativePrompt != "blurry" || r.Guidance != 0 || r.Size != "64x48" || r.N != 2 {
				t.Errorf("vllm-omni read %+v", r)
			}
		}},
		{name: "bearer", cfg: backendfake.OpenAIConfig{APIKey: "sk-test", AlwaysURL: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := backendfake.NewOpenAI(t, tt.cfg)
			b := newTestOpenAI(t, fake.URL, func(o *Options) { o.APIKey = tt.cfg.APIKey })
			var log progressLog
			req := zreq
			req.NegativePrompt = "blurry"
			req.Model = tt.model
			res, err := b.Generate(context.Background(), req, log.add)
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Images) != 2 {
				t.Fatalf("got %d images", len(res.Images))
			}
			for i, img := range res.Images {
				wantPNG(t, img.Data, 64, 48)
				if img.Seed != 7+int64(i) || img.ContentType != "image/png" {
					t.Errorf("image %d: seed %d type %s", i, img.Seed, img.ContentType)
				}
			}
			if bytes.Equal(res.Images[0].Data, res.Images[1].Data) {
				t.Error("images are identical")
			}
			steps := log.all()
			if len(steps) < 2 || steps[0].Step != 0 || steps[len(steps)-1].Step != 8 || steps[len(steps)-1].Steps != 8 {
				t.Errorf("progress = %+v, want a start and 8/8", steps)
			}
			gens := fake.Generations()
			if len(gens) != 1 {
				t.Fatalf("fake saw %d generations", len(gens))
			}
			if tt.cfg.APIKey != "" && gens[0].Authorization != "Bearer sk-test" {
				t.Errorf("authorization = %q", gens[0].Authorization)
			}
			if tt.cfg.AlwaysURL {
				downloads := 0
				for route, n := range fake.Requests() {
					if strings.HasPrefix(route, "GET /files/") || strings.HasPrefix(route, "GET /generated-images/") {
						downloads += n
					}
				}
				if downloads != 2 {
					t.Errorf("url answer: %d image downloads, want 2: %v", downloads, fake.Requests())
				}
			}
			if tt.checkRq != nil {
				tt.checkRq(t, gens[0])
			}
		})
	}
}

func TestOpenAIFailures(t *testing.T) {
	type flav = backendfake.OpenAIFlavour
	tests := []struct {
		name   string
		cfg    backendfake.OpenAIConfig
		opts   func(*Options)
		req    func(*Request)
		kill   bool
		reason string
		hint   string
	}{
		{name: "refused", kill: true, reason: ReasonUnavailable, hint: "check that the server is running"},
		{name: "openai oom", cfg: backendfake.OpenAIConfig{Fail: backendfake.OpenAIOOM}, reason: ReasonOutOfMemory, hint: "smaller size"},
		{name: "localai oom", cfg: backendfake.OpenAIConfig{Flavour: backendfake.OpenAILocalAI, Fail: backendfake.OpenAIOOM}, reason: ReasonOutOfMemory, hint: "smaller size"},
		{name: "vllm oom", cfg: backendfake.OpenAIConfig{Flavour: backendfake.OpenAIVLLM, Fail: backendfake.OpenAIOOM}, reason: ReasonOutOfMemory, hint: "smaller size"},
		{name: "sd-server no results", cfg: backendfake.OpenAIConfig{Flavour: backendfake.OpenAISDCpp, Fail: backendfake.OpenAIOOM}, reason: ReasonOutOfMemory, hint: "ran out of memory"},
		{name: "openai 500", cfg: backendfake.OpenAIConfig{Fail: backendfake.OpenAIHTTP500}, reason: ReasonFailed, hint: "check the server's log"},
		{name: "sd-server exception", cfg: backendfake.OpenAIConfig{Flavour: backendfake.OpenAISDCpp, Fail: backendfake.OpenAIHTTP500}, reason: ReasonFailed, hint: "_M_range_check"},
		{name: "vllm plain 500", cfg: backendfake.OpenAIConfig{Flavour: backendfake.OpenAIVLLM, Fail: backendfake.OpenAIHTTP500}, reason: ReasonFailed, hint: "Internal Server Error"},
		{name: "vllm not ready", cfg: backendfake.OpenAIConfig{Flavour: backendfake.OpenAIVLLM, Fail: backendfake.OpenAINotReady}, reason: ReasonUnavailable, hint: "loading its model"},
		{name: "garbage", cfg: backendfake.OpenAIConfig{Fail: backendfake.OpenAIGarbage}, reason: ReasonBadResponse, hint: "check that the url"},
		{name: "bad base64", cfg: backendfake.OpenAIConfig{Fail: backendfake.OpenAIBadBase64}, reason: ReasonBadResponse, hint: "base64"},
		{name: "foreign url", cfg: backendfake.OpenAIConfig{Fail: backendfake.OpenAIForeignURL}, reason: ReasonBadResponse, hint: "b64_json"},
		{name: "hang", cfg: backendfake.OpenAIConfig{Fail: backendfake.OpenAIHang}, opts: func(o *Options) { o.Timeout = 150 * time.Millisecond }, reason: ReasonTimeout, hint: "raise timeout"},
		{name: "slow start", cfg: backendfake.OpenAIConfig{LoadDelay: time.Second}, opts: func(o *Options) { o.Timeout = 100 * time.Millisecond }, reason: ReasonTimeout, hint: "raise timeout"},
		{name: "dies mid-job", cfg: backendfake.OpenAIConfig{Fail: backendfake.OpenAIDie, StepDelay: 10 * time.Millisecond}, reason: ReasonUnavailable, hint: "check its log"},
		{name: "openai missing model", req: func(r *Request) { r.Model = "dall-e-9" }, reason: ReasonModelMissing, hint: "install it"},
		{name: "localai missing model", cfg: backendfake.OpenAIConfig{Flavour: backendfake.OpenAILocalAI}, req: func(r *Request) { r.Model = "nope" }, reason: ReasonModelMissing, hint: "install it"},
		{name: "vllm missing model", cfg: backendfake.OpenAIConfig{Flavour: flav("vllm-omni")}, opts: func(o *Options) { o.Model = "other" }, reason: ReasonModelMissing, hint: "install it"},
		{name: "openai bad size", req: func(r *Request) { r.Width = 0 }, reason: ReasonRejected, hint: "field size"},
		{name: "vllm bad size", cfg: backendfake.OpenAIConfig{Flavour: backendfake.OpenAIVLLM}, req: func(r *Request) { r.Width = 0 }, reason: ReasonRejected, hint: "Invalid size format"},
		{name: "vllm steps out of range", cfg: backendfake.OpenAIConfig{Flavour: backendfake.OpenAIVLLM}, req: func(r *Request) { r.Steps = 500 }, reason: ReasonRejected, hint: "field num_inference_steps"},
		{name: "sd-server bad size", cfg: backendfake.OpenAIConfig{Flavour: backendfake.OpenAISDCpp}, req: func(r *Request) { r.Height = 0 }, reason: ReasonRejected, hint: "invalid params"},
		{name: "wrong key", cfg: backendfake.OpenAIConfig{APIKey: "sk-right"}, opts: func(o *Options) { o.APIKey = "sk-wrong" }, reason: ReasonRejected, hint: "api_key"},
		{name: "localai wrong key", cfg: backendfake.OpenAIConfig{Flavour: backendfake.OpenAILocalAI, APIKey: "sk-right"}, reason: ReasonRejected, hint: "api_key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := backendfake.NewOpenAI(t, tt.cfg)
			if tt.kill {
				fake.Kill()
			}
			b := newTestOpenAI(t, fake.URL, tt.opts)
			req := zreq
			if tt.req != nil {
				tt.req(&req)
			}
			_, err := b.Generate(context.Background(), req, nil)
			wantError(t, err, "local-ai", tt.reason, tt.hint)
			wantReadable(t, err)
		})
	}
}

func TestOpenAICancel(t *testing.T) {
	fake := backendfake.NewOpenAI(t, backendfake.OpenAIConfig{StepDelay: 50 * time.Millisecond})
	b := newTestOpenAI(t, fake.URL, nil)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	_, err := b.Generate(ctx, zreq, nil)
	wantError(t, err, "local-ai", ReasonCanceled, "canceled")
}

func TestOpenAIHealthAndModels(t *testing.T) {
	ctx := context.Background()
	sd := backendfake.NewOpenAI(t, backendfake.OpenAIConfig{Flavour: backendfake.OpenAISDCpp})
	b := newTestOpenAI(t, sd.URL, nil)
	if err := b.Health(ctx); err != nil {
		t.Fatal(err)
	}
	if got, err := b.Models(ctx); err != nil || strings.Join(got, ",") != "sd-cpp-local" {
		t.Errorf("Models = %v, %v", got, err)
	}
	multi := backendfake.NewOpenAI(t, backendfake.OpenAIConfig{Models: []string{"a", "b"}})
	if got, _ := newTestOpenAI(t, multi.URL, func(o *Options) { o.Model = "b" }).Models(ctx); strings.Join(got, ",") != "b,a" {
		t.Errorf("Models with default b = %v", got)
	}
	bare := backendfake.NewOpenAI(t, backendfake.OpenAIConfig{NoModelsRoute: true})
	if err := newTestOpenAI(t, bare.URL, nil).Health(ctx); err != nil {
		t.Errorf("a server without /v1/models is still healthy: %v", err)
	}
	// It answers, so it is up, with no models: the pool fails its jobs as
	// model_missing at once rather than marking it down.
	if got, err := newTestOpenAI(t, bare.URL, nil).Models(ctx); err != nil || got == nil || len(got) != 0 {
		t.Errorf("Models of a server that lists none = %#v, %v; want an empty list", got, err)
	}
	if got, _ := newTestOpenAI(t, bare.URL, func(o *Options) { o.Model = "zit" }).Models(ctx); strings.Join(got, ",") != "zit" {
		t.Errorf("Models from config = %v", got)
	}
	bare.Kill()
	wantError(t, newTestOpenAI(t, bare.URL, nil).Health(ctx), "local-ai", ReasonUnavailable, "running")
}

// BenchmarkOpenAIAdapter and BenchmarkOpenAIDirect make the same call to a
// zero-delay fake; the difference is what the adapter costs per job.
func BenchmarkOpenAIAdapter(b *testing.B) {
	fake := backendfake.NewOpenAI(b, backendfake.OpenAIConfig{Flavour: backendfake.OpenAIVLLM})
	be := newTestOpenAI(b, fake.URL, nil)
	req := Request{Prompt: "bench", Width: 512, Height: 512, Steps: 8, Seed: 1, Count: 1}
	for b.Loop() {
		if _, err := be.Generate(context.Background(), req, func(Progress) {}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkOpenAIDirect(b *testing.B) {
	fake := backendfake.NewOpenAI(b, backendfake.OpenAIConfig{Flavour: backendfake.OpenAIVLLM})
	body := []byte(`{"prompt":"bench","n":1,"size":"512x512","response_format":"b64_json","num_inference_steps":8,"seed":1}`)
	for b.Loop() {
		resp, err := http.Post(fake.URL+"/v1/images/generations", "application/json", bytes.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		var out struct {
			Data []struct {
				B64JSON string `json:"b64_json"`
			} `json:"data"`
		}
		err = json.NewDecoder(resp.Body).Decode(&out)
		resp.Body.Close()
		if err != nil || len(out.Data) != 1 {
			b.Fatal(err)
		}
		if _, err := base64.StdEncoding.DecodeString(out.Data[0].B64JSON); err != nil {
			b.Fatal(err)
		}
	}
}

// TestOpenAIRecordsWhatWasApplied checks the model and the parameters an
// image record may claim: the server's model when none was asked for, and
// every parameter the dialect cannot carry listed as not applied.
func TestOpenAIRecordsWhatWasApplied(t *testing.T) {
	tests := []struct {
		name           string
		cfg            backendfake.OpenAIConfig
		model          string
		wantModel      string
		wantNotApplied string
		check          func(t *testing.T, r backendfake.OpenAIRequest)
	}{
		{name: "sd-server", cfg: backendfake.OpenAIConfig{Flavour: backendfake.OpenAISDCpp}, wantModel: "sd-cpp-local",
			check: func(t *testing.T, r backendfake.OpenAIRequest) {
				if r.Guidance != 4.5 || r.Steps != 8 || r.NegativePrompt != "blurry" || r.Sampler != "euler" || r.Scheduler != "simple" {
					t.Errorf("sd-server applied %+v", r)
				}
			}},
		{name: "localai", cfg: backendfake.OpenAIConfig{Flavour: backendfake.OpenAILocalAI, Models: []string{"z-image-turbo"}}, wantModel: "z-image-turbo", wantNotApplied: "guidance",
			check: func(t *testing.T, r backendfake.OpenAIRequest) {
				if r.Prompt != "a cat / a dog" || r.NegativePrompt != "blurry" {
					t.Errorf("LocalAI read prompt %q negative %q", r.Prompt, r.NegativePrompt)
				}
			}},
		{name: "vllm-omni asked model", cfg: backendfake.OpenAIConfig{Flavour: backendfake.OpenAIVLLM}, model: "Tongyi-MAI/Z-Image-Turbo", wantModel: "Tongyi-MAI/Z-Image-Turbo",
			check: func(t *testing.T, r backendfake.OpenAIRequest) {
				if r.Guidance != 4.5 || r.NegativePrompt != "blurry" {
					t.Errorf("vllm-omni applied %+v", r)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := backendfake.NewOpenAI(t, tt.cfg)
			b := newTestOpenAI(t, fake.URL, nil)
			req := zreq
			req.Prompt, req.NegativePrompt, req.Guidance, req.Model = "a cat | a dog", "blurry", 4.5, tt.model
			req.Sampler, req.Scheduler = "euler", "simple"
			res, err := b.Generate(context.Background(), req, nil)
			if err != nil {
				t.Fatal(err)
			}
			if res.Model != tt.wantModel {
				t.Errorf("model = %q, want %q", res.Model, tt.wantModel)
			}
			if got := strings.Join(res.NotApplied, ","); got != tt.wantNotApplied {
				t.Errorf("not applied = %q, want %q", got, tt.wantNotApplied)
			}
			tt.check(t, fake.Generations()[0])
		})
	}
}

// TestOpenAICancelKeepsSlotUntilServerIsFree: the servers go on with an
// image after a cancel, so Generate must not return (and free the slot)
// before the server has finished it.
func TestOpenAICancelKeepsSlotUntilServerIsFree(t *testing.T) {
	for _, fl := range []backendfake.OpenAIFlavour{backendfake.OpenAISDCpp, backendfake.OpenAILocalAI, backendfake.OpenAIStrict} {
		t.Run(string(fl), func(t *testing.T) {
			fake := backendfake.NewOpenAI(t, backendfake.OpenAIConfig{Flavour: fl, StepDelay: 20 * time.Millisecond})
			b := newTestOpenAI(t, fake.URL, nil)
			if fc, ok := b.(FinishesOnCancel); !ok || !fc.FinishesOnCancel() {
				t.Error("the openai adapter does not say the server finishes a canceled image")
			}
			ctx, cancel := context.WithCancel(context.Background())
			go func() {
				for !fake.Busy() {
					time.Sleep(5 * time.Millisecond)
				}
				cancel()
			}()
			_, err := b.Generate(ctx, zreq, nil)
			wantError(t, err, "local-ai", ReasonCanceled, "canceled")
			if fake.Busy() {
				t.Error("Generate returned while the server was still making the canceled image")
			}
		})
	}
}
