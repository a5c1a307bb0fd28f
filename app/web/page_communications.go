package web

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"zimage/app/privacy"
)

// The communications settings page: what mail this server sends (none
// yet: there is no mail sender, only an outbox that keeps policy-change
// notices until one is configured) and the marketing consent, the same
// ledger entry the privacy page shows.

type communicationsPage struct {
	Marketing  *purposeView // nil when the consent service is not wired
	Restricted bool
	GPC        bool
	GPCNotice  string
}

func (s *Server) settingsCommunications(c echo.Context) error {
	var d communicationsPage
	if s.rights != nil {
		cv, err := s.consentsData(c)
		if err != nil {
			return err
		}
		for i := range cv.Purposes {
			if cv.Purposes[i].Purpose == privacy.PurposeMarketing {
				d.Marketing = &cv.Purposes[i]
			}
		}
		d.Restricted, d.GPC, d.GPCNotice = cv.Restricted, cv.GPC, cv.GPCNotice
	}
	p := s.settingsPage(c, "communications", d)
	if c.QueryParam("done") == "consents" {
		p.Flash = requestDone["consents"]
	}
	return s.render(c, http.StatusOK, "settings_communications", p)
}
