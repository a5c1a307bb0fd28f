package web

import (
	"time"

	"zimage/app"
)

// generationJSON is a generation as the API shows it to its owner.
type generationJSON struct {
	ID              string     `json:"id"`
	Status          string     `json:"status"`
	Position        int        `json:"position,omitempty"`
	Prompt          string     `json:"prompt"`
	NegativePrompt  string     `json:"negative_prompt"`
	Width           int        `json:"width"`
	Height          int        `json:"height"`
	Steps           int        `json:"steps"`
	Guidance        float64    `json:"guidance"`
	Seed            int64      `json:"seed"`
	Count           int        `json:"count"`
	Backend         string     `json:"backend,omitempty"`
	Model           string     `json:"model,omitempty"`
	Sampler         string     `json:"sampler,omitempty"`
	Scheduler       string     `json:"scheduler,omitempty"`
	AssignedBackend string     `json:"assigned_backend,omitempty"`
	Attempts        int        `json:"attempts"`
	Error           *jobError  `json:"error,omitempty"`
	ImageIDs        []string   `json:"image_ids"`
	CreatedAt       time.Time  `json:"created_at"`
	StartedAt       *time.Time `json:"started_at,omitempty"`
	FinishedAt      *time.Time `json:"finished_at,omitempty"`
	// NotApplied, in the answer to a create, lists parameters a backend
	// that may take the job would not apply.
	NotApplied []string `json:"not_applied,omitempty"`
}

type jobError struct {
	Reason  string `json:"reason"`
	Message string `json:"message"`
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func toGenerationJSON(g app.Generation, position int, imageIDs []string) generationJSON {
	j := generationJSON{
		ID: g.ID, Status: g.Status, Position: position, Prompt: g.Prompt, NegativePrompt: g.NegativePrompt,
		Width: g.Width, Height: g.Height, Steps: g.Steps, Guidance: g.Guidance, Seed: g.Seed, Count: g.Count,
		Backend: g.Backend, Model: g.Model, Sampler: g.Sampler, Scheduler: g.Scheduler, AssignedBackend: g.AssignedBackend, Attempts: g.Attempts,
		ImageIDs: imageIDs, CreatedAt: g.CreatedAt, StartedAt: timePtr(g.StartedAt), FinishedAt: timePtr(g.FinishedAt),
	}
	if j.ImageIDs == nil {
		j.ImageIDs = []string{}
	}
	if g.ErrorReason != "" || g.ErrorMessage != "" {
		j.Error = &jobError{Reason: g.ErrorReason, Message: g.ErrorMessage}
	}
	return j
}

// eventJSON is one Server-Sent Event's data.
type eventJSON struct {
	Type         string   `json:"type"`
	GenerationID string   `json:"generation_id"`
	Position     int      `json:"position,omitempty"`
	Step         int      `json:"step,omitempty"`
	Steps        int      `json:"steps,omitempty"`
	Preview      string   `json:"preview,omitempty"` // a data: URL
	ImageIDs     []string `json:"image_ids,omitempty"`
	Reason       string   `json:"reason,omitempty"`
	Message      string   `json:"message,omitempty"`
}
