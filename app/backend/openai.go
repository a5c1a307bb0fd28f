package backend

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// openAI speaks POST /v1/images/generations as served by LocalAI,
// stable-diffusion.cpp's sd-server, vllm-omni and OpenAI itself. The call is
// synchronous and has no progress stream, so only the start and the end of
// a job are reported.
type openAI struct {
	peer   httpPeer
	base   *url.URL
	opts   Options
	client *http.Client

	mu     sync.Mutex
	known  bool // kind and served were learnt from /v1/models
	kind   openAIDialect
	served []string
}

// NewOpenAI returns a backend for an OpenAI-compatible image server at o.URL
// (the base, without /v1).
func NewOpenAI(o Options) (Backend, error) {
	peer, base, err := httpPeerFromOptions(o, KindOpenAI)
	if err != nil {
		return nil, err
	}
	c := o.HTTPClient
	if c == nil {
		c = httpDefaultClient()
	}
	return &openAI{peer: peer, base: base, opts: o, client: c}, nil
}

func (b *openAI) Name() string { return b.peer.Name }
func (b *openAI) Kind() string { return KindOpenAI }

const openAIHint404 = "Check that the url is the server's base address (without /v1) and that it serves the OpenAI images API."

// openAIDialect is which server answers, learnt from GET /v1/models: each
// reads its own extensions of the OpenAI request, and sending one server's
// extension to another can do harm (LocalAI's "positive|negative" prompt
// would be drawn literally elsewhere).
type openAIDialect string

const (
	dialectOpenAI  openAIDialect = "openai"    // api.openai.com: no extensions at all
	dialectSDCpp   openAIDialect = "sd-server" // stable-diffusion.cpp: <sd_cpp_extra_args> in the prompt
	dialectLocalAI openAIDialect = "localai"   // "positive|negative", step, seed
	dialectVLLM    openAIDialect = "vllm-omni" // negative_prompt, num_inference_steps, guidance_scale, seed
	dialectOther   openAIDialect = ""          // unknown: vllm-omni's fields, which others ignore
)

// openAIImageRequest is the request body: the OpenAI fields, then the
// extensions the local servers read.
//   - vllm-omni: negative_prompt, num_inference_steps, guidance_scale, seed.
//   - LocalAI (core/schema/openai.go, endpoints/openai/image.go): step and
//     seed; its negative prompt rides in the prompt after a "|". It has no
//     guidance field: the model's YAML config sets cfg_scale.
//   - sd-server reads none of them (nor model or response_format): its
//     parameters go into the prompt inside <sd_cpp_extra_args>.
//
// OpenAI itself refuses unknown fields, so none are sent to api.openai.com.
type openAIImageRequest struct {
	Model             string   `json:"model,omitempty"`
	Prompt            string   `json:"prompt"`
	N                 int      `json:"n"`
	Size              string   `json:"size"`
	ResponseFormat    string   `json:"response_format"`
	NegativePrompt    string   `json:"negative_prompt,omitempty"`
	NumInferenceSteps int      `json:"num_inference_steps,omitempty"`
	GuidanceScale     *float64 `json:"guidance_scale,omitempty"`
	Seed              *int64   `json:"seed,omitempty"`
	Step              int      `json:"step,omitempty"`
}

// openAISDCppArgs is the JSON inside <sd_cpp_extra_args>, read by
// SDGenerationParams::from_json_str (stable-diffusion.cpp
// examples/common/common.cpp). It reads only known keys of the right type
// and ignores the rest silently: steps and guidance live under
// sample_params (a top-level "steps" or "cfg_scale" is dropped), integers
// must be JSON integers, and an unknown sample_method or scheduler leaves
// the server's default.
type openAISDCppArgs struct {
	NegativePrompt string               `json:"negative_prompt,omitempty"`
	Seed           *int64               `json:"seed,omitempty"`
	SampleParams   openAISDCppSampleArg `json:"sample_params"`
}

type openAISDCppSampleArg struct {
	SampleSteps  int    `json:"sample_steps"`
	SampleMethod string `json:"sample_method,omitempty"`
	Scheduler    string `json:"scheduler,omitempty"`
	Guidance     struct {
		TxtCfg float64 `json:"txt_cfg"`
	} `json:"guidance"`
}

// openAIBody builds the request for dialect d and says which of the
// person's parameters the server will not apply (by their API names).
func openAIBody(d openAIDialect, req Request, model string) (openAIImageRequest, []string) {
	steps := max(req.Steps, 1)
	body := openAIImageRequest{
		Model: model, Prompt: req.Prompt, N: max(req.Count, 1),
		Size:           fmt.Sprintf("%dx%d", req.Width, req.Height),
		ResponseFormat: "b64_json",
	}
	var seed *int64
	if req.Seed >= 0 {
		seed = &req.Seed
	}
	var ignored []string
	switch d {
	case dialectOpenAI:
		ignored = append(ignored, "steps", "guidance", "seed")
		if req.NegativePrompt != "" {
			ignored = append(ignored, "negative_prompt")
		}
	case dialectSDCpp:
		// Guidance 0 (Turbo's setting) and cfg 1 both mean "no CFG"; sd.cpp
		// would take 0 literally.
		args := openAISDCppArgs{NegativePrompt: req.NegativePrompt, Seed: seed}
		args.SampleParams.SampleSteps = steps
		args.SampleParams.Guidance.TxtCfg = max(req.Guidance, 1)
		args.SampleParams.SampleMethod, args.SampleParams.Scheduler = req.Sampler, req.Scheduler
		raw, _ := json.Marshal(args) // escapes < and >, so the tag cannot be closed early
		prompt := strings.NewReplacer("<sd_cpp_extra_args>", "", "</sd_cpp_extra_args>", "").Replace(req.Prompt)
		body.Prompt = prompt + "<sd_cpp_extra_args>" + string(raw) + "</sd_cpp_extra_args>"
	case dialectLocalAI:
		body.Step, body.Seed = steps, seed
		// LocalAI splits the prompt on "|" and keeps the first two parts:
		// a "|" of the person's own would move or cut their text.
		body.Prompt = strings.ReplaceAll(req.Prompt, "|", "/")
		if req.NegativePrompt != "" {
			body.Prompt += "|" + strings.ReplaceAll(req.NegativePrompt, "|", "/")
		}
		ignored = append(ignored, "guidance")
	default:
		guidance := req.Guidance
		body.NegativePrompt = req.NegativePrompt
		body.NumInferenceSteps = steps
		body.GuidanceScale = &guidance
		body.Seed = seed
		body.Step = steps
	}
	return body, ignored
}

func (b *openAI) Generate(ctx context.Context, req Request, progress func(Progress)) (Result, error) {
	submitted := time.Now()
	if progress == nil {
		progress = func(Progress) {}
	}
	ctx, cancel := httpJobContext(ctx, b.opts.Timeout)
	defer cancel()

	requested := req.Model
	if requested == "" {
		requested = b.opts.Model
	}
	steps := max(req.Steps, 1)
	dialect, served := b.dialect(ctx)
	model := requested
	if model == "" && len(served) > 0 {
		// The images API names no model in its answer: record the one the
		// server lists first, the default Models reports too. It is not
		// sent: LocalAI lists its chat models beside the image ones.
		model = served[0]
	}
	body, ignored := openAIBody(dialect, req, requested)
	payload, err := json.Marshal(body)
	if err != nil {
		return Result{}, b.peer.errorf(ReasonRejected, err, "could not be sent this request. Check the prompt for invalid characters.")
	}

	if e := b.peer.httpStopped(ctx, b.opts.Timeout); e != nil {
		return Result{}, e // canceled before anything reached the server
	}
	progress(Progress{Step: 0, Steps: steps})
	// None of these servers stops an image when its client hangs up, and
	// none has a route to stop one: a canceled job keeps its request (and
	// so its slot) until the server answers, so the next job waits
	// honestly instead of queueing silently behind an image nobody wants.
	// Only the backend's timeout cuts it short.
	reqCtx, cancelReq := httpFinishOnCancel(ctx)
	defer cancelReq()
	httpReq, err := http.NewRequestWithContext(reqCtx, http.MethodPost, b.peer.URL+"/v1/images/generations", bytes.NewReader(payload))
	if err != nil {
		return Result{}, b.peer.errorf(ReasonRejected, err, "could not be sent this request. Check its url.")
	}
	httpReq.Header.Set("Content-Type", "application/json")
	b.authorize(httpReq)
	resp, data, e := b.peer.httpDo(reqCtx, b.opts.Timeout, b.client, httpReq, httpMaxBody)
	if stopped := b.peer.httpStopped(ctx, b.opts.Timeout); stopped != nil {
		return Result{}, stopped
	}
	if e != nil {
		return Result{}, e
	}
	if resp.StatusCode/100 != 2 {
		return Result{}, b.statusError(resp.StatusCode, data)
	}
	var out struct {
		Data []struct {
			B64JSON string `json:"b64_json"`
			URL     string `json:"url"`
		} `json:"data"`
	}
	if err := json.Unmarshal(data, &out); err != nil {
		return Result{}, b.peer.errorf(ReasonBadResponse, err, "answered with something that is not OpenAI images JSON: %s. Check that the url points at the server's API.", httpQuote(data))
	}
	if len(out.Data) == 0 {
		return Result{}, b.peer.errorf(ReasonFailed, nil, "finished without returning any image. Check its log and try again.")
	}
	res := Result{Model: model, Submitted: submitted, NotApplied: ignored}
	for i, d := range out.Data {
		var img []byte
		var ctype string
		switch {
		case d.B64JSON != "":
			img, ctype, e = b.peer.httpDecodeImage(d.B64JSON)
		case d.URL != "":
			img, ctype, e = b.download(ctx, d.URL)
		default:
			e = b.peer.errorf(ReasonBadResponse, nil, "returned an image entry with neither b64_json nor url. Check that the server is up to date.")
		}
		if e != nil {
			return Result{}, e
		}
		res.Images = append(res.Images, Image{Data: img, ContentType: ctype, Seed: req.Seed + int64(i)})
	}
	progress(Progress{Step: steps, Steps: steps})
	res.Finished = time.Now()
	return res, nil
}

// statusError maps an error answer.
func (b *openAI) statusError(status int, data []byte) *Error {
	return b.peer.httpStatusError(status, data, openAIHint404)
}

// download fetches an image the server answered with a URL (LocalAI's
// default). Only the server's own host is fetched: a URL elsewhere could
// point us at anything on the network.
func (b *openAI) download(ctx context.Context, raw string) ([]byte, string, *Error) {
	if strings.HasPrefix(raw, "data:") {
		return b.peer.httpDecodeImage(raw)
	}
	u, err := b.base.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || !strings.EqualFold(u.Host, b.base.Host) {
		return nil, "", b.peer.errorf(ReasonBadResponse, err, "returned an image at another address (%.120s), which we do not fetch. Set the server to answer with b64_json or to use its own address.", raw)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, "", b.peer.errorf(ReasonBadResponse, err, "returned an image URL we cannot use (%.120s). Set the server to answer with b64_json.", raw)
	}
	b.authorize(req)
	resp, data, e := b.peer.httpDo(ctx, b.opts.Timeout, b.client, req, httpMaxImage)
	if e != nil {
		return nil, "", e
	}
	if resp.StatusCode/100 != 2 {
		return nil, "", b.peer.errorf(ReasonBadResponse, nil, "returned an image URL that answers HTTP %d (%.120s). Check the server's log and its generated-images folder.", resp.StatusCode, raw)
	}
	ctype, ok := httpImageType(data)
	if !ok {
		return nil, "", b.peer.errorf(ReasonBadResponse, nil, "returned an image URL that serves %s, not an image. Check that the server is up to date.", ctype)
	}
	return data, ctype, nil
}

func (b *openAI) authorize(req *http.Request) {
	if b.opts.APIKey != "" {
		req.Header.Set("Authorization", "Bearer "+b.opts.APIKey)
	}
}

// openAIModelEntry is one entry of GET /v1/models; the pointers tell a
// missing field from an empty one.
type openAIModelEntry struct {
	ID      string  `json:"id"`
	OwnedBy any     `json:"owned_by"`
	Created *int64  `json:"created"`
	Object  *string `json:"object"`
}

// listModels returns the ids of GET /v1/models and the HTTP status.
func (b *openAI) listModels(ctx context.Context) ([]string, int, *Error) {
	list, status, e := b.listModelEntries(ctx)
	ids := make([]string, 0, len(list))
	for _, m := range list {
		ids = append(ids, m.ID)
	}
	return ids, status, e
}

func (b *openAI) listModelEntries(ctx context.Context) ([]openAIModelEntry, int, *Error) {
	ctx, cancel := context.WithTimeout(ctx, httpQuickTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, b.peer.URL+"/v1/models", nil)
	if err != nil {
		return nil, 0, b.peer.errorf(ReasonRejected, err, "could not be asked for its models. Check its url.")
	}
	b.authorize(req)
	resp, data, e := b.peer.httpDo(ctx, 0, b.client, req, httpMaxBody)
	if e != nil {
		return nil, 0, e
	}
	if resp.StatusCode/100 != 2 {
		return nil, resp.StatusCode, b.statusError(resp.StatusCode, data)
	}
	var out struct {
		Data []openAIModelEntry `json:"data"`
	}
	if err := json.Unmarshal(data, &out); err != nil {
		return nil, resp.StatusCode, b.peer.errorf(ReasonBadResponse, err, "answered /v1/models with something that is not OpenAI JSON. Check that the url points at the server's API.")
	}
	return out.Data, resp.StatusCode, nil
}

// dialect tells which server this is, and the model ids it lists. The
// answer is kept once the server gave one (sd-server lists only
// "sd-cpp-local"; vllm-omni's models are owned_by "vllm"; LocalAI's entries
// carry only id and object).
func (b *openAI) dialect(ctx context.Context) (openAIDialect, []string) {
	if strings.HasSuffix(strings.ToLower(b.base.Hostname()), "openai.com") {
		return dialectOpenAI, nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.known {
		return b.kind, b.served
	}
	list, status, e := b.listModelEntries(ctx)
	if e != nil && status != http.StatusNotFound {
		return dialectOther, nil // ask again next time
	}
	d := dialectOther
	ids := make([]string, 0, len(list))
	bare := len(list) > 0
	for _, m := range list {
		ids = append(ids, m.ID)
		switch {
		case m.ID == "sd-cpp-local":
			d = dialectSDCpp
		case m.OwnedBy == "vllm" && d == dialectOther:
			d = dialectVLLM
		}
		bare = bare && m.OwnedBy == nil && m.Created == nil
	}
	if d == dialectOther && bare {
		d = dialectLocalAI
	}
	b.known, b.kind, b.served = true, d, ids
	return d, ids
}

func (b *openAI) Health(ctx context.Context) error {
	_, status, e := b.listModels(ctx)
	if e != nil && status != http.StatusNotFound {
		return e
	}
	return nil // no /v1/models, but the server answered
}

func (b *openAI) Models(ctx context.Context) ([]string, error) {
	if len(b.opts.Models) > 0 {
		return append([]string(nil), b.opts.Models...), nil
	}
	ids, status, e := b.listModels(ctx)
	if status == http.StatusNotFound || (e == nil && len(ids) == 0) {
		if b.opts.Model != "" {
			return []string{b.opts.Model}, nil
		}
		// The server answers, so it is up; with no model named anywhere,
		// jobs for it fail at once as model_missing (the pool says to set
		// model in its [[backends]] table) rather than wait for nothing.
		return []string{}, nil
	}
	if e != nil {
		return nil, e
	}
	if b.opts.Model != "" {
		for i, id := range ids {
			if id == b.opts.Model {
				ids[0], ids[i] = ids[i], ids[0]
			}
		}
	}
	return ids, nil
}

// FinishesOnCancel: no OpenAI-style server can stop an image once asked.
func (b *openAI) FinishesOnCancel() bool { return true }
