package web

import (
	"net/http"
	"net/url"
	"slices"
	"strconv"

	"github.com/labstack/echo/v4"

	"zimage/app"
)

// openAIModel is one entry of GET /v1/models, in OpenAI's shape.
type openAIModel struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	OwnedBy string `json:"owned_by"`
}

// servedModels lists the models the backends report serving, each with the
// backend that serves it (the first in config order), in that order. It
// is the one place the OpenAI API learns what exists, so a richer source
// of model lists only has to change this function.
func (s *Server) servedModels() (names []string, owner map[string]string) {
	owner = map[string]string{}
	for _, b := range s.queue.Pool().Status() {
		for _, m := range b.Models {
			if _, ok := owner[m]; !ok {
				owner[m] = b.Name
				names = append(names, m)
			}
		}
	}
	return names, owner
}

// resolveModel maps the model an OpenAI client names to one the backends
// serve: "" is the default model, an alias from [openai] aliases stands
// for its target, and any other name must be served as it is. An unknown
// name is ENOTFOUND on the model field (404 model_not_found). While some
// backend has not reported its models yet, a name the pool cannot rule
// out is let through, as the native API does.
func (s *Server) resolveModel(name string) (string, error) {
	if name == "" {
		return "", nil
	}
	if target, ok := s.opts.OpenAIAliases[name]; ok {
		name = target
	}
	if _, owner := s.servedModels(); owner[name] != "" || s.queue.Pool().CheckRequest("", name) == nil {
		return name, nil
	}
	msg := "The model " + strconv.Quote(name) + " does not exist on this server. List the models with GET /v1/models, or ask the administrator to map this name to one of them ([openai] aliases)."
	return "", &app.Error{Code: app.ENOTFOUND, Message: msg, Fields: map[string]string{"model": msg}}
}

// openAIModels lists the served models and the aliases that point at one
// of them, for clients that offer a model picker.
func (s *Server) openAIModels() []openAIModel {
	names, owner := s.servedModels()
	out := make([]openAIModel, 0, len(names)+len(s.opts.OpenAIAliases))
	for _, n := range names {
		out = append(out, openAIModel{ID: n, Object: "model", OwnedBy: owner[n]})
	}
	aliases := make([]string, 0, len(s.opts.OpenAIAliases))
	for a := range s.opts.OpenAIAliases {
		aliases = append(aliases, a)
	}
	slices.Sort(aliases)
	for _, a := range aliases {
		if o := owner[s.opts.OpenAIAliases[a]]; o != "" && owner[a] == "" {
			out = append(out, openAIModel{ID: a, Object: "model", OwnedBy: o})
		}
	}
	return out
}

// listOpenAIModels answers GET /v1/models.
func (s *Server) listOpenAIModels(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]any{"object": "list", "data": s.openAIModels()})
}

// showOpenAIModel answers GET /v1/models/{id}.
func (s *Server) showOpenAIModel(c echo.Context) error {
	id, err := url.PathUnescape(c.Param("id"))
	if err != nil {
		id = c.Param("id")
	}
	for _, m := range s.openAIModels() {
		if m.ID == id {
			return c.JSON(http.StatusOK, m)
		}
	}
	msg := "The model " + strconv.Quote(id) + " does not exist on this server. List the models with GET /v1/models."
	return &app.Error{Code: app.ENOTFOUND, Message: msg, Fields: map[string]string{"model": msg}}
}
