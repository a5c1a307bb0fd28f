package app

import (
	"fmt"
	"math"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Generation statuses. A generation moves queued → running → one of the
// three final ones; a retry or a restart may move it from running back to
// queued.
const (
	GenerationQueued    = "queued"
	GenerationRunning   = "running"
	GenerationSucceeded = "succeeded"
	GenerationFailed    = "failed"
	GenerationCanceled  = "canceled"
)

// Bounds that do not depend on config.
const (
	// MaxSeed is 2^53-1: the largest integer a JavaScript client can hold
	// exactly, so a seed shown in the browser can be sent back unchanged.
	MaxSeed = 1<<53 - 1
	// RandomSeed asks the queue to choose a seed; the chosen one is stored,
	// so the image can be remade.
	RandomSeed  = -1
	minSide     = 64
	maxGuidance = 30
	maxNameLen  = 200
)

// GenerationParams is what a person asks for.
type GenerationParams struct {
	Prompt         string
	NegativePrompt string
	Width, Height  int
	Steps          int
	Guidance       float64
	Seed           int64
	Count          int
	// Backend names the [[backends]] entry to use; "" means any.
	Backend string
	// Model names the model to use; "" means the backend's default.
	Model string
	// Sampler and Scheduler name ones the backend's server lists; "" means
	// the model's recommended ones (for Z-Image-Turbo on ComfyUI:
	// res_multistep and simple). The queue checks them against the server.
	Sampler, Scheduler string
	// APIKeyID is the API key the request came with ("" for a browser
	// session), so the gallery can say which tool made an image.
	APIKeyID string
}

// Generation is one request for images and its progress through the queue.
type Generation struct {
	ID     string
	UserID string
	Status string
	GenerationParams
	// AssignedBackend is the backend of the latest attempt.
	AssignedBackend string
	// Attempts counts how many times the job was started on a backend.
	Attempts int
	// ErrorReason is a backend reason (backend.Reason…) or one of the
	// queue's own ("interrupted", "no_backend", "timeout", "storage");
	// ErrorMessage is written for the person.
	ErrorReason  string
	ErrorMessage string
	CreatedAt    time.Time
	StartedAt    time.Time // zero until started
	FinishedAt   time.Time // zero until final
}

// Final reports whether g is in a status it never leaves.
func (g Generation) Final() bool {
	return g.Status == GenerationSucceeded || g.Status == GenerationFailed || g.Status == GenerationCanceled
}

// GenerationLimits bounds what a person may ask for; app/cli fills it from
// the [generation] section of the config.
type GenerationLimits struct {
	MaxSide         int // longest allowed side, a multiple of 16
	MaxPixels       int // width × height of one image
	MaxSteps        int
	MaxCount        int
	MaxPromptLength int // in characters, for the prompt and the negative prompt
}

// DefaultGenerationLimits mirrors the config defaults, for tests and tools.
func DefaultGenerationLimits() GenerationLimits {
	return GenerationLimits{MaxSide: 2048, MaxPixels: 2048 * 2048, MaxSteps: 100, MaxCount: 4, MaxPromptLength: 2000}
}

// Validate checks p against l and returns an EINVALID error naming each
// offending field by its JSON name, or nil.
func (p GenerationParams) Validate(l GenerationLimits) error {
	f := FieldErrors{}
	checkText(f, "prompt", p.Prompt, l.MaxPromptLength, true)
	checkText(f, "negative_prompt", p.NegativePrompt, l.MaxPromptLength, false)
	for _, side := range []struct {
		field string
		v     int
	}{{"width", p.Width}, {"height", p.Height}} {
		switch {
		case side.v < minSide || side.v > l.MaxSide:
			f.Add(side.field, fmt.Sprintf("The %s must be between %d and %d pixels.", side.field, minSide, l.MaxSide))
		case side.v%16 != 0:
			f.Add(side.field, fmt.Sprintf("The %s must be a multiple of 16 pixels (for example %d or %d).", side.field, side.v/16*16, (side.v/16+1)*16))
		}
	}
	if _, bad := f["width"]; !bad {
		if _, bad := f["height"]; !bad && p.Width*p.Height > l.MaxPixels {
			f.Add("width", fmt.Sprintf("%d×%d is %d pixels, more than the %d allowed: choose a smaller size.", p.Width, p.Height, p.Width*p.Height, l.MaxPixels))
		}
	}
	if p.Steps < 1 || p.Steps > l.MaxSteps {
		f.Add("steps", fmt.Sprintf("Steps must be between 1 and %d.", l.MaxSteps))
	}
	if math.IsNaN(p.Guidance) || p.Guidance < 0 || p.Guidance > maxGuidance {
		f.Add("guidance", fmt.Sprintf("Guidance must be between 0 and %d.", maxGuidance))
	}
	if p.Count < 1 || p.Count > l.MaxCount {
		f.Add("count", fmt.Sprintf("The number of images must be between 1 and %d.", l.MaxCount))
	}
	if p.Seed != RandomSeed && (p.Seed < 0 || p.Seed > MaxSeed) {
		f.Add("seed", fmt.Sprintf("The seed must be between 0 and %d, or -1 for a random one.", int64(MaxSeed)))
	}
	if len(p.Backend) > maxNameLen || !utf8.ValidString(p.Backend) {
		f.Add("backend", "The backend name is not one this server has: leave it empty to use any backend.")
	}
	if len(p.Model) > maxNameLen || !utf8.ValidString(p.Model) {
		f.Add("model", "The model name is not one this server has: leave it empty to use the backend's default.")
	}
	if len(p.Sampler) > maxNameLen || !utf8.ValidString(p.Sampler) || strings.ContainsFunc(p.Sampler, unicode.IsControl) {
		f.Add("sampler", "The sampler name is not one this server has: leave it empty for the model's recommended one.")
	}
	if len(p.Scheduler) > maxNameLen || !utf8.ValidString(p.Scheduler) || strings.ContainsFunc(p.Scheduler, unicode.IsControl) {
		f.Add("scheduler", "The scheduler name is not one this server has: leave it empty for the model's recommended one.")
	}
	return f.Err()
}

func checkText(f FieldErrors, field, s string, maxLen int, required bool) {
	name := strings.ReplaceAll(field, "_", " ")
	switch n := utf8.RuneCountInString(s); {
	case CheckText(name, s, MultiLine) != "":
		f.Add(field, CheckText(name, s, MultiLine))
	case required && strings.TrimSpace(s) == "":
		f.Add(field, fmt.Sprintf("The %s is empty: describe the image you want.", name))
	case n > maxLen:
		f.Add(field, fmt.Sprintf("The %s is %d characters long; the limit is %d.", name, n, maxLen))
	}
}
