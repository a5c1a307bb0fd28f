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
// admin's reset link), signs the account out everywhere and revokes its API
// keys; the answer says how many of each ended.
func (s *Server) handleReset(c echo.Context) error {
	var req resetRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	revoked, err := s.auth.ResetPassword(c.Request().Context(), req.Token, req.Password)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"revoked": revoked})
}
