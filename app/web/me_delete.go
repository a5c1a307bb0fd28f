package web

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"zimage/app"
	"zimage/app/privacy"
)

type deleteAccountRequest struct {
	Password string `json:"password"`
	TOTPCode string `json:"totp_code"`
}

// rightsOrUnavailable returns the rights service, or EUNAVAILABLE when
// this server was started without it.
func (s *Server) rightsOrUnavailable() (*privacy.Controls, error) {
	if s.rights == nil {
		return nil, app.Errorf(app.EUNAVAILABLE, "Privacy controls are not available on this server right now; try again later or contact its administrator.")
	}
	return s.rights, nil
}

// handleMeDelete deletes the caller's own account at once, after checking
// their password (and 2FA code). The answer clears the session cookie:
// the session no longer exists.
func (s *Server) handleMeDelete(c echo.Context) error {
	r, err := s.rightsOrUnavailable()
	if err != nil {
		return err
	}
	var req deleteAccountRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if err := r.DeleteAccount(c.Request().Context(), currentUser(c).User.ID, req.Password, req.TOTPCode); err != nil {
		return err
	}
	s.clearSessionCookie(c)
	return c.NoContent(http.StatusNoContent)
}
