package web

import (
	"net/http"

	"github.com/labstack/echo/v4"
)

type supportPage struct {
	Controller, ContactEmail string
}

// supportView says how to reach whoever runs this server: the contact in
// the privacy policy when one is set. It is public, so a person locked out
// of their account can read it too.
func (s *Server) supportView(c echo.Context) error {
	var d supportPage
	if s.policies != nil {
		if cur, err := s.policies.Current(c.Request().Context()); err == nil {
			d.Controller, d.ContactEmail = cur.Values.Controller, cur.Values.ContactEmail
		} else {
			s.log.Warn("support page: read privacy policy", "err", err)
		}
	}
	return s.render(c, http.StatusOK, "support", s.newPage(c, "support", d))
}
