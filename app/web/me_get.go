package web

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"zimage/app/auth"
)

type meResponse struct {
	userJSON
	// CSRFToken is set for session callers: the token their
	// state-changing requests must send in X-CSRF-Token.
	CSRFToken string `json:"csrf_token,omitempty"`
}

// handleMeGet returns the caller's own account.
func (s *Server) handleMeGet(c echo.Context) error {
	p := currentUser(c)
	u, err := s.auth.Profile(c.Request().Context(), p.User.ID)
	if err != nil {
		return err
	}
	res := meResponse{userJSON: toUserJSON(u)}
	if p.Session != nil {
		res.CSRFToken = auth.CSRFToken([]byte(p.Token))
	}
	return c.JSON(http.StatusOK, res)
}
