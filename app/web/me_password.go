package web

import (
	"net/http"

	"github.com/labstack/echo/v4"
)

type passwordRequest struct {
	CurrentPassword string `json:"current_password"`
	NewPassword     string `json:"new_password"`
}

// handleMePassword changes the caller's password and signs out their
// other sessions.
func (s *Server) handleMePassword(c echo.Context) error {
	var req passwordRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if err := s.auth.ChangePassword(c.Request().Context(), currentUser(c), req.CurrentPassword, req.NewPassword); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}
