package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// migrateConsents creates the consent ledger. It is append-only (the
// triggers make that deliberate) and has no foreign key to users: it
// outlives a purged account, holding only the random id, as proof that
// processing at the time was lawful.
func migrateConsents(tx *sql.Tx) error {
	return execAll(tx,
		`CREATE TABLE consents (
		id             INTEGER PRIMARY KEY, -- ledger order: the highest id per purpose is the current state
		user_id        TEXT NOT NULL,
		purpose        TEXT NOT NULL CHECK (purpose IN ('training','marketing','analytics')),
		granted        INTEGER NOT NULL CHECK (granted IN (0, 1)),
		at             INTEGER NOT NULL,
		policy_version INTEGER NOT NULL DEFAULT 0, -- the privacy policy in force; 0 before the first
		method         TEXT NOT NULL -- how it was given or withdrawn: api, form, gpc, …
	) STRICT`,
		`CREATE INDEX consents_user ON consents (user_id, purpose, id DESC)`,
		`CREATE TRIGGER consents_no_update BEFORE UPDATE ON consents
		BEGIN SELECT RAISE(ABORT, 'consents is append-only'); END`,
		`CREATE TRIGGER consents_no_delete BEFORE DELETE ON consents
		BEGIN SELECT RAISE(ABORT, 'consents is append-only'); END`,
	)
}

// ConsentRecord is one entry of the ledger.
type ConsentRecord struct {
	ID            int64
	UserID        string
	Purpose       string
	Granted       bool
	At            time.Time
	PolicyVersion int
	Method        string
}

// AppendConsent adds r to the ledger, stamping At and the latest policy
// version. The account must exist and not be deleted (ENOTFOUND).
func (db *DB) AppendConsent(ctx context.Context, r *ConsentRecord) error {
	r.At = db.Now().Truncate(time.Millisecond)
	return db.tx(ctx, func(tx *sql.Tx) error {
		var deletedAt int64
		err := tx.QueryRowContext(ctx, `SELECT deleted_at FROM users WHERE id = ?`, r.UserID).Scan(&deletedAt)
		if err == sql.ErrNoRows || (err == nil && deletedAt != 0) {
			return errUserNotFound()
		} else if err != nil {
			return fmt.Errorf("sqlite: append consent: %w", err)
		}
		if err := tx.QueryRowContext(ctx, `SELECT COALESCE(max(version), 0) FROM policy_versions`).Scan(&r.PolicyVersion); err != nil {
			return fmt.Errorf("sqlite: append consent: %w", err)
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO consents (user_id, purpose, granted, at, policy_version, method) VALUES (?,?,?,?,?,?)`,
			r.UserID, r.Purpose, r.Granted, r.At.UnixMilli(), r.PolicyVersion, r.Method)
		if err != nil {
			return fmt.Errorf("sqlite: append consent: %w", err)
		}
		r.ID, _ = res.LastInsertId()
		return nil
	})
}

// Consents returns userID's ledger, newest first.
func (db *DB) Consents(ctx context.Context, userID string) ([]ConsentRecord, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT id, user_id, purpose, granted, at, policy_version, method
		FROM consents WHERE user_id = ? ORDER BY id DESC`, userID)
	if err != nil {
		return nil, fmt.Errorf("sqlite: consents: %w", err)
	}
	defer rows.Close()
	var out []ConsentRecord
	for rows.Next() {
		var r ConsentRecord
		var at int64
		if err := rows.Scan(&r.ID, &r.UserID, &r.Purpose, &r.Granted, &at, &r.PolicyVersion, &r.Method); err != nil {
			return nil, fmt.Errorf("sqlite: consents: %w", err)
		}
		r.At = fromMillis(at)
		out = append(out, r)
	}
	return out, rows.Err()
}

// UsersGranting returns the live (not deleted, not restricted) accounts
// whose latest ledger entry for purpose grants it, in id order. Accounts
// with no entry are left out: that is how opt-in purposes default to off.
func (db *DB) UsersGranting(ctx context.Context, purpose string) ([]string, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT u.id FROM users u
		JOIN consents c ON c.id = (SELECT max(id) FROM consents WHERE user_id = u.id AND purpose = ?)
		WHERE u.deleted_at = 0 AND u.restricted_at = 0 AND c.granted = 1 ORDER BY u.id`, purpose)
	if err != nil {
		return nil, fmt.Errorf("sqlite: users granting %s: %w", purpose, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("sqlite: users granting %s: %w", purpose, err)
		}
		out = append(out, id)
	}
	return out, rows.Err()
}
