package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"zimage/app"
)

const sessionColumns = `id, user_id, created_at, last_seen_at, expires_at, device, place, device_sealed, place_sealed`

func scanSession(s rowScanner) (*SessionRow, error) {
	var x SessionRow
	var created, seen, expires int64
	if err := s.Scan(&x.ID, &x.UserID, &created, &seen, &expires, &x.Device, &x.Place, &x.SealedDevice, &x.SealedPlace); err != nil {
		return nil, err
	}
	x.CreatedAt, x.LastSeenAt, x.ExpiresAt = fromMillis(created), fromMillis(seen), fromMillis(expires)
	return &x, nil
}

func errSessionNotFound() error {
	return app.Errorf(app.ENOTFOUND, "There is no such session; it may have ended already.")
}

// NewSession is a sign-in to record: the session (CreatedAt and LastSeenAt
// are stamped here; its Device and Place are not stored, only their sealed
// copies), its token's hash, the session it replaces (by token
// hash, so a fixated or stale token dies at login) and the audit entries.
type NewSession struct {
	Session      *app.Session
	SealedDevice []byte // sealed for the user, aad SessionDeviceAAD
	SealedPlace  []byte // sealed for the user, aad SessionPlaceAAD
	TokenHash    []byte
	ReplaceHash  []byte
	TOTPLastStep *int64 // accepted TOTP step, stored compare-and-set
	UseRecovery  []byte // recovery code hash to use up
	PasswordHash string // a rehash with current parameters, or ""
	Audit        []app.AuditEntry
}

// CreateSession records a sign-in, together with the TOTP step or recovery
// code it used, in one transaction: a code that lost a race fails the whole
// sign-in.
func (db *DB) CreateSession(ctx context.Context, n NewSession) error {
	now := db.Now().Truncate(time.Millisecond)
	s := n.Session
	s.CreatedAt, s.LastSeenAt = now, now
	err := db.tx(ctx, func(tx *sql.Tx) error {
		c := UserChange{TOTPLastStep: n.TOTPLastStep, UseRecoveryHash: n.UseRecovery, Audit: n.Audit}
		if n.PasswordHash != "" {
			// Keep password_changed_at: a rehash is not a change.
			if _, err := tx.ExecContext(ctx, `UPDATE users SET password_hash = ? WHERE id = ?`, n.PasswordHash, s.UserID); err != nil {
				return err
			}
		}
		if err := updateUser(ctx, tx, now, s.UserID, c); err != nil {
			return err
		}
		if n.ReplaceHash != nil {
			if _, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE token_hash = ?`, n.ReplaceHash); err != nil {
				return err
			}
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO sessions (id, user_id, token_hash, created_at, last_seen_at, expires_at, device_sealed, place_sealed)
			VALUES (?,?,?,?,?,?,?,?)`, s.ID, s.UserID, n.TokenHash, now.UnixMilli(), now.UnixMilli(), millis(s.ExpiresAt), n.SealedDevice, n.SealedPlace)
		return err
	})
	if err != nil {
		var ae *app.Error
		if errors.As(err, &ae) {
			return err
		}
		return fmt.Errorf("sqlite: create session: %w", err)
	}
	return nil
}

// SessionByTokenHash returns the session with the token hash and its user,
// or ENOTFOUND. Expiry is the caller's to judge.
func (db *DB) SessionByTokenHash(ctx context.Context, hash []byte) (*app.Session, *UserRecord, error) {
	s, err := scanSession(db.r.QueryRowContext(ctx, `SELECT `+sessionColumns+` FROM sessions WHERE token_hash = ?`, hash))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil, errSessionNotFound()
	} else if err != nil {
		return nil, nil, fmt.Errorf("sqlite: find session: %w", err)
	}
	u, err := db.UserByID(ctx, s.UserID)
	if err != nil {
		return nil, nil, err
	}
	return &s.Session, u, nil
}

// TouchSession sets the session's last_seen_at to now.
func (db *DB) TouchSession(ctx context.Context, id string) error {
	if _, err := db.w.ExecContext(ctx, `UPDATE sessions SET last_seen_at = ? WHERE id = ?`, db.Now().UnixMilli(), id); err != nil {
		return fmt.Errorf("sqlite: touch session: %w", err)
	}
	return nil
}

// ListSessions returns the user's sessions, most recently seen first,
// device and place still sealed.
func (db *DB) ListSessions(ctx context.Context, userID string) ([]*SessionRow, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT `+sessionColumns+` FROM sessions WHERE user_id = ? ORDER BY last_seen_at DESC, id`, userID)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list sessions: %w", err)
	}
	defer rows.Close()
	var out []*SessionRow
	for rows.Next() {
		s, err := scanSession(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: list sessions: %w", err)
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// DeleteSession ends the user's session id. Another user's session is
// ENOTFOUND, as is an unknown one.
func (db *DB) DeleteSession(ctx context.Context, userID, id string, audit ...app.AuditEntry) error {
	now := db.Now().Truncate(time.Millisecond)
	err := db.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE id = ? AND user_id = ?`, id, userID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return errSessionNotFound()
		}
		for _, e := range audit {
			if err := appendAudit(ctx, tx, now, e); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		var ae *app.Error
		if errors.As(err, &ae) {
			return err
		}
		return fmt.Errorf("sqlite: delete session: %w", err)
	}
	return nil
}

// DeleteExpiredSessions removes sessions whose absolute end is before now
// or that were last seen before idleBefore, and returns how many.
func (db *DB) DeleteExpiredSessions(ctx context.Context, idleBefore time.Time) (int64, error) {
	res, err := db.w.ExecContext(ctx, `DELETE FROM sessions WHERE expires_at <= ? OR last_seen_at < ?`,
		db.Now().UnixMilli(), idleBefore.UnixMilli())
	if err != nil {
		return 0, fmt.Errorf("sqlite: delete expired sessions: %w", err)
	}
	return res.RowsAffected()
}
