package web

import (
	"net/http"

	"github.com/labstack/echo/v4"
)

// handleMeSessions lists where the caller is signed in.
func (s *Server) handleMeSessions(c echo.Context) error {
	p := currentUser(c)
	list, err := s.auth.ListSessions(c.Request().Context(), p.User.ID)
	if err != nil {
		return err
	}
	out := make([]sessionJSON, len(list))
	for i, x := range list {
		out[i] = sessionJSON{ID: x.ID, Current: x.ID == p.Session.ID, Device: x.Device, Place: x.Place,
			CreatedAt: x.CreatedAt, LastSeenAt: x.LastSeenAt, ExpiresAt: x.ExpiresAt}
	}
	return c.JSON(http.StatusOK, map[string]any{"sessions": out})
}

// handleMeSessionDelete ends one of the caller's sessions (the current one
// too, which is a logout).
func (s *Server) handleMeSessionDelete(c echo.Context) error {
	p := currentUser(c)
	if err := s.auth.RevokeSession(c.Request().Context(), p.User.ID, c.Param("id")); err != nil {
		return err
	}
	if c.Param("id") == p.Session.ID {
		s.clearSessionCookie(c)
	}
	return c.NoContent(http.StatusNoContent)
}

// handleMeSessionsDelete ends every session of the caller but this one.
func (s *Server) handleMeSessionsDelete(c echo.Context) error {
	p := currentUser(c)
	if err := s.auth.RevokeOtherSessions(c.Request().Context(), p.User.ID, p.Session.ID); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}
