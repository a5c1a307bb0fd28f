package web

import (
	"net/http"

	"github.com/labstack/echo/v4"
)

type meUpdateRequest struct {
	DisplayName *string `json:"display_name"`
}

// handleMeUpdate changes the caller's profile (the display name for now;
// email changes need mail to confirm the new address).
func (s *Server) handleMeUpdate(c echo.Context) error {
	var req meUpdateRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	p := currentUser(c)
	ctx := c.Request().Context()
	if req.DisplayName == nil {
		u, err := s.auth.Profile(ctx, p.User.ID)
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, toUserJSON(u))
	}
	u, err := s.auth.UpdateProfile(ctx, p.User.ID, *req.DisplayName)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, toUserJSON(u))
}
