package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"zimage/app"
)

// TicketRow is a tickets row with its subject still sealed.
type TicketRow struct {
	app.Ticket
	SealedSubject []byte
}

// TicketMessageRow is a ticket_messages row with its body still sealed.
type TicketMessageRow struct {
	app.TicketMessage
	SealedBody []byte
}

const ticketColumns = `id, user_id, subject, status, created_at, last_message_at`

func scanTicket(s rowScanner) (TicketRow, error) {
	var r TicketRow
	var created, last int64
	err := s.Scan(&r.ID, &r.UserID, &r.SealedSubject, &r.Status, &created, &last)
	r.CreatedAt, r.LastMessageAt = fromMillis(created), fromMillis(last)
	return r, err
}

// ownerLive keeps tickets of deleted accounts out of every read and
// write: deletion removes them, but an account deleted by an older version
// keeps its tickets until the purge, and their subjects no longer open.
const ownerLive = ` AND user_id NOT IN (SELECT id FROM users WHERE deleted_at > 0)`

func errTicketNotFound(id string) error {
	return app.Errorf(app.ENOTFOUND, "There is no support ticket %s: it may have been closed and removed after the support retention window.", id)
}

// CreateTicket stores a new ticket and its first message in one
// transaction, stamping both with now.
func (db *DB) CreateTicket(ctx context.Context, t *TicketRow, first *TicketMessageRow) error {
	now := db.Now().Truncate(time.Millisecond)
	t.CreatedAt, t.LastMessageAt, first.CreatedAt = now, now, now
	err := db.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO tickets (`+ticketColumns+`) VALUES (?,?,?,?,?,?)`,
			t.ID, t.UserID, t.SealedSubject, t.Status, now.UnixMilli(), now.UnixMilli()); err != nil {
			return err
		}
		return insertTicketMessage(ctx, tx, first)
	})
	if err != nil {
		return fmt.Errorf("sqlite: create ticket: %w", err)
	}
	return nil
}

func insertTicketMessage(ctx context.Context, tx *sql.Tx, m *TicketMessageRow) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO ticket_messages (id, ticket_id, author_id, author_role, body, created_at)
		VALUES (?,?,?,?,?,?)`, m.ID, m.TicketID, m.AuthorID, m.AuthorRole, m.SealedBody, m.CreatedAt.UnixMilli())
	return err
}

// Ticket returns ticket id. userID "" reads any person's ticket (staff);
// otherwise another person's ticket is ENOTFOUND.
func (db *DB) Ticket(ctx context.Context, userID, id string) (TicketRow, error) {
	q, args := `SELECT `+ticketColumns+` FROM tickets WHERE id = ?`+ownerLive, []any{id}
	if userID != "" {
		q += ` AND user_id = ?`
		args = append(args, userID)
	}
	r, err := scanTicket(db.r.QueryRowContext(ctx, q, args...))
	if errors.Is(err, sql.ErrNoRows) {
		return r, errTicketNotFound(id)
	} else if err != nil {
		return r, fmt.Errorf("sqlite: find ticket: %w", err)
	}
	return r, nil
}

// TicketsOf returns userID's tickets, most recently active first.
func (db *DB) TicketsOf(ctx context.Context, userID string) ([]TicketRow, error) {
	return db.queryTickets(ctx, `SELECT `+ticketColumns+` FROM tickets WHERE user_id = ?
		ORDER BY last_message_at DESC, id DESC`, userID)
}

// TicketQueue returns up to limit tickets in status, the longest waiting
// first; status "" means every ticket not closed.
func (db *DB) TicketQueue(ctx context.Context, status string, limit int) ([]TicketRow, error) {
	if status == "" {
		return db.queryTickets(ctx, `SELECT `+ticketColumns+` FROM tickets WHERE status IN ('open','answered')`+ownerLive+`
			ORDER BY status DESC, last_message_at, id LIMIT ?`, limit)
	}
	return db.queryTickets(ctx, `SELECT `+ticketColumns+` FROM tickets WHERE status = ?`+ownerLive+`
		ORDER BY last_message_at, id LIMIT ?`, status, limit)
}

func (db *DB) queryTickets(ctx context.Context, q string, args ...any) ([]TicketRow, error) {
	rows, err := db.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list tickets: %w", err)
	}
	defer rows.Close()
	var out []TicketRow
	for rows.Next() {
		r, err := scanTicket(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: list tickets: %w", err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// TicketMessages returns the messages of ticket id, oldest first.
func (db *DB) TicketMessages(ctx context.Context, ticketID string) ([]TicketMessageRow, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT id, ticket_id, author_id, author_role, body, created_at
		FROM ticket_messages WHERE ticket_id = ? ORDER BY created_at, rowid`, ticketID)
	if err != nil {
		return nil, fmt.Errorf("sqlite: ticket messages: %w", err)
	}
	defer rows.Close()
	var out []TicketMessageRow
	for rows.Next() {
		var m TicketMessageRow
		var at int64
		if err := rows.Scan(&m.ID, &m.TicketID, &m.AuthorID, &m.AuthorRole, &m.SealedBody, &at); err != nil {
			return nil, fmt.Errorf("sqlite: ticket messages: %w", err)
		}
		m.CreatedAt = fromMillis(at)
		out = append(out, m)
	}
	return out, rows.Err()
}

// AddTicketMessage appends m to its ticket, moves the ticket to status and
// records the audit entries, in one transaction. ownerID, when not "",
// must own the ticket (ENOTFOUND otherwise). A closed ticket takes no more
// messages (ECONFLICT).
func (db *DB) AddTicketMessage(ctx context.Context, ownerID string, m *TicketMessageRow, status string, audit ...app.AuditEntry) error {
	now := db.Now().Truncate(time.Millisecond)
	m.CreatedAt = now
	err := db.tx(ctx, func(tx *sql.Tx) error {
		var cur, owner string
		err := tx.QueryRowContext(ctx, `SELECT status, user_id FROM tickets WHERE id = ?`+ownerLive, m.TicketID).Scan(&cur, &owner)
		if errors.Is(err, sql.ErrNoRows) || (err == nil && ownerID != "" && owner != ownerID) {
			return errTicketNotFound(m.TicketID)
		} else if err != nil {
			return err
		}
		if cur == app.TicketClosed {
			return app.Errorf(app.ECONFLICT, "Ticket %s is closed and takes no more messages: open a new ticket instead.", m.TicketID)
		}
		if err := insertTicketMessage(ctx, tx, m); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE tickets SET status = ?, last_message_at = ? WHERE id = ?`, status, now.UnixMilli(), m.TicketID); err != nil {
			return err
		}
		for _, e := range audit {
			if err := appendAudit(ctx, tx, now, e); err != nil {
				return err
			}
		}
		return nil
	})
	if ae := (*app.Error)(nil); errors.As(err, &ae) {
		return err
	} else if err != nil {
		return fmt.Errorf("sqlite: add ticket message: %w", err)
	}
	return nil
}

// CloseTicket marks ticket id closed, with the audit entries. Closing a
// closed ticket is a no-op, so a double click does no harm.
func (db *DB) CloseTicket(ctx context.Context, id string, audit ...app.AuditEntry) error {
	now := db.Now().Truncate(time.Millisecond)
	err := db.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE tickets SET status = 'closed' WHERE id = ?`+ownerLive, id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return errTicketNotFound(id)
		}
		for _, e := range audit {
			if err := appendAudit(ctx, tx, now, e); err != nil {
				return err
			}
		}
		return nil
	})
	if ae := (*app.Error)(nil); errors.As(err, &ae) {
		return err
	} else if err != nil {
		return fmt.Errorf("sqlite: close ticket: %w", err)
	}
	return nil
}

// CountTicketsInactiveSince counts tickets whose last message is before
// cutoff.
func (db *DB) CountTicketsInactiveSince(ctx context.Context, cutoff time.Time) (int, error) {
	var n int
	if err := db.r.QueryRowContext(ctx, `SELECT count(*) FROM tickets WHERE last_message_at < ?`, cutoff.UnixMilli()).Scan(&n); err != nil {
		return 0, fmt.Errorf("sqlite: count old tickets: %w", err)
	}
	return n, nil
}

// DeleteTicketsInactiveSince removes tickets (and, by cascade, their
// messages) whose last message is before cutoff, batch tickets a
// transaction, checking ctx between batches. It returns how many tickets
// went.
func (db *DB) DeleteTicketsInactiveSince(ctx context.Context, cutoff time.Time, batch int) (int, error) {
	return db.deleteInBatches(ctx, "old tickets", `DELETE FROM tickets WHERE id IN
		(SELECT id FROM tickets WHERE last_message_at < ? ORDER BY last_message_at LIMIT ?)`, cutoff.UnixMilli(), batch)
}

// deleteInBatches runs query (whose last two arguments are a cutoff and a
// LIMIT) until it deletes fewer than batch rows, so the writer is never
// held for long and a shutdown stops it between batches.
func (db *DB) deleteInBatches(ctx context.Context, what, query string, cutoff int64, batch int) (int, error) {
	if batch <= 0 {
		batch = 500
	}
	total := 0
	for {
		if err := ctx.Err(); err != nil {
			return total, err
		}
		res, err := db.w.ExecContext(ctx, query, cutoff, batch)
		if err != nil {
			return total, fmt.Errorf("sqlite: delete %s: %w", what, err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return total, fmt.Errorf("sqlite: delete %s: %w", what, err)
		}
		total += int(n)
		if int(n) < batch {
			return total, nil
		}
	}
}
