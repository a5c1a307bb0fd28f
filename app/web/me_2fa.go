package web

import (
	"net/http"

	"github.com/labstack/echo/v4"
)

// handleMe2FAStart begins 2FA enrolment: a new secret, its otpauth URL and
// the address of its QR code. Nothing changes until it is confirmed.
func (s *Server) handleMe2FAStart(c echo.Context) error {
	en, err := s.auth.StartTOTP(c.Request().Context(), currentUser(c).User.ID)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]string{"secret": en.Secret, "otpauth_url": en.URL, "qr_code_url": "/api/v1/me/2fa/qr.png"})
}

// handleMe2FAQR renders the pending secret's QR code on the server, so the
// secret never reaches a third-party QR service.
func (s *Server) handleMe2FAQR(c echo.Context) error {
	png, err := s.auth.TOTPQRCode(c.Request().Context(), currentUser(c).User.ID)
	if err != nil {
		return err
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.Blob(http.StatusOK, "image/png", png)
}

type codeRequest struct {
	Code string `json:"code"`
}

// handleMe2FAConfirm turns 2FA on with a first code and returns the
// recovery codes, shown this once.
func (s *Server) handleMe2FAConfirm(c echo.Context) error {
	var req codeRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	codes, err := s.auth.ConfirmTOTP(c.Request().Context(), currentUser(c).User.ID, req.Code)
	if err != nil {
		return err
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusOK, map[string]any{"recovery_codes": codes})
}

type disable2FARequest struct {
	Password string `json:"password"`
	Code     string `json:"code"`
}

// handleMe2FADisable turns 2FA off; it needs the password and a code.
func (s *Server) handleMe2FADisable(c echo.Context) error {
	var req disable2FARequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if err := s.auth.DisableTOTP(c.Request().Context(), currentUser(c).User.ID, req.Password, req.Code); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}
