package web

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"zimage/app"
)

type holdRequest struct {
	Reason string `json:"reason"`
}

type holdJSON struct {
	UserID    string    `json:"user_id"`
	AdminID   string    `json:"admin_id"`
	Reason    string    `json:"reason"`
	CreatedAt time.Time `json:"created_at"`
}

// handleAdminHoldSet puts an account under a legal hold.
func (s *Server) handleAdminHoldSet(c echo.Context) error {
	r, err := s.rightsOrUnavailable()
	if err != nil {
		return err
	}
	var req holdRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	ctx, id := c.Request().Context(), c.Param("id")
	if err := r.SetHold(ctx, currentUser(c).User.ID, id, req.Reason); err != nil {
		return err
	}
	return s.handleAdminHoldGet(c)
}

// handleAdminHoldGet shows an account's hold with its reason.
func (s *Server) handleAdminHoldGet(c echo.Context) error {
	r, err := s.rightsOrUnavailable()
	if err != nil {
		return err
	}
	ctx, id := c.Request().Context(), c.Param("id")
	if _, err := s.auth.User(ctx, id); err != nil {
		return err
	}
	h, ok, err := r.Hold(ctx, id)
	if err != nil {
		return err
	}
	if !ok {
		return app.Errorf(app.ENOTFOUND, "This account is not under a legal hold.")
	}
	return c.JSON(http.StatusOK, holdJSON{UserID: h.UserID, AdminID: h.AdminID, Reason: h.Reason, CreatedAt: h.CreatedAt})
}

// handleAdminHoldRelease lifts a legal hold.
func (s *Server) handleAdminHoldRelease(c echo.Context) error {
	r, err := s.rightsOrUnavailable()
	if err != nil {
		return err
	}
	if err := r.ReleaseHold(c.Request().Context(), currentUser(c).User.ID, c.Param("id")); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}
