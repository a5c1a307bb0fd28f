package web

import (
	"net/http"

	"github.com/labstack/echo/v4"
)

// forgotSent is the one answer to a reset request: the same whether or not
// an account uses the address.
const forgotSent = "If an account uses this address, we sent it a link to choose a new password. It works once, for one hour. No mail? Check your spam folder, or ask again in a few minutes."

type forgotPage struct {
	Mail bool
	Sent string
}

// forgotForm asks for the address to send a reset link to; with mail off
// it says to ask an administrator.
func (s *Server) forgotForm(c echo.Context) error {
	return s.render(c, http.StatusOK, "forgot", s.newPage(c, "login", forgotPage{Mail: s.auth.MailEnabled()}))
}

// forgotSubmit mails a reset link, if an account uses the address.
func (s *Server) forgotSubmit(c echo.Context) error {
	values := formValues(c, "email")
	data := forgotPage{Mail: s.auth.MailEnabled()}
	if err := s.auth.RequestPasswordReset(c.Request().Context(), values["email"]); err != nil {
		return s.refuse(c, "forgot", "login", data, values, err)
	}
	data.Sent = forgotSent
	return s.render(c, http.StatusOK, "forgot", s.newPage(c, "login", data))
}

type resetRequestBody struct {
	Email string `json:"email"`
}

// handleResetRequest is forgotSubmit for API clients: 202 with the same
// message for every address.
func (s *Server) handleResetRequest(c echo.Context) error {
	var req resetRequestBody
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if err := s.auth.RequestPasswordReset(c.Request().Context(), req.Email); err != nil {
		return err
	}
	return c.JSON(http.StatusAccepted, map[string]string{"message": forgotSent})
}
