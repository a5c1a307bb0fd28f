package web

import (
	"net/http"

	"github.com/labstack/echo/v4"
)

type verifyPage struct {
	Token string
	Done  bool
}

// verifyEmailForm shows the button that confirms an address. Following the
// link changes nothing by itself: mail scanners that fetch links must not
// use the token up.
func (s *Server) verifyEmailForm(c echo.Context) error {
	token := c.QueryParam("token")
	return s.linkForm(c, "verify_email", verifyPage{Token: token}, token,
		"This page needs the whole link from the confirmation mail. Open it again, or ask for a new one in your settings.")
}

// verifyEmailSubmit confirms the address (and moves the account to it when
// the link was for a new address).
func (s *Server) verifyEmailSubmit(c echo.Context) error {
	token := c.FormValue("token")
	if err := s.auth.VerifyEmail(c.Request().Context(), token); err != nil {
		return s.refuse(c, "verify_email", "", verifyPage{}, map[string]string{}, err)
	}
	return s.render(c, http.StatusOK, "verify_email", s.newPage(c, "", verifyPage{Done: true}))
}

type verifyEmailRequest struct {
	Token string `json:"token"`
}

// handleVerifyEmail is verifyEmailSubmit for API clients.
func (s *Server) handleVerifyEmail(c echo.Context) error {
	var req verifyEmailRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if err := s.auth.VerifyEmail(c.Request().Context(), req.Token); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]bool{"verified": true})
}

type emailChangeRequest struct {
	Email    string `json:"email"`
	Password string `json:"password"`
}

// handleEmailChange mails a confirmation link to the new address; the
// account moves when it is followed.
func (s *Server) handleEmailChange(c echo.Context) error {
	var req emailChangeRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if err := s.auth.RequestEmailChange(c.Request().Context(), currentUser(c), req.Password, req.Email); err != nil {
		return err
	}
	return c.JSON(http.StatusAccepted, map[string]string{"message": "We sent a confirmation link to the new address. Your account moves to it when you follow the link, within 48 hours."})
}
