package web

import (
	"context"
	"html/template"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"zimage/app"
	"zimage/app/privacy"
)

// policyPageData is what privacy.html and privacy_version.html show.
type policyPageData struct {
	Version privacy.PolicyVersion
	// HTML is the rendered policy: app/privacy escapes every value in it
	// and allows only safe links, so it is trusted here.
	HTML     template.HTML
	Latest   int
	Versions []privacy.PolicyVersion
}

func (s *Server) policiesOrUnavailable() (*privacy.Policies, error) {
	if s.policies == nil {
		return nil, app.Errorf(app.EUNAVAILABLE, "The privacy policy is not loaded on this server; see the server log.")
	}
	return s.policies, nil
}

// handlePrivacy shows the policy in force and the list of past versions.
func (s *Server) handlePrivacy(c echo.Context) error {
	return s.showPolicy(c, 0)
}

// handlePrivacyVersion shows a past (or the current) version.
func (s *Server) handlePrivacyVersion(c echo.Context) error {
	n, err := policyVersionParam(c)
	if err != nil {
		return err
	}
	return s.showPolicy(c, n)
}

// showPolicy renders version n, or the latest when n is 0.
func (s *Server) showPolicy(c echo.Context, n int) error {
	p, err := s.policiesOrUnavailable()
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	cur, err := p.Current(ctx)
	if err != nil {
		return err
	}
	v := cur
	if n != 0 && n != cur.Version {
		if v, err = p.Get(ctx, n); err != nil {
			return err
		}
	}
	versions, err := p.List(ctx)
	if err != nil {
		return err
	}
	name := "privacy"
	if n != 0 {
		name = "privacy_version"
	}
	data := policyPageData{Version: v, HTML: template.HTML(v.HTML), Latest: cur.Version, Versions: versions}
	return s.render(c, http.StatusOK, name, s.newPage(c, "privacy", data))
}

func policyVersionParam(c echo.Context) (int, error) {
	n, err := strconv.Atoi(c.Param("n"))
	if err != nil || n < 1 {
		return 0, app.Errorf(app.ENOTFOUND, "There is no privacy policy version %q: versions are numbered 1, 2, 3, …", c.Param("n"))
	}
	return n, nil
}

// handlePolicyAPI returns the current version with its HTML.
func (s *Server) handlePolicyAPI(c echo.Context) error {
	p, err := s.policiesOrUnavailable()
	if err != nil {
		return err
	}
	v, err := p.Current(c.Request().Context())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, v)
}

// handlePolicyVersionAPI returns one version with its HTML.
func (s *Server) handlePolicyVersionAPI(c echo.Context) error {
	p, err := s.policiesOrUnavailable()
	if err != nil {
		return err
	}
	n, err := policyVersionParam(c)
	if err != nil {
		return err
	}
	v, err := p.Get(c.Request().Context(), n)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, v)
}

// handlePolicyVersionsAPI lists every version, newest first, without HTML.
func (s *Server) handlePolicyVersionsAPI(c echo.Context) error {
	p, err := s.policiesOrUnavailable()
	if err != nil {
		return err
	}
	versions, err := p.List(c.Request().Context())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"versions": versions})
}

// pendingPolicyNotice is the banner for a signed-in person who has not yet
// acknowledged the latest significant version; nil when there is none.
// The page hook (fillPage) calls it.
func (s *Server) pendingPolicyNotice(ctx context.Context, userID string) *policyNotice {
	if s.policies == nil || userID == "" {
		return nil
	}
	v, need, err := s.policies.NeedsAcceptance(ctx, userID)
	if err != nil {
		s.log.Warn("policy notice: could not check acknowledgement", "err", err)
		return nil
	}
	if !need {
		return nil
	}
	return &policyNotice{Date: v.PublishedAt.Format("2 January 2006"), Summary: v.Summary}
}
