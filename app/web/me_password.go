package web

import (
	"net/http"

	"github.com/labstack/echo/v4"
)

type passwordRequest struct {
	CurrentPassword string `json:"current_password"`
	NewPassword     string `json:"new_password"`
	// RevokeAPIKeys is on unless sent as false: after a password change,
	// keys made with the old one should stop working unless the person
	// chooses to keep their scripts running.
	RevokeAPIKeys *bool `json:"revoke_api_keys"`
}

// handleMePassword changes the caller's password, signs out their other
// sessions, revokes their API keys unless asked not to, and says what ended.
func (s *Server) handleMePassword(c echo.Context) error {
	var req passwordRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	revokeKeys := req.RevokeAPIKeys == nil || *req.RevokeAPIKeys
	revoked, err := s.auth.ChangePassword(c.Request().Context(), currentUser(c), req.CurrentPassword, req.NewPassword, revokeKeys)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"revoked": revoked})
}
