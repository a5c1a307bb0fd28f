package backend

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	zembed "zimage/embed"
)

// comfyDefaultWorkflowPath is the embedded Z-Image-Turbo graph inside zembed.FS.
const comfyDefaultWorkflowPath = "comfyui/z-image-turbo.json"

// comfyDefaultMap says where the embedded Z-Image-Turbo graph takes each
// parameter. negative_prompt has no entry on purpose: the Turbo graph zeroes
// the negative conditioning (ConditioningZeroOut) because at cfg 1 it is never
// used, so there is no text input to fill.
var comfyDefaultMap = map[string]string{
	"prompt":     "27.text",
	"seed":       "3.seed",
	"steps":      "3.steps",
	"cfg":        "3.cfg",
	"width":      "13.width",
	"height":     "13.height",
	"batch_size": "13.batch_size",
	"model":      "28.unet_name",
	// The template's KSampler uses res_multistep and simple, the
	// recommended pair for Z-Image-Turbo; they stay unless a person picks
	// others.
	"sampler_name": "3.sampler_name",
	"scheduler":    "3.scheduler",
}

// comfyParams are the keys a WorkflowMap may use, in the order messages list them.
var comfyParams = []string{"prompt", "negative_prompt", "seed", "width", "height", "steps", "cfg", "batch_size", "model", "sampler_name", "scheduler"}

// comfyModelFolders names the folder under ComfyUI's models/ where a loader
// input looks for its files, so a "model missing" message can say where to put it.
var comfyModelFolders = map[string]string{
	"unet_name": "diffusion_models",
	"clip_name": "text_encoders",
	"vae_name":  "vae",
	"ckpt_name": "checkpoints",
	"lora_name": "loras",
}

// comfyModelKinds names each loader input's kind of file in people's words.
var comfyModelKinds = map[string]string{
	"unet_name": "diffusion model",
	"clip_name": "text encoder",
	"vae_name":  "VAE",
	"ckpt_name": "checkpoint",
	"lora_name": "LoRA",
}

// comfyFileNeed is one file a workflow's loader asks for.
type comfyFileNeed struct {
	Node, Class, Input, File string
}

// describe says what the file is and where it belongs.
func (n comfyFileNeed) describe() string {
	kind, folder := comfyModelKinds[n.Input], comfyModelFolders[n.Input]
	if kind == "" {
		kind, folder = "model file", "the matching models folder"
	} else {
		folder = "models/" + folder
	}
	return fmt.Sprintf("%s (%s, in %s)", n.File, kind, folder)
}

const (
	comfyPollEvery     = 500 * time.Millisecond
	comfyPollFailures  = 3 // consecutive failed /history polls before we call the server gone
	comfyMaxImageBytes = 512 << 20
	comfyMaxJSONBytes  = 64 << 20
	comfyWSReadLimit   = 64 << 20 // previews are whole JPEG/PNG frames; the library default is 32 KiB
)

// comfyNode is one node of an API-format graph. _meta (titles) is kept so a
// graph round-trips unchanged apart from the inputs we fill.
type comfyNode struct {
	ClassType string         `json:"class_type"`
	Inputs    map[string]any `json:"inputs"`
	Meta      any            `json:"_meta,omitempty"`
}

type comfyGraph map[string]*comfyNode

// comfyTarget is one "node_id.input" a parameter is written to.
type comfyTarget struct{ Node, Input string }

func (t comfyTarget) String() string { return t.Node + "." + t.Input }

type comfyUI struct {
	name       string
	base       *url.URL
	client     *http.Client
	timeout    time.Duration
	model      string   // Options.Model: asked for when a request names none
	models     []string // Options.Models
	graphModel string   // the model the workflow names, the default when nothing else does
	workflow   []byte   // the validated graph, decoded afresh for every job so jobs never share maps
	targets    map[string]comfyTarget
	modelClass string // class_type of the node that takes the model, for /object_info
	pollEvery  time.Duration
	stall      time.Duration // Options.StallTimeout
	caps       capsCache
}

// NewComfyUI returns an adapter for the ComfyUI server at o.URL. It checks
// the options up front so a bad config fails at start, not at the first job.
func NewComfyUI(o Options) (Backend, error) {
	name := o.Name
	if name == "" {
		name = KindComfyUI
	}
	fail := func(format string, args ...any) error {
		return fmt.Errorf("comfyui backend %q: %s", name, fmt.Sprintf(format, args...))
	}
	if o.URL == "" {
		return nil, fail("url is empty; set it to the ComfyUI address, e.g. http://127.0.0.1:8188")
	}
	base, err := url.Parse(o.URL)
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return nil, fail("url %q is not an http(s) URL; write it like http://127.0.0.1:8188", o.URL)
	}
	raw := o.Workflow
	if raw == nil {
		if raw, err = zembed.FS.ReadFile(comfyDefaultWorkflowPath); err != nil {
			return nil, fail("the embedded Z-Image-Turbo workflow is missing: %v", err)
		}
	}
	graph, err := comfyParseWorkflow(raw)
	if err != nil {
		return nil, fail("%v", err)
	}
	mapping := o.WorkflowMap
	if len(mapping) == 0 {
		mapping = comfyDefaultMap
	}
	targets, err := comfyParseMap(mapping, graph)
	if err != nil {
		return nil, fail("%v", err)
	}
	canonical, err := json.Marshal(graph)
	if err != nil {
		return nil, fail("cannot re-encode the workflow: %v", err)
	}
	c := &comfyUI{
		name:      name,
		base:      base,
		client:    o.HTTPClient,
		timeout:   o.Timeout,
		model:     o.Model,
		models:    slices.Clone(o.Models),
		workflow:  canonical,
		targets:   targets,
		pollEvery: comfyPollEvery,
		stall:     o.StallTimeout,
	}
	if c.client == nil {
		c.client = httpDefaultClient()
	}
	if t, ok := targets["model"]; ok {
		c.modelClass = graph[t.Node].ClassType
		c.graphModel, _ = graph[t.Node].Inputs[t.Input].(string)
	}
	return c, nil
}

// comfyParseWorkflow accepts an API-format graph, or a saved /prompt body
// that wraps one in "prompt", and explains the usual export mistake.
func comfyParseWorkflow(raw []byte) (comfyGraph, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(raw, &top); err != nil {
		return nil, fmt.Errorf("the workflow is not valid JSON (%v); export it from ComfyUI with \"Export (API)\"", err)
	}
	if _, ok := top["nodes"]; ok {
		if _, ok := top["links"]; ok {
			return nil, errors.New(`the workflow is in ComfyUI's editor format; export it with "Export (API)" instead`)
		}
	}
	if raw, ok := top["prompt"]; ok && len(raw) > 0 && raw[0] == '{' {
		var inner map[string]json.RawMessage
		if err := json.Unmarshal(raw, &inner); err != nil {
			return nil, fmt.Errorf("the workflow's \"prompt\" is not a graph (%v)", err)
		}
		top = inner
	}
	if len(top) == 0 {
		return nil, errors.New(`the workflow has no nodes; export it from ComfyUI with "Export (API)"`)
	}
	return comfyDecodeNodes(top)
}

// comfyDecodeGraph reads the canonical graph NewComfyUI stored. It does not
// look for a "prompt" wrapper or the editor format again: a node may well
// have the id "prompt" or "nodes".
func comfyDecodeGraph(raw []byte) (comfyGraph, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(raw, &top); err != nil {
		return nil, err
	}
	return comfyDecodeNodes(top)
}

func comfyDecodeNodes(top map[string]json.RawMessage) (comfyGraph, error) {
	graph := make(comfyGraph, len(top))
	for id, rawNode := range top {
		var n comfyNode
		dec := json.NewDecoder(bytes.NewReader(rawNode))
		dec.UseNumber() // seeds go up to 2^64-1; float64 would round them
		if err := dec.Decode(&n); err != nil {
			return nil, fmt.Errorf("workflow node %q is not an API-format node (%v); export it with \"Export (API)\"", id, err)
		}
		if n.ClassType == "" {
			return nil, fmt.Errorf("workflow node %q has no class_type; export it with \"Export (API)\"", id)
		}
		if n.Inputs == nil {
			n.Inputs = map[string]any{}
		}
		graph[id] = &n
	}
	return graph, nil
}

// comfyParseMap checks that every parameter points at a value input that
// exists, so a typo is caught at start rather than by a silently ignored prompt.
func comfyParseMap(m map[string]string, graph comfyGraph) (map[string]comfyTarget, error) {
	if _, ok := m["prompt"]; !ok {
		return nil, errors.New(`workflow_map has no "prompt" entry; name the node input that takes the prompt text, e.g. "6.text"`)
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	targets := make(map[string]comfyTarget, len(m))
	takenBy := make(map[comfyTarget]string, len(m))
	for _, key := range keys {
		value := m[key]
		if !slices.Contains(comfyParams, key) {
			return nil, fmt.Errorf("workflow_map key %q is not a parameter; use one of %s", key, strings.Join(comfyParams, ", "))
		}
		i := strings.LastIndexByte(value, '.')
		if i <= 0 || i == len(value)-1 {
			return nil, fmt.Errorf("workflow_map.%s = %q: write it as node_id.input_name, e.g. \"3.seed\"", key, value)
		}
		t := comfyTarget{Node: value[:i], Input: value[i+1:]}
		node, ok := graph[t.Node]
		if !ok {
			return nil, fmt.Errorf("workflow_map.%s points at node %q, which is not in the workflow", key, t.Node)
		}
		v, ok := node.Inputs[t.Input]
		if !ok {
			names := make([]string, 0, len(node.Inputs))
			for n := range node.Inputs {
				names = append(names, n)
			}
			sort.Strings(names)
			return nil, fmt.Errorf("workflow_map.%s points at input %q of node %s (%s), which has no such input; its inputs are %s",
				key, t.Input, t.Node, node.ClassType, strings.Join(names, ", "))
		}
		if link, ok := v.([]any); ok && len(link) == 2 {
			return nil, fmt.Errorf("workflow_map.%s points at input %q of node %s (%s), which is linked to node %v; map it to an input that holds a value",
				key, t.Input, t.Node, node.ClassType, link[0])
		}
		// Two parameters on one input would race: which one a job sends
		// would depend on map order.
		if other, ok := takenBy[t]; ok {
			return nil, fmt.Errorf("workflow_map.%s and workflow_map.%s both point at %s; give each parameter its own input", other, key, t)
		}
		takenBy[t] = key
		targets[key] = t
	}
	return targets, nil
}

func (c *comfyUI) Name() string { return c.name }
func (c *comfyUI) Kind() string { return KindComfyUI }

// where names the server in messages, without any password in the URL.
func (c *comfyUI) where() string { return "ComfyUI at " + c.base.Redacted() }

func (c *comfyUI) fail(reason string, err error, format string, args ...any) *Error {
	return &Error{Backend: c.name, Reason: reason, Message: fmt.Sprintf(format, args...), Err: err}
}

func (c *comfyUI) unavailable(err error) *Error {
	return c.fail(ReasonUnavailable, err, "%s is not answering; is it running?", c.where())
}

// Generate submits one graph, follows it over the websocket (or by polling
// /history if the socket is unavailable or drops) and downloads its images.
// Its token for req.Submitted is "clientID promptID…", one prompt id per
// image, so a restarted Z Image can take each prompt over (see Resume).
func (c *comfyUI) Generate(ctx context.Context, req Request, progress func(Progress)) (Result, error) {
	if progress == nil {
		progress = func(Progress) {}
	}
	clientID, prior := comfyUUID(), []string(nil)
	if f := strings.Fields(req.Resume); len(f) > 0 {
		clientID, prior = f[0], f[1:]
	}
	count := max(req.Count, 1)
	prompts := make([]string, 0, count)
	record := func(i int, promptID string) {
		prompts = append(prompts[:i], promptID)
		if req.Submitted != nil {
			req.Submitted(clientID + " " + strings.Join(prompts, " "))
		}
	}
	// Once Z Image has the images (or the job ended otherwise), the
	// server's history entries, which hold the whole graph with the
	// prompt, are deleted.
	defer func() { c.forget(ctx, prompts...) }()
	// A ComfyUI batch shares one seed, so its images could not be remade
	// one at a time. Each image is its own prompt with seed+i instead; the
	// model stays loaded and ComfyUI caches the text encoding between them.
	var all Result
	for i := range count {
		one := req
		one.Count, one.Seed = 1, req.Seed+int64(i)
		resume := ""
		if i < len(prior) {
			resume = prior[i]
		}
		res, err := c.generateOne(ctx, one, clientID, resume, func(id string) { record(i, id) }, func(p Progress) {
			p.Step += i * p.Steps
			p.Steps *= count
			progress(p)
		})
		if err != nil {
			return Result{}, err
		}
		if i == 0 {
			all.Submitted, all.Model, all.NotApplied = res.Submitted, res.Model, res.NotApplied
		}
		all.Images = append(all.Images, res.Images...)
		all.Finished = res.Finished
	}
	return all, nil
}

// generateOne makes one image. With resume, the prompt an earlier process
// submitted, it takes that prompt over when the server still has it queued,
// running or finished well, and submits afresh only when it has not.
// submitted is told the prompt id before the server sees it.
func (c *comfyUI) generateOne(ctx context.Context, req Request, clientID, resume string, submitted func(string), progress func(Progress)) (Result, error) {
	graph, model, err := c.fill(req)
	if err != nil {
		return Result{}, err
	}
	job, cancel := httpJobContext(ctx, c.timeout)
	defer cancel()

	res := Result{Model: model, Submitted: time.Now()}
	promptID, state := "", comfyGone
	if resume != "" {
		var entry *comfyHistory
		if state, entry, err = c.locate(job, resume); err != nil {
			if job.Err() != nil {
				return Result{}, c.stopped(ctx, job, "")
			}
			return Result{}, err
		}
		switch state {
		case comfyFinished:
			submitted(resume)
			if res.Images, err = c.download(job, entry, req.Seed); err != nil {
				return Result{}, err
			}
			res.Finished = time.Now()
			return res, nil
		case comfyWaiting:
			promptID = resume
			submitted(resume)
		case comfyFailed:
			c.forget(ctx, resume)
		}
	}
	// The socket must be open before the prompt is posted: events go only to
	// the client_id's socket as they happen and are never replayed. A
	// prompt taken over keeps its client_id, so its events come here too.
	sock, err := c.listen(job, clientID)
	if err != nil {
		if job.Err() != nil {
			return Result{}, c.stopped(ctx, job, promptID)
		}
		return Result{}, err
	}
	if sock != nil {
		defer sock.close()
	}
	if _, ok := c.targets["negative_prompt"]; !ok && req.NegativePrompt != "" {
		// The Turbo graph zeroes the negative conditioning.
		res.NotApplied = []string{"negative_prompt"}
	}
	if promptID == "" {
		// Recorded before the POST: if this process dies before the answer
		// arrives, the next one finds the prompt by this id.
		promptID = comfyUUID()
		submitted(promptID)
		var got string
		got, err = c.submit(job, graph, clientID, promptID)
		if err != nil {
			if job.Err() != nil {
				// The POST may have reached the queue before we gave up on it.
				return Result{}, c.stopped(ctx, job, promptID)
			}
			return Result{}, err
		}
		if got != promptID {
			promptID = got
			submitted(promptID)
		}
	}
	entry, err := c.wait(job, req, promptID, len(graph), sock, progress)
	if err != nil {
		if job.Err() != nil {
			return Result{}, c.stopped(ctx, job, promptID)
		}
		return Result{}, err
	}
	if res.Images, err = c.download(job, entry, req.Seed); err != nil {
		if job.Err() != nil {
			return Result{}, c.stopped(ctx, job, "")
		}
		return Result{}, err
	}
	res.Finished = time.Now()
	return res, nil
}

// Where a prompt is, for taking it over after a restart.
const (
	comfyGone     = iota // in neither queue nor history: never accepted, or cleared by an operator
	comfyWaiting         // queued or running
	comfyFinished        // in history, finished well
	comfyFailed          // in history with an error (interrupted when Z Image stopped cleanly)
)

// locate says where promptID is: history first, since a prompt moves there
// from the queue.
func (c *comfyUI) locate(ctx context.Context, promptID string) (int, *comfyHistory, error) {
	entry, err := c.history(ctx, promptID)
	if err != nil {
		return 0, nil, err
	}
	if entry != nil {
		if entry.Status != nil && entry.Status.StatusStr == "error" {
			return comfyFailed, entry, nil
		}
		return comfyFinished, entry, nil
	}
	running, pending, err := c.queue(ctx)
	if err != nil {
		return 0, nil, err
	}
	if slices.Contains(running, promptID) || slices.Contains(pending, promptID) {
		return comfyWaiting, nil, nil
	}
	// It may have finished between the two questions.
	if entry, err = c.history(ctx, promptID); err != nil || entry == nil {
		return comfyGone, nil, err
	}
	if entry.Status != nil && entry.Status.StatusStr == "error" {
		return comfyFailed, entry, nil
	}
	return comfyFinished, entry, nil
}

// queue returns the prompt ids GET /queue lists as running and as pending.
// Each item is [number, prompt_id, graph, extra_data, outputs].
func (c *comfyUI) queue(ctx context.Context) (running, pending []string, err error) {
	var q struct {
		Running [][]json.RawMessage `json:"queue_running"`
		Pending [][]json.RawMessage `json:"queue_pending"`
	}
	if err := c.getJSON(ctx, "queue", nil, &q); err != nil {
		return nil, nil, err
	}
	ids := func(items [][]json.RawMessage) []string {
		var out []string
		for _, it := range items {
			var id string
			if len(it) > 1 && json.Unmarshal(it[1], &id) == nil {
				out = append(out, id)
			}
		}
		return out
	}
	return ids(q.Running), ids(q.Pending), nil
}

// forget deletes prompts' history entries, which hold the whole graph,
// prompt text included. Best effort: a server that is gone has nothing to
// delete until it comes back, and then nothing Z Image can reach.
func (c *comfyUI) forget(parent context.Context, promptIDs ...string) {
	if len(promptIDs) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(parent), 10*time.Second)
	defer cancel()
	c.post(ctx, "history", map[string][]string{"delete": promptIDs})
}

// post sends a body to a route whose answer says nothing we need.
func (c *comfyUI) post(ctx context.Context, path string, body any) {
	if resp, err := c.send(ctx, http.MethodPost, path, nil, body); err == nil {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
	}
}

// fill writes the request into a fresh copy of the graph. Zero sizes, steps
// and guidance keep the workflow's own values: guidance 0 (no CFG, as
// Z-Image-Turbo wants) is what ComfyUI expresses as the template's cfg 1.
func (c *comfyUI) fill(req Request) (comfyGraph, string, error) {
	graph, err := comfyDecodeGraph(c.workflow)
	if err != nil {
		return nil, "", c.fail(ReasonFailed, err, "the workflow of backend %s cannot be read; check its workflow file", c.name)
	}
	values := map[string]any{
		"prompt":          req.Prompt,
		"negative_prompt": req.NegativePrompt,
		"seed":            req.Seed,
		"batch_size":      max(req.Count, 1),
	}
	if req.Width > 0 {
		values["width"] = req.Width
	}
	if req.Height > 0 {
		values["height"] = req.Height
	}
	if req.Steps > 0 {
		values["steps"] = req.Steps
	}
	if req.Guidance > 0 {
		values["cfg"] = req.Guidance
	}
	model := req.Model
	if model == "" {
		model = c.model
	}
	if model != "" {
		values["model"] = model
	}
	if req.Sampler != "" {
		values["sampler_name"] = req.Sampler
	}
	if req.Scheduler != "" {
		values["scheduler"] = req.Scheduler
	}
	for key, t := range c.targets {
		if v, ok := values[key]; ok {
			graph[t.Node].Inputs[t.Input] = v
		}
	}
	comfyKeepNoCopy(graph)
	if model == "" {
		model = c.graphModel
	}
	return graph, model, nil
}

// comfyKeepNoCopy makes every SaveImage a PreviewImage: the same PNG, but
// in ComfyUI's temp/ folder, which it empties at every start and exit,
// instead of output/, which it keeps forever with the prompt inside. No
// route of ComfyUI deletes a file from output/, so this is how a person's
// deletion of an image reaches the GPU host too.
func comfyKeepNoCopy(graph comfyGraph) {
	for _, n := range graph {
		if n.ClassType == "SaveImage" {
			n.ClassType = "PreviewImage"
			delete(n.Inputs, "filename_prefix")
		}
	}
}

// comfyUUID returns a random canonical lowercase UUID (version 4), the only
// prompt_id form newer ComfyUI builds accept from a client.
func comfyUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// endpoint joins path (and the /api-less route name) onto the base URL, so a
// ComfyUI behind a reverse proxy at a sub-path works too.
func (c *comfyUI) endpoint(path string, query url.Values) string {
	u := c.base.JoinPath(path)
	u.RawQuery = query.Encode()
	return u.String()
}

// send makes one HTTP request. It never sets an Origin header: ComfyUI
// answers 403 to a loopback request whose Origin differs from its Host.
func (c *comfyUI) send(ctx context.Context, method, path string, query url.Values, body any) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, c.fail(ReasonFailed, err, "cannot encode the request for %s", c.where())
		}
		rd = bytes.NewReader(b)
	}
	r, err := http.NewRequestWithContext(ctx, method, c.endpoint(path, query), rd)
	if err != nil {
		return nil, c.fail(ReasonFailed, err, "cannot build a request for %s", c.where())
	}
	if body != nil {
		r.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.client.Do(r)
	if err != nil {
		return nil, c.unavailable(err)
	}
	return resp, nil
}

// statusError maps an HTTP status we did not expect to an *Error.
func (c *comfyUI) statusError(resp *http.Response, route string) *Error {
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	err := fmt.Errorf("%s %s: %s: %q", resp.Request.Method, route, resp.Status, snippet)
	switch {
	case resp.StatusCode == http.StatusForbidden:
		return c.fail(ReasonUnavailable, err, "%s refused the request (403); if a proxy sits in front of it, make sure the proxy adds no Origin header, or start ComfyUI with --enable-cors-header", c.where())
	case resp.StatusCode == http.StatusNotFound:
		return c.fail(ReasonUnavailable, err, "%s has no %s route (404); check that the backend URL points at ComfyUI", c.where(), route)
	case resp.StatusCode >= 500:
		return c.fail(ReasonFailed, err, "%s answered %s on %s; check the ComfyUI console for the error", c.where(), resp.Status, route)
	}
	return c.fail(ReasonBadResponse, err, "%s answered %s on %s, which Z Image does not understand; check that the backend URL points at ComfyUI", c.where(), resp.Status, route)
}

// getJSON GETs route and decodes a 200 answer into out.
func (c *comfyUI) getJSON(ctx context.Context, path string, query url.Values, out any) error {
	resp, err := c.send(ctx, http.MethodGet, path, query, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return c.statusError(resp, path)
	}
	return c.decode(resp, path, out)
}

func (c *comfyUI) decode(resp *http.Response, route string, out any) error {
	body, err := io.ReadAll(io.LimitReader(resp.Body, comfyMaxJSONBytes))
	if err != nil {
		return c.fail(ReasonUnavailable, err, "%s stopped answering while sending %s; is it still running?", c.where(), route)
	}
	if err := json.Unmarshal(body, out); err != nil {
		return c.fail(ReasonBadResponse, fmt.Errorf("%s: %w: %q", route, err, comfySnippet(body)),
			"%s answered %s with something that is not ComfyUI's JSON; check that the backend URL points at ComfyUI", c.where(), route)
	}
	return nil
}

func comfySnippet(b []byte) []byte {
	if len(b) > 200 {
		return b[:200]
	}
	return b
}

// submit posts the graph and returns the prompt id the server uses: builds
// from before mid-2025 ignore a client-chosen id and pick their own.
func (c *comfyUI) submit(ctx context.Context, graph comfyGraph, clientID, promptID string) (string, error) {
	body := map[string]any{"prompt": graph, "client_id": clientID, "prompt_id": promptID}
	resp, err := c.send(ctx, http.MethodPost, "prompt", nil, body)
	if err != nil {
		return promptID, err
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
		var ok struct {
			PromptID string `json:"prompt_id"`
		}
		if err := c.decode(resp, "/prompt", &ok); err != nil {
			return promptID, err
		}
		if ok.PromptID == "" {
			return promptID, c.fail(ReasonBadResponse, nil, "%s accepted the prompt but returned no prompt_id; check that the backend URL points at ComfyUI", c.where())
		}
		return ok.PromptID, nil
	case http.StatusBadRequest:
		var rej comfyRejection
		if err := c.decode(resp, "/prompt", &rej); err != nil {
			return promptID, err
		}
		return promptID, c.rejected(rej)
	}
	return promptID, c.statusError(resp, "/prompt")
}

// comfyRejection is a 400 from POST /prompt. Error is an object
// {type,message,details} since 2025-04 and a bare string before; node_errors
// is an object keyed by node id, or [] when empty on old builds.
type comfyRejection struct {
	Error      json.RawMessage `json:"error"`
	NodeErrors json.RawMessage `json:"node_errors"`
}

type comfyErrorDetail struct {
	Type      string `json:"type"`
	Message   string `json:"message"`
	Details   string `json:"details"`
	ExtraInfo struct {
		InputName     string `json:"input_name"`
		ReceivedValue any    `json:"received_value"`
	} `json:"extra_info"`
}

type comfyNodeError struct {
	Errors    []comfyErrorDetail `json:"errors"`
	ClassType string             `json:"class_type"`
}

func (c *comfyUI) rejected(rej comfyRejection) *Error {
	var top comfyErrorDetail
	if err := json.Unmarshal(rej.Error, &top); err != nil {
		if err := json.Unmarshal(rej.Error, &top.Message); err != nil {
			return c.fail(ReasonBadResponse, err, "%s rejected the prompt with an error Z Image cannot read; check the ComfyUI console", c.where())
		}
	}
	nodes := map[string]comfyNodeError{}
	_ = json.Unmarshal(rej.NodeErrors, &nodes) // [] on old builds means none
	ids := make([]string, 0, len(nodes))
	for id := range nodes {
		ids = append(ids, id)
	}
	comfySortIDs(ids)
	cause := fmt.Errorf("/prompt 400: %s %s %s", top.Type, top.Message, top.Details)
	// A missing model file is the common case and has its own fix, so it
	// wins over any other error reported alongside it. ComfyUI reports every
	// missing file at once (diffusion model, text encoder, VAE): name them
	// all, or the administrator fixes one, retries, and finds the next.
	var missing []comfyFileNeed
	for _, id := range ids {
		for _, e := range nodes[id].Errors {
			_, isModel := comfyModelFolders[e.ExtraInfo.InputName]
			if e.Type != "value_not_in_list" || !(isModel || strings.HasSuffix(nodes[id].ClassType, "Loader")) {
				continue
			}
			missing = append(missing, comfyFileNeed{Node: id, Class: nodes[id].ClassType, Input: e.ExtraInfo.InputName, File: comfyReceived(e)})
		}
	}
	if len(missing) > 0 {
		return c.fail(ReasonModelMissing, cause, "%s", c.missingMessage(missing))
	}
	for _, id := range ids {
		for _, e := range nodes[id].Errors {
			input := e.ExtraInfo.InputName
			if input == "" {
				input = "?"
			}
			return c.fail(ReasonRejected, cause, "%s rejected the job: node %s (%s), input %s: %s%s; check the request's parameters and the backend's workflow",
				c.where(), id, nodes[id].ClassType, input, e.Message, comfyParen(e.Details))
		}
	}
	hint := "check the backend's workflow"
	if top.Type == "prompt_no_outputs" || strings.Contains(strings.ToLower(top.Message), "no outputs") {
		hint = "add a SaveImage node to the backend's workflow"
	}
	return c.fail(ReasonRejected, cause, "%s rejected the job: %s%s; %s", c.where(), top.Message, comfyParen(top.Details), hint)
}

// missingMessage names every missing file with what to do about it: only
// the diffusion model is something a person may choose differently; the
// others only the administrator can install.
func (c *comfyUI) missingMessage(missing []comfyFileNeed) string {
	var files []string
	only := true // every missing file is the diffusion model
	for _, n := range missing {
		files = append(files, n.describe())
		only = only && n.Input == "unet_name"
	}
	what := "model file " + files[0] + " is"
	if len(files) > 1 {
		what = "model files " + strings.Join(files[:len(files)-1], ", ") + " and " + files[len(files)-1] + " are"
	}
	advice := "the administrator should put each file in that folder of ComfyUI"
	if only {
		advice += ", or choose another model"
	}
	return fmt.Sprintf("%s not installed on backend %s; %s", what, c.name, advice)
}

// comfyReceived is the value a value_not_in_list error refused, from
// extra_info or, on builds without it, from details ("unet_name: 'x' not in …").
func comfyReceived(e comfyErrorDetail) string {
	if s, ok := e.ExtraInfo.ReceivedValue.(string); ok && s != "" {
		return s
	}
	if _, rest, ok := strings.Cut(e.Details, ": '"); ok {
		if v, _, ok := strings.Cut(rest, "' not in"); ok {
			return v
		}
	}
	return "(unknown)"
}

func comfyParen(s string) string {
	if s == "" {
		return ""
	}
	return " (" + s + ")"
}

// comfySortIDs orders node ids numerically where they are numbers, so
// outputs and errors come back in the graph's order.
func comfySortIDs(ids []string) {
	sort.Slice(ids, func(i, j int) bool {
		a, errA := strconv.Atoi(ids[i])
		b, errB := strconv.Atoi(ids[j])
		if errA == nil && errB == nil {
			return a < b
		}
		return ids[i] < ids[j]
	})
}

// stopped is the way out when ctx ended: stop the job on the server, then
// say whether we gave up (timeout) or were told to (cancel).
func (c *comfyUI) stopped(parent, job context.Context, promptID string) error {
	if promptID != "" {
		c.cancelOnServer(parent, promptID)
	}
	if cause := context.Cause(job); errors.Is(cause, httpErrJobTimeout) || errors.Is(job.Err(), context.DeadlineExceeded) {
		limit := "the caller's deadline"
		if errors.Is(cause, httpErrJobTimeout) {
			limit = c.timeout.String()
		}
		return c.fail(ReasonTimeout, cause, "%s did not finish the job within %s, so it was stopped there; try again, or raise the backend's timeout", c.where(), limit)
	}
	return c.fail(ReasonCanceled, context.Cause(job), "the job was canceled and stopped on backend %s", c.name)
}

// Abandon stops and forgets every prompt of a token from Generate.
func (c *comfyUI) Abandon(ctx context.Context, token string) {
	f := strings.Fields(token)
	if len(f) < 2 {
		return
	}
	for _, id := range f[1:] {
		c.cancelOnServer(ctx, id)
	}
}

// cancelOnServer takes the prompt out of the queue, then interrupts it
// only if GET /queue shows it running: before 0.3.57 /interrupt ignores
// prompt_id and stops whatever runs, which may be someone else's prompt.
// Its history entry is deleted once the interrupted prompt has one.
func (c *comfyUI) cancelOnServer(parent context.Context, promptID string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(parent), 10*time.Second)
	defer cancel()
	c.post(ctx, "queue", map[string][]string{"delete": {promptID}})
	running, _, err := c.queue(ctx)
	if err != nil || !slices.Contains(running, promptID) {
		c.forget(ctx, promptID)
		return
	}
	c.post(ctx, "interrupt", map[string]string{"prompt_id": promptID})
	// The entry appears when the sampler notices the interrupt, at the
	// next step.
	for range 20 {
		if entry, err := c.history(ctx, promptID); err != nil || entry != nil {
			break
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(c.pollEvery):
		}
	}
	c.forget(ctx, promptID)
}

// Health asks /system_stats, which every ComfyUI build serves cheaply.
func (c *comfyUI) Health(ctx context.Context) error {
	var stats struct {
		System *struct {
			ComfyUIVersion string `json:"comfyui_version"`
		} `json:"system"`
		Devices []json.RawMessage `json:"devices"`
	}
	if err := c.getJSON(ctx, "system_stats", nil, &stats); err != nil {
		return err
	}
	if stats.System == nil {
		return c.fail(ReasonBadResponse, nil, "%s answered /system_stats without a \"system\" section; check that the backend URL points at ComfyUI", c.where())
	}
	return nil
}

// Models lists the files the workflow's model loader can choose from, with
// the default first. An empty list means the server has none installed: the
// workflow's default is not there either, whatever the workflow says.
func (c *comfyUI) Models(ctx context.Context) ([]string, error) {
	def := c.model
	if def == "" {
		def = c.graphModel
	}
	if len(c.models) > 0 {
		return slices.Clone(c.models), nil
	}
	t, ok := c.targets["model"]
	if !ok || c.modelClass == "" {
		return comfyNonEmpty(def), nil
	}
	inputs, ok, err := c.requiredInputs(ctx, c.modelClass)
	if err != nil {
		return nil, err
	}
	if !ok {
		// {} for a class the server lacks: the loader node itself is missing.
		return []string{}, nil
	}
	names := comfyComboOptions(inputs[t.Input])
	if names == nil {
		names = []string{}
	}
	if i := slices.Index(names, def); i > 0 {
		names = append(append([]string{def}, names[:i]...), names[i+1:]...)
	}
	return names, nil
}

// needs lists every file the workflow's loaders ask for, the model input
// holding the backend's default model.
func (c *comfyUI) needs() []comfyFileNeed {
	graph, err := comfyParseWorkflow(c.workflow)
	if err != nil {
		return nil
	}
	model := c.model
	if t, ok := c.targets["model"]; ok && model != "" {
		graph[t.Node].Inputs[t.Input] = model
	}
	var out []comfyFileNeed
	ids := make([]string, 0, len(graph))
	for id := range graph {
		ids = append(ids, id)
	}
	comfySortIDs(ids)
	for _, id := range ids {
		n := graph[id]
		inputs := make([]string, 0, len(n.Inputs))
		for in := range n.Inputs {
			inputs = append(inputs, in)
		}
		sort.Strings(inputs)
		for _, in := range inputs {
			file, ok := n.Inputs[in].(string)
			if _, known := comfyModelFolders[in]; ok && known && file != "" {
				out = append(out, comfyFileNeed{Node: id, Class: n.ClassType, Input: in, File: file})
			}
		}
	}
	return out
}

// MissingFiles asks each loader of the workflow (UNETLoader, CLIPLoader,
// VAELoader…) for its list of installed files and names those the workflow
// needs but the server lacks, so admins see them before anyone's job fails.
func (c *comfyUI) MissingFiles(ctx context.Context) ([]string, error) {
	lists := map[string]map[string]json.RawMessage{} // class → input → combo spec
	var missing []string
	for _, n := range c.needs() {
		inputs, ok := lists[n.Class]
		if !ok {
			var err error
			if inputs, _, err = c.requiredInputs(ctx, n.Class); err != nil {
				return nil, err
			}
			lists[n.Class] = inputs
		}
		if !slices.Contains(comfyComboOptions(inputs[n.Input]), n.File) {
			missing = append(missing, n.describe())
		}
	}
	return missing, nil
}

// requiredInputs reads GET /object_info/{class}: the class's required
// inputs, and whether the server knows the class at all.
func (c *comfyUI) requiredInputs(ctx context.Context, class string) (map[string]json.RawMessage, bool, error) {
	var info map[string]struct {
		Input struct {
			Required map[string]json.RawMessage `json:"required"`
		} `json:"input"`
	}
	if err := c.getJSON(ctx, "object_info/"+url.PathEscape(class), nil, &info); err != nil {
		return nil, false, err
	}
	entry, ok := info[class]
	return entry.Input.Required, ok, nil
}

func comfyNonEmpty(s string) []string {
	if s == "" {
		return nil
	}
	return []string{s}
}

// comfyComboOptions reads a combo input's choices: [["a","b"], {...}] on
// classic nodes, ["COMBO", {"options": ["a","b"]}] on v3-schema nodes.
func comfyComboOptions(raw json.RawMessage) []string {
	var spec []json.RawMessage
	if json.Unmarshal(raw, &spec) != nil || len(spec) == 0 {
		return nil
	}
	var list []string
	if json.Unmarshal(spec[0], &list) == nil {
		return list
	}
	if len(spec) > 1 {
		var opts struct {
			Options []string `json:"options"`
		}
		if json.Unmarshal(spec[1], &opts) == nil {
			return opts.Options
		}
	}
	return nil
}
