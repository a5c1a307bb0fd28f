package web

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
)

type backendStatusJSON struct {
	Name      string     `json:"name"`
	Kind      string     `json:"kind"`
	Healthy   bool       `json:"healthy"`
	State     string     `json:"state"`             // healthy, down, no models, missing files, stalled
	Missing   []string   `json:"missing,omitempty"` // files the server's jobs need and it lacks
	Stalled   string     `json:"stalled,omitempty"`
	Busy      int        `json:"busy"`
	Slots     int        `json:"slots"`
	DownSince *time.Time `json:"down_since,omitempty"`
	LastError string     `json:"last_error,omitempty"`
	Models    []string   `json:"models"`
	NoAIModel bool       `json:"no_ai_model"`
}

// adminBackends shows each backend's health and load, and the queue's size.
func (s *Server) adminBackends(c echo.Context) error {
	var out []backendStatusJSON
	for _, b := range s.queue.Pool().Status() {
		models := b.Models
		if models == nil {
			models = []string{}
		}
		out = append(out, backendStatusJSON{Name: b.Name, Kind: b.Kind, Healthy: b.Healthy, State: b.State(), Missing: b.Missing, Stalled: b.Stalled, Busy: b.Busy, Slots: b.Slots,
			DownSince: timePtr(b.DownSince), LastError: b.LastError, Models: models, NoAIModel: b.Kind == "builtin"})
	}
	st := s.queue.Stats()
	return c.JSON(http.StatusOK, map[string]any{
		"backends": out,
		"queue":    map[string]int{"queued": st.Queued, "running": st.Running, "users": st.Users},
	})
}
