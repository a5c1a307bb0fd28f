package backendfake

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/png"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// A1111Failure selects a failure the fake AUTOMATIC1111/Forge server shows.
type A1111Failure string

const (
	A1111OK        A1111Failure = ""
	A1111OOM       A1111Failure = "oom"        // 500 OutOfMemoryError at FailAtStep
	A1111HTTP500   A1111Failure = "http500"    // 500 RuntimeError at FailAtStep
	A1111Garbage   A1111Failure = "garbage"    // txt2img answers 200 with an HTML page
	A1111BadBase64 A1111Failure = "bad_base64" // txt2img answers 200 with images that are not base64
	A1111Truncated A1111Failure = "truncated"  // txt2img answers 200 with its JSON cut inside the first image, as a proxy with a body limit does
	A1111Hang      A1111Failure = "hang"       // stops at FailAtStep until interrupted
	A1111Die       A1111Failure = "die"        // the process dies at FailAtStep
	A1111NoAPI     A1111Failure = "no_api"     // started without --api: every /sdapi route is 404
)

// A1111DefaultModel is the checkpoint the fake has unless told otherwise.
const A1111DefaultModel = "z_image_turbo_bf16.safetensors"

// A1111Config holds the fake's knobs. Change them while it runs with Set.
type A1111Config struct {
	StepDelay time.Duration // time per sampling step
	LoadDelay time.Duration // model load before the first job after start
	Models    []string      // checkpoint files; nil means A1111DefaultModel, empty means none installed
	Fail      A1111Failure
	// FailAtStep is the sampling step (1-based) at which Fail strikes; 0 means 1.
	FailAtStep int
	// Grid puts a grid picture before the images of a batch, with
	// index_of_first_image = 1 in info, as A1111 does when grids are on.
	Grid bool
	// SDCpp makes the fake answer like stable-diffusion.cpp's sd-server
	// sdapi: no /progress nor /interrupt (404), info is "", errors are
	// {"error":"…"}, override_settings and unknown samplers are ignored.
	SDCpp bool
	// SamplesFormat is A1111's opts.samples_format: "" or "png" (the
	// default), "jpg" or "webp". The API encodes its images in it; JPEG
	// and WebP carry the infotext in EXIF's UserComment (UTF-16), PNG in a
	// "parameters" text chunk.
	SamplesFormat string
}

// A1111 is a fake AUTOMATIC1111/Forge `--api` server on a loopback port.
type A1111 struct {
	*process

	queue sync.Mutex // A1111's queue_lock: one txt2img at a time

	mu        sync.Mutex
	cfg       A1111Config
	bodies    []map[string]any
	loaded    bool   // the first job's model load is done
	current   string // loaded checkpoint
	job       *a1111Job
	nextSeed  int64
	jobsTotal int
}

// a1111Job is the state /progress shows (A1111's shared.state).
type a1111Job struct {
	step, steps int
	preview     []byte
	interrupted chan struct{}
	once        sync.Once
}

func (j *a1111Job) interrupt() { j.once.Do(func() { close(j.interrupted) }) }

// StartA1111 starts a fake on 127.0.0.1 with a free port.
func StartA1111(cfg A1111Config) (*A1111, error) {
	p, err := listen()
	if err != nil {
		return nil, err
	}
	f := &A1111{process: p, cfg: cfg, nextSeed: 1_000_000}
	if ms := f.models(); len(ms) > 0 {
		f.current = ms[0]
	}
	p.serve(f)
	return f, nil
}

// NewA1111 starts a fake for a test and closes it when the test ends.
func NewA1111(tb testing.TB, cfg A1111Config) *A1111 {
	tb.Helper()
	f, err := StartA1111(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(f.Close)
	return f
}

// Set changes knobs while the fake runs.
func (f *A1111) Set(change func(*A1111Config)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	change(&f.cfg)
}

func (f *A1111) config() A1111Config {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.cfg
}

func (f *A1111) models() []string {
	if f.cfg.Models == nil {
		return []string{A1111DefaultModel}
	}
	return f.cfg.Models
}

// Txt2ImgBodies returns the decoded body of every txt2img request.
func (f *A1111) Txt2ImgBodies() []map[string]any {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]map[string]any(nil), f.bodies...)
}

// Busy reports whether a txt2img job is running.
func (f *A1111) Busy() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.job != nil
}

func (f *A1111) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	route := r.URL.Path
	f.mu.Lock()
	f.count(r.Method + " " + route)
	cfg := f.cfg
	f.mu.Unlock()

	if cfg.Fail == A1111NoAPI && strings.HasPrefix(route, "/sdapi/") {
		a1111JSON(w, http.StatusNotFound, map[string]any{"detail": "Not Found"})
		return
	}
	switch {
	case route == "/sdapi/v1/txt2img" && r.Method == http.MethodPost:
		f.txt2img(w, r, cfg)
	case route == "/sdapi/v1/progress" && r.Method == http.MethodGet && !cfg.SDCpp:
		f.progress(w, r)
	case route == "/sdapi/v1/interrupt" && r.Method == http.MethodPost && !cfg.SDCpp:
		f.mu.Lock()
		if f.job != nil {
			f.job.interrupt()
		}
		f.mu.Unlock()
		a1111JSON(w, http.StatusOK, map[string]any{})
	case route == "/sdapi/v1/samplers" && r.Method == http.MethodGet:
		list := []map[string]any{}
		if cfg.SDCpp {
			// routes_sdapi.cpp: "default", then sd.cpp's own names.
			for _, n := range append([]string{"default"}, sdcppSampleMethods...) {
				list = append(list, map[string]any{"name": n, "aliases": []string{n}, "options": map[string]any{}})
			}
		} else {
			for _, n := range a1111Samplers {
				list = append(list, map[string]any{"name": n, "aliases": []string{"k_" + strings.ToLower(n)}, "options": map[string]any{}})
			}
		}
		a1111JSON(w, http.StatusOK, list)
	case route == "/sdapi/v1/schedulers" && r.Method == http.MethodGet:
		list := []map[string]any{}
		if cfg.SDCpp {
			for _, n := range append([]string{"default"}, sdcppSchedulers...) {
				list = append(list, map[string]any{"name": n, "label": n})
			}
		} else {
			for _, n := range a1111Schedulers {
				list = append(list, map[string]any{"name": n, "label": strings.ToUpper(n[:1]) + n[1:], "aliases": nil, "default_rho": -1, "need_inner_model": false})
			}
		}
		a1111JSON(w, http.StatusOK, list)
	case route == "/sdapi/v1/sd-models" && r.Method == http.MethodGet:
		f.mu.Lock()
		list := []map[string]any{}
		for _, m := range f.models() {
			list = append(list, a1111ModelEntry(m))
		}
		f.mu.Unlock()
		a1111JSON(w, http.StatusOK, list)
	case route == "/sdapi/v1/options" && r.Method == http.MethodGet:
		f.mu.Lock()
		var cur any // null with no checkpoint loaded
		if f.current != "" {
			cur = a1111ModelEntry(f.current)["title"]
		}
		f.mu.Unlock()
		format := f.config().SamplesFormat
		if format == "" {
			format = "png"
		}
		a1111JSON(w, http.StatusOK, map[string]any{"sd_model_checkpoint": cur, "samples_format": format})
	default:
		// FastAPI's answer for a route it does not have (sd-server's
		// httplib answers 404 with an empty body; adapters treat both alike).
		a1111JSON(w, http.StatusNotFound, map[string]any{"detail": "Not Found"})
	}
}

// a1111ModelEntry is one item of /sdapi/v1/sd-models for a checkpoint file.
func a1111ModelEntry(file string) map[string]any {
	name := strings.TrimSuffix(file, ".safetensors")
	name = strings.TrimSuffix(name, ".gguf")
	hash := fmt.Sprintf("%010x", sdSeedBits(int64(len(file))*7919+int64(file[0])))[:10]
	return map[string]any{
		"title": file + " [" + hash + "]", "model_name": name, "hash": hash,
		"sha256": strings.Repeat(hash, 7)[:64], "filename": "/models/Stable-diffusion/" + file, "config": nil,
	}
}

// a1111Request mirrors the typed fields of StableDiffusionProcessingTxt2Img
// the fake uses, preset to A1111's defaults; pydantic ignores the rest.
type a1111Request struct {
	Prompt           string         `json:"prompt"`
	NegativePrompt   string         `json:"negative_prompt"`
	Seed             int64          `json:"seed"`
	SamplerName      *string        `json:"sampler_name"`
	SamplerIndex     string         `json:"sampler_index"`
	BatchSize        int            `json:"batch_size"`
	NIter            int            `json:"n_iter"`
	Steps            int            `json:"steps"`
	CFGScale         float64        `json:"cfg_scale"`
	Width            int            `json:"width"`
	Height           int            `json:"height"`
	OverrideSettings map[string]any `json:"override_settings"`
}

var a1111Samplers = []string{"DPM++ 2M", "DPM++ SDE", "Euler a", "Euler", "LMS", "Heun", "DPM2", "DDIM", "UniPC", "LCM"}

// a1111Schedulers are modules/sd_schedulers.py's names (A1111 1.9+).
var a1111Schedulers = []string{"automatic", "uniform", "karras", "exponential", "polyexponential", "sgm_uniform", "kl_optimal", "align_your_steps", "simple", "normal", "ddim", "beta"}

func (f *A1111) txt2img(w http.ResponseWriter, r *http.Request, cfg A1111Config) {
	var raw map[string]any
	var body bytes.Buffer
	_, _ = body.ReadFrom(r.Body)
	req := a1111Request{Seed: -1, SamplerIndex: "Euler", BatchSize: 1, NIter: 1, Steps: 50, CFGScale: 7, Width: 512, Height: 512}
	if err := json.Unmarshal(body.Bytes(), &raw); err != nil {
		if cfg.SDCpp {
			a1111JSON(w, 500, map[string]any{"error": "server_error", "message": "[json.exception.parse_error.101] parse error: " + err.Error()})
			return
		}
		a1111JSON(w, 422, map[string]any{"detail": []any{map[string]any{"loc": []any{"body", 0}, "msg": "Expecting value", "type": "value_error.jsondecode"}}})
		return
	}
	f.mu.Lock()
	f.bodies = append(f.bodies, raw)
	f.mu.Unlock()
	if err := json.Unmarshal(body.Bytes(), &req); err != nil {
		var te *json.UnmarshalTypeError
		field := "body"
		if errors.As(err, &te) {
			field = te.Field
		}
		if cfg.SDCpp {
			a1111JSON(w, 500, map[string]any{"error": "server_error", "message": "[json.exception.type_error.302] type must be number, but is string"})
			return
		}
		a1111JSON(w, 422, map[string]any{"detail": []any{map[string]any{"loc": []any{"body", field}, "msg": "value is not a valid integer", "type": "type_error.integer"}}})
		return
	}
	if cfg.SDCpp && req.Prompt == "" {
		a1111JSON(w, 400, map[string]any{"error": "prompt required"})
		return
	}
	sampler := req.SamplerIndex
	if req.SamplerName != nil {
		sampler = *req.SamplerName
	}
	if !cfg.SDCpp && !a1111Has(a1111Samplers, sampler) {
		a1111Error(w, 404, "HTTPException", "Sampler not found", "")
		return
	}

	f.queue.Lock()
	defer f.queue.Unlock()
	job := &a1111Job{steps: max(req.Steps, 1), interrupted: make(chan struct{})}
	f.mu.Lock()
	f.job = job
	f.jobsTotal++
	needLoad := !f.loaded
	f.loaded = true
	if ck, ok := req.OverrideSettings["sd_model_checkpoint"].(string); ok && !cfg.SDCpp {
		// A1111 loads the named checkpoint; an unknown name makes it fall
		// back to what it has, silently (sd_models.select_checkpoint).
		for _, m := range f.models() {
			e := a1111ModelEntry(m)
			if ck == m || ck == e["title"] || ck == e["model_name"] {
				f.current = m
			}
		}
	}
	if req.Seed < 0 {
		req.Seed = f.nextSeed
		f.nextSeed += 1000
	}
	model := f.current
	f.mu.Unlock()
	if model == "" {
		// sd_models.select_checkpoint with an empty models folder.
		f.mu.Lock()
		f.job = nil
		f.mu.Unlock()
		a1111Error(w, 500, "FileNotFoundError", "", "No checkpoints found. When searching for checkpoints, looked at: models/Stable-diffusion")
		return
	}
	aw := &answerWriter{ResponseWriter: w, done: func() {
		f.mu.Lock()
		f.job = nil
		f.mu.Unlock()
	}}
	defer aw.once.Do(aw.done) // no answer at all (died)
	w = aw
	if needLoad && !f.sleep(cfg.LoadDelay, nil) {
		return
	}

	failAt := max(cfg.FailAtStep, 1)
	for step := 1; step <= job.steps; step++ {
		if step == failAt {
			switch cfg.Fail {
			case A1111OOM:
				if cfg.SDCpp {
					a1111JSON(w, 500, map[string]any{"error": "generate_image returned no results"})
					return
				}
				a1111Error(w, 500, "OutOfMemoryError", "", "CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of 7.75 GiB of which 1.12 GiB is free.")
				return
			case A1111HTTP500:
				if cfg.SDCpp {
					a1111JSON(w, 500, map[string]any{"error": "server_error", "message": "vector::_M_range_check"})
					return
				}
				a1111Error(w, 500, "RuntimeError", "", "Expected all tensors to be on the same device")
				return
			case A1111Hang:
				select {
				case <-job.interrupted:
				case <-f.dead:
				}
			case A1111Die:
				f.Kill()
				return
			}
		}
		// A client that goes away does not stop the job: only an
		// interrupt does, as in A1111.
		if !f.sleep(cfg.StepDelay, job.interrupted) {
			break
		}
		preview := sdPNG(req.Seed*31+int64(step), 64, 64)
		f.mu.Lock()
		job.step, job.preview = step, preview
		f.mu.Unlock()
	}
	select {
	case <-f.dead:
		return
	default:
	}

	switch cfg.Fail {
	case A1111Garbage:
		w.Header().Set("Content-Type", "text/html")
		_, _ = w.Write([]byte("<html><body>Internal Server Error</body></html>"))
		return
	case A1111BadBase64:
		a1111JSON(w, 200, map[string]any{"images": []string{"!!not base64!!"}, "parameters": raw, "info": "{}"})
		return
	}
	count := max(req.BatchSize, 1) * max(req.NIter, 1)
	if cfg.Fail == A1111Truncated {
		img := base64.StdEncoding.EncodeToString(sdPNG(req.Seed, req.Width, req.Height))
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte(`{"images": ["` + img[:len(img)/2]))
		return
	}
	var images []string
	var seeds []int64
	first := 0
	if cfg.Grid && count > 1 && !cfg.SDCpp {
		images = append(images, base64.StdEncoding.EncodeToString(sdPNG(-req.Seed, req.Width, req.Height)))
		first = 1
	}
	var infotexts []string
	for i := range count {
		seed := req.Seed + int64(i)
		seeds = append(seeds, seed)
		img := sdPNG(seed, req.Width, req.Height)
		if !cfg.SDCpp {
			// processing.py sets image.info["parameters"] to the infotext
			// and the API's encode_pil_to_base64 writes it into the file.
			text := a1111Infotext(req, sampler, seed, model)
			infotexts = append(infotexts, text)
			img = a1111Encode(cfg.SamplesFormat, sdImage(seed, req.Width, req.Height), text)
		}
		images = append(images, base64.StdEncoding.EncodeToString(img))
	}
	info := ""
	if !cfg.SDCpp {
		b, _ := json.Marshal(map[string]any{
			"prompt": req.Prompt, "all_prompts": []string{req.Prompt}, "negative_prompt": req.NegativePrompt,
			"seed": req.Seed, "all_seeds": seeds, "subseed": -1, "width": req.Width, "height": req.Height,
			"sampler_name": sampler, "cfg_scale": req.CFGScale, "steps": req.Steps, "batch_size": req.BatchSize,
			"sd_model_name": a1111ModelEntry(model)["model_name"], "sd_model_hash": a1111ModelEntry(model)["hash"],
			"index_of_first_image": first, "infotexts": infotexts, "version": "f2.0.1v1.10.1-fake",
		})
		info = string(b)
	}
	a1111JSON(w, 200, map[string]any{"images": images, "parameters": raw, "info": info})
}

// a1111Infotext is processing.py create_infotext: the prompt, the
// negative prompt, then "key: value" generation parameters.
func a1111Infotext(req a1111Request, sampler string, seed int64, model string) string {
	var b strings.Builder
	b.WriteString(req.Prompt)
	if req.NegativePrompt != "" {
		b.WriteString("\nNegative prompt: " + req.NegativePrompt)
	}
	e := a1111ModelEntry(model)
	fmt.Fprintf(&b, "\nSteps: %d, Sampler: %s, Schedule type: Automatic, CFG scale: %g, Seed: %d, Size: %dx%d, Model hash: %v, Model: %v, Version: f2.0.1v1.10.1-fake",
		req.Steps, sampler, req.CFGScale, seed, req.Width, req.Height, e["hash"], e["model_name"])
	return strings.TrimSpace(b.String())
}

// sleep waits d, and reports false if stop closed or the fake died first.
func (f *A1111) sleep(d time.Duration, stop <-chan struct{}) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-stop:
		return false
	case <-f.dead:
		return false
	}
}

func (f *A1111) progress(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	state := map[string]any{"skipped": false, "interrupted": false, "stopping_generation": false, "job": "", "job_count": 0,
		"job_timestamp": "0", "job_no": 0, "sampling_step": 0, "sampling_steps": 0}
	out := map[string]any{"progress": 0.0, "eta_relative": 0.0, "state": state, "current_image": nil, "textinfo": nil}
	if j := f.job; j != nil {
		state["job"] = "txt2img"
		state["job_count"] = 1
		state["job_timestamp"] = fmt.Sprint(f.jobsTotal)
		state["sampling_step"], state["sampling_steps"] = j.step, j.steps
		select {
		case <-j.interrupted:
			state["interrupted"] = true
		default:
		}
		// progress = 0.01 + job_no/job_count + (1/job_count)·step/steps, capped at 1.
		out["progress"] = min(0.01+float64(j.step)/float64(j.steps), 1)
		out["eta_relative"] = float64(j.steps-j.step) * 0.1
		if j.preview != nil && r.URL.Query().Get("skip_current_image") == "false" {
			out["current_image"] = base64.StdEncoding.EncodeToString(j.preview)
		}
	}
	a1111JSON(w, http.StatusOK, out)
}

// a1111Error writes the shape of A1111's api_middleware exception handler.
func a1111Error(w http.ResponseWriter, status int, name, detail, errs string) {
	a1111JSON(w, status, map[string]any{"error": name, "detail": detail, "body": "", "errors": errs})
}

func a1111JSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func a1111Has(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// sdSeedBits mixes a seed into 64 well-spread bits (splitmix64).
func sdSeedBits(seed int64) uint64 {
	z := uint64(seed) + 0x9e3779b97f4a7c15
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

// sdPNG draws a real PNG of w×h, the same bytes for the same seed: a
// diagonal gradient between two colours the seed picks, so different seeds
// give visibly different pictures. Sizes are clamped to 1..4096.
func sdPNG(seed int64, w, h int) []byte {
	var buf bytes.Buffer
	_ = (&png.Encoder{CompressionLevel: png.BestSpeed}).Encode(&buf, sdImage(seed, w, h))
	return buf.Bytes()
}

// sdImage is the picture sdPNG encodes.
func sdImage(seed int64, w, h int) *image.NRGBA {
	w, h = min(max(w, 1), 4096), min(max(h, 1), 4096)
	bits := sdSeedBits(seed)
	c0 := [3]int{int(bits & 255), int(bits >> 8 & 255), int(bits >> 16 & 255)}
	c1 := [3]int{int(bits >> 24 & 255), int(bits >> 32 & 255), int(bits >> 40 & 255)}
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			t := (x + y) * 256 / (w + h)
			i := y*img.Stride + 4*x
			for ch := range 3 {
				img.Pix[i+ch] = uint8(c0[ch] + (c1[ch]-c0[ch])*t/256)
			}
			img.Pix[i+3] = 255
		}
	}
	return img
}
