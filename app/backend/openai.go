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

	mu    sync.Mutex
	sdcpp *bool // whether the server is sd-server, learnt from /v1/models
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

// openAIImageRequest is the request body. Besides the OpenAI fields it
// carries the extensions the local servers read; each ignores the others':
//   - vllm-omni: negative_prompt, num_inference_steps, guidance_scale, seed.
//   - LocalAI: step (its steps field) and seed. Its negative prompt would
//     have to ride in the prompt after a "|", which other servers would
//     draw literally; Z-Image-Turbo ignores negative prompts anyway.
//   - sd-server reads none of them (nor model or response_format): its
//     parameters go into the prompt inside <sd_cpp_extra_args>, added only
//     when /v1/models says the server is sd-server.
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

// openAISDCppArgs is the JSON inside <sd_cpp_extra_args>. Builds of
// sd-server have read steps either flat or under sample_params; unknown keys
// are ignored, so both are sent.
type openAISDCppArgs struct {
	NegativePrompt string  `json:"negative_prompt,omitempty"`
	Seed           *int64  `json:"seed,omitempty"`
	Steps          int     `json:"steps"`
	CFGScale       float64 `json:"cfg_scale"`
	SampleParams   struct {
		SampleSteps int `json:"sample_steps"`
	} `json:"sample_params"`
}

func (b *openAI) Generate(ctx context.Context, req Request, progress func(Progress)) (Result, error) {
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
	steps := max(req.Steps, 1)
	count := max(req.Count, 1)
	body := openAIImageRequest{
		Model: model, Prompt: req.Prompt, N: count,
		Size:           fmt.Sprintf("%dx%d", req.Width, req.Height),
		ResponseFormat: "b64_json",
	}
	var seed *int64
	if req.Seed >= 0 {
		seed = &req.Seed
	}
	if !strings.HasSuffix(strings.ToLower(b.base.Hostname()), "openai.com") {
		guidance := req.Guidance
		body.NegativePrompt = req.NegativePrompt
		body.NumInferenceSteps = steps
		body.GuidanceScale = &guidance
		body.Seed = seed
		body.Step = steps
		if b.isSDCpp(ctx) {
			args := openAISDCppArgs{NegativePrompt: req.NegativePrompt, Seed: seed, Steps: steps, CFGScale: max(req.Guidance, 1)}
			args.SampleParams.SampleSteps = steps
			raw, _ := json.Marshal(args) // escapes < and >, so the tag cannot be closed early
			prompt := strings.NewReplacer("<sd_cpp_extra_args>", "", "</sd_cpp_extra_args>", "").Replace(req.Prompt)
			body.Prompt = prompt + "<sd_cpp_extra_args>" + string(raw) + "</sd_cpp_extra_args>"
		}
	}
	payload, err := json.Marshal(body)
	if err != nil {
		return Result{}, b.peer.errorf(ReasonRejected, err, "could not be sent this request. Check the prompt for invalid characters.")
	}

	progress(Progress{Step: 0, Steps: steps})
	httpReq, err := http.NewRequestWithContext(ctx, http.MethodPost, b.peer.URL+"/v1/images/generations", bytes.NewReader(payload))
	if err != nil {
		return Result{}, b.peer.errorf(ReasonRejected, err, "could not be sent this request. Check its url.")
	}
	httpReq.Header.Set("Content-Type", "application/json")
	b.authorize(httpReq)
	resp, data, e := b.peer.httpDo(ctx, b.opts.Timeout, b.client, httpReq, httpMaxBody)
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
	res := Result{Model: model, Submitted: submitted}
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

// listModels returns the ids of GET /v1/models and the HTTP status.
func (b *openAI) listModels(ctx context.Context) ([]string, int, *Error) {
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
		Data []struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	if err := json.Unmarshal(data, &out); err != nil {
		return nil, resp.StatusCode, b.peer.errorf(ReasonBadResponse, err, "answered /v1/models with something that is not OpenAI JSON. Check that the url points at the server's API.")
	}
	ids := make([]string, 0, len(out.Data))
	for _, d := range out.Data {
		ids = append(ids, d.ID)
	}
	return ids, resp.StatusCode, nil
}

// isSDCpp tells whether the server is sd-server, whose only model is named
// "sd-cpp-local". The answer is kept once the server gave one.
func (b *openAI) isSDCpp(ctx context.Context) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.sdcpp != nil {
		return *b.sdcpp
	}
	ids, status, e := b.listModels(ctx)
	if e != nil && status != http.StatusNotFound {
		return false // ask again next time
	}
	is := false
	for _, id := range ids {
		is = is || id == "sd-cpp-local"
	}
	b.sdcpp = &is
	return is
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
