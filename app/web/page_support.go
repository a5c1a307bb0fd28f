package web

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"zimage/app"
	"zimage/app/privacy"
)

// The support pages: how to reach the operator (anyone), a person's own
// tickets (signed in), and the staff queue (support role and admins).

type ticketView struct {
	ID, Subject, Status, Created, LastMessage, UserID string
}

type ticketMessageView struct {
	Author, AuthorID, Body, At string
	Staff                      bool
}

type supportPage struct {
	Controller, ContactEmail string
	SupportWindow            string // how long messages are kept, "" if no policy
	// TicketsOn is true for a signed-in person on a server with the
	// support service; Tickets are theirs.
	TicketsOn bool
	Tickets   []ticketView
	Staff     bool
}

type ticketPage struct {
	Ticket   ticketView
	Messages []ticketMessageView
	// Staff is the staff view: ids shown, reply as staff, close.
	Staff bool
}

type supportQueuePage struct {
	Tickets []ticketView
	Status  string
}

var ticketDone = map[string]string{
	"ticket-opened": "Your ticket is open. Support staff will answer here; come back to this page to read their reply.",
	"ticket-reply":  "Your message is added.",
	"staff-reply":   "Your reply is sent; the ticket is marked answered.",
	"ticket-closed": "The ticket is closed. It reopens if its owner writes again.",
}

func toTicketView(t *app.Ticket) ticketView {
	return ticketView{ID: t.ID, Subject: t.Subject, Status: t.Status, Created: when(t.CreatedAt), LastMessage: when(t.LastMessageAt), UserID: t.UserID}
}

// toMessageViews names authors for the reader: the owner sees "You" and
// "Support" (never which staff member), staff see roles and ids.
func toMessageViews(t *app.Ticket, staff bool) []ticketMessageView {
	out := make([]ticketMessageView, 0, len(t.Messages))
	for _, m := range t.Messages {
		v := ticketMessageView{Body: m.Body, At: when(m.CreatedAt), Staff: m.AuthorRole != app.AuthorUser}
		switch {
		case !staff && v.Staff:
			v.Author = "Support"
		case !staff:
			v.Author = "You"
		case v.Staff:
			v.Author, v.AuthorID = "Staff ("+m.AuthorRole+")", m.AuthorID
		default:
			v.Author, v.AuthorID = "Ticket owner", m.AuthorID
		}
		out = append(out, v)
	}
	return out
}

func isStaff(u *app.User) bool {
	return u != nil && (u.Role == app.RoleSupport || u.Role == app.RoleAdmin)
}

func (s *Server) supportPageData(c echo.Context) (supportPage, error) {
	var d supportPage
	if s.policies != nil {
		if cur, err := s.policies.Current(c.Request().Context()); err == nil {
			d.Controller, d.ContactEmail = cur.Values.Controller, cur.Values.ContactEmail
			d.SupportWindow = privacy.HumanWindow(cur.Values.Support)
		} else if app.ErrorCode(err) != app.ENOTFOUND {
			s.log.Warn("support page: read privacy policy", "err", err)
		}
	}
	if !signedIn(c) {
		return d, nil
	}
	u := currentUser(c).User
	d.Staff = isStaff(u)
	if s.support != nil {
		list, err := s.support.List(c.Request().Context(), u.ID)
		if err != nil {
			return d, err
		}
		d.TicketsOn = true
		for i := range list {
			d.Tickets = append(d.Tickets, toTicketView(&list[i]))
		}
	}
	return d, nil
}

// supportView says how to reach whoever runs this server: the contact in
// the privacy policy when one is set. It is public, so a person locked out
// of their account can read it too; signed in, it lists their tickets and
// opens new ones.
func (s *Server) supportView(c echo.Context) error {
	d, err := s.supportPageData(c)
	if err != nil {
		return err
	}
	p := s.newPage(c, "support", d)
	p.Flash = ticketDone[c.QueryParam("done")]
	return s.render(c, http.StatusOK, "support", p)
}

func (s *Server) supportTicketOpen(c echo.Context) error {
	if s.support == nil {
		return unavailable("Support")
	}
	values := formValues(c, "subject", "body")
	t, err := s.support.Open(c.Request().Context(), currentUser(c).User.ID, values["subject"], values["body"])
	if err != nil {
		d, derr := s.supportPageData(c)
		if derr != nil {
			return derr
		}
		return s.refusePage(c, "support", s.newPage(c, "support", d), values, err)
	}
	return c.Redirect(http.StatusSeeOther, "/support/tickets/"+t.ID+"?done=ticket-opened")
}

// ticketPageFor reads ticket id as its owner, or as staff (audited by
// the service).
func (s *Server) ticketPageFor(c echo.Context, staff bool) (ticketPage, error) {
	if s.support == nil {
		return ticketPage{}, unavailable("Support")
	}
	ctx, u := c.Request().Context(), currentUser(c).User
	var t *app.Ticket
	var err error
	if staff {
		t, err = s.support.StaffGet(ctx, u.ID, c.Param("id"))
	} else {
		t, err = s.support.Get(ctx, u.ID, c.Param("id"))
	}
	if err != nil {
		return ticketPage{}, err
	}
	return ticketPage{Ticket: toTicketView(t), Messages: toMessageViews(t, staff), Staff: staff}, nil
}

func (s *Server) renderTicket(c echo.Context, staff bool, values map[string]string, refused error) error {
	d, err := s.ticketPageFor(c, staff)
	if err != nil {
		return err
	}
	p := s.newPage(c, "support", d)
	p.Flash = ticketDone[c.QueryParam("done")]
	if refused != nil {
		return s.refusePage(c, "support_ticket", p, values, refused)
	}
	return s.render(c, http.StatusOK, "support_ticket", p)
}

// supportTicketView shows one of the caller's tickets; another person's
// id is 404, as if it did not exist.
func (s *Server) supportTicketView(c echo.Context) error {
	return s.renderTicket(c, false, nil, nil)
}

func (s *Server) supportTicketReply(c echo.Context) error {
	if s.support == nil {
		return unavailable("Support")
	}
	values := formValues(c, "body")
	if _, err := s.support.Reply(c.Request().Context(), currentUser(c).User.ID, c.Param("id"), values["body"]); err != nil {
		if app.ErrorCode(err) == app.ENOTFOUND {
			return err
		}
		return s.renderTicket(c, false, values, err)
	}
	return c.Redirect(http.StatusSeeOther, "/support/tickets/"+c.Param("id")+"?done=ticket-reply#reply")
}

// requireStaffPage admits support staff and admins to the staff pages:
// anyone not signed in is sent to sign in, anyone else gets the 403 page.
func (s *Server) requireStaffPage(next echo.HandlerFunc) echo.HandlerFunc {
	return s.requirePage(func(c echo.Context) error {
		u := currentUser(c).User
		if !isStaff(u) {
			return app.Errorf(app.EFORBIDDEN, "This page is for the support staff of this server. To ask for help, open a ticket on the support page (/support).")
		}
		if u.Role == app.RoleAdmin && s.auth.Options().RequireAdmin2FA && !u.TOTPEnabled {
			return app.Errorf(app.EFORBIDDEN, "This server requires admins to use two-factor authentication. Turn it on under Settings → Security (/settings/security), then come back.")
		}
		return next(c)
	})
}

// supportQueueView lists tickets for staff: ?status=open|answered|closed,
// default open and answered, the longest waiting first.
func (s *Server) supportQueueView(c echo.Context) error {
	if s.support == nil {
		return unavailable("Support")
	}
	status := c.QueryParam("status")
	list, err := s.support.Queue(c.Request().Context(), status, 0)
	if err != nil {
		return err
	}
	d := supportQueuePage{Status: status}
	for i := range list {
		d.Tickets = append(d.Tickets, toTicketView(&list[i]))
	}
	p := s.newPage(c, "support", d)
	p.Flash = ticketDone[c.QueryParam("done")]
	return s.render(c, http.StatusOK, "support_queue", p)
}

func (s *Server) supportStaffTicketView(c echo.Context) error {
	return s.renderTicket(c, true, nil, nil)
}

func (s *Server) supportStaffReply(c echo.Context) error {
	if s.support == nil {
		return unavailable("Support")
	}
	values := formValues(c, "body")
	if _, err := s.support.StaffReply(c.Request().Context(), currentUser(c).User, c.Param("id"), values["body"]); err != nil {
		if app.ErrorCode(err) == app.ENOTFOUND {
			return err
		}
		return s.renderTicket(c, true, values, err)
	}
	return c.Redirect(http.StatusSeeOther, "/support/queue/"+c.Param("id")+"?done=staff-reply")
}

func (s *Server) supportStaffClose(c echo.Context) error {
	if s.support == nil {
		return unavailable("Support")
	}
	if err := s.support.Close(c.Request().Context(), currentUser(c).User.ID, c.Param("id")); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, "/support/queue?done=ticket-closed")
}
