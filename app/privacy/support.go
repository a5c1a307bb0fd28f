package privacy

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/oklog/ulid/v2"

	"zimage/app"
	"zimage/app/sqlite"
)

// Sealer seals and opens personal data with its owner's key;
// *vault.Vault implements it.
type Sealer interface {
	Seal(userID string, aad, plaintext []byte) ([]byte, error)
	Open(userID string, aad, sealed []byte) ([]byte, error)
}

func newID(now time.Time) string { return ulid.MustNew(ulid.Timestamp(now), rand.Reader).String() }

func ticketSubjectAAD(id string) []byte  { return []byte("tickets/" + id + "/subject") }
func ticketMessageAAD(id string) []byte  { return []byte("ticket_messages/" + id + "/body") }
func requestDetailsAAD(id string) []byte { return []byte("data_requests/" + id + "/details") }

// Support runs support tickets: people open and follow up on their own;
// support staff and admins read the queue, answer and close. Every text is
// sealed with the ticket owner's key, staff replies included, so deleting
// the account makes the whole conversation unreadable.
type Support struct {
	db     *sqlite.DB
	sealer Sealer
	log    *slog.Logger
}

// NewSupport returns the support service.
func NewSupport(db *sqlite.DB, sealer Sealer, log *slog.Logger) *Support {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Support{db: db, sealer: sealer, log: log}
}

// Open starts a ticket for userID with a first message.
func (s *Support) Open(ctx context.Context, userID, subject, body string) (*app.Ticket, error) {
	subject, body = strings.TrimSpace(subject), strings.TrimSpace(body)
	if err := app.ValidateTicketText(subject, body, true); err != nil {
		return nil, err
	}
	now := s.db.Now()
	t := &sqlite.TicketRow{Ticket: app.Ticket{ID: newID(now), UserID: userID, Subject: subject, Status: app.TicketOpen}}
	m := &sqlite.TicketMessageRow{TicketMessage: app.TicketMessage{ID: newID(now), TicketID: t.ID, AuthorID: userID, AuthorRole: app.AuthorUser, Body: body}}
	var err error
	if t.SealedSubject, err = s.sealer.Seal(userID, ticketSubjectAAD(t.ID), []byte(subject)); err != nil {
		return nil, app.Wrap(err, "Could not encrypt the ticket.")
	}
	if m.SealedBody, err = s.sealer.Seal(userID, ticketMessageAAD(m.ID), []byte(body)); err != nil {
		return nil, app.Wrap(err, "Could not encrypt the message.")
	}
	if err := s.db.CreateTicket(ctx, t, m); err != nil {
		return nil, err
	}
	out := t.Ticket
	out.Messages = []app.TicketMessage{m.TicketMessage}
	return &out, nil
}

// List returns userID's own tickets (without messages).
func (s *Support) List(ctx context.Context, userID string) ([]app.Ticket, error) {
	rows, err := s.db.TicketsOf(ctx, userID)
	if err != nil {
		return nil, err
	}
	return s.openTickets(rows), nil
}

// Get returns userID's own ticket id with its messages; another person's
// ticket is ENOTFOUND.
func (s *Support) Get(ctx context.Context, userID, id string) (*app.Ticket, error) {
	r, err := s.db.Ticket(ctx, userID, id)
	if err != nil {
		return nil, err
	}
	return s.withMessages(ctx, r)
}

// Reply adds the owner's message to their ticket, which reopens it for
// staff.
func (s *Support) Reply(ctx context.Context, userID, id, body string) (*app.TicketMessage, error) {
	return s.addMessage(ctx, userID, id, userID, app.AuthorUser, body, app.TicketOpen)
}

// Queue returns up to limit tickets for staff, status "" meaning open and
// answered ones. Only subjects are opened, and the queue read is not
// audited: it shows no more than a mail client's inbox would.
func (s *Support) Queue(ctx context.Context, status string, limit int) ([]app.Ticket, error) {
	switch status {
	case "", app.TicketOpen, app.TicketAnswered, app.TicketClosed:
	default:
		return nil, &app.Error{Code: app.EINVALID, Message: fmt.Sprintf("Unknown ticket status %q: use open, answered or closed.", status), Fields: map[string]string{"status": "must be open, answered or closed"}}
	}
	if limit <= 0 || limit > 200 {
		limit = 200
	}
	rows, err := s.db.TicketQueue(ctx, status, limit)
	if err != nil {
		return nil, err
	}
	return s.openTickets(rows), nil
}

// StaffGet returns any ticket with its messages for staff member staffID.
// Reading a conversation is access to personal data, so it is audited
// (ids only) and shows in the person's access history.
func (s *Support) StaffGet(ctx context.Context, staffID, id string) (*app.Ticket, error) {
	r, err := s.db.Ticket(ctx, "", id)
	if err != nil {
		return nil, err
	}
	t, err := s.withMessages(ctx, r)
	if err != nil {
		return nil, err
	}
	if err := s.db.AppendAudit(ctx, app.AuditEntry{ActorID: staffID, SubjectID: r.UserID, Action: app.AuditTicketRead,
		Detail: fmt.Sprintf(`{"ticket":%q}`, id)}); err != nil {
		return nil, err
	}
	return t, nil
}

// StaffReply answers ticket id as staff (role support or admin). The
// reply is sealed with the ticket owner's key.
func (s *Support) StaffReply(ctx context.Context, staff *app.User, id, body string) (*app.TicketMessage, error) {
	r, err := s.db.Ticket(ctx, "", id)
	if err != nil {
		return nil, err
	}
	role := app.AuthorSupport
	if staff.Role == app.RoleAdmin {
		role = app.AuthorAdmin
	}
	return s.addMessage(ctx, "", id, staff.ID, role, body, app.TicketAnswered,
		app.AuditEntry{ActorID: staff.ID, SubjectID: r.UserID, Action: app.AuditTicketReply, Detail: fmt.Sprintf(`{"ticket":%q}`, id)})
}

// Close closes ticket id for staff member staffID.
func (s *Support) Close(ctx context.Context, staffID, id string) error {
	r, err := s.db.Ticket(ctx, "", id)
	if err != nil {
		return err
	}
	return s.db.CloseTicket(ctx, id, app.AuditEntry{ActorID: staffID, SubjectID: r.UserID, Action: app.AuditTicketClose, Detail: fmt.Sprintf(`{"ticket":%q}`, id)})
}

func (s *Support) addMessage(ctx context.Context, ownerID, ticketID, authorID, role, body, status string, audit ...app.AuditEntry) (*app.TicketMessage, error) {
	body = strings.TrimSpace(body)
	if err := app.ValidateTicketText("", body, false); err != nil {
		return nil, err
	}
	// The key is the ticket owner's, whoever writes: look the owner up
	// (staff pass ownerID "").
	t, err := s.db.Ticket(ctx, ownerID, ticketID)
	if err != nil {
		return nil, err
	}
	m := &sqlite.TicketMessageRow{TicketMessage: app.TicketMessage{ID: newID(s.db.Now()), TicketID: ticketID, AuthorID: authorID, AuthorRole: role, Body: body}}
	if m.SealedBody, err = s.sealer.Seal(t.UserID, ticketMessageAAD(m.ID), []byte(body)); err != nil {
		return nil, app.Wrap(err, "Could not encrypt the message.")
	}
	if err := s.db.AddTicketMessage(ctx, ownerID, m, status, audit...); err != nil {
		return nil, err
	}
	return &m.TicketMessage, nil
}

// openTickets opens the subjects of rows. A subject that no longer opens
// (the owner's key was destroyed) is shown as such rather than failing the
// whole list.
func (s *Support) openTickets(rows []sqlite.TicketRow) []app.Ticket {
	out := make([]app.Ticket, 0, len(rows))
	for _, r := range rows {
		t := r.Ticket
		subj, err := s.sealer.Open(r.UserID, ticketSubjectAAD(r.ID), r.SealedSubject)
		if err != nil {
			s.log.Warn("support: ticket subject does not open", "ticket", r.ID, "err", err)
			t.Subject = "(unreadable)"
		} else {
			t.Subject = string(subj)
		}
		out = append(out, t)
	}
	return out
}

func (s *Support) withMessages(ctx context.Context, r sqlite.TicketRow) (*app.Ticket, error) {
	t := s.openTickets([]sqlite.TicketRow{r})[0]
	msgs, err := s.db.TicketMessages(ctx, r.ID)
	if err != nil {
		return nil, err
	}
	t.Messages = make([]app.TicketMessage, 0, len(msgs))
	for _, m := range msgs {
		body, err := s.sealer.Open(r.UserID, ticketMessageAAD(m.ID), m.SealedBody)
		if err != nil {
			return nil, app.Wrap(err, "Could not decrypt a message of ticket %s.", r.ID)
		}
		msg := m.TicketMessage
		msg.Body = string(body)
		t.Messages = append(t.Messages, msg)
	}
	return &t, nil
}

// CountInactive and DeleteInactive serve the support retention job:
// tickets whose last message is before cutoff go, messages with them.
func (s *Support) CountInactive(ctx context.Context, cutoff time.Time) (int, error) {
	return s.db.CountTicketsInactiveSince(ctx, cutoff)
}

// DeleteInactive deletes tickets whose last message is before cutoff.
func (s *Support) DeleteInactive(ctx context.Context, cutoff time.Time, batch int) (int, error) {
	return s.db.DeleteTicketsInactiveSince(ctx, cutoff, batch)
}
