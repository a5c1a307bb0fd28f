package backend

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"image"
	_ "image/jpeg"
	"image/png"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"zimage/app/backend/backendfake"
	zembed "zimage/embed"
)

// newComfyTest returns an adapter named gpu0 pointed at the fake, polling
// fast so fallback paths do not slow the tests down.
func newComfyTest(tb testing.TB, fake *backendfake.ComfyUI, change func(*Options)) *comfyUI {
	tb.Helper()
	o := Options{Name: "gpu0", Kind: KindComfyUI, URL: fake.URL, Timeout: 30 * time.Second}
	if change != nil {
		change(&o)
	}
	b, err := NewComfyUI(o)
	if err != nil {
		tb.Fatalf("NewComfyUI: %v", err)
	}
	c := b.(*comfyUI)
	c.pollEvery = 20 * time.Millisecond
	return c
}

func comfyRequest(w, h, count int) Request {
	return Request{JobID: "job1", Prompt: "a red fox in snow", Width: w, Height: h, Steps: 8, Seed: 42, Count: count}
}

func decodePNG(t *testing.T, img Image) image.Image {
	t.Helper()
	if img.ContentType != "image/png" {
		t.Fatalf("content type = %q, want image/png", img.ContentType)
	}
	m, err := png.Decode(bytes.NewReader(img.Data))
	if err != nil {
		t.Fatalf("decode PNG: %v", err)
	}
	return m
}

func TestComfyUIGenerate(t *testing.T) {
	fake := backendfake.NewComfyUI(t, backendfake.ComfyUIConfig{Previews: true})
	c := newComfyTest(t, fake, nil)

	var steps []Progress
	var previews int
	res, err := c.Generate(context.Background(), comfyRequest(512, 768, 1), func(p Progress) {
		if p.Preview != nil {
			previews++
			if _, format, err := image.Decode(bytes.NewReader(p.Preview)); err != nil || p.PreviewType != "image/"+format {
				t.Errorf("preview: type %q, decoded as %q, err %v", p.PreviewType, format, err)
			}
			return
		}
		steps = append(steps, p)
	})
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	if len(steps) != 8 || steps[0].Step != 1 || steps[7].Step != 8 || steps[7].Steps != 8 {
		t.Errorf("progress = %v, want 1/8 … 8/8", steps)
	}
	if previews == 0 {
		t.Error("no preview reached the progress callback")
	}
	if len(res.Images) != 1 {
		t.Fatalf("got %d images, want 1", len(res.Images))
	}
	if b := decodePNG(t, res.Images[0]).Bounds(); b.Dx() != 512 || b.Dy() != 768 {
		t.Errorf("image is %dx%d, want 512x768", b.Dx(), b.Dy())
	}
	if res.Images[0].Seed != 42 || res.Model != backendfake.ComfyDefaultUNet {
		t.Errorf("seed %d model %q, want 42 and %s", res.Images[0].Seed, res.Model, backendfake.ComfyDefaultUNet)
	}
	if res.Submitted.IsZero() || res.Finished.Before(res.Submitted) {
		t.Errorf("timings: submitted %v finished %v", res.Submitted, res.Finished)
	}
	if o := fake.Origins(); len(o) != 0 {
		t.Errorf("adapter sent Origin headers %q; ComfyUI's origin check would refuse them", o)
	}
	if n := fake.Requests()["GET /ws"]; n != 1 {
		t.Errorf("websocket opened %d times, want 1", n)
	}

	// Same seed, same picture; another seed, another picture: the seed
	// really reaches the sampler.
	again, err := c.Generate(context.Background(), comfyRequest(512, 768, 1), nil)
	if err != nil {
		t.Fatal(err)
	}
	other := comfyRequest(512, 768, 1)
	other.Seed = 7
	third, err := c.Generate(context.Background(), other, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again.Images[0].Data, res.Images[0].Data) {
		t.Error("the same seed gave different images")
	}
	if bytes.Equal(third.Images[0].Data, res.Images[0].Data) {
		t.Error("another seed gave the same image")
	}
}

func TestComfyUIParseFrame(t *testing.T) {
	jpegMagic := []byte{0xff, 0xd8, 0xff, 0xe0}
	be := func(n uint32) []byte { return binary.BigEndian.AppendUint32(nil, n) }
	meta := []byte(`{"node_id":"3","prompt_id":"p1","image_type":"image/png"}`)
	tests := []struct {
		name       string
		typ        websocket.MessageType
		frame      []byte
		ok         bool
		evType     string
		promptID   string
		mime       string
		previewLen int
	}{
		{name: "progress", typ: websocket.MessageText, frame: []byte(`{"type":"progress","data":{"value":1,"max":8,"prompt_id":"p1","node":"3"}}`), ok: true, evType: "progress", promptID: "p1"},
		{name: "preview, event 1, JPEG", typ: websocket.MessageBinary, frame: slices.Concat(be(1), be(1), jpegMagic), ok: true, evType: "preview", mime: "image/jpeg", previewLen: 4},
		{name: "preview, event 1, PNG", typ: websocket.MessageBinary, frame: slices.Concat(be(1), be(2), []byte("\x89PNG")), ok: true, evType: "preview", mime: "image/png", previewLen: 4},
		{name: "preview with metadata, event 4", typ: websocket.MessageBinary, frame: slices.Concat(be(4), be(uint32(len(meta))), meta, []byte("\x89PNG")),
			ok: true, evType: "preview", promptID: "p1", mime: "image/png", previewLen: 4},
		{name: "event 4 with a length past the end", typ: websocket.MessageBinary, frame: slices.Concat(be(4), be(999), meta), ok: false},
		{name: "short binary frame", typ: websocket.MessageBinary, frame: []byte{0, 0, 0, 1}, ok: false},
		{name: "unknown binary event", typ: websocket.MessageBinary, frame: slices.Concat(be(3), be(0)), ok: false},
		{name: "text that is not JSON", typ: websocket.MessageText, frame: []byte("hello"), ok: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, ok := comfyParseFrame(tt.typ, tt.frame)
			if ok != tt.ok {
				t.Fatalf("ok = %v, want %v", ok, tt.ok)
			}
			if ok && (ev.Type != tt.evType || ev.PromptID != tt.promptID || ev.PreviewType != tt.mime || len(ev.Preview) != tt.previewLen) {
				t.Errorf("got %+v", ev)
			}
		})
	}
}

func TestComfyUIBatch(t *testing.T) {
	fake := backendfake.NewComfyUI(t, backendfake.ComfyUIConfig{})
	c := newComfyTest(t, fake, nil)
	res, err := c.Generate(context.Background(), comfyRequest(256, 256, 2), nil)
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	if len(res.Images) != 2 {
		t.Fatalf("got %d images, want 2", len(res.Images))
	}
	for _, img := range res.Images {
		if b := decodePNG(t, img).Bounds(); b.Dx() != 256 || b.Dy() != 256 {
			t.Errorf("image is %dx%d, want 256x256", b.Dx(), b.Dy())
		}
	}
	if bytes.Equal(res.Images[0].Data, res.Images[1].Data) {
		t.Error("both images of the batch are identical")
	}
	// Each image can be remade alone: image i is the single image of seed+i.
	for i, img := range res.Images {
		if img.Seed != 42+int64(i) {
			t.Errorf("image %d has seed %d, want %d", i, img.Seed, 42+i)
		}
		one, err := c.Generate(context.Background(), Request{JobID: "again", Prompt: "a red fox in snow", Width: 256, Height: 256, Steps: 8, Seed: img.Seed, Count: 1}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(one.Images[0].Data, img.Data) {
			t.Errorf("remaking image %d with seed %d gives another picture", i, img.Seed)
		}
	}
}

func TestComfyUIModelOption(t *testing.T) {
	fake := backendfake.NewComfyUI(t, backendfake.ComfyUIConfig{Models: []string{"z_image_turbo_fp8.safetensors"}})
	c := newComfyTest(t, fake, func(o *Options) { o.Model = "z_image_turbo_fp8.safetensors" })
	res, err := c.Generate(context.Background(), comfyRequest(128, 128, 1), nil)
	if err != nil {
		t.Fatalf("Generate with Options.Model installed on the server: %v", err)
	}
	if res.Model != "z_image_turbo_fp8.safetensors" {
		t.Errorf("Result.Model = %q", res.Model)
	}
}

func TestComfyUIFailures(t *testing.T) {
	noOutputs := func(t *testing.T) []byte {
		var g map[string]any
		raw, _ := zembed.FS.ReadFile(comfyDefaultWorkflowPath)
		if err := json.Unmarshal(raw, &g); err != nil {
			t.Fatal(err)
		}
		delete(g, "9")
		b, _ := json.Marshal(g)
		return b
	}
	tests := []struct {
		name    string
		cfg     backendfake.ComfyUIConfig
		kill    bool
		options func(t *testing.T, o *Options)
		request func(r *Request)
		reason  string
		message string
	}{
		{name: "connection refused", kill: true, reason: ReasonUnavailable, message: "is not answering; is it running?"},
		{name: "http 500", cfg: backendfake.ComfyUIConfig{Fail: backendfake.ComfyHTTP500}, reason: ReasonFailed, message: "answered 500 Internal Server Error"},
		{name: "garbage body", cfg: backendfake.ComfyUIConfig{Fail: backendfake.ComfyGarbage}, reason: ReasonBadResponse, message: "not ComfyUI's JSON"},
		{name: "out of memory", cfg: backendfake.ComfyUIConfig{Fail: backendfake.ComfyOOM, FailAtStep: 3}, reason: ReasonOutOfMemory, message: "try a smaller size"},
		{name: "default model not installed", cfg: backendfake.ComfyUIConfig{Models: []string{"flux1-dev.safetensors"}},
			reason: ReasonModelMissing, message: "model file z_image_turbo_bf16.safetensors (diffusion model, in models/diffusion_models) is not installed on backend gpu0"},
		{name: "requested model not installed", request: func(r *Request) { r.Model = "z_image_base.safetensors" },
			reason: ReasonModelMissing, message: "model file z_image_base.safetensors (diffusion model, in models/diffusion_models) is not installed on backend gpu0; the administrator should put each file in that folder of ComfyUI, or choose another model"},
		{name: "no model files at all", cfg: backendfake.ComfyUIConfig{Models: []string{}, CLIPs: []string{}, VAEs: []string{}}, reason: ReasonModelMissing,
			message: "model files z_image_turbo_bf16.safetensors (diffusion model, in models/diffusion_models), ae.safetensors (VAE, in models/vae) and qwen_3_4b.safetensors (text encoder, in models/text_encoders) are not installed on backend gpu0; the administrator should put each file in that folder of ComfyUI"},
		{name: "only the VAE is missing", cfg: backendfake.ComfyUIConfig{VAEs: []string{"sdxl_vae.safetensors"}}, reason: ReasonModelMissing,
			message: "model file ae.safetensors (VAE, in models/vae) is not installed on backend gpu0; the administrator should put each file in that folder of ComfyUI"},
		{name: "model not installed, old error schema", cfg: backendfake.ComfyUIConfig{OldErrorSchema: true},
			request: func(r *Request) { r.Model = "nope.safetensors" }, reason: ReasonModelMissing, message: "model file nope.safetensors (diffusion model, in models/diffusion_models) is not installed"},
		{name: "value out of range", request: func(r *Request) { r.Steps = 20000 },
			reason: ReasonRejected, message: "node 3 (KSampler), input steps: Value 20000 bigger than max"},
		{name: "workflow without outputs, old error schema", cfg: backendfake.ComfyUIConfig{OldErrorSchema: true},
			options: func(t *testing.T, o *Options) { o.Workflow = noOutputs(t) }, reason: ReasonRejected, message: "Prompt has no outputs; add a SaveImage node"},
		{name: "workflow without outputs", options: func(t *testing.T, o *Options) { o.Workflow = noOutputs(t) },
			reason: ReasonRejected, message: "Prompt has no outputs"},
		{name: "timeout", cfg: backendfake.ComfyUIConfig{Fail: backendfake.ComfyHang},
			options: func(t *testing.T, o *Options) { o.Timeout = 300 * time.Millisecond }, reason: ReasonTimeout, message: "did not finish the job within 300ms"},
		{name: "slow model load beyond the timeout", cfg: backendfake.ComfyUIConfig{LoadDelay: time.Minute},
			options: func(t *testing.T, o *Options) { o.Timeout = 200 * time.Millisecond }, reason: ReasonTimeout, message: "raise the backend's timeout"},
		{name: "server dies mid-job", cfg: backendfake.ComfyUIConfig{Fail: backendfake.ComfyDie, FailAtStep: 2, StepDelay: 20 * time.Millisecond},
			reason: ReasonUnavailable, message: "stopped answering while making the image"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := backendfake.NewComfyUI(t, tt.cfg)
			if tt.kill {
				fake.Kill()
			}
			c := newComfyTest(t, fake, func(o *Options) {
				if tt.options != nil {
					tt.options(t, o)
				}
			})
			req := comfyRequest(256, 256, 1)
			if tt.request != nil {
				tt.request(&req)
			}
			_, err := c.Generate(context.Background(), req, nil)
			var be *Error
			if !errors.As(err, &be) {
				t.Fatalf("err = %v (%T), want *Error", err, err)
			}
			if be.Reason != tt.reason || !strings.Contains(be.Message, tt.message) || be.Backend != "gpu0" {
				t.Errorf("got %s / %q / backend %q\nwant %s / message containing %q", be.Reason, be.Message, be.Backend, tt.reason, tt.message)
			}
			if tt.name == "only the VAE is missing" && strings.Contains(be.Message, "choose another model") {
				t.Errorf("a missing VAE is not fixed by choosing another model: %s", be.Message)
			}
			if o := fake.Origins(); len(o) != 0 {
				t.Errorf("adapter sent Origin headers %q", o)
			}
		})
	}
}

func TestComfyUITimeoutStopsTheJobOnTheServer(t *testing.T) {
	fake := backendfake.NewComfyUI(t, backendfake.ComfyUIConfig{Fail: backendfake.ComfyHang})
	c := newComfyTest(t, fake, func(o *Options) { o.Timeout = 200 * time.Millisecond })
	if _, err := c.Generate(context.Background(), comfyRequest(128, 128, 1), nil); Reason(err) != ReasonTimeout {
		t.Fatalf("err = %v, want timeout", err)
	}
	ids := fake.Interrupts()
	if len(ids) != 1 || ids[0] == "" {
		t.Fatalf("interrupts = %q, want one targeted at the job", ids)
	}
	// Stopped there, and its history entry (the graph, prompt included) gone.
	if got := fake.Status(ids[0]); got != "unknown" || !slices.Contains(fake.HistoryDeleted(), ids[0]) {
		t.Errorf("prompt is %q, history deleted %q; want it stopped and its entry deleted", got, fake.HistoryDeleted())
	}
}

func TestComfyUICancel(t *testing.T) {
	fake := backendfake.NewComfyUI(t, backendfake.ComfyUIConfig{StepDelay: 20 * time.Millisecond})
	c := newComfyTest(t, fake, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, err := c.Generate(ctx, comfyRequest(128, 128, 1), func(p Progress) {
		if p.Step == 2 {
			cancel()
		}
	})
	var be *Error
	if !errors.As(err, &be) || be.Reason != ReasonCanceled || !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want a canceled *Error wrapping context.Canceled", err)
	}
	ids, deleted := fake.Interrupts(), fake.Deleted()
	if len(ids) != 1 || len(deleted) != 1 || ids[0] != deleted[0] {
		t.Fatalf("interrupts %q, deletes %q: want one of each, for the job's prompt_id", ids, deleted)
	}
	if len(ids[0]) != 36 || strings.ToLower(ids[0]) != ids[0] {
		t.Errorf("prompt_id %q is not a canonical lowercase UUID", ids[0])
	}
	// The fake stops at its next step: the prompt ends interrupted, not
	// done, and its history entry is deleted once it is there.
	if got := fake.Status(ids[0]); got != "unknown" || !slices.Contains(fake.HistoryDeleted(), ids[0]) {
		t.Errorf("prompt is %q, history deleted %q; want it stopped and its entry deleted", got, fake.HistoryDeleted())
	}
	if o := fake.Origins(); len(o) != 0 {
		t.Errorf("adapter sent Origin headers %q", o)
	}
}

func TestComfyUIInterruptedOnTheServer(t *testing.T) {
	fake := backendfake.NewComfyUI(t, backendfake.ComfyUIConfig{Fail: backendfake.ComfyHang})
	c := newComfyTest(t, fake, nil)
	// Someone presses Cancel in ComfyUI's own page: a global interrupt. It
	// is repeated until the job ends, because the first one may reach the
	// server before the prompt is marked running there (a global interrupt
	// with nothing running does nothing, as in ComfyUI).
	done := make(chan struct{})
	defer close(done)
	var once sync.Once
	_, err := c.Generate(context.Background(), comfyRequest(128, 128, 1), func(Progress) {
		once.Do(func() {
			go func() {
				for i := 0; i < 100; i++ {
					select {
					case <-done:
						return
					case <-time.After(20 * time.Millisecond):
					}
					if resp, err := http.Post(fake.URL+"/interrupt", "application/json", nil); err == nil {
						resp.Body.Close()
					}
				}
			}()
		})
	})
	if Reason(err) != ReasonCanceled || !strings.Contains(err.Error(), "interrupted on ComfyUI") {
		t.Fatalf("err = %v, want canceled by an interrupt on the server", err)
	}
}

// waitComfyStatus waits, boundedly, for the fake to settle a prompt.
func waitComfyStatus(t *testing.T, fake *backendfake.ComfyUI, id, want string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for fake.Status(id) != want {
		if time.Now().After(deadline) {
			t.Fatalf("prompt %s is %q, want %q", id, fake.Status(id), want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestComfyUIWebsocketDropFallsBackToHistory(t *testing.T) {
	fake := backendfake.NewComfyUI(t, backendfake.ComfyUIConfig{Fail: backendfake.ComfyDropWebsocket, FailAtStep: 3, StepDelay: 5 * time.Millisecond})
	c := newComfyTest(t, fake, nil)
	var steps []int
	res, err := c.Generate(context.Background(), comfyRequest(128, 128, 1), func(p Progress) {
		if p.Preview == nil {
			steps = append(steps, p.Step)
		}
	})
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	if len(res.Images) != 1 {
		t.Fatalf("got %d images, want 1", len(res.Images))
	}
	// The socket dropped after step 3; the finished job then says 8/8.
	if want := []int{1, 2, 3, 8}; !slices.Equal(steps, want) {
		t.Errorf("progress %v, want %v: the socket dropped after step 3", steps, want)
	}
	polls := 0
	for route, n := range fake.Requests() {
		if strings.HasPrefix(route, "GET /history/") {
			polls += n
		}
	}
	if polls < 2 {
		t.Errorf("/history polled %d times, want polling after the drop", polls)
	}
}

func TestComfyUIHealth(t *testing.T) {
	tests := []struct {
		name   string
		cfg    backendfake.ComfyUIConfig
		kill   bool
		reason string
	}{
		{name: "up", reason: ""},
		{name: "down", kill: true, reason: ReasonUnavailable},
		{name: "garbage", cfg: backendfake.ComfyUIConfig{Fail: backendfake.ComfyGarbage}, reason: ReasonBadResponse},
		{name: "500", cfg: backendfake.ComfyUIConfig{Fail: backendfake.ComfyHTTP500}, reason: ReasonFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := backendfake.NewComfyUI(t, tt.cfg)
			if tt.kill {
				fake.Kill()
			}
			err := newComfyTest(t, fake, nil).Health(context.Background())
			if got := Reason(err); (err == nil) != (tt.reason == "") || (err != nil && got != tt.reason) {
				t.Errorf("Health = %v, want reason %q", err, tt.reason)
			}
		})
	}
}

func TestComfyUIModels(t *testing.T) {
	fake := backendfake.NewComfyUI(t, backendfake.ComfyUIConfig{Models: []string{"a.safetensors", backendfake.ComfyDefaultUNet, "b.safetensors"}})
	got, err := newComfyTest(t, fake, nil).Models(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := []string{backendfake.ComfyDefaultUNet, "a.safetensors", "b.safetensors"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("Models = %q, want %q (the default first)", got, want)
	}
	listed, err := newComfyTest(t, fake, func(o *Options) { o.Models = []string{"x", "y"} }).Models(context.Background())
	if err != nil || strings.Join(listed, ",") != "x,y" {
		t.Errorf("Models with Options.Models = %q, %v", listed, err)
	}
	fake.Kill()
	if _, err := newComfyTest(t, fake, nil).Models(context.Background()); Reason(err) != ReasonUnavailable {
		t.Errorf("Models on a dead server: %v, want unavailable", err)
	}
}

// A ComfyUI that answers but lacks the workflow's files is up, shows no
// models it does not have (never the workflow's default as if it were
// there), and names every missing file.
func TestComfyUIInspectNamesWhatIsMissing(t *testing.T) {
	tests := []struct {
		name        string
		cfg         backendfake.ComfyUIConfig
		wantModels  string
		wantMissing []string
	}{
		{name: "everything installed", wantModels: backendfake.ComfyDefaultUNet},
		{name: "no model files", cfg: backendfake.ComfyUIConfig{Models: []string{}, CLIPs: []string{}, VAEs: []string{}}, wantModels: "",
			wantMissing: []string{"z_image_turbo_bf16.safetensors (diffusion model, in models/diffusion_models)",
				"ae.safetensors (VAE, in models/vae)", "qwen_3_4b.safetensors (text encoder, in models/text_encoders)"}},
		{name: "another diffusion model, no text encoder", cfg: backendfake.ComfyUIConfig{Models: []string{"flux1-dev.safetensors"}, CLIPs: []string{}},
			wantModels: "flux1-dev.safetensors", wantMissing: []string{"z_image_turbo_bf16.safetensors (diffusion model, in models/diffusion_models)",
				"qwen_3_4b.safetensors (text encoder, in models/text_encoders)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := backendfake.NewComfyUI(t, tt.cfg)
			in, err := Inspect(context.Background(), newComfyTest(t, fake, nil))
			if err != nil {
				t.Fatalf("Inspect: %v; a server that answers is up", err)
			}
			if got := strings.Join(in.Models, ","); got != tt.wantModels || in.Models == nil {
				t.Errorf("Models = %#v, want %q", in.Models, tt.wantModels)
			}
			if strings.Join(in.Missing, "|") != strings.Join(tt.wantMissing, "|") {
				t.Errorf("Missing = %q\nwant %q", in.Missing, tt.wantMissing)
			}
		})
	}
}

func TestNewComfyUIValidation(t *testing.T) {
	graph := `{"6": {"class_type": "CLIPTextEncode", "inputs": {"text": "", "clip": ["4", 1]}},
	           "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "x.safetensors"}}}`
	tests := []struct {
		name     string
		url      string
		workflow string
		mapping  map[string]string
		want     string // "" means valid
	}{
		{name: "default workflow", want: ""},
		{name: "no url", url: "-", want: "url is empty"},
		{name: "not a url", url: "127.0.0.1:8188", want: "is not an http(s) URL"},
		{name: "custom workflow with default map fails on missing node", workflow: graph, want: `workflow_map.batch_size points at node "13", which is not in the workflow`},
		{name: "custom workflow and map", workflow: graph, mapping: map[string]string{"prompt": "6.text", "model": "4.ckpt_name"}, want: ""},
		{name: "saved /prompt body", workflow: `{"client_id": "c", "prompt": ` + graph + `}`, mapping: map[string]string{"prompt": "6.text"}, want: ""},
		{name: "not json", workflow: `{"6": `, want: "not valid JSON"},
		{name: "editor format", workflow: `{"nodes": [], "links": [], "version": 0.4}`, want: `Export (API)`},
		{name: "node without class", workflow: `{"6": {"inputs": {}}}`, want: `node "6" has no class_type`},
		{name: "map without prompt", workflow: graph, mapping: map[string]string{"model": "4.ckpt_name"}, want: `no "prompt" entry`},
		{name: "unknown key", workflow: graph, mapping: map[string]string{"prompt": "6.text", "sampler": "6.text"}, want: `key "sampler" is not a parameter`},
		{name: "malformed target", workflow: graph, mapping: map[string]string{"prompt": "6text"}, want: `write it as node_id.input_name`},
		{name: "missing node", workflow: graph, mapping: map[string]string{"prompt": "7.text"}, want: `workflow_map.prompt points at node "7"`},
		{name: "missing input", workflow: graph, mapping: map[string]string{"prompt": "6.txt"}, want: `input "txt" of node 6 (CLIPTextEncode), which has no such input; its inputs are clip, text`},
		{name: "linked input", workflow: graph, mapping: map[string]string{"prompt": "6.clip"}, want: `which is linked to node 4`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := Options{Name: "gpu0", URL: "http://127.0.0.1:8188", WorkflowMap: tt.mapping}
			if tt.url == "-" {
				o.URL = ""
			} else if tt.url != "" {
				o.URL = tt.url
			}
			if tt.workflow != "" {
				o.Workflow = []byte(tt.workflow)
			}
			_, err := NewComfyUI(o)
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("unexpected error: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), `"gpu0"`)):
				t.Errorf("err = %v, want one naming gpu0 and containing %q", err, tt.want)
			}
		})
	}
}

func TestComfyUICustomWorkflowFillsMappedInputs(t *testing.T) {
	fake := backendfake.NewComfyUI(t, backendfake.ComfyUIConfig{})
	raw, err := zembed.FS.ReadFile(comfyDefaultWorkflowPath)
	if err != nil {
		t.Fatal(err)
	}
	// The same graph, but the size is taken from the map only: with
	// width/height unmapped the workflow's own 1024x1024 must stay.
	c := newComfyTest(t, fake, func(o *Options) {
		o.Workflow = raw
		o.WorkflowMap = map[string]string{"prompt": "27.text", "seed": "3.seed", "batch_size": "13.batch_size"}
	})
	res, err := c.Generate(context.Background(), comfyRequest(128, 128, 1), nil)
	if err != nil {
		t.Fatal(err)
	}
	if b := decodePNG(t, res.Images[0]).Bounds(); b.Dx() != 1024 || b.Dy() != 1024 {
		t.Errorf("image is %dx%d, want the workflow's 1024x1024", b.Dx(), b.Dy())
	}
}

// BenchmarkComfyUIOverhead compares a whole job through the adapter with
// the same wire exchange done by a minimal hand-written client, both at zero
// step delay and 1024x1024, so the difference is what the adapter costs.
func BenchmarkComfyUIOverhead(b *testing.B) {
	fake := backendfake.NewComfyUI(b, backendfake.ComfyUIConfig{})
	c := newComfyTest(b, fake, nil)
	req := comfyRequest(1024, 1024, 1)
	b.Run("adapter", func(b *testing.B) {
		for b.Loop() {
			if _, err := c.Generate(context.Background(), req, func(Progress) {}); err != nil {
				b.Fatal(err)
			}
		}
	})
	graph, _, err := c.fill(req)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("raw", func(b *testing.B) {
		for b.Loop() {
			rawComfyJob(b, fake.URL, graph)
		}
	})
}

// rawComfyJob is the least a client can do: socket, post, wait for the
// final executing, history, view.
func rawComfyJob(b *testing.B, base string, graph comfyGraph) {
	ctx := context.Background()
	id := comfyUUID()
	conn, _, err := websocket.Dial(ctx, strings.Replace(base, "http", "ws", 1)+"/ws?clientId="+id, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.CloseNow()
	body, _ := json.Marshal(map[string]any{"prompt": graph, "client_id": id, "prompt_id": id})
	resp, err := http.Post(base+"/prompt", "application/json", bytes.NewReader(body))
	if err != nil || resp.StatusCode != 200 {
		b.Fatalf("post: %v", err)
	}
	resp.Body.Close()
	for {
		typ, data, err := conn.Read(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if typ == websocket.MessageText && bytes.Contains(data, []byte(`"node":null`)) {
			break
		}
	}
	var hist map[string]struct {
		Outputs map[string]struct{ Images []comfyFile } `json:"outputs"`
	}
	resp, err = http.Get(base + "/history/" + id)
	if err != nil {
		b.Fatal(err)
	}
	_ = json.NewDecoder(resp.Body).Decode(&hist)
	resp.Body.Close()
	f := hist[id].Outputs["9"].Images[0]
	resp, err = http.Get(base + "/view?" + url.Values{"filename": {f.Filename}, "subfolder": {f.Subfolder}, "type": {f.Type}}.Encode())
	if err != nil {
		b.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
}

// An operator clearing ComfyUI's queue removes a waiting prompt without a
// history entry. The job ends at the next safety look at /queue, saying
// what happened, instead of waiting out the backend's timeout.
func TestComfyUIPromptClearedFromTheQueue(t *testing.T) {
	fake := backendfake.NewComfyUI(t, backendfake.ComfyUIConfig{Fail: backendfake.ComfyHang, StepDelay: 5 * time.Millisecond})
	c := newComfyTest(t, fake, nil)
	// Another client's prompt holds the server.
	first, stopFirst := context.WithCancel(context.Background())
	defer stopFirst()
	go func() { _, _ = c.Generate(first, comfyRequest(64, 64, 1), nil) }()
	deadline := time.Now().Add(5 * time.Second)
	for fake.Requests()["POST /prompt"] < 1 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	done := make(chan error, 1)
	go func() {
		_, err := c.Generate(context.Background(), comfyRequest(64, 64, 1), nil)
		done <- err
	}()
	for fake.Requests()["POST /prompt"] < 2 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	resp, err := http.Post(fake.URL+"/queue", "application/json", strings.NewReader(`{"clear": true}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	select {
	case err := <-done:
		var be *Error
		if !errors.As(err, &be) || be.Reason != ReasonCanceled || !strings.Contains(be.Message, "removed from the queue") {
			t.Errorf("err = %v, want canceled: removed from the queue", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the job still waits for a prompt that is no longer anywhere on the server")
	}
}

// TestComfyUIProgressEachStepOnce: newer builds send progress_state, then
// the step's preview, then progress; older ones progress, then the
// preview. Either way each step is reported once, and every preview
// carries its own step, not the one before.
func TestComfyUIProgressEachStepOnce(t *testing.T) {
	for _, tt := range []struct {
		name string
		old  bool
	}{{"with progress_state", false}, {"before progress_state", true}} {
		t.Run(tt.name, func(t *testing.T) {
			fake := backendfake.NewComfyUI(t, backendfake.ComfyUIConfig{Previews: true, OldProgress: tt.old})
			c := newComfyTest(t, fake, nil)
			var steps, previews []int
			_, err := c.Generate(context.Background(), comfyRequest(512, 512, 1), func(p Progress) {
				if p.Preview != nil {
					previews = append(previews, p.Step)
					return
				}
				steps = append(steps, p.Step)
			})
			if err != nil {
				t.Fatalf("Generate: %v", err)
			}
			want := []int{1, 2, 3, 4, 5, 6, 7, 8}
			if !slices.Equal(steps, want) {
				t.Errorf("steps reported %v, want %v", steps, want)
			}
			if !slices.Equal(previews, want) {
				t.Errorf("previews carried steps %v, want %v", previews, want)
			}
		})
	}
}
