package web

import (
	"net/http"

	"github.com/labstack/echo/v4"
)

type resetRequest struct {
	Token    string `json:"token"`
	Password string `json:"password"`
}

// handleReset sets a new password with a one-time reset token (from an
// admin's reset link) and signs the account out everywhere.
func (s *Server) handleReset(c echo.Context) error {
	var req resetRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if err := s.auth.ResetPassword(c.Request().Context(), req.Token, req.Password); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}
