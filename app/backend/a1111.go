package backend

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"path"
	"strings"
	"sync"
	"time"
)

// a1111 speaks the /sdapi/v1 API of AUTOMATIC1111, Forge Neo and
// stable-diffusion.cpp's sd-server. The txt2img call is synchronous: the
// answer arrives when the images are done, so progress comes from polling
// /sdapi/v1/progress beside it (sd-server has no such route: we then report
// only the start and the end).
type a1111 struct {
	peer      httpPeer
	opts      Options
	client    *http.Client
	pollEvery time.Duration
	caps      capsCache

	mu sync.Mutex
	// noProgress is set once /sdapi/v1/progress answered 404: the server
	// is sd-server, which has neither progress nor interrupt routes.
	noProgress bool
}

// NewA1111 returns a backend for an AUTOMATIC1111-style server at o.URL.
func NewA1111(o Options) (Backend, error) {
	peer, _, err := httpPeerFromOptions(o, KindA1111)
	if err != nil {
		return nil, err
	}
	c := o.HTTPClient
	if c == nil {
		c = httpDefaultClient()
	}
	return &a1111{peer: peer, opts: o, client: c, pollEvery: 250 * time.Millisecond}, nil
}

func (b *a1111) Name() string { return b.peer.Name }
func (b *a1111) Kind() string { return KindA1111 }

const a1111Hint404 = "Start it with the --api flag (Forge Neo, AUTOMATIC1111), or check that the url points at it."

// a1111Txt2Img is the body of POST /sdapi/v1/txt2img. Unknown fields are
// ignored by both A1111 (pydantic) and sd-server, so one shape serves both.
type a1111Txt2Img struct {
	Prompt         string  `json:"prompt"`
	NegativePrompt string  `json:"negative_prompt,omitempty"`
	Width          int     `json:"width"`
	Height         int     `json:"height"`
	Steps          int     `json:"steps"`
	CFGScale       float64 `json:"cfg_scale"`
	Seed           int64   `json:"seed"`
	BatchSize      int     `json:"batch_size"`
	NIter          int     `json:"n_iter"`
	// Z-Image-Turbo is a flow-matching model sampled with plain Euler
	// (protocols.md §5); "Euler" is a name A1111 knows and sd-server maps to
	// its euler method.
	SamplerName      string         `json:"sampler_name"`
	Scheduler        string         `json:"scheduler,omitempty"`
	SendImages       bool           `json:"send_images"`
	SaveImages       bool           `json:"save_images"`
	OverrideSettings map[string]any `json:"override_settings,omitempty"`
	// A1111 restores overridden settings after the job by default, which
	// would reload the previous checkpoint after every image: keep the
	// requested model loaded instead.
	OverrideRestore bool `json:"override_settings_restore_afterwards"`
}

// a1111Info is the part of the txt2img "info" JSON string we use.
type a1111Info struct {
	AllSeeds          []int64 `json:"all_seeds"`
	IndexOfFirstImage int     `json:"index_of_first_image"`
	SDModelName       string  `json:"sd_model_name"`
}

type a1111Model struct {
	Title     string `json:"title"`
	ModelName string `json:"model_name"`
	Filename  string `json:"filename"`
}

func (b *a1111) Generate(ctx context.Context, req Request, progress func(Progress)) (Result, error) {
	submitted := time.Now()
	if progress == nil {
		progress = func(Progress) {}
	}
	ctx, cancel := httpJobContext(ctx, b.opts.Timeout)
	defer cancel()

	model := req.Model
	if model == "" {
		model = b.opts.Model
	}
	if model != "" {
		if e := b.checkModel(ctx, model); e != nil {
			return Result{}, e
		}
	}
	steps := max(req.Steps, 1)
	count := max(req.Count, 1)
	cfg := req.Guidance
	if cfg <= 1 {
		// Guidance 0 (Turbo's setting) and cfg_scale 1 both mean "no CFG".
		cfg = 1
	}
	body := a1111Txt2Img{
		Prompt: req.Prompt, NegativePrompt: req.NegativePrompt,
		Width: req.Width, Height: req.Height, Steps: steps, CFGScale: cfg,
		Seed: req.Seed, BatchSize: count, NIter: 1, SamplerName: "Euler", Scheduler: req.Scheduler,
		SendImages: true, SaveImages: false,
	}
	if req.Sampler != "" {
		body.SamplerName = req.Sampler
	}
	if model != "" {
		body.OverrideSettings = map[string]any{"sd_model_checkpoint": model}
	}
	payload, err := json.Marshal(body)
	if err != nil {
		return Result{}, b.peer.errorf(ReasonRejected, err, "could not be sent this request. Check the prompt for invalid characters.")
	}

	if e := b.peer.httpStopped(ctx, b.opts.Timeout); e != nil {
		return Result{}, e // canceled before anything reached the server
	}
	progress(Progress{Step: 0, Steps: steps})
	pollCtx, stopPoll := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { b.pollProgress(pollCtx, progress) })
	// Closing our connection does not stop the job on either server: A1111
	// is told to stop through /sdapi/v1/interrupt, after which txt2img
	// answers early; sd-server has no such route and finishes the image.
	// Either way the request is held until the server answers, so the slot
	// stays busy while the server really is.
	reqCtx, cancelReq := httpFinishOnCancel(ctx)
	defer cancelReq()
	answered := make(chan struct{})
	wg.Go(func() {
		select {
		case <-ctx.Done():
		case <-answered: // also when a timeout cut the request short
		}
		// reqCtx's deadline may fire a moment before ctx's own.
		if (ctx.Err() != nil || reqCtx.Err() != nil) && b.canInterrupt(context.WithoutCancel(ctx)) {
			b.interrupt()
		}
	})
	httpReq, err := http.NewRequestWithContext(reqCtx, http.MethodPost, b.peer.URL+"/sdapi/v1/txt2img", bytes.NewReader(payload))
	if err != nil {
		close(answered)
		stopPoll()
		wg.Wait()
		return Result{}, b.peer.errorf(ReasonRejected, err, "could not be sent this request. Check its url.")
	}
	httpReq.Header.Set("Content-Type", "application/json")
	resp, data, e := b.peer.httpDo(reqCtx, b.opts.Timeout, b.client, httpReq, httpMaxBody)
	close(answered)
	stopPoll()
	wg.Wait()
	if stopped := b.peer.httpStopped(ctx, b.opts.Timeout); stopped != nil {
		return Result{}, stopped
	}
	if e != nil {
		return Result{}, e
	}
	if resp.StatusCode/100 != 2 {
		return Result{}, b.peer.httpStatusError(resp.StatusCode, data, a1111Hint404)
	}

	var out struct {
		Images []string        `json:"images"`
		Info   json.RawMessage `json:"info"`
	}
	if err := json.Unmarshal(data, &out); err != nil {
		return Result{}, b.peer.errorf(ReasonBadResponse, err, "answered with something that is not sdapi JSON: %s. Check that the url points at the server's API and that it runs with --api.", httpQuote(data))
	}
	var info a1111Info
	var infoText string
	if json.Unmarshal(out.Info, &infoText) == nil && infoText != "" {
		// sd-server sends "" or a smaller object; a parse failure only
		// costs us the seeds and the model name.
		_ = json.Unmarshal([]byte(infoText), &info)
	}
	images := out.Images
	if len(images) > count && info.IndexOfFirstImage > 0 && info.IndexOfFirstImage < len(images) {
		images = images[info.IndexOfFirstImage:] // skip the grid
	}
	if len(images) > count {
		images = images[:count] // extensions may append extra pictures (masks, maps)
	}
	if len(images) == 0 {
		return Result{}, b.peer.errorf(ReasonFailed, nil, "finished without returning any image; it may have been interrupted from its own interface. Try again, and check its log if it keeps happening.")
	}
	res := Result{Model: info.SDModelName, Submitted: submitted}
	if res.Model == "" {
		res.Model = model
	}
	if res.Model == "" {
		// sd-server's info is "": it serves the one model it was started
		// with, which its sd-models lists.
		if models, _, e := b.listModels(ctx); e == nil && len(models) == 1 {
			res.Model = a1111ModelLabel(models[0])
		}
	}
	for i, s := range images {
		img, ctype, e := b.peer.httpDecodeImage(s)
		if e != nil {
			return Result{}, e
		}
		seed := req.Seed + int64(i)
		if len(info.AllSeeds) == len(images) {
			seed = info.AllSeeds[i]
		}
		res.Images = append(res.Images, Image{Data: img, ContentType: ctype, Seed: seed})
	}
	progress(Progress{Step: steps, Steps: steps})
	res.Finished = time.Now()
	return res, nil
}

// pollProgress reports the server's sampling steps until ctx ends. The
// progress route shows the server's current job, whoever sent it; with one
// slot per backend that is ours once our POST holds the queue lock.
func (b *a1111) pollProgress(ctx context.Context, progress func(Progress)) {
	t := time.NewTicker(b.pollEvery)
	defer t.Stop()
	lastStep, lastPreview, failures := -1, "", 0
	// The stall watchdog: from the first sampling step, a step or preview
	// that does not change for StallTimeout is reported once.
	var lastChange time.Time
	steps, stalled := 0, false
	checkStall := func() {
		if b.opts.StallTimeout <= 0 || lastChange.IsZero() || stalled || ctx.Err() != nil {
			return
		}
		if d := time.Since(lastChange); d >= b.opts.StallTimeout {
			stalled = true
			progress(Progress{Step: max(lastStep, 0), Steps: steps, Stalled: d})
		}
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		var st struct {
			State struct {
				JobCount      int `json:"job_count"`
				SamplingStep  int `json:"sampling_step"`
				SamplingSteps int `json:"sampling_steps"`
			} `json:"state"`
			CurrentImage *string `json:"current_image"`
		}
		status, e := b.getJSON(ctx, "/sdapi/v1/progress?skip_current_image=false", &st)
		if status == http.StatusNotFound {
			b.setNoProgress()
			return // sd-server: no progress route
		}
		if e != nil {
			checkStall()
			if failures++; failures >= 5 && !stalled {
				return
			}
			continue
		}
		failures = 0
		if st.State.JobCount == 0 || st.State.SamplingSteps <= 0 {
			continue
		}
		p := Progress{Step: min(st.State.SamplingStep, st.State.SamplingSteps), Steps: st.State.SamplingSteps}
		if st.CurrentImage != nil && *st.CurrentImage != "" && *st.CurrentImage != lastPreview {
			if img, ctype, e := b.peer.httpDecodeImage(*st.CurrentImage); e == nil {
				p.Preview, p.PreviewType = img, ctype
			}
			lastPreview = *st.CurrentImage
		}
		if p.Step == lastStep && p.Preview == nil {
			checkStall()
			continue
		}
		lastStep, steps, lastChange, stalled = p.Step, p.Steps, time.Now(), false
		if ctx.Err() == nil {
			progress(p)
		}
	}
}

func (b *a1111) setNoProgress() {
	b.mu.Lock()
	b.noProgress = true
	b.mu.Unlock()
}

// canInterrupt tells whether the server has /sdapi/v1/interrupt. sd-server
// has neither it nor /sdapi/v1/progress: a GET of the progress route tells
// them apart without posting an interrupt that would only answer 404.
func (b *a1111) canInterrupt(ctx context.Context) bool {
	b.mu.Lock()
	known := b.noProgress
	b.mu.Unlock()
	if known {
		return false
	}
	var st struct{}
	if status, _ := b.getJSON(ctx, "/sdapi/v1/progress?skip_current_image=true", &st); status == http.StatusNotFound {
		b.setNoProgress()
		return false
	}
	return true
}

// FinishesOnCancel is true for sd-server, once it is known to be one.
func (b *a1111) FinishesOnCancel() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.noProgress
}

// interrupt asks the server to stop its current job. It runs after our own
// context ended, so it gets a fresh, short one.
func (b *a1111) interrupt() {
	ctx, cancel := context.WithTimeout(context.Background(), httpQuickTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, b.peer.URL+"/sdapi/v1/interrupt", nil)
	if err != nil {
		return
	}
	if resp, err := b.client.Do(req); err == nil {
		resp.Body.Close()
	}
}

// getJSON does a quick GET and decodes a 2xx answer into out. It returns
// the status (0 when none came) so callers can treat a missing route apart.
func (b *a1111) getJSON(ctx context.Context, route string, out any) (int, *Error) {
	ctx, cancel := context.WithTimeout(ctx, httpQuickTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, b.peer.URL+route, nil)
	if err != nil {
		return 0, b.peer.errorf(ReasonRejected, err, "could not be asked %s. Check its url.", route)
	}
	resp, data, e := b.peer.httpDo(ctx, 0, b.client, req, httpMaxBody)
	if e != nil {
		if resp != nil {
			return resp.StatusCode, e
		}
		return 0, e
	}
	if resp.StatusCode/100 != 2 {
		return resp.StatusCode, b.peer.httpStatusError(resp.StatusCode, data, a1111Hint404)
	}
	if err := json.Unmarshal(data, out); err != nil {
		return resp.StatusCode, b.peer.errorf(ReasonBadResponse, err, "answered %s with something that is not sdapi JSON. Check that the url points at the server's API.", route)
	}
	return resp.StatusCode, nil
}

func (b *a1111) listModels(ctx context.Context) ([]a1111Model, int, *Error) {
	var models []a1111Model
	status, e := b.getJSON(ctx, "/sdapi/v1/sd-models", &models)
	return models, status, e
}

// checkModel refuses a model the server does not list. A1111 would
// otherwise fall back silently to another checkpoint and the image would
// be labelled with a model that did not make it.
func (b *a1111) checkModel(ctx context.Context, model string) *Error {
	models, _, e := b.listModels(ctx)
	if e != nil {
		if stopped := b.peer.httpStopped(ctx, b.opts.Timeout); stopped != nil {
			return stopped
		}
		if e.Reason == ReasonUnavailable || e.Reason == ReasonTimeout {
			return e
		}
		return nil // no usable list: let the server decide
	}
	for _, m := range models {
		if a1111ModelMatches(m, model) {
			return nil
		}
	}
	names := make([]string, 0, len(models))
	for _, m := range models {
		names = append(names, a1111ModelLabel(m))
	}
	return b.peer.errorf(ReasonModelMissing, nil, "does not have the model %q. Install it there, or choose one it has: %s.", model, strings.Join(names, ", "))
}

// a1111ModelMatches accepts the names A1111 itself accepts for
// sd_model_checkpoint: the title ("name.safetensors [hash]"), the model name,
// or the file name.
func a1111ModelMatches(m a1111Model, want string) bool {
	want = strings.TrimSpace(want)
	title := m.Title
	if i := strings.LastIndex(title, " ["); i > 0 {
		title = title[:i]
	}
	base := path.Base(strings.ReplaceAll(m.Filename, "\\", "/"))
	for _, s := range []string{m.Title, title, m.ModelName, base, strings.TrimSuffix(base, path.Ext(base))} {
		if s != "" && s == want {
			return true
		}
	}
	return false
}

func a1111ModelLabel(m a1111Model) string {
	if m.ModelName != "" {
		return m.ModelName
	}
	return m.Title
}

func (b *a1111) Health(ctx context.Context) error {
	// A server that answers is up even with no checkpoint: the pool then
	// fails jobs for it at once as model_missing instead of letting them
	// wait for a server that is already there.
	_, _, e := b.listModels(ctx)
	if e != nil {
		return e
	}
	return nil
}

func (b *a1111) Models(ctx context.Context) ([]string, error) {
	if len(b.opts.Models) > 0 {
		return append([]string(nil), b.opts.Models...), nil
	}
	models, _, e := b.listModels(ctx)
	if e != nil {
		return nil, e
	}
	names := make([]string, 0, len(models))
	first := -1
	// The default is the checkpoint the server has loaded, unless config
	// names one.
	want := b.opts.Model
	if want == "" {
		var opts struct {
			Checkpoint string `json:"sd_model_checkpoint"`
		}
		if _, e := b.getJSON(ctx, "/sdapi/v1/options", &opts); e == nil {
			want = opts.Checkpoint
		}
	}
	for i, m := range models {
		names = append(names, a1111ModelLabel(m))
		if first < 0 && want != "" && a1111ModelMatches(m, want) {
			first = i
		}
	}
	if first > 0 {
		names[0], names[first] = names[first], names[0]
	}
	return names, nil
}
