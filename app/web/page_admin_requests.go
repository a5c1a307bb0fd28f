package web

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"zimage/app"
)

// The admin page of data-rights requests: the queue, soonest due first,
// overdue ones flagged, each open one with a form to close it with the
// resolution its requester will read.

type adminRequestView struct {
	requestView
	UserID, Username string
}

type adminRequestsPage struct {
	Requests []adminRequestView
	Status   string // "open" (default), "closed" or "all"
	Overdue  int
	// Failed is the id of the request whose close form was refused.
	Failed string
}

func (s *Server) adminRequestsData(c echo.Context) (adminRequestsPage, error) {
	if s.requests == nil {
		return adminRequestsPage{}, unavailable("Data requests")
	}
	ctx := c.Request().Context()
	d := adminRequestsPage{Status: c.QueryParam("status")}
	status := d.Status
	switch d.Status {
	case "", app.RequestOpen:
		d.Status, status = app.RequestOpen, app.RequestOpen
	case "all":
		status = ""
	}
	list, err := s.requests.Queue(ctx, status, 0)
	if err != nil {
		return d, err
	}
	now := s.db.Now()
	names := map[string]string{}
	for _, r := range list {
		v := adminRequestView{requestView: toRequestView(r, now), UserID: r.UserID}
		name, seen := names[r.UserID]
		if !seen {
			// A deleted account has no readable username any more; the id
			// is what the audit log names anyway.
			if u, err := s.auth.User(ctx, r.UserID); err == nil {
				name = u.Username
			}
			names[r.UserID] = name
		}
		v.Username = name
		if v.Overdue {
			d.Overdue++
		}
		d.Requests = append(d.Requests, v)
	}
	return d, nil
}

func (s *Server) adminRequestsView(c echo.Context) error {
	d, err := s.adminRequestsData(c)
	if err != nil {
		return err
	}
	p := s.adminPage(c, "requests", d)
	if c.QueryParam("done") == "request-closed" {
		p.Flash = "The request is closed; its requester sees the resolution in their privacy settings."
	}
	return s.render(c, http.StatusOK, "admin_requests", p)
}

func (s *Server) adminRequestClose(c echo.Context) error {
	if s.requests == nil {
		return unavailable("Data requests")
	}
	values := formValues(c, "resolution")
	if _, err := s.requests.Close(c.Request().Context(), currentUser(c).User.ID, c.Param("id"), values["resolution"]); err != nil {
		if app.ErrorCode(err) == app.ENOTFOUND {
			return err
		}
		d, derr := s.adminRequestsData(c)
		if derr != nil {
			return derr
		}
		d.Failed = c.Param("id")
		return s.refusePage(c, "admin_requests", s.adminPage(c, "requests", d), values, err)
	}
	return c.Redirect(http.StatusSeeOther, "/admin/requests?done=request-closed")
}
