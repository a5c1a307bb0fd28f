package web

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"zimage/app"
	"zimage/app/privacy"
)

type policyAckRequest struct {
	Version int `json:"version"`
}

// handleMePolicyAck records that the caller acknowledged a policy version;
// the banner then goes away.
func (s *Server) handleMePolicyAck(c echo.Context) error {
	p, err := s.policiesOrUnavailable()
	if err != nil {
		return err
	}
	var req policyAckRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if req.Version == 0 {
		return app.FieldErrors{"version": "Say which policy version you acknowledge (GET /api/v1/policy shows the current one)."}.Err()
	}
	if err := p.Accept(c.Request().Context(), currentUser(c).User.ID, req.Version); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// fillMePrivacy adds the legal hold and policy acknowledgement state to
// GET /api/v1/me.
func (s *Server) fillMePrivacy(c echo.Context, res *meResponse) error {
	ctx, id := c.Request().Context(), currentUser(c).User.ID
	if s.rights != nil {
		held, err := s.rights.IsHeld(ctx, id)
		if err != nil {
			return err
		}
		if held {
			res.LegalHold, res.LegalHoldNotice = true, privacy.HoldNotice
		}
	}
	if s.policies != nil {
		v, need, err := s.policies.NeedsAcceptance(ctx, id)
		if err != nil {
			return err
		}
		if need {
			res.PolicyAckNeeded = v.Version
		}
	}
	return nil
}
