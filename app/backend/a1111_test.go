package backend

import (
	"bytes"
	"context"
	"errors"
	"image/png"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"zimage/app/backend/backendfake"
)

// wantError checks that err is an *Error with the reason, naming the
// backend and saying what to do (hint, matched case-insensitively).
func wantError(t *testing.T, err error, name, reason, hint string) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error = %v (%T), want *Error with reason %s", err, err, reason)
	}
	if e.Reason != reason {
		t.Fatalf("reason = %s, want %s (message: %s)", e.Reason, reason, e.Message)
	}
	if !strings.Contains(e.Message, `"`+name+`"`) {
		t.Errorf("message does not name backend %q: %s", name, e.Message)
	}
	if !strings.Contains(strings.ToLower(e.Message), strings.ToLower(hint)) {
		t.Errorf("message does not say %q: %s", hint, e.Message)
	}
}

// wantReadable checks that a message reads as a sentence: no doubled
// punctuation, every parenthesis closed, no raw base64, and any quote of
// what the server sent at most 80 characters.
func wantReadable(t *testing.T, err error) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		return
	}
	m := e.Message
	for _, bad := range []string{"?.", "..", ".;", "?;", "()"} {
		if strings.Contains(m, bad) {
			t.Errorf("message has %q: %s", bad, m)
		}
	}
	if strings.Count(m, "(") != strings.Count(m, ")") {
		t.Errorf("message leaves a parenthesis open: %s", m)
	}
	if regexp.MustCompile(`[A-Za-z0-9+/]{40,}`).MatchString(m) {
		t.Errorf("message embeds raw base64: %s", m)
	}
	if i := strings.Index(m, "“"); i >= 0 {
		if j := strings.Index(m[i:], "”"); j < 0 || utf8.RuneCountInString(m[i:i+j]) > 82 {
			t.Errorf("message quotes more than 80 characters of the answer: %s", m)
		}
	}
}

// wantPNG checks that data is a PNG of w×h.
func wantPNG(t *testing.T, data []byte, w, h int) {
	t.Helper()
	cfg, err := png.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("not a PNG: %v", err)
	}
	if cfg.Width != w || cfg.Height != h {
		t.Fatalf("PNG is %d×%d, want %d×%d", cfg.Width, cfg.Height, w, h)
	}
}

// progressLog records progress calls and fails on concurrent ones.
type progressLog struct {
	mu    sync.Mutex
	busy  bool
	steps []Progress
	bad   bool
}

func (l *progressLog) add(p Progress) {
	l.mu.Lock()
	if l.busy {
		l.bad = true
	}
	l.busy = true
	l.steps = append(l.steps, p)
	l.mu.Unlock()
	time.Sleep(time.Millisecond)
	l.mu.Lock()
	l.busy = false
	l.mu.Unlock()
}

func (l *progressLog) all() []Progress {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Progress(nil), l.steps...)
}

func newTestA1111(t *testing.T, url string, change func(*Options)) *a1111 {
	t.Helper()
	o := Options{Name: "gpu1", Kind: KindA1111, URL: url}
	if change != nil {
		change(&o)
	}
	b, err := NewA1111(o)
	if err != nil {
		t.Fatal(err)
	}
	a := b.(*a1111)
	a.pollEvery = 5 * time.Millisecond
	return a
}

var zreq = Request{JobID: "j1", Prompt: "a lighthouse at dusk", Width: 64, Height: 48, Steps: 8, Seed: 7, Count: 2}

func TestA1111Generate(t *testing.T) {
	fake := backendfake.NewA1111(t, backendfake.A1111Config{StepDelay: 15 * time.Millisecond, Models: []string{"sdxl.safetensors", "z_image_turbo_bf16.safetensors"}})
	b := newTestA1111(t, fake.URL, nil)
	var log progressLog
	req := zreq
	req.Model = "z_image_turbo_bf16"
	res, err := b.Generate(context.Background(), req, log.add)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Images) != 2 {
		t.Fatalf("got %d images, want 2", len(res.Images))
	}
	for i, img := range res.Images {
		wantPNG(t, img.Data, 64, 48)
		if img.ContentType != "image/png" || img.Seed != 7+int64(i) {
			t.Errorf("image %d: type %s seed %d", i, img.ContentType, img.Seed)
		}
	}
	if bytes.Equal(res.Images[0].Data, res.Images[1].Data) {
		t.Error("both images are the same; seeds were not applied")
	}
	if res.Model != "z_image_turbo_bf16" {
		t.Errorf("model = %q", res.Model)
	}
	steps := log.all()
	if log.bad {
		t.Error("progress was called concurrently")
	}
	if last := steps[len(steps)-1]; last.Step != 8 || last.Steps != 8 {
		t.Errorf("last progress = %+v, want 8/8", last)
	}
	var fromServer, previews int
	for _, p := range steps[1 : len(steps)-1] {
		if p.Steps == 8 && p.Step > 0 {
			fromServer++
		}
		if p.Preview != nil {
			previews++
			wantPNG(t, p.Preview, 64, 64)
		}
	}
	if fromServer == 0 || previews == 0 {
		t.Errorf("no progress polled from the server (%d steps, %d previews): %+v", fromServer, previews, steps)
	}
	body := fake.Txt2ImgBodies()[0]
	for k, want := range map[string]any{"prompt": req.Prompt, "width": 64.0, "height": 48.0, "steps": 8.0, "cfg_scale": 1.0, "seed": 7.0,
		"batch_size": 2.0, "sampler_name": "Euler", "override_settings_restore_afterwards": false} {
		if body[k] != want {
			t.Errorf("txt2img %s = %v, want %v", k, body[k], want)
		}
	}
	if ck := body["override_settings"].(map[string]any)["sd_model_checkpoint"]; ck != "z_image_turbo_bf16" {
		t.Errorf("sd_model_checkpoint = %v", ck)
	}
}

func TestA1111SkipsGridAndServesSDCpp(t *testing.T) {
	for _, cfg := range []backendfake.A1111Config{{Grid: true}, {SDCpp: true}} {
		fake := backendfake.NewA1111(t, cfg)
		b := newTestA1111(t, fake.URL, nil)
		var log progressLog
		res, err := b.Generate(context.Background(), zreq, log.add)
		if err != nil {
			t.Fatalf("%+v: %v", cfg, err)
		}
		if len(res.Images) != 2 || res.Images[0].Seed != 7 || res.Images[1].Seed != 8 {
			t.Fatalf("%+v: got %d images", cfg, len(res.Images))
		}
		for _, img := range res.Images {
			wantPNG(t, img.Data, 64, 48)
		}
		if cfg.SDCpp {
			if n := len(log.all()); n != 2 {
				t.Errorf("sd-server has no progress route, want start and end only, got %d calls", n)
			}
		}
	}
}

func TestA1111Failures(t *testing.T) {
	tests := []struct {
		name   string
		cfg    backendfake.A1111Config
		opts   func(*Options)
		req    func(*Request)
		before func(*backendfake.A1111)
		reason string
		hint   string
	}{
		{name: "refused", before: (*backendfake.A1111).Kill, reason: ReasonUnavailable, hint: "check that the server is running"},
		{name: "out of memory", cfg: backendfake.A1111Config{Fail: backendfake.A1111OOM, FailAtStep: 3}, reason: ReasonOutOfMemory, hint: "smaller size"},
		{name: "server error", cfg: backendfake.A1111Config{Fail: backendfake.A1111HTTP500}, reason: ReasonFailed, hint: "check the server's log"},
		{name: "garbage", cfg: backendfake.A1111Config{Fail: backendfake.A1111Garbage}, reason: ReasonBadResponse, hint: "check that the url"},
		{name: "bad base64", cfg: backendfake.A1111Config{Fail: backendfake.A1111BadBase64}, reason: ReasonBadResponse, hint: "not valid base64"},
		{name: "truncated answer", cfg: backendfake.A1111Config{Fail: backendfake.A1111Truncated}, reason: ReasonBadResponse, hint: "not sdapi JSON"},
		{name: "hang", cfg: backendfake.A1111Config{Fail: backendfake.A1111Hang}, opts: func(o *Options) { o.Timeout = 150 * time.Millisecond }, reason: ReasonTimeout, hint: "raise timeout"},
		{name: "slow start", cfg: backendfake.A1111Config{LoadDelay: time.Second}, opts: func(o *Options) { o.Timeout = 100 * time.Millisecond }, reason: ReasonTimeout, hint: "raise timeout"},
		{name: "dies mid-job", cfg: backendfake.A1111Config{Fail: backendfake.A1111Die, FailAtStep: 2, StepDelay: 5 * time.Millisecond}, reason: ReasonUnavailable, hint: "check its log"},
		{name: "api off", cfg: backendfake.A1111Config{Fail: backendfake.A1111NoAPI}, reason: ReasonUnavailable, hint: "--api"},
		{name: "missing model", req: func(r *Request) { r.Model = "flux-dev" }, reason: ReasonModelMissing, hint: "install it"},
		{name: "missing default model", opts: func(o *Options) { o.Model = "flux-dev" }, reason: ReasonModelMissing, hint: "z_image_turbo_bf16"},
		{name: "sd-server out of memory", cfg: backendfake.A1111Config{SDCpp: true, Fail: backendfake.A1111OOM}, reason: ReasonOutOfMemory, hint: "ran out of memory"},
		{name: "sd-server rejects", cfg: backendfake.A1111Config{SDCpp: true}, req: func(r *Request) { r.Prompt = "" }, reason: ReasonRejected, hint: "prompt required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := backendfake.NewA1111(t, tt.cfg)
			if tt.before != nil {
				tt.before(fake)
			}
			b := newTestA1111(t, fake.URL, tt.opts)
			req := zreq
			if tt.req != nil {
				tt.req(&req)
			}
			_, err := b.Generate(context.Background(), req, nil)
			wantError(t, err, "gpu1", tt.reason, tt.hint)
			wantReadable(t, err)
			if tt.name == "hang" && fake.Requests()["POST /sdapi/v1/interrupt"] != 1 {
				t.Error("a timed-out job was not interrupted on the server")
			}
		})
	}
}

// The 422 shapes come from the fake itself, so the parser is checked
// against the wire format rather than a string typed here.
func TestA1111ValidationError(t *testing.T) {
	fake := backendfake.NewA1111(t, backendfake.A1111Config{})
	for _, tc := range []struct{ body, reason, field string }{
		{`{"prompt":"x","steps":"eight"}`, ReasonRejected, "field steps"},
		{`{"prompt":"x","sampler_name":"Nope"}`, ReasonRejected, "Sampler not found"},
	} {
		resp, err := http.Post(fake.URL+"/sdapi/v1/txt2img", "application/json", strings.NewReader(tc.body))
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		e := httpPeer{Name: "gpu1", Kind: KindA1111, URL: fake.URL}.httpStatusError(resp.StatusCode, data, a1111Hint404)
		if e.Reason != tc.reason || !strings.Contains(e.Message, tc.field) {
			t.Errorf("%s → %s: %s", tc.body, e.Reason, e.Message)
		}
	}
}

func TestA1111CancelInterruptsServer(t *testing.T) {
	fake := backendfake.NewA1111(t, backendfake.A1111Config{StepDelay: 20 * time.Millisecond})
	b := newTestA1111(t, fake.URL, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req := zreq
	req.Steps = 200
	_, err := b.Generate(ctx, req, func(p Progress) {
		if p.Step >= 2 {
			cancel()
		}
	})
	wantError(t, err, "gpu1", ReasonCanceled, "canceled")
	if n := fake.Requests()["POST /sdapi/v1/interrupt"]; n != 1 {
		t.Fatalf("interrupt sent %d times, want 1", n)
	}
	if fake.Busy() {
		t.Error("Generate returned while the server was still running the canceled job")
	}
	if b.FinishesOnCancel() {
		t.Error("A1111 can be interrupted, yet the adapter says it finishes a canceled image")
	}
}

// TestA1111CancelOnSDServer: sd-server's sdapi has no interrupt route, so
// none is posted (it would answer 404), and Generate holds on until the
// server has finished the canceled image.
func TestA1111CancelOnSDServer(t *testing.T) {
	fake := backendfake.NewA1111(t, backendfake.A1111Config{SDCpp: true, StepDelay: 20 * time.Millisecond})
	b := newTestA1111(t, fake.URL, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		for !fake.Busy() {
			time.Sleep(5 * time.Millisecond)
		}
		cancel()
	}()
	_, err := b.Generate(ctx, zreq, nil)
	wantError(t, err, "gpu1", ReasonCanceled, "canceled")
	if n := fake.Requests()["POST /sdapi/v1/interrupt"]; n != 0 {
		t.Errorf("interrupt posted %d times to sd-server, which has no such route", n)
	}
	if fake.Busy() {
		t.Error("Generate returned while sd-server was still making the canceled image")
	}
	if !b.FinishesOnCancel() {
		t.Error("the adapter does not say sd-server finishes a canceled image")
	}
}

func TestA1111HealthAndModels(t *testing.T) {
	fake := backendfake.NewA1111(t, backendfake.A1111Config{Models: []string{"a.safetensors", "b.safetensors"}})
	b := newTestA1111(t, fake.URL, nil)
	if err := b.Health(context.Background()); err != nil {
		t.Fatal(err)
	}
	got, err := b.Models(context.Background())
	if err != nil || strings.Join(got, ",") != "a,b" {
		t.Fatalf("Models = %v, %v", got, err)
	}
	withDefault := newTestA1111(t, fake.URL, func(o *Options) { o.Model = "b.safetensors" })
	if got, _ := withDefault.Models(context.Background()); len(got) != 2 || got[0] != "b" {
		t.Errorf("Models with default b = %v", got)
	}
	configured := newTestA1111(t, fake.URL, func(o *Options) { o.Models = []string{"x"} })
	if got, _ := configured.Models(context.Background()); strings.Join(got, ",") != "x" {
		t.Errorf("configured Models = %v", got)
	}
	fake.Kill()
	wantError(t, b.Health(context.Background()), "gpu1", ReasonUnavailable, "running")
}

func TestNewRejectsBadURLAndKind(t *testing.T) {
	if _, err := NewA1111(Options{Name: "x", URL: "localhost:7860"}); Reason(err) != ReasonRejected {
		t.Errorf("url without scheme: %v", err)
	}
	_, err := New(Options{Name: "x", Kind: "dalle"})
	if err == nil || !strings.Contains(err.Error(), "comfyui, a1111, openai, builtin") {
		t.Errorf("unknown kind: %v", err)
	}
	for _, k := range Kinds {
		b, err := New(Options{Name: "x", Kind: k, URL: "http://127.0.0.1:1"})
		if err != nil || b.Kind() != k {
			t.Errorf("New(%s) = %v, %v", k, b, err)
		}
	}
}

// TestSDServerSdapiRecordsModel: sd-server's txt2img info is "", so the
// model comes from its sd-models list, never "".
func TestSDServerSdapiRecordsModel(t *testing.T) {
	fake := backendfake.NewA1111(t, backendfake.A1111Config{SDCpp: true, Models: []string{"z_image_turbo-Q4_K.gguf"}})
	res, err := newTestA1111(t, fake.URL, nil).Generate(context.Background(), zreq, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Model != "z_image_turbo-Q4_K" {
		t.Errorf("model = %q, want the one sd-server lists", res.Model)
	}
}
