package web

import (
	"github.com/labstack/echo/v4"

	"zimage/app/privacy"
)

// recordUsage counts one first-party usage event of kind on this request's
// route pattern (never its address, never a prompt) for the caller.
func (s *Server) recordUsage(c echo.Context, kind string) {
	userID := ""
	if p := currentUser(c); p != nil {
		userID = p.User.ID
	}
	s.recordUsageFor(c, userID, kind)
}

// recordUsageFor is recordUsage for a person the request does not carry
// yet (a login). Nothing is counted when the browser sent Global Privacy
// Control, or the person objected to analytics or restricted processing;
// when that cannot be told, nothing is counted either.
func (s *Server) recordUsageFor(c echo.Context, userID, kind string) {
	if s.usage == nil || browserObjects(c) {
		return
	}
	if userID != "" {
		if s.rights == nil {
			return
		}
		ok, err := s.rights.Allows(c.Request().Context(), userID, privacy.PurposeAnalytics)
		if err != nil || !ok {
			return
		}
	}
	s.usage.Record(c.Request().Context(), userID, kind, c.Path())
}
