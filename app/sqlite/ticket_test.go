package sqlite

import (
	"context"
	"testing"

	"zimage/app"
)

// Tickets of an account deleted by an older version (which left them in
// place until the purge) are not found by staff: not listed, not shown,
// not answered, not closed.
func TestTicketsOfDeletedAccountsAreGone(t *testing.T) {
	ctx := context.Background()
	db := MustOpen(t)
	for _, id := range []string{"01KEEP0000000000000000000A", "01GONE0000000000000000000B"} {
		if _, err := db.w.Exec(`INSERT INTO users (id, username, email_index, email, password_hash, role, age_confirmed_at, password_changed_at, created_at)
			VALUES (?, ?, ?, X'00', 'x', 'user', 1, 1, 1)`, id, "user"+id[2:6], []byte(id)); err != nil {
			t.Fatal(err)
		}
		tk := &TicketRow{SealedSubject: []byte("sealed")}
		tk.ID, tk.UserID, tk.Status = "T"+id, id, "open"
		m := &TicketMessageRow{SealedBody: []byte("sealed")}
		m.ID, m.TicketID, m.AuthorID, m.AuthorRole = "M"+id, tk.ID, id, "user"
		if err := db.CreateTicket(ctx, tk, m); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.w.Exec(`UPDATE users SET deleted_at = 1 WHERE id = '01GONE0000000000000000000B'`); err != nil {
		t.Fatal(err)
	}
	const gone = "T01GONE0000000000000000000B"
	if q, err := db.TicketQueue(ctx, "", 100); err != nil || len(q) != 1 || q[0].ID == gone {
		t.Errorf("queue: %d tickets, %v; want only the live account's", len(q), err)
	}
	if _, err := db.Ticket(ctx, "", gone); app.ErrorCode(err) != app.ENOTFOUND {
		t.Errorf("staff read of a deleted account's ticket: %v, want not found", err)
	}
	m := &TicketMessageRow{SealedBody: []byte("sealed")}
	m.ID, m.TicketID, m.AuthorID, m.AuthorRole = "M2", gone, "01KEEP0000000000000000000A", "support"
	if err := db.AddTicketMessage(ctx, "", m, "answered"); app.ErrorCode(err) != app.ENOTFOUND {
		t.Errorf("reply to a deleted account's ticket: %v, want not found", err)
	}
	if err := db.CloseTicket(ctx, gone); app.ErrorCode(err) != app.ENOTFOUND {
		t.Errorf("close of a deleted account's ticket: %v, want not found", err)
	}
	if _, err := db.Ticket(ctx, "", "T01KEEP0000000000000000000A"); err != nil {
		t.Errorf("the live account's ticket: %v", err)
	}
}
