package web

import (
	"github.com/labstack/echo/v4"
)

type meUpdateRequest struct {
	DisplayName *string `json:"display_name"`
	// EmbedParameters writes the generation parameters (prompt included)
	// into new PNGs' own metadata.
	EmbedParameters *bool `json:"embed_parameters"`
}

// handleMeUpdate changes the caller's profile and preferences (email
// changes need mail to confirm the new address). It answers like GET /me.
func (s *Server) handleMeUpdate(c echo.Context) error {
	var req meUpdateRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	p := currentUser(c)
	ctx := c.Request().Context()
	if req.DisplayName != nil {
		if _, err := s.auth.UpdateProfile(ctx, p.User.ID, *req.DisplayName); err != nil {
			return err
		}
	}
	if req.EmbedParameters != nil {
		if err := s.db.SetEmbedParameters(ctx, p.User.ID, *req.EmbedParameters); err != nil {
			return err
		}
	}
	return s.handleMeGet(c)
}
