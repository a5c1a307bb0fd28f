package web

import (
	"net/http"

	"github.com/labstack/echo/v4"
)

// handleMeAccessLog shows the caller every time an admin opened their
// data, and the reason given.
func (s *Server) handleMeAccessLog(c echo.Context) error {
	list, err := s.auth.AccessLog(c.Request().Context(), currentUser(c).User.ID)
	if err != nil {
		return err
	}
	out := make([]accessGrantJSON, len(list))
	for i, g := range list {
		out[i] = accessGrantJSON{ID: g.ID, AdminID: g.AdminID, Reason: g.Reason, CreatedAt: g.CreatedAt, ExpiresAt: g.ExpiresAt}
	}
	return c.JSON(http.StatusOK, map[string]any{"access_log": out})
}
