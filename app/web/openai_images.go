package web

import (
	"context"
	"encoding/base64"
	"io"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"zimage/app"
	"zimage/app/media"
	"zimage/app/queue"
)

// openAIImageRequest is the body of POST /v1/images/generations, as OpenAI
// clients send it, plus the extra fields local servers accept.
type openAIImageRequest struct {
	Prompt         string   `json:"prompt"`
	Model          string   `json:"model"`
	N              *int     `json:"n"`
	Size           string   `json:"size"`
	ResponseFormat string   `json:"response_format"`
	Quality        string   `json:"quality"`
	Style          string   `json:"style"`
	User           string   `json:"user"`
	NegativePrompt string   `json:"negative_prompt"`
	Steps          *int     `json:"steps"`
	Seed           *int64   `json:"seed"`
	Guidance       *float64 `json:"guidance"`
}

type openAIImage struct {
	B64JSON       string `json:"b64_json,omitempty"`
	URL           string `json:"url,omitempty"`
	RevisedPrompt string `json:"revised_prompt,omitempty"`
}

// openAIGenerate lets existing OpenAI clients use Z Image as their image
// backend: it queues the job like any other (same fairness, same gallery)
// and answers when it is done.
func (s *Server) openAIGenerate(c echo.Context) error {
	var req openAIImageRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	p := generationRequest{Prompt: req.Prompt, NegativePrompt: req.NegativePrompt, Model: req.Model,
		Steps: req.Steps, Seed: req.Seed, Guidance: req.Guidance, Count: req.N}.params(s.opts.DefaultSteps)
	if req.Model != "" && s.queue.Pool().CheckRequest("", req.Model) != nil {
		// OpenAI clients send their own model names ("dall-e-3"); treat an
		// unknown one as "the default model" rather than refusing the job.
		p.Model = ""
	}
	if req.Size != "" && req.Size != "auto" {
		var err error
		if p.Width, p.Height, err = app.ParseSize("size", req.Size); err != nil {
			return err
		}
	}
	format := req.ResponseFormat
	if format == "" {
		format = "b64_json"
	}
	if format != "b64_json" && format != "url" {
		return &app.Error{Code: app.EINVALID, Message: `response_format must be "b64_json" or "url".`, Fields: map[string]string{"response_format": "must be b64_json or url"}}
	}

	u := currentUser(c).User
	ctx := c.Request().Context()
	events, unsubscribe := s.queue.Subscribe(u.ID)
	defer unsubscribe()
	g, _, err := s.queue.Submit(ctx, u.ID, p)
	if err != nil {
		return err
	}
	var ids []string
wait:
	for {
		select {
		case <-ctx.Done():
			// The client gave up: do not keep the GPU busy for nobody.
			// Nobody is left to tell, but a failed cancel means the GPU
			// goes on working for nobody: the log is where that shows.
			// ECONFLICT is a job that finished meanwhile: nothing to stop.
			if _, err := s.queue.Cancel(context.WithoutCancel(ctx), u.ID, g.ID); err != nil && app.ErrorCode(err) != app.ECONFLICT {
				s.log.Warn("openai images: cancel the generation of a client that left", "generation", g.ID, "err", err)
			}
			return ctx.Err()
		case e := <-events:
			if e.GenerationID != g.ID {
				continue
			}
			switch e.Type {
			case queue.EventSucceeded:
				ids = e.ImageIDs
				break wait
			case queue.EventFailed:
				return &app.Error{Code: app.EUNAVAILABLE, Message: e.Message}
			case queue.EventCanceled:
				return app.Errorf(app.ECONFLICT, "The generation was canceled.")
			}
		}
	}
	data := make([]openAIImage, 0, len(ids))
	for _, id := range ids {
		if format == "url" {
			data = append(data, openAIImage{URL: s.absoluteURL(c, "/api/v1/images/"+id+"/file?format=png")})
			continue
		}
		rc, _, _, err := s.media.Open(ctx, u.ID, id, media.FormatPNG, media.SizeFull)
		if err != nil {
			return err
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			return err
		}
		data = append(data, openAIImage{B64JSON: base64.StdEncoding.EncodeToString(b)})
	}
	return c.JSON(http.StatusOK, map[string]any{"created": g.CreatedAt.Unix(), "data": data})
}

// absoluteURL prefixes path with server.base_url, or with the request's
// own scheme and host.
func (s *Server) absoluteURL(c echo.Context, path string) string {
	if s.opts.BaseURL != "" {
		return strings.TrimSuffix(s.opts.BaseURL, "/") + path
	}
	return c.Scheme() + "://" + c.Request().Host + path
}
