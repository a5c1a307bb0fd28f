// Package backend speaks to model servers. Each kind of server (ComfyUI,
// AUTOMATIC1111/Forge, OpenAI-compatible, the builtin CPU renderer) is an
// adapter behind the small Backend interface; the queue never sees wire
// formats, only Requests, Progress and Results.
package backend

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// Kinds of backend, as written in config ([[backends]] kind = "…").
const (
	KindComfyUI = "comfyui"
	KindA1111   = "a1111"
	KindOpenAI  = "openai"
	KindBuiltin = "builtin"
)

// Request is one generation as the adapters see it. Width and Height are
// multiples of 16; image i of Count uses Seed+i where the server lets us
// choose, so a result can be remade one image at a time.
type Request struct {
	JobID          string
	Prompt         string
	NegativePrompt string
	Width, Height  int
	Steps          int
	Guidance       float64
	Seed           int64
	Count          int
	Model          string // "" means the backend's default model
	// Sampler and Scheduler name the server's own sampler and scheduler;
	// "" means the model's recommended ones (the backend's defaults).
	Sampler, Scheduler string
	// Submitted, when set, is called with a token before the server is
	// asked to do any work, and again whenever the token changes; the
	// queue stores it. Adapters whose servers keep work across a restart
	// of Z Image (ComfyUI) call it; the others never do.
	Submitted func(token string)
	// Resume is the last token an earlier attempt of this job on this same
	// backend handed to Submitted, when Z Image stopped without finishing
	// it: the adapter takes over the work the server still runs, or has
	// finished, instead of running it again.
	Resume string
}

// Progress is reported while a job runs. Preview, when the server sends one,
// holds encoded image bytes (PreviewType is their MIME type).
type Progress struct {
	Step, Steps int
	Preview     []byte
	PreviewType string
	// Stalled, when set, says the server has been executing this job
	// without any sign of progress for that long (Options.StallTimeout);
	// the job goes on unless the caller cancels it. The next report
	// without it means the server is reporting again.
	Stalled time.Duration
}

// Image is one picture as the server returned it: bytes and MIME type,
// untouched, so the person sees it without waiting for any re-encoding.
type Image struct {
	Data        []byte
	ContentType string
	Seed        int64
}

// Result is what a finished job produced.
type Result struct {
	Images []Image
	Model  string // the model that made them, as the server names it
	// NotApplied lists the parameters of the Request the server could not
	// apply, by their API names ("negative_prompt", "guidance", "steps",
	// "seed"), so the image record does not claim them.
	NotApplied []string
	// Timings measured by the adapter.
	Submitted, Finished time.Time
}

// Backend is one configured model server.
type Backend interface {
	Name() string
	Kind() string
	// Generate runs req to completion, calling progress (never concurrently)
	// as the server reports steps. Cancelling ctx must stop the job on the
	// server too (interrupt / dequeue), not merely stop waiting for it.
	Generate(ctx context.Context, req Request, progress func(Progress)) (Result, error)
	// Health checks that the server answers and is usable.
	Health(ctx context.Context) error
	// Models lists the models this backend serves; the first is the default.
	Models(ctx context.Context) ([]string, error)
}

// Abandoner is a Backend whose server keeps work across a restart of Z
// Image: Abandon stops and forgets the work behind a token the job's
// Submitted got, when the job will not be resumed (it ended meanwhile).
type Abandoner interface {
	Abandon(ctx context.Context, token string)
}

// Error reasons. The queue uses them to decide whether to retry a job on
// another backend, and the person sees Message.
const (
	ReasonUnavailable  = "unavailable"   // refused connection, DNS, server gone mid-job: retry elsewhere
	ReasonBusy         = "busy"          // the server is busy with someone else's work: retry later
	ReasonRejected     = "rejected"      // the server refused this request (bad parameters, validation)
	ReasonModelMissing = "model_missing" // the requested model is not installed there
	ReasonOutOfMemory  = "out_of_memory" // the GPU ran out of memory for this size
	ReasonBadResponse  = "bad_response"  // the server answered something we cannot understand
	ReasonTimeout      = "timeout"       // no answer within the configured time
	ReasonCanceled     = "canceled"      // we canceled it
	ReasonFailed       = "failed"        // the server reported a failure during execution
)

// Error is returned by adapters. Message is written for the person who
// asked for the image: what happened, on which backend, and what to do.
type Error struct {
	Backend string
	Reason  string
	Message string
	Err     error
}

func (e *Error) Error() string {
	s := fmt.Sprintf("backend %s: %s: %s", e.Backend, e.Reason, e.Message)
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// Retryable reports whether the job may be tried again on another backend.
func (e *Error) Retryable() bool {
	return e.Reason == ReasonUnavailable || e.Reason == ReasonBusy || e.Reason == ReasonTimeout
}

// Reason returns the Reason of the first *Error in err's chain, or
// ReasonFailed for other errors.
func Reason(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Reason
	}
	return ReasonFailed
}

// Options configure one backend; app/cli fills them from a [[backends]]
// table of the config file.
type Options struct {
	Name string
	Kind string
	URL  string // base URL of the server, e.g. http://127.0.0.1:8188
	// Slots is how many jobs may run on this backend at once.
	Slots int
	// Timeout bounds one whole job, from submit to the last byte.
	Timeout time.Duration
	// StallTimeout is how long a job may run with no sign of progress from
	// a server that reports progress (ComfyUI's websocket, A1111's
	// /progress) before the adapter reports it as stalled; 0 means never.
	// It starts counting at the first sampling step: loading a model can
	// take minutes and says nothing.
	StallTimeout time.Duration
	// Model is the model to ask for when a request names none; Models, when
	// set, lists what this backend serves (otherwise the adapter asks the server).
	Model  string
	Models []string
	// APIKey is sent as a bearer token (openai kind) when set.
	APIKey string
	// Workflow is an API-format ComfyUI graph; nil means the embedded
	// Z-Image-Turbo default. WorkflowMap says which node input takes each
	// parameter: keys prompt, negative_prompt, seed, width, height, steps,
	// cfg, batch_size, model, sampler_name, scheduler; values
	// "node_id.input_name".
	Workflow    []byte
	WorkflowMap map[string]string
	// HTTPClient is used for every request; nil means a client with sane
	// dial and header timeouts.
	HTTPClient *http.Client
}
