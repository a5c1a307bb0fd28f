package web

import (
	"time"

	"github.com/labstack/echo/v4"

	"zimage/app"
)

type ticketJSON struct {
	ID            string              `json:"id"`
	UserID        string              `json:"user_id,omitempty"` // staff views only
	Subject       string              `json:"subject"`
	Status        string              `json:"status"`
	CreatedAt     time.Time           `json:"created_at"`
	LastMessageAt time.Time           `json:"last_message_at"`
	Messages      []ticketMessageJSON `json:"messages,omitempty"`
}

type ticketMessageJSON struct {
	ID         string    `json:"id"`
	AuthorRole string    `json:"author_role"`
	AuthorID   string    `json:"author_id,omitempty"` // staff views only
	Body       string    `json:"body"`
	CreatedAt  time.Time `json:"created_at"`
}

// toTicketJSON shapes t for its owner, or (staff) with the ids staff need
// to tell people apart; the owner never sees which staff member wrote.
func toTicketJSON(t *app.Ticket, staff bool) ticketJSON {
	out := ticketJSON{ID: t.ID, Subject: t.Subject, Status: t.Status, CreatedAt: t.CreatedAt, LastMessageAt: t.LastMessageAt}
	if staff {
		out.UserID = t.UserID
	}
	for _, m := range t.Messages {
		out.Messages = append(out.Messages, toTicketMessageJSON(&m, staff))
	}
	return out
}

func toTicketMessageJSON(m *app.TicketMessage, staff bool) ticketMessageJSON {
	out := ticketMessageJSON{ID: m.ID, AuthorRole: m.AuthorRole, Body: m.Body, CreatedAt: m.CreatedAt}
	if staff {
		out.AuthorID = m.AuthorID
	}
	return out
}

type ticketRequest struct {
	Subject string `json:"subject"`
	Body    string `json:"body"`
}

type ticketMessageRequest struct {
	Body string `json:"body"`
}

// unavailable answers routes of a service this server was built without
// (a test server, a process that does not wire the feature).
func unavailable(what string) error {
	return app.Errorf(app.EUNAVAILABLE, "%s is not available on this server right now; try again later or contact its administrator.", what)
}

// requireStaff admits support staff and admins: through a browser
// session, or an admin's API key with the admin scope. Support people get
// the ticket routes and nothing else.
func (s *Server) requireStaff(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		p := currentUser(c)
		if p == nil {
			return errSignIn(c)
		}
		if p.User.Role != app.RoleSupport && p.User.Role != app.RoleAdmin {
			return app.Errorf(app.EFORBIDDEN, "Support staff and admins only.")
		}
		if p.APIKey != nil && !p.APIKey.HasScope(app.ScopeAdmin) {
			return app.Errorf(app.EFORBIDDEN, "Support routes need a signed-in browser session (or an admin's API key with the \"admin\" scope).")
		}
		if p.User.Role == app.RoleAdmin && s.auth.Options().RequireAdmin2FA && !p.User.TOTPEnabled {
			return app.Errorf(app.EFORBIDDEN, "This server requires admins to use two-factor authentication. Turn it on in your security settings (POST /api/v1/me/2fa), then try again.")
		}
		return next(c)
	}
}
