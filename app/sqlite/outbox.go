package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"zimage/app"
)

// migrateMailDelivery gives the outbox what a sender needs: tries, when to
// try next, a dead-letter mark and the last error; keeps counts of sent
// mail by kind (they outlive erasure, the rows do not); records when an
// address was confirmed; and lets one-time tokens confirm email addresses.
// one_time_tokens is rebuilt because SQLite cannot change a CHECK; nothing
// references it.
func migrateMailDelivery(tx *sql.Tx) error {
	return execAll(tx,
		`ALTER TABLE outbox ADD COLUMN tries INTEGER NOT NULL DEFAULT 0`,
		`ALTER TABLE outbox ADD COLUMN next_at INTEGER NOT NULL DEFAULT 0`,  // not before (ms); 0: now
		`ALTER TABLE outbox ADD COLUMN dead_at INTEGER NOT NULL DEFAULT 0`,  // dead-lettered: no more tries until an admin retries
		`ALTER TABLE outbox ADD COLUMN last_error TEXT NOT NULL DEFAULT ''`, // the SMTP server's answer; no personal data
		`CREATE INDEX outbox_due ON outbox (sent_at, dead_at, next_at)`,
		`CREATE TABLE mail_sent_counts (
		kind  TEXT PRIMARY KEY,
		count INTEGER NOT NULL
	) STRICT`,
		`ALTER TABLE users ADD COLUMN email_verified_at INTEGER NOT NULL DEFAULT 0`,
		`CREATE TABLE one_time_tokens_new (
		token_hash BLOB PRIMARY KEY,
		kind       TEXT NOT NULL CHECK (kind IN ('invite','reset','verify')),
		user_id    TEXT REFERENCES users (id) ON DELETE CASCADE, -- whose password a reset sets, whose address a verify confirms; NULL for invites
		created_by TEXT NOT NULL DEFAULT '',
		created_at INTEGER NOT NULL,
		expires_at INTEGER NOT NULL,
		used_at    INTEGER NOT NULL DEFAULT 0,
		email      BLOB -- verify: the address it confirms, sealed for user_id, aad one_time_tokens/<hex hash>/email
	) STRICT`,
		`INSERT INTO one_time_tokens_new (token_hash, kind, user_id, created_by, created_at, expires_at, used_at)
		SELECT token_hash, kind, user_id, created_by, created_at, expires_at, used_at FROM one_time_tokens`,
		`DROP TABLE one_time_tokens`,
		`ALTER TABLE one_time_tokens_new RENAME TO one_time_tokens`,
	)
}

// Mail is one message in the outbox. Payload is sealed with the
// recipient's key (aad outbox/<id>/payload): it holds their address and
// what the message says, which are personal data.
type Mail struct {
	ID            string
	UserID        string
	Kind          string // e.g. "password_reset", "policy_change"
	SealedPayload []byte
	CreatedAt     time.Time
	SentAt        time.Time
	Tries         int
	NextAt        time.Time
	DeadAt        time.Time
	LastError     string
}

// MailState is a message's delivery state.
func (m *Mail) State() string {
	switch {
	case !m.SentAt.IsZero():
		return "sent"
	case !m.DeadAt.IsZero():
		return "dead"
	case m.Tries > 0:
		return "retrying"
	}
	return "pending"
}

// EnqueueMail stores m for the sender. Flows whose event and mail must
// not part (a reset token and its link) pass the mail to the store method
// of the event instead, which writes both in one transaction.
func (db *DB) EnqueueMail(ctx context.Context, m *Mail) error {
	err := db.tx(ctx, func(tx *sql.Tx) error { return enqueueMail(ctx, tx, db.Now(), m) })
	if err != nil {
		return fmt.Errorf("sqlite: enqueue mail: %w", err)
	}
	return nil
}

func enqueueMail(ctx context.Context, tx *sql.Tx, now time.Time, m *Mail) error {
	m.CreatedAt = now.Truncate(time.Millisecond)
	_, err := tx.ExecContext(ctx, `INSERT INTO outbox (id, user_id, kind, payload, created_at) VALUES (?,?,?,?,?)`,
		m.ID, m.UserID, m.Kind, m.SealedPayload, m.CreatedAt.UnixMilli())
	return err
}

const mailColumns = `id, user_id, kind, payload, created_at, sent_at, tries, next_at, dead_at, last_error`

func scanMail(rows *sql.Rows) (*Mail, error) {
	var m Mail
	var created, sent, next, dead int64
	if err := rows.Scan(&m.ID, &m.UserID, &m.Kind, &m.SealedPayload, &created, &sent, &m.Tries, &next, &dead, &m.LastError); err != nil {
		return nil, err
	}
	m.CreatedAt, m.SentAt, m.NextAt, m.DeadAt = fromMillis(created), optMillis(sent), optMillis(next), optMillis(dead)
	return &m, nil
}

func optMillis(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return fromMillis(ms)
}

func (db *DB) mailWhere(ctx context.Context, what, where string, args ...any) ([]*Mail, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT `+mailColumns+` FROM outbox WHERE `+where, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: %s: %w", what, err)
	}
	defer rows.Close()
	var out []*Mail
	for rows.Next() {
		m, err := scanMail(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: %s: %w", what, err)
		}
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: %s: %w", what, err)
	}
	return out, nil
}

// PendingMail returns up to limit unsent, not dead-lettered messages,
// oldest first, whether due or waiting for a retry.
func (db *DB) PendingMail(ctx context.Context, limit int) ([]*Mail, error) {
	return db.mailWhere(ctx, "pending mail", `sent_at = 0 AND dead_at = 0 ORDER BY created_at, id LIMIT ?`, limit)
}

// DueMail returns up to limit messages to try now, oldest first.
func (db *DB) DueMail(ctx context.Context, limit int) ([]*Mail, error) {
	return db.mailWhere(ctx, "due mail", `sent_at = 0 AND dead_at = 0 AND next_at <= ? ORDER BY created_at, id LIMIT ?`,
		db.Now().UnixMilli(), limit)
}

// DeadMail returns up to limit dead-lettered messages, newest first.
func (db *DB) DeadMail(ctx context.Context, limit int) ([]*Mail, error) {
	return db.mailWhere(ctx, "dead mail", `sent_at = 0 AND dead_at > 0 ORDER BY dead_at DESC, id LIMIT ?`, limit)
}

// MarkMailSent records that message id went out: the sealed payload is
// dropped (the address and text are no longer needed) and the kind's count
// goes up. The row stays, kind and date only, for the person's export.
func (db *DB) MarkMailSent(ctx context.Context, id string) error {
	err := db.tx(ctx, func(tx *sql.Tx) error {
		var kind string
		err := tx.QueryRowContext(ctx, `UPDATE outbox SET sent_at = ?, payload = X'', last_error = '' WHERE id = ? AND sent_at = 0 RETURNING kind`,
			db.Now().UnixMilli(), id).Scan(&kind)
		if errors.Is(err, sql.ErrNoRows) {
			return nil // sent already, or erased meanwhile
		} else if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO mail_sent_counts (kind, count) VALUES (?, 1) ON CONFLICT (kind) DO UPDATE SET count = count + 1`, kind)
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: mark mail sent: %w", err)
	}
	return nil
}

// MarkMailFailed records a failed try: the next one waits until next, or
// the message is dead-lettered when dead is set.
func (db *DB) MarkMailFailed(ctx context.Context, id, reason string, next time.Time, dead bool) error {
	deadAt := int64(0)
	if dead {
		deadAt = db.Now().UnixMilli()
	}
	_, err := db.w.ExecContext(ctx, `UPDATE outbox SET tries = tries + 1, next_at = ?, dead_at = ?, last_error = ? WHERE id = ? AND sent_at = 0`,
		next.UnixMilli(), deadAt, reason, id)
	if err != nil {
		return fmt.Errorf("sqlite: mark mail failed: %w", err)
	}
	return nil
}

// RetryMail brings a dead-lettered message back for a fresh round of
// tries. It returns ENOTFOUND when id is not dead-lettered.
func (db *DB) RetryMail(ctx context.Context, id string, audit app.AuditEntry) error {
	err := db.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE outbox SET tries = 0, next_at = 0, dead_at = 0 WHERE id = ? AND dead_at > 0 AND sent_at = 0`, id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return app.Errorf(app.ENOTFOUND, "There is no undelivered message %s: it was sent, retried already, or removed with its account.", id)
		}
		return appendAudit(ctx, tx, db.Now(), audit)
	})
	var ae *app.Error
	if err != nil && !errors.As(err, &ae) {
		return fmt.Errorf("sqlite: retry mail: %w", err)
	}
	return err
}

// MailSummary counts the outbox by state and the mail sent by kind.
type MailSummary struct {
	Pending, Retrying, Dead int
	SentByKind              map[string]int
}

// MailSummary returns the outbox's counts.
func (db *DB) MailSummary(ctx context.Context) (MailSummary, error) {
	s := MailSummary{SentByKind: map[string]int{}}
	err := db.r.QueryRowContext(ctx, `SELECT
		COALESCE(SUM(sent_at = 0 AND dead_at = 0 AND tries = 0), 0),
		COALESCE(SUM(sent_at = 0 AND dead_at = 0 AND tries > 0), 0),
		COALESCE(SUM(sent_at = 0 AND dead_at > 0), 0) FROM outbox`).Scan(&s.Pending, &s.Retrying, &s.Dead)
	if err != nil {
		return s, fmt.Errorf("sqlite: mail summary: %w", err)
	}
	rows, err := db.r.QueryContext(ctx, `SELECT kind, count FROM mail_sent_counts ORDER BY kind`)
	if err != nil {
		return s, fmt.Errorf("sqlite: mail summary: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var k string
		var n int
		if err := rows.Scan(&k, &n); err != nil {
			return s, fmt.Errorf("sqlite: mail summary: %w", err)
		}
		s.SentByKind[k] = n
	}
	return s, rows.Err()
}
