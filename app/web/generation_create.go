package web

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"zimage/app"
)

// generationRequest is the body of POST /api/v1/generations. Pointers tell
// "not given" (use the default) from zero (an error to report).
type generationRequest struct {
	Prompt         string   `json:"prompt"`
	NegativePrompt string   `json:"negative_prompt"`
	Width          *int     `json:"width"`
	Height         *int     `json:"height"`
	Steps          *int     `json:"steps"`
	Guidance       *float64 `json:"guidance"`
	Seed           *int64   `json:"seed"`
	Count          *int     `json:"count"`
	Backend        string   `json:"backend"`
	Model          string   `json:"model"`
	Sampler        string   `json:"sampler"`
	Scheduler      string   `json:"scheduler"`
}

// params maps the request onto domain parameters, filling defaults.
func (r generationRequest) params(defaultSteps int) app.GenerationParams {
	p := app.GenerationParams{
		Prompt: r.Prompt, NegativePrompt: r.NegativePrompt, Backend: r.Backend, Model: r.Model,
		Sampler: r.Sampler, Scheduler: r.Scheduler,
		Width: 1024, Height: 1024, Steps: defaultSteps, Guidance: 1, Seed: app.RandomSeed, Count: 1,
	}
	if r.Width != nil {
		p.Width = *r.Width
	}
	if r.Height != nil {
		p.Height = *r.Height
	}
	if r.Steps != nil {
		p.Steps = *r.Steps
	}
	if r.Guidance != nil {
		p.Guidance = *r.Guidance
	}
	if r.Seed != nil {
		p.Seed = *r.Seed
	}
	if r.Count != nil {
		p.Count = *r.Count
	}
	return p
}

// createGeneration queues a generation and answers 202 with its id and
// queue position; progress follows on /api/v1/events.
func (s *Server) createGeneration(c echo.Context) error {
	var req generationRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	pr := currentUser(c)
	u, p := pr.User, req.params(s.opts.DefaultSteps)
	if pr.APIKey != nil {
		p.APIKeyID = pr.APIKey.ID
	}
	g, pos, err := s.queue.Submit(c.Request().Context(), u.ID, p)
	if err != nil {
		return err
	}
	s.recordUsage(c, app.UsageGeneration)
	c.Response().Header().Set("Location", "/api/v1/generations/"+g.ID)
	j := toGenerationJSON(g, pos, nil)
	// Said before the job runs: the images will not claim these.
	j.NotApplied = s.queue.NotApplied(c.Request().Context(), p)
	return c.JSON(http.StatusAccepted, j)
}
