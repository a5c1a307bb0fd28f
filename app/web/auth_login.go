package web

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"zimage/app"
	"zimage/app/auth"
)

type loginRequest struct {
	Login        string `json:"login"`
	Password     string `json:"password"`
	TOTPCode     string `json:"totp_code"`
	RecoveryCode string `json:"recovery_code"`
}

// handleLogin signs in with a username or email and password (and a 2FA
// code when the account has 2FA), replacing any session the browser held.
func (s *Server) handleLogin(c echo.Context) error {
	var req loginRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	res, err := s.auth.Login(c.Request().Context(), auth.LoginInput{
		Login: req.Login, Password: req.Password, TOTPCode: req.TOTPCode, RecoveryCode: req.RecoveryCode,
		IP: clientIP(c), UserAgent: c.Request().UserAgent(), ReplaceToken: sessionCookieValue(c),
	})
	if err != nil {
		return err
	}
	s.setSessionCookie(c, res.Token, res.Session.ExpiresAt)
	s.recordUsageFor(c, res.User.ID, app.UsageLogin)
	prof, err := s.auth.Profile(c.Request().Context(), res.User.ID)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, sessionResponse{User: toUserJSON(prof), CSRFToken: auth.CSRFToken([]byte(res.Token))})
}
