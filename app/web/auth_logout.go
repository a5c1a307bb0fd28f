package web

import (
	"net/http"

	"github.com/labstack/echo/v4"
)

// handleLogout ends the current session. Without one it does nothing, so
// a second click or a stale tab gets the same answer.
func (s *Server) handleLogout(c echo.Context) error {
	if err := s.auth.Logout(c.Request().Context(), currentUser(c)); err != nil {
		return err
	}
	s.clearSessionCookie(c)
	return c.NoContent(http.StatusNoContent)
}
