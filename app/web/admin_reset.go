package web

import (
	"net/http"
	"net/url"
	"time"

	"github.com/labstack/echo/v4"
)

// handleAdminResetLink issues a one-time password reset link for the
// admin to pass on, until mail can send it.
func (s *Server) handleAdminResetLink(c echo.Context) error {
	token, expires, err := s.auth.CreateResetLink(c.Request().Context(), currentUser(c).User.ID, c.Param("id"))
	if err != nil {
		return err
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusCreated, map[string]any{"token": token, "path": "/reset?token=" + url.QueryEscape(token), "expires_at": expires.UTC().Format(time.RFC3339)})
}
