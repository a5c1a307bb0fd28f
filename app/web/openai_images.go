package web

import (
	"context"
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"zimage/app"
	"zimage/app/media"
	"zimage/app/queue"
)

// openAIImageRequest is the body of POST /v1/images/generations: OpenAI's
// parameters (those that mean nothing here, such as style and moderation,
// are accepted and ignored, so clients that always send them work), plus
// the native extras local servers accept.
type openAIImageRequest struct {
	Prompt            string `json:"prompt"`
	Model             string `json:"model"`
	N                 *int   `json:"n"`
	Size              string `json:"size"`
	ResponseFormat    string `json:"response_format"`
	OutputFormat      string `json:"output_format"`
	OutputCompression *int   `json:"output_compression"`
	Quality           string `json:"quality"`
	Background        string `json:"background"`
	// User and SafetyIdentifier (a caller's end-user id) are accepted and
	// dropped: the privacy policy lists no such data, so they are neither
	// stored nor logged.
	User             string `json:"user"`
	SafetyIdentifier string `json:"safety_identifier"`
	Style            string `json:"style"`
	Moderation       string `json:"moderation"`
	Stream           bool   `json:"stream"`
	PartialImages    *int   `json:"partial_images"`

	NegativePrompt string   `json:"negative_prompt"`
	Steps          *int     `json:"steps"`
	Seed           *int64   `json:"seed"`
	Guidance       *float64 `json:"guidance"`
}

type openAIImage struct {
	B64JSON string `json:"b64_json,omitempty"`
	URL     string `json:"url,omitempty"`
}

// openAIImagesResponse is OpenAI's answer. usage (token counts) and
// revised_prompt are left out: no tokens are billed and no prompt is
// rewritten here, and both are optional in OpenAI's schema.
type openAIImagesResponse struct {
	Created      int64         `json:"created"`
	Data         []openAIImage `json:"data"`
	Background   string        `json:"background"`
	OutputFormat string        `json:"output_format"`
	Size         string        `json:"size"`
	Quality      string        `json:"quality"`
}

// openAIJob is a request checked and mapped onto the native parameters.
type openAIJob struct {
	params         app.GenerationParams
	responseFormat string
	outputFormat   string
	compression    int
	quality        string // low, medium or high
}

func invalidParam(param, msg string) error {
	return &app.Error{Code: app.EINVALID, Message: msg, Fields: map[string]string{param: msg}}
}

// openAIQualitySteps maps OpenAI's quality names to sampling steps around
// the configured default: low is half of it, high twice (within the
// limit), everything else the default. It returns the name OpenAI's answer
// reports for it.
func openAIQualitySteps(quality string, defaultSteps, maxSteps int) (int, string, bool) {
	switch quality {
	case "", "auto", "standard", "medium":
		return defaultSteps, "medium", true
	case "low":
		return max(defaultSteps/2, 1), "low", true
	case "high", "hd":
		return max(min(defaultSteps*2, maxSteps), defaultSteps), "high", true
	}
	return 0, "", false
}

// parseOpenAIImageRequest checks everything that can be checked before a
// job is queued, so a bad request never queues anything.
func (s *Server) parseOpenAIImageRequest(req openAIImageRequest) (openAIJob, error) {
	j := openAIJob{responseFormat: req.ResponseFormat, outputFormat: req.OutputFormat, compression: 100}
	model, err := s.resolveModel(req.Model)
	if err != nil {
		return j, err
	}
	p := generationRequest{Prompt: req.Prompt, NegativePrompt: req.NegativePrompt, Model: model,
		Steps: req.Steps, Seed: req.Seed, Guidance: req.Guidance, Count: req.N}.params(s.defaultSteps())
	if req.Size != "" && req.Size != "auto" {
		var err error
		if p.Width, p.Height, err = app.ParseSize("size", req.Size); err != nil {
			return j, err
		}
	}
	steps, label, ok := openAIQualitySteps(req.Quality, s.defaultSteps(), s.limits().MaxSteps)
	if !ok {
		return j, invalidParam("quality", `quality must be one of auto, low, medium, high, standard or hd (got `+strconv.Quote(req.Quality)+`).`)
	}
	j.quality = label
	if req.Steps == nil {
		p.Steps = steps
	}
	switch j.responseFormat {
	case "":
		j.responseFormat = "b64_json"
	case "b64_json", "url":
	default:
		return j, invalidParam("response_format", `response_format must be "b64_json" or "url" (got `+strconv.Quote(req.ResponseFormat)+`).`)
	}
	switch j.outputFormat {
	case "":
		// Not asked: the stored original as it is (PNG from nearly every
		// backend), with the parameters its owner chose to embed.
	case media.OutputPNG, media.OutputWebP, media.OutputJPEG:
	default:
		return j, invalidParam("output_format", `output_format must be png, webp or jpeg (got `+strconv.Quote(req.OutputFormat)+`).`)
	}
	if c := req.OutputCompression; c != nil {
		if *c < 0 || *c > 100 {
			return j, invalidParam("output_compression", "output_compression must be between 0 and 100.")
		}
		j.compression = *c
	}
	switch req.Background {
	case "", "auto", "opaque":
	case "transparent":
		return j, invalidParam("background", `This server's models cannot make transparent backgrounds: every image comes back opaque. Send background "opaque" or "auto", or leave it out.`)
	default:
		return j, invalidParam("background", `background must be "auto", "opaque" or "transparent" (got `+strconv.Quote(req.Background)+`).`)
	}
	if req.Stream {
		return j, invalidParam("stream", "Streaming partial images is not supported here: leave stream out or send false.")
	}
	j.params = p
	return j, p.Validate(s.limits())
}

// limits are the generation limits, with the defaults when unset (tests).
func (s *Server) limits() app.GenerationLimits {
	if s.opts.Limits == (app.GenerationLimits{}) {
		return app.DefaultGenerationLimits()
	}
	return s.opts.Limits
}

// defaultSteps is generation.default_steps, or its default when unset
// (tests).
func (s *Server) defaultSteps() int {
	if s.opts.DefaultSteps <= 0 {
		return 8
	}
	return s.opts.DefaultSteps
}

// openAIGenerate lets existing OpenAI clients use Z Image as their image
// backend: it queues the job like any other (same fairness, same gallery,
// same retention) and answers when it is done.
func (s *Server) openAIGenerate(c echo.Context) error {
	var req openAIImageRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	j, err := s.parseOpenAIImageRequest(req)
	if err != nil {
		return err
	}
	pr := currentUser(c)
	u := pr.User
	if pr.APIKey != nil {
		j.params.APIKeyID = pr.APIKey.ID
	}
	ctx := c.Request().Context()
	events, unsubscribe := s.queue.Subscribe(u.ID)
	defer unsubscribe()
	g, _, err := s.queue.Submit(ctx, u.ID, j.params)
	if err != nil {
		return err
	}
	s.recordUsage(c, app.UsageGeneration)
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
				return app.Errorf(app.EUNAVAILABLE, "The generation was canceled before it finished (from the web page, or by an administrator). Send the request again.")
			}
		}
	}
	resp := openAIImagesResponse{Created: g.CreatedAt.Unix(), Data: make([]openAIImage, 0, len(ids)),
		Background: "opaque", OutputFormat: j.outputFormat, Quality: j.quality,
		Size: strconv.Itoa(g.Width) + "x" + strconv.Itoa(g.Height)}
	if resp.OutputFormat == "" && j.responseFormat == "url" {
		resp.OutputFormat = media.OutputPNG // what nearly every backend sends; the link serves the original
	}
	for _, id := range ids {
		if j.responseFormat == "url" {
			resp.Data = append(resp.Data, openAIImage{URL: s.signedImageURL(c, imageLink{userID: u.ID, imageID: id,
				format: j.outputFormat, quality: j.compression, expires: s.db.Now().Add(s.opts.OpenAIURLExpiry)})})
			continue
		}
		b, ct, err := s.media.Encode(ctx, u.ID, id, j.outputFormat, j.compression)
		if err != nil {
			return err
		}
		if resp.OutputFormat == "" {
			resp.OutputFormat = strings.TrimPrefix(ct, "image/")
		}
		resp.Data = append(resp.Data, openAIImage{B64JSON: base64.StdEncoding.EncodeToString(b)})
	}
	return c.JSON(http.StatusOK, resp)
}

// absoluteURL prefixes path with server.base_url, or with the request's
// own scheme and host.
func (s *Server) absoluteURL(c echo.Context, path string) string {
	if s.opts.BaseURL != "" {
		return strings.TrimSuffix(s.opts.BaseURL, "/") + path
	}
	return c.Scheme() + "://" + c.Request().Host + path
}
