package web

import (
	"net/http"

	"github.com/labstack/echo/v4"
)

type signupModeRequest struct {
	Mode string `json:"mode"`
}

// handleAdminSignupMode sets the sign-up mode (open, invite, closed); it
// overrides auth.signup from the config until changed again.
func (s *Server) handleAdminSignupMode(c echo.Context) error {
	var req signupModeRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if err := s.auth.SetSignupMode(c.Request().Context(), currentUser(c).User.ID, req.Mode); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]string{"mode": req.Mode})
}
