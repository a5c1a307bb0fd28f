package web

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"zimage/app"
)

type dataRequestJSON struct {
	ID         string     `json:"id"`
	UserID     string     `json:"user_id,omitempty"` // admin queue only
	Kind       string     `json:"kind"`
	Status     string     `json:"status"`
	Details    string     `json:"details"`
	CreatedAt  time.Time  `json:"created_at"`
	DueAt      time.Time  `json:"due_at"`
	Overdue    bool       `json:"overdue"`
	ClosedAt   *time.Time `json:"closed_at,omitempty"`
	Resolution string     `json:"resolution,omitempty"`
	ExportID   string     `json:"export_id,omitempty"`
	Next       string     `json:"next,omitempty"`
}

func toDataRequestJSON(r app.DataRequest, now time.Time, admin bool) dataRequestJSON {
	out := dataRequestJSON{ID: r.ID, Kind: r.Kind, Status: r.Status, Details: r.Details, CreatedAt: r.CreatedAt, DueAt: r.DueAt,
		Overdue: r.Overdue(now), ClosedAt: optTime(r.ClosedAt), Resolution: r.Resolution}
	if admin {
		out.UserID = r.UserID
	}
	return out
}

type dataRequestRequest struct {
	Kind    string `json:"kind"`
	Details string `json:"details"`
	// UserID may name the account the request is about; only the caller's
	// own is accepted (anything else is 404, as if it did not exist).
	UserID string `json:"user_id"`
}

// listMyRequests lists the caller's data-rights requests.
func (s *Server) listMyRequests(c echo.Context) error {
	if s.requests == nil {
		return unavailable("Data requests")
	}
	list, err := s.requests.List(c.Request().Context(), currentUser(c).User.ID)
	if err != nil {
		return err
	}
	now := s.db.Now()
	out := make([]dataRequestJSON, 0, len(list))
	for _, r := range list {
		out = append(out, toDataRequestJSON(r, now, false))
	}
	return c.JSON(http.StatusOK, map[string]any{"requests": out})
}

// fileRequest files a data-rights request for the caller, always about
// their own account.
func (s *Server) fileRequest(c echo.Context) error {
	if s.requests == nil {
		return unavailable("Data requests")
	}
	var req dataRequestRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if req.UserID != "" && req.UserID != currentUser(c).User.ID {
		return app.Errorf(app.ENOTFOUND, "There is no account %s you can file a request for: you can file requests about your own account only. An administrator answers requests made on someone's behalf.", req.UserID)
	}
	f, err := s.requests.File(c.Request().Context(), currentUser(c).User.ID, req.Kind, req.Details)
	if err != nil {
		return err
	}
	out := toDataRequestJSON(f.DataRequest, s.db.Now(), false)
	out.ExportID, out.Next = f.ExportID, f.Next
	return c.JSON(http.StatusCreated, out)
}
