package web

import (
	"net/http"
	"net/url"
	"time"

	"github.com/labstack/echo/v4"
)

// handleAdminInvite issues a one-time invite for sign-up when it is not
// open.
func (s *Server) handleAdminInvite(c echo.Context) error {
	token, expires, err := s.auth.CreateInvite(c.Request().Context(), currentUser(c).User.ID)
	if err != nil {
		return err
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusCreated, map[string]any{"invite": token, "path": "/signup?invite=" + url.QueryEscape(token), "expires_at": expires.UTC().Format(time.RFC3339)})
}
