package web

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"zimage/app/auth"
)

type signupRequest struct {
	Email        string `json:"email"`
	Username     string `json:"username"`
	Password     string `json:"password"`
	DisplayName  string `json:"display_name"`
	AgeConfirmed bool   `json:"age_confirmed"`
	Invite       string `json:"invite"`
}

// handleSignup creates an account and signs it in.
func (s *Server) handleSignup(c echo.Context) error {
	var req signupRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	ctx := c.Request().Context()
	u, err := s.auth.SignUp(ctx, auth.SignUpInput{Email: req.Email, Username: req.Username, Password: req.Password,
		DisplayName: req.DisplayName, AgeConfirmed: req.AgeConfirmed, Invite: req.Invite})
	if err != nil {
		return err
	}
	res, err := s.auth.StartSession(ctx, u.ID, clientIP(c), c.Request().UserAgent(), sessionCookieValue(c))
	if err != nil {
		return err
	}
	s.setSessionCookie(c, res.Token, res.Session.ExpiresAt)
	res.User.Email, res.User.DisplayName = u.Email, u.DisplayName
	return c.JSON(http.StatusCreated, sessionResponse{User: toUserJSON(res.User), CSRFToken: auth.CSRFToken([]byte(res.Token))})
}

// sessionCookieValue is the session token the browser sent, valid or not.
func sessionCookieValue(c echo.Context) string {
	if ck, err := c.Cookie(SessionCookie); err == nil {
		return ck.Value
	}
	return ""
}
