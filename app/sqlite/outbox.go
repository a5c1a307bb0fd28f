package sqlite

import (
	"context"
	"fmt"
	"time"
)

// Mail is one message waiting in the outbox. Payload is sealed with the
// recipient's key (aad outbox/<id>/payload): it holds their address and the
// message, which are personal data.
type Mail struct {
	ID            string
	UserID        string
	Kind          string // e.g. "password_reset", "invite"
	SealedPayload []byte
	CreatedAt     time.Time
	SentAt        time.Time
}

// EnqueueMail stores m for the mailer to send. It is the seam where mail
// plugs in later: nothing sends yet, and flows that need mail offer a way
// without it (admin-issued reset links, invite links).
func (db *DB) EnqueueMail(ctx context.Context, m *Mail) error {
	m.CreatedAt = db.Now().Truncate(time.Millisecond)
	_, err := db.w.ExecContext(ctx, `INSERT INTO outbox (id, user_id, kind, payload, created_at) VALUES (?,?,?,?,?)`,
		m.ID, m.UserID, m.Kind, m.SealedPayload, m.CreatedAt.UnixMilli())
	if err != nil {
		return fmt.Errorf("sqlite: enqueue mail: %w", err)
	}
	return nil
}

// PendingMail returns up to limit unsent messages, oldest first.
func (db *DB) PendingMail(ctx context.Context, limit int) ([]*Mail, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT id, user_id, kind, payload, created_at FROM outbox WHERE sent_at = 0 ORDER BY created_at, id LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite: pending mail: %w", err)
	}
	defer rows.Close()
	var out []*Mail
	for rows.Next() {
		var m Mail
		var created int64
		if err := rows.Scan(&m.ID, &m.UserID, &m.Kind, &m.SealedPayload, &created); err != nil {
			return nil, fmt.Errorf("sqlite: pending mail: %w", err)
		}
		m.CreatedAt = fromMillis(created)
		out = append(out, &m)
	}
	return out, rows.Err()
}

// MarkMailSent records that message id went out.
func (db *DB) MarkMailSent(ctx context.Context, id string) error {
	if _, err := db.w.ExecContext(ctx, `UPDATE outbox SET sent_at = ? WHERE id = ?`, db.Now().UnixMilli(), id); err != nil {
		return fmt.Errorf("sqlite: mark mail sent: %w", err)
	}
	return nil
}
