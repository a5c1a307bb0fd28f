package web

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"zimage/app"
	"zimage/app/privacy"
)

// gpcKey marks a request whose browser sent Global Privacy Control or
// Do Not Track.
const gpcKey = "zimage.gpc"

// GPCNotice is shown with the consents when the browser's signal counts.
const GPCNotice = "Your browser's Global Privacy Control signal is honoured: analytics and marketing are off for this browser, whatever is set below."

// privacySignals reads Sec-GPC: 1 and DNT: 1: either is an objection to
// analytics and marketing for this browser, honoured without an account.
func (s *Server) privacySignals(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Request().Header
		if h.Get("Sec-GPC") == "1" || h.Get("DNT") == "1" {
			c.Set(gpcKey, true)
		}
		return next(c)
	}
}

// browserObjects reports whether the request carried GPC or DNT.
func browserObjects(c echo.Context) bool {
	v, _ := c.Get(gpcKey).(bool)
	return v
}

// objectsToAnalytics tells whoever records usage events whether this
// request must not be counted: the browser's signal, the person's
// objection or their restriction. Errors count as an objection: when in
// doubt, record nothing.
func (s *Server) objectsToAnalytics(c echo.Context) bool {
	return s.objectsTo(c, privacy.PurposeAnalytics)
}

// objectsToMarketing is the same for marketing.
func (s *Server) objectsToMarketing(c echo.Context) bool {
	return s.objectsTo(c, privacy.PurposeMarketing)
}

func (s *Server) objectsTo(c echo.Context, purpose string) bool {
	if browserObjects(c) {
		return true
	}
	p := currentUser(c)
	if p == nil {
		return purpose != privacy.PurposeAnalytics // anonymous: analytics on legitimate interest, marketing never
	}
	if s.rights == nil {
		return true
	}
	ok, err := s.rights.Allows(c.Request().Context(), p.User.ID, purpose)
	return err != nil || !ok
}

type consentsResponse struct {
	privacy.ConsentState
	// GPC is true when this request's browser sent Global Privacy Control
	// (or Do Not Track); GPCNotice then says what that means.
	GPC       bool   `json:"gpc"`
	GPCNotice string `json:"gpc_notice,omitempty"`
}

// handleMeConsents returns the caller's decisions per purpose and the
// ledger's history.
func (s *Server) handleMeConsents(c echo.Context) error {
	r, err := s.rightsOrUnavailable()
	if err != nil {
		return err
	}
	st, err := r.Consents(c.Request().Context(), currentUser(c).User.ID)
	if err != nil {
		return err
	}
	res := consentsResponse{ConsentState: st}
	if browserObjects(c) {
		res.GPC, res.GPCNotice = true, GPCNotice
		for i := range res.Purposes {
			if res.Purposes[i].Purpose != privacy.PurposeTraining {
				res.Purposes[i].Granted = false
			}
		}
	}
	return c.JSON(http.StatusOK, res)
}

type consentRequest struct {
	Purpose string `json:"purpose"`
	Granted *bool  `json:"granted"`
}

// handleMeConsentSet records a decision in the ledger; it takes effect at
// once. granted=false on analytics or marketing is the objection.
func (s *Server) handleMeConsentSet(c echo.Context) error {
	r, err := s.rightsOrUnavailable()
	if err != nil {
		return err
	}
	var req consentRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if req.Granted == nil {
		return app.FieldErrors{"granted": "Say true to give consent or false to withdraw it."}.Err()
	}
	ctx, id := c.Request().Context(), currentUser(c).User.ID
	if err := r.SetConsent(ctx, id, req.Purpose, *req.Granted, privacy.MethodAPI); err != nil {
		return err
	}
	return s.handleMeConsents(c)
}

type restrictRequest struct {
	Restricted *bool `json:"restricted"`
}

// handleMeRestrict turns "restrict processing" on or off.
func (s *Server) handleMeRestrict(c echo.Context) error {
	r, err := s.rightsOrUnavailable()
	if err != nil {
		return err
	}
	var req restrictRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if req.Restricted == nil {
		return app.FieldErrors{"restricted": "Say true to restrict processing or false to lift the restriction."}.Err()
	}
	if err := r.SetRestricted(c.Request().Context(), currentUser(c).User.ID, *req.Restricted); err != nil {
		return err
	}
	return s.handleMeConsents(c)
}
