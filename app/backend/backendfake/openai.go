package backendfake

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// OpenAIFlavour selects which server's answers the OpenAI fake gives.
type OpenAIFlavour string

const (
	// OpenAIStrict answers like api.openai.com: url unless b64_json is asked
	// for, errors {"error":{"message","type","param","code"}}.
	OpenAIStrict OpenAIFlavour = "openai"
	// OpenAILocalAI answers like LocalAI: url (/generated-images/…) unless
	// b64_json is asked for, id and usage fields, "positive|negative"
	// prompts, the "step" field, errors {"error":{"code":500,"message","type":""}}.
	OpenAILocalAI OpenAIFlavour = "localai"
	// OpenAISDCpp answers like stable-diffusion.cpp's sd-server: always
	// b64_json plus output_format, model and response_format ignored,
	// parameters from <sd_cpp_extra_args> in the prompt, errors
	// {"error":"…"} or {"error":"server_error","message":"…"}.
	OpenAISDCpp OpenAIFlavour = "sdcpp"
	// OpenAIVLLM answers like vllm-omni: b64_json only, the extension fields
	// negative_prompt, num_inference_steps, guidance_scale and seed, FastAPI
	// errors {"detail":…}.
	OpenAIVLLM OpenAIFlavour = "vllm-omni"
)

// OpenAIFailure selects a failure the fake shows.
type OpenAIFailure string

const (
	OpenAIOK         OpenAIFailure = ""
	OpenAIOOM        OpenAIFailure = "oom"         // the flavour's out-of-memory answer
	OpenAIHTTP500    OpenAIFailure = "http500"     // the flavour's generic 500
	OpenAINotReady   OpenAIFailure = "not_ready"   // 503: the model is still loading
	OpenAIGarbage    OpenAIFailure = "garbage"     // 200 with an HTML page
	OpenAIBadBase64  OpenAIFailure = "bad_base64"  // 200 with b64_json that is not base64
	OpenAIForeignURL OpenAIFailure = "foreign_url" // 200 with a url on another host
	OpenAIHang       OpenAIFailure = "hang"        // never answers until the client goes
	OpenAIDie        OpenAIFailure = "die"         // the process dies mid-job
)

// OpenAIConfig holds the fake's knobs. Change them while it runs with Set.
type OpenAIConfig struct {
	Flavour OpenAIFlavour // "" means OpenAIStrict
	// StepDelay is the time per step of each image, so 8 steps at 250ms
	// make 2 s per image.
	StepDelay time.Duration
	LoadDelay time.Duration // model load before the first job after start
	// Models are the served model ids; nil means the flavour's usual one,
	// empty means none (LocalAI with no model configured).
	// sd-server always lists only "sd-cpp-local".
	Models []string
	APIKey string // when set, requests need "Authorization: Bearer APIKey"
	Fail   OpenAIFailure
	// NoModelsRoute makes GET /v1/models answer 404, as some servers do.
	NoModelsRoute bool
	// AlwaysURL answers with a url even when b64_json is asked for, like
	// servers that ignore response_format.
	AlwaysURL bool
}

// OpenAIRequest is one image request as the fake understood it.
type OpenAIRequest struct {
	Model, Prompt, NegativePrompt, Size, ResponseFormat string
	N, Steps                                            int
	Seed                                                int64
	// Sampler and Scheduler are what the server would use; "" is its
	// default (sd-server: sample_method and scheduler in sample_params).
	Sampler, Scheduler string
	Guidance           float64
	Authorization      string
	Raw                map[string]any
}

// OpenAI is a fake OpenAI-compatible image server on a loopback port.
type OpenAI struct {
	*process
	gen sync.Mutex // sd-server and LocalAI serialize generation

	mu       sync.Mutex
	cfg      OpenAIConfig
	seen     []OpenAIRequest
	files    map[string][]byte
	loaded   bool
	nextSeed int64
	busy     int // generations running now, whether or not their client still waits
	// inflight counts image requests not yet answered; maxInflight is its
	// peak.
	inflight, maxInflight int
}

// StartOpenAI starts a fake on 127.0.0.1 with a free port.
func StartOpenAI(cfg OpenAIConfig) (*OpenAI, error) {
	p, err := listen()
	if err != nil {
		return nil, err
	}
	f := &OpenAI{process: p, cfg: cfg, files: map[string][]byte{}, nextSeed: 42}
	p.serve(f)
	return f, nil
}

// NewOpenAI starts a fake for a test and closes it when the test ends.
func NewOpenAI(tb testing.TB, cfg OpenAIConfig) *OpenAI {
	tb.Helper()
	f, err := StartOpenAI(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(f.Close)
	return f
}

// Set changes knobs while the fake runs.
func (f *OpenAI) Set(change func(*OpenAIConfig)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	change(&f.cfg)
}

// Generations returns every image request the fake parsed.
func (f *OpenAI) Generations() []OpenAIRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]OpenAIRequest(nil), f.seen...)
}

// Busy reports whether the fake is making an image now. Like the real
// servers, it goes on when its client hangs up: none of them stops work
// for a closed connection.
func (f *OpenAI) Busy() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.busy > 0
}

// MaxConcurrent is the most image requests the fake held unanswered at
// once. The real servers make one image at a time and queue the rest, so a
// client that waits for each answer never makes it more than 1.
func (f *OpenAI) MaxConcurrent() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.maxInflight
}

func (c OpenAIConfig) flavour() OpenAIFlavour {
	if c.Flavour == "" {
		return OpenAIStrict
	}
	return c.Flavour
}

func (c OpenAIConfig) models() []string {
	switch {
	case c.flavour() == OpenAISDCpp:
		return []string{"sd-cpp-local"}
	case c.Models != nil:
		return c.Models
	case c.flavour() == OpenAIVLLM:
		return []string{"Tongyi-MAI/Z-Image-Turbo"}
	}
	return []string{"z-image-turbo"}
}

func (f *OpenAI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.count(r.Method + " " + r.URL.Path)
	cfg := f.cfg
	file, isFile := f.files[r.URL.Path]
	f.mu.Unlock()

	if cfg.APIKey != "" && r.Header.Get("Authorization") != "Bearer "+cfg.APIKey {
		f.fail(w, cfg, 401, "invalid_request_error", "invalid_api_key", "", "Incorrect API key provided. You can find your API key in your account settings.")
		return
	}
	switch {
	case r.URL.Path == "/v1/images/generations" && r.Method == http.MethodPost:
		f.generate(w, r, cfg)
	case r.URL.Path == "/v1/models" && r.Method == http.MethodGet && !cfg.NoModelsRoute:
		var data []map[string]any
		for _, m := range cfg.models() {
			switch cfg.flavour() {
			case OpenAILocalAI:
				// LocalAI's schema.OpenAIModel has only these two fields.
				data = append(data, map[string]any{"id": m, "object": "model"})
			case OpenAIVLLM:
				data = append(data, map[string]any{"id": m, "object": "model", "created": 1765600000, "owned_by": "vllm"})
			case OpenAISDCpp:
				data = append(data, map[string]any{"id": m, "object": "model", "owned_by": "local"})
			default:
				data = append(data, map[string]any{"id": m, "object": "model", "created": 1698785189, "owned_by": "system"})
			}
		}
		oaJSON(w, 200, map[string]any{"object": "list", "data": data})
	case isFile && r.Method == http.MethodGet:
		w.Header().Set("Content-Type", "image/png")
		_, _ = w.Write(file)
	default:
		if cfg.flavour() == OpenAIVLLM {
			oaJSON(w, 404, map[string]any{"detail": "Not Found"})
			return
		}
		http.Error(w, "404 page not found", http.StatusNotFound)
	}
}

// fail writes an error in the flavour's shape. typ and code are used by
// the OpenAI and LocalAI shapes, param by OpenAI's only.
func (f *OpenAI) fail(w http.ResponseWriter, cfg OpenAIConfig, status int, typ, code, param, msg string) {
	switch cfg.flavour() {
	case OpenAIStrict:
		var p, c any
		if param != "" {
			p = param
		}
		if code != "" {
			c = code
		}
		oaJSON(w, status, map[string]any{"error": map[string]any{"message": msg, "type": typ, "param": p, "code": c}})
	case OpenAILocalAI:
		oaJSON(w, status, map[string]any{"error": map[string]any{"code": status, "message": msg, "type": ""}})
	case OpenAISDCpp:
		oaJSON(w, status, map[string]any{"error": msg})
	case OpenAIVLLM:
		oaJSON(w, status, map[string]any{"detail": msg})
	}
}

var oaExtraArgs = regexp.MustCompile(`<sd_cpp_extra_args>(.*?)</sd_cpp_extra_args>`)

// parse reads the request the way the flavour's server does.
func (f *OpenAI) parse(body []byte, cfg OpenAIConfig) (OpenAIRequest, map[string]any, string) {
	var raw map[string]any
	if err := json.Unmarshal(body, &raw); err != nil {
		return OpenAIRequest{}, nil, "malformed JSON: " + err.Error()
	}
	str := func(k string) string { s, _ := raw[k].(string); return s }
	num := func(k string) (float64, bool) { n, ok := raw[k].(float64); return n, ok }
	req := OpenAIRequest{Model: str("model"), Prompt: str("prompt"), Size: str("size"), ResponseFormat: str("response_format"), N: 1, Seed: -1, Raw: raw}
	if n, ok := num("n"); ok {
		req.N = int(n)
	}
	switch cfg.flavour() {
	case OpenAIStrict:
		req.Steps = 8
	case OpenAILocalAI:
		req.Steps = 15
		if s, ok := num("step"); ok {
			req.Steps = int(s)
		}
		if s, ok := num("seed"); ok {
			req.Seed = int64(s)
		}
		// image.go: strings.Split(prompt, "|"), parts 0 and 1; the rest is
		// dropped.
		if parts := strings.Split(req.Prompt, "|"); len(parts) > 1 {
			req.Prompt, req.NegativePrompt = parts[0], parts[1]
		}
	case OpenAIVLLM:
		req.Steps = 50
		req.NegativePrompt = str("negative_prompt")
		if s, ok := num("num_inference_steps"); ok {
			req.Steps = int(s)
		}
		if s, ok := num("seed"); ok {
			req.Seed = int64(s)
		}
		if g, ok := num("guidance_scale"); ok {
			req.Guidance = g
		}
	case OpenAISDCpp:
		// sd-server's defaults (its CLI's: 20 steps, cfg 7, random seed);
		// only what <sd_cpp_extra_args> sets changes them.
		req.Steps, req.Guidance = 20, 7
		if m := oaExtraArgs.FindStringSubmatch(req.Prompt); m != nil {
			req.Prompt = oaExtraArgs.ReplaceAllString(req.Prompt, "")
			if !sdcppExtraArgs(m[1], &req) {
				return req, raw, "invalid sd_cpp_extra_args"
			}
		}
	}
	return req, raw, ""
}

// sdcppSampleMethods and sdcppSchedulers are stable-diffusion.cpp's names
// (src/stable-diffusion.cpp sample_method_to_str, scheduler_to_str; its
// str_to_scheduler also takes "normal").
var (
	sdcppSampleMethods = []string{"euler", "euler_a", "heun", "dpm2", "dpm++2s_a", "dpm++2m", "dpm++2mv2", "ipndm", "ipndm_v",
		"lcm", "ddim_trailing", "tcd", "res_multistep", "res_2s", "er_sde", "euler_cfg_pp", "euler_a_cfg_pp", "euler_ge",
		"dpm++2m_sde", "dpm++2m_sde_bt", "lms"}
	sdcppSchedulers = []string{"discrete", "karras", "exponential", "ays", "gits", "sgm_uniform", "simple", "smoothstep",
		"kl_optimal", "lcm", "bong_tangent", "ltx2", "logit_normal", "flux2", "flux", "beta", "normal"}
)

// sdcppExtraArgs reads the JSON inside <sd_cpp_extra_args> as sd-server's
// SDGenerationParams::from_json_str does (examples/common/common.cpp): only
// known keys of the right JSON type count, anything else is silently
// ignored — top-level "steps" or "cfg_scale" included — and an unknown
// sample_method or scheduler leaves the default. It fails only on JSON that
// does not parse.
func sdcppExtraArgs(s string, req *OpenAIRequest) bool {
	d := json.NewDecoder(strings.NewReader(s))
	d.UseNumber()
	var j map[string]any
	if d.Decode(&j) != nil {
		return false
	}
	integer := func(v any) (int64, bool) {
		n, ok := v.(json.Number)
		if !ok || strings.ContainsAny(string(n), ".eE") { // nlohmann's is_number_integer
			return 0, false
		}
		i, err := n.Int64()
		return i, err == nil
	}
	number := func(v any) (float64, bool) {
		n, ok := v.(json.Number)
		if !ok {
			return 0, false
		}
		f, err := n.Float64()
		return f, err == nil
	}
	if s, ok := j["negative_prompt"].(string); ok {
		req.NegativePrompt = s
	}
	if s, ok := j["prompt"].(string); ok {
		req.Prompt = s
	}
	if i, ok := integer(j["seed"]); ok {
		req.Seed = i
	}
	sp, _ := j["sample_params"].(map[string]any)
	if i, ok := integer(sp["sample_steps"]); ok {
		req.Steps = int(i)
	}
	if m, ok := sp["sample_method"].(string); ok && a1111Has(sdcppSampleMethods, m) {
		req.Sampler = m
	}
	if m, ok := sp["scheduler"].(string); ok && a1111Has(sdcppSchedulers, m) {
		req.Scheduler = m
	}
	g, _ := sp["guidance"].(map[string]any)
	if f, ok := number(g["txt_cfg"]); ok {
		req.Guidance = f
	}
	return true
}

func (f *OpenAI) generate(w http.ResponseWriter, r *http.Request, cfg OpenAIConfig) {
	f.mu.Lock()
	f.inflight++
	f.maxInflight = max(f.maxInflight, f.inflight)
	f.mu.Unlock()
	aw := &answerWriter{ResponseWriter: w}
	aw.done = func() {
		f.mu.Lock()
		f.inflight--
		if aw.generating {
			f.busy--
		}
		f.mu.Unlock()
	}
	defer aw.once.Do(aw.done) // no answer at all (died, hung up)
	w = aw
	var body bytes.Buffer
	_, _ = body.ReadFrom(r.Body)
	req, _, perr := f.parse(body.Bytes(), cfg)
	req.Authorization = r.Header.Get("Authorization")
	fl := cfg.flavour()
	if perr != "" {
		if fl == OpenAISDCpp && strings.HasPrefix(perr, "malformed") {
			oaJSON(w, 500, map[string]any{"error": "server_error", "message": "[json.exception.parse_error.101] " + perr})
			return
		}
		f.fail(w, cfg, 400, "invalid_request_error", "", "", perr)
		return
	}
	f.mu.Lock()
	f.seen = append(f.seen, req)
	f.mu.Unlock()

	if req.Prompt == "" {
		f.fail(w, cfg, 400, "invalid_request_error", "", "prompt", "prompt required")
		return
	}
	width, height, ok := oaSize(req.Size)
	if !ok || width < 16 || height < 16 {
		switch fl {
		case OpenAIVLLM:
			f.fail(w, cfg, 400, "", "", "", fmt.Sprintf("Invalid size format: '%s'. Expected format: 'WIDTHxHEIGHT' (e.g., '1024x1024').", req.Size))
		case OpenAISDCpp:
			f.fail(w, cfg, 400, "", "", "", "invalid params")
		default:
			f.fail(w, cfg, 400, "invalid_request_error", "", "size", fmt.Sprintf("'%s' is not a supported size.", req.Size))
		}
		return
	}
	if fl == OpenAIVLLM && (req.Steps < 1 || req.Steps > 200) {
		oaJSON(w, 422, map[string]any{"detail": []any{map[string]any{"loc": []any{"body", "num_inference_steps"},
			"msg": "Input should be less than or equal to 200", "type": "less_than_equal"}}})
		return
	}
	if fl == OpenAIVLLM && req.ResponseFormat != "" && req.ResponseFormat != "b64_json" {
		f.fail(w, cfg, 400, "", "", "", "Only response_format 'b64_json' is supported.")
		return
	}
	if fl != OpenAISDCpp && req.Model != "" && !a1111Has(cfg.models(), req.Model) {
		switch fl {
		case OpenAILocalAI:
			// [inferred] LocalAI's loader error for a model with no config.
			f.fail(w, cfg, 500, "", "", "", "could not load model - all backends returned error: model "+req.Model+" not found")
		default:
			f.fail(w, cfg, 404, "invalid_request_error", "model_not_found", "model", fmt.Sprintf("The model `%s` does not exist or you do not have access to it.", req.Model))
		}
		return
	}

	// Generation is serialized on sd-server (sd_ctx_mutex) and LocalAI;
	// serializing every flavour keeps the fake simple and the timing honest
	// for one GPU.
	f.gen.Lock()
	defer f.gen.Unlock()
	f.mu.Lock()
	f.busy++
	aw.generating = true
	f.mu.Unlock()
	f.mu.Lock()
	needLoad := !f.loaded
	f.loaded = true
	if req.Seed < 0 {
		req.Seed = f.nextSeed
		f.nextSeed += 1000
	}
	f.mu.Unlock()
	if needLoad && !f.sleep(cfg.LoadDelay) {
		return
	}
	switch cfg.Fail {
	case OpenAINotReady:
		if fl == OpenAIVLLM {
			f.fail(w, cfg, 503, "", "", "", "Diffusion engine not initialized. Please wait for the model to load.")
			return
		}
		f.fail(w, cfg, 503, "server_error", "", "", "model is loading, please retry")
		return
	case OpenAIHang:
		select {
		case <-r.Context().Done():
		case <-f.dead:
		}
		return
	case OpenAIDie:
		f.sleep(cfg.StepDelay)
		f.Kill()
		return
	}
	n := max(req.N, 1)
	for range n * max(req.Steps, 1) {
		if !f.sleep(cfg.StepDelay) {
			return
		}
	}
	switch cfg.Fail {
	case OpenAIOOM:
		switch fl {
		case OpenAISDCpp:
			f.fail(w, cfg, 500, "", "", "", "generate_image returned no results")
		case OpenAILocalAI:
			f.fail(w, cfg, 500, "", "", "", "rpc error: code = Unknown desc = CUDA out of memory. Tried to allocate 2.00 GiB")
		default:
			f.fail(w, cfg, 500, "server_error", "", "", "CUDA out of memory. Tried to allocate 2.00 GiB")
		}
		return
	case OpenAIHTTP500:
		switch fl {
		case OpenAISDCpp:
			oaJSON(w, 500, map[string]any{"error": "server_error", "message": "vector::_M_range_check"})
		case OpenAIVLLM:
			http.Error(w, "Internal Server Error", 500) // FastAPI's answer to an unhandled exception
		default:
			f.fail(w, cfg, 500, "server_error", "", "", "The server had an error while processing your request.")
		}
		return
	case OpenAIGarbage:
		w.Header().Set("Content-Type", "text/html")
		_, _ = w.Write([]byte("<html><body><h1>502 Bad Gateway</h1></body></html>"))
		return
	}

	useURL := false
	switch fl {
	case OpenAIStrict, OpenAILocalAI:
		useURL = req.ResponseFormat != "b64_json" || cfg.AlwaysURL
	}
	var data []map[string]any
	for i := range n {
		img := sdPNG(req.Seed+int64(i), width, height)
		item := map[string]any{}
		switch {
		case cfg.Fail == OpenAIBadBase64:
			item["b64_json"] = "%%%not-base64%%%"
		case cfg.Fail == OpenAIForeignURL:
			item["url"] = "http://203.0.113.7/generated-images/stolen.png"
		case useURL:
			f.mu.Lock()
			name := fmt.Sprintf("/files/img-%d-%d.png", req.Seed, i)
			if fl == OpenAILocalAI {
				name = fmt.Sprintf("/generated-images/b64%d.png", len(f.files)+1000)
			}
			f.files[name] = img
			f.mu.Unlock()
			item["url"] = "http://" + r.Host + name // both build it from the request's Host
		default:
			item["b64_json"] = base64.StdEncoding.EncodeToString(img)
		}
		switch fl {
		case OpenAIStrict:
			item["revised_prompt"] = req.Prompt
		case OpenAILocalAI:
			item["index"] = i
			item["embedding"] = nil
		case OpenAIVLLM:
			item["url"], item["revised_prompt"] = nil, nil
		}
		data = append(data, item)
	}
	out := map[string]any{"created": time.Now().Unix(), "data": data}
	switch fl {
	case OpenAILocalAI:
		out["id"] = fmt.Sprintf("%08x-fake-4000-8000-%012x", sdSeedBits(req.Seed)>>32, sdSeedBits(req.Seed)&0xffffffffffff)
		out["usage"] = map[string]any{"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
	case OpenAISDCpp:
		out["output_format"] = "png"
	}
	oaJSON(w, 200, out)
}

// oaSize parses "WxH" the way the servers do.
func oaSize(s string) (int, int, bool) {
	ws, hs, ok := strings.Cut(s, "x")
	if !ok {
		return 0, 0, false
	}
	wi, err1 := strconv.Atoi(ws)
	hi, err2 := strconv.Atoi(hs)
	return wi, hi, err1 == nil && err2 == nil
}

func (f *OpenAI) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-f.dead:
		return false
	}
}

func oaJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
