package web

import (
	"net/http"

	"github.com/labstack/echo/v4"
)

type childRequest struct {
	// Note is accepted for the admin's workflow but not stored: it would
	// be information about a child.
	Note string `json:"note"`
}

// handleAdminChild ends an account reported as belonging to a child under
// 13: immediate erasure, recorded in the audit log.
func (s *Server) handleAdminChild(c echo.Context) error {
	r, err := s.rightsOrUnavailable()
	if err != nil {
		return err
	}
	var req childRequest
	if c.Request().ContentLength != 0 {
		if err := decodeJSON(c, &req); err != nil {
			return err
		}
	}
	if err := r.EraseChild(c.Request().Context(), currentUser(c).User.ID, c.Param("id")); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}
