package web

import (
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"
)

// adminRequests is the data-rights queue, the soonest due first, each
// flagged overdue when still open past its due date.
func (s *Server) adminRequests(c echo.Context) error {
	if s.requests == nil {
		return unavailable("Data requests")
	}
	limit, _ := strconv.Atoi(c.QueryParam("limit"))
	list, err := s.requests.Queue(c.Request().Context(), c.QueryParam("status"), limit)
	if err != nil {
		return err
	}
	now := s.db.Now()
	out := make([]dataRequestJSON, 0, len(list))
	overdue := 0
	for _, r := range list {
		j := toDataRequestJSON(r, now, true)
		if j.Overdue {
			overdue++
		}
		out = append(out, j)
	}
	return c.JSON(http.StatusOK, map[string]any{"requests": out, "overdue": overdue})
}

type closeRequestRequest struct {
	Resolution string `json:"resolution"`
}

// adminCloseRequest closes a request with the resolution the person sees.
func (s *Server) adminCloseRequest(c echo.Context) error {
	if s.requests == nil {
		return unavailable("Data requests")
	}
	var req closeRequestRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	r, err := s.requests.Close(c.Request().Context(), currentUser(c).User.ID, c.Param("id"), req.Resolution)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, toDataRequestJSON(r, s.db.Now(), true))
}
