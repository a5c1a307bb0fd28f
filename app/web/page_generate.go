package web

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"zimage/app"
	"zimage/app/backend"
)

// sizeOption is one size preset. The presets suit Z-Image-Turbo, which is
// trained around one megapixel; every side is a multiple of 16.
type sizeOption struct{ Value, Label string }

var sizePresets = []sizeOption{
	{"1024x1024", "Square 1024×1024"},
	{"1152x896", "Landscape 4:3 1152×896"},
	{"896x1152", "Portrait 3:4 896×1152"},
	{"1216x832", "Landscape 3:2 1216×832"},
	{"832x1216", "Portrait 2:3 832×1216"},
	{"1344x768", "Wide 16:9 1344×768"},
	{"768x1344", "Tall 9:16 768×1344"},
	{"512x512", "Quick 512×512"},
}

type backendOption struct {
	Name    string
	Healthy bool
	NoAI    bool
}

type jobView struct {
	ID, Status, Prompt, Detail string
	Final                      bool
	ImageIDs                   []string
}

// nameGroup is one backend's sampler or scheduler names, for a select.
type nameGroup struct {
	Backend string
	Names   []string
}

type generatePage struct {
	MaxPrompt, MaxSteps, MaxCount int
	Sizes                         []sizeOption
	Backends                      []backendOption
	Jobs                          []jobView
	NoAI                          bool
	// Samplers and Schedulers are what each backend's server lists;
	// NoNegative names the backends that would not apply a negative prompt.
	Samplers, Schedulers []nameGroup
	NoNegative           []string
}

func (s *Server) generatePageData(c echo.Context, userID string) generatePage {
	d := generatePage{MaxPrompt: s.opts.Limits.MaxPromptLength, MaxSteps: s.opts.Limits.MaxSteps, MaxCount: s.opts.Limits.MaxCount, Sizes: sizePresets}
	for _, b := range s.queue.Pool().Status() {
		noAI := b.Kind == backend.KindBuiltin
		d.NoAI = d.NoAI || noAI
		d.Backends = append(d.Backends, backendOption{Name: b.Name, Healthy: b.Healthy, NoAI: noAI})
	}
	ctx := c.Request().Context()
	caps := s.queue.Pool().Capabilities(ctx)
	for _, b := range d.Backends {
		bc, ok := caps[b.Name]
		if !ok {
			continue
		}
		if len(bc.Samplers) > 0 {
			d.Samplers = append(d.Samplers, nameGroup{b.Name, bc.Samplers})
		}
		if len(bc.Schedulers) > 0 {
			d.Schedulers = append(d.Schedulers, nameGroup{b.Name, bc.Schedulers})
		}
		if slices.Contains(bc.Ignores, "negative_prompt") {
			d.NoNegative = append(d.NoNegative, b.Name)
		}
	}
	gens, err := s.queue.List(ctx, userID, "", 10)
	if err != nil {
		s.log.Warn("generate page: list generations", "err", err)
	}
	images, err := s.db.ImageIDsForGenerations(ctx, userID, generationIDs(gens))
	if err != nil {
		s.log.Warn("generate page: list the images of generations", "err", err)
	}
	for _, g := range gens {
		j := jobView{ID: g.ID, Status: g.Status, Prompt: g.Prompt, Final: g.Final()}
		switch g.Status {
		case app.GenerationQueued:
			if pos := s.queue.Position(userID, g.ID); pos > 0 {
				j.Detail = fmt.Sprintf("Position %d in the queue", pos)
			} else {
				j.Detail = "Waiting in the queue…"
			}
		case app.GenerationRunning:
			j.Detail = "Running on " + g.AssignedBackend
		case app.GenerationSucceeded:
			j.Detail = "Done"
			j.ImageIDs = images[g.ID]
		default:
			j.Detail = g.ErrorMessage
		}
		d.Jobs = append(d.Jobs, j)
	}
	return d
}

// generateForm shows the generate page, prefilled from ?remake=<image id>.
func (s *Server) generateForm(c echo.Context) error {
	u := currentUser(c).User
	p := s.newPage(c, "generate", s.generatePageData(c, u.ID))
	p.Form = map[string]string{"size": "1024x1024", "steps": strconv.Itoa(s.opts.DefaultSteps), "count": "1", "seed": "-1"}
	if id := c.QueryParam("remake"); id != "" {
		img, err := s.media.Get(c.Request().Context(), u.ID, id)
		if err != nil {
			return err
		}
		p.Form = map[string]string{
			"prompt": img.Prompt, "negative_prompt": img.NegativePrompt, "size": app.FormatSize(img.Width, img.Height),
			"steps": strconv.Itoa(img.Steps), "count": "1", "seed": strconv.FormatInt(img.Seed, 10), "seed_lock": "1", "backend": img.Backend,
		}
		p.Flash = "Settings copied from the image; the seed is locked so you get the same picture."
	}
	return s.render(c, http.StatusOK, "generate", p)
}

// generateSubmit is the form post for browsers without JavaScript.
func (s *Server) generateSubmit(c echo.Context) error {
	u := currentUser(c).User
	values := formValues(c, "prompt", "negative_prompt", "size", "steps", "count", "seed", "seed_lock", "backend", "sampler", "scheduler")
	params, err := paramsFromForm(values, s.opts.DefaultSteps)
	if err == nil {
		_, _, err = s.queue.Submit(c.Request().Context(), u.ID, params)
	}
	if err != nil {
		if code := app.ErrorCode(err); code == app.EINTERNAL {
			return err
		}
		p := s.newPage(c, "generate", s.generatePageData(c, u.ID))
		p.formFailed(values, err)
		return s.render(c, statusOf[app.ErrorCode(err)], "generate", p)
	}
	return c.Redirect(http.StatusSeeOther, "/generate")
}

// paramsFromForm reads the generate form; numbers that do not parse are
// reported per field.
func paramsFromForm(v map[string]string, defaultSteps int) (app.GenerationParams, error) {
	p := app.GenerationParams{Prompt: v["prompt"], NegativePrompt: v["negative_prompt"], Backend: v["backend"],
		Sampler: v["sampler"], Scheduler: v["scheduler"],
		Width: 1024, Height: 1024, Steps: defaultSteps, Guidance: 1, Seed: app.RandomSeed, Count: 1}
	fields := app.FieldErrors{}
	if size := v["size"]; size != "" {
		var err error
		if p.Width, p.Height, err = app.ParseSize("size", size); err != nil {
			fields.Add("size", "Pick one of the sizes.")
		}
	}
	num := func(field string, dst *int) {
		if s := strings.TrimSpace(v[field]); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil {
				fields.Add(field, "Enter a whole number.")
				return
			}
			*dst = n
		}
	}
	num("steps", &p.Steps)
	num("count", &p.Count)
	if s := strings.TrimSpace(v["seed"]); s != "" && v["seed_lock"] != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			fields.Add("seed", "Enter a whole number, or −1 for a random seed.")
		}
		p.Seed = n
	}
	return p, fields.Err()
}

// formValues reads the named form fields, trimmed of nothing: what the
// person typed comes back exactly if the form is refused.
func formValues(c echo.Context, names ...string) map[string]string {
	out := make(map[string]string, len(names))
	for _, n := range names {
		out[n] = c.FormValue(n)
	}
	return out
}

func (s *Server) cancelGenerationForm(c echo.Context) error {
	u := currentUser(c).User
	if _, err := s.queue.Cancel(c.Request().Context(), u.ID, c.Param("id")); err != nil && app.ErrorCode(err) != app.ECONFLICT {
		return err
	}
	return c.Redirect(http.StatusSeeOther, "/generate")
}
