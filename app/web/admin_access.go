package web

import (
	"net/http"

	"github.com/labstack/echo/v4"
)

type accessRequest struct {
	Reason string `json:"reason"`
}

// handleAdminAccess records an admin's reason to open a person's data and
// grants access for an hour; the person sees it in their access history.
func (s *Server) handleAdminAccess(c echo.Context) error {
	var req accessRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	g, err := s.auth.GrantAccess(c.Request().Context(), currentUser(c).User.ID, c.Param("id"), req.Reason)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, accessGrantJSON{ID: g.ID, AdminID: g.AdminID, Reason: g.Reason, CreatedAt: g.CreatedAt, ExpiresAt: g.ExpiresAt})
}

// handleAdminProfile shows a person's profile, their personal data: only
// behind requireAccessGrant.
func (s *Server) handleAdminProfile(c echo.Context) error {
	u, err := s.auth.Profile(c.Request().Context(), c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, toUserJSON(u))
}
