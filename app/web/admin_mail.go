package web

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
)

type deadMailJSON struct {
	ID        string    `json:"id"`
	Kind      string    `json:"kind"`
	Tries     int       `json:"tries"`
	CreatedAt time.Time `json:"created_at"`
	DeadAt    time.Time `json:"dead_at"`
	LastError string    `json:"last_error"`
}

// handleAdminMail shows the outbox: with mail off, what would have been
// sent; with mail on, what waits, retries and was dead-lettered.
func (s *Server) handleAdminMail(c echo.Context) error {
	o, err := s.auth.Outbox(c.Request().Context())
	if err != nil {
		return err
	}
	dead := make([]deadMailJSON, len(o.Dead))
	for i, m := range o.Dead {
		dead[i] = deadMailJSON{ID: m.ID, Kind: m.Kind, Tries: m.Tries, CreatedAt: m.CreatedAt, DeadAt: m.DeadAt, LastError: m.LastError}
	}
	return c.JSON(http.StatusOK, map[string]any{"enabled": o.Enabled, "waiting": o.Summary.Pending, "retrying": o.Summary.Retrying,
		"dead": dead, "sent_by_kind": o.Summary.SentByKind})
}

// handleAdminMailRetry gives a dead letter a fresh round of tries.
func (s *Server) handleAdminMailRetry(c echo.Context) error {
	if err := s.auth.RetryMail(c.Request().Context(), currentUser(c).User.ID, c.Param("id")); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}
