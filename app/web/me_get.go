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
	// LegalHold is true while an admin holds the account: deletion waits,
	// and LegalHoldNotice says so.
	LegalHold       bool   `json:"legal_hold"`
	LegalHoldNotice string `json:"legal_hold_notice,omitempty"`
	// PolicyAckNeeded is the significant policy version the person has yet
	// to acknowledge (POST /api/v1/me/policy-ack), or 0.
	PolicyAckNeeded int `json:"policy_ack_needed"`
	// EmbedParameters: new PNGs carry their generation parameters (prompt
	// included) in their own metadata. Off unless the person turns it on.
	EmbedParameters bool `json:"embed_parameters"`
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
	if err := s.fillMePrivacy(c, &res); err != nil {
		return err
	}
	if res.EmbedParameters, err = s.db.EmbedParameters(c.Request().Context(), p.User.ID); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, res)
}
