package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"zimage/app"
)

// VerifyToken returns whose address a valid (unused, unexpired) verify
// token confirms, and the new address it carries (sealed; nil when it
// confirms the address the account already has).
func (db *DB) VerifyToken(ctx context.Context, hash []byte) (userID string, sealedEmail []byte, err error) {
	var uid sql.NullString
	err = db.r.QueryRowContext(ctx, `SELECT user_id, email FROM one_time_tokens WHERE token_hash = ? AND kind = 'verify' AND used_at = 0 AND expires_at > ?`,
		hash, db.Now().UnixMilli()).Scan(&uid, &sealedEmail)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && !uid.Valid) {
		return "", nil, errBadToken(TokenVerify)
	} else if err != nil {
		return "", nil, fmt.Errorf("sqlite: verify token: %w", err)
	}
	return uid.String, sealedEmail, nil
}

// EmailConfirmation is the effect of a verify token.
type EmailConfirmation struct {
	Hash   []byte
	UserID string
	// NewIndex and NewSealedEmail replace the account's address when the
	// token confirms a change; nil when it confirms the current one.
	NewIndex       []byte
	NewSealedEmail []byte
	// Notice, if set, tells the old address of the change.
	Notice *Mail
	Audit  app.AuditEntry
}

// ConfirmEmail uses a verify token and marks the address confirmed, moving
// the account to the new address first when the token carries one; all in
// one transaction with the notice to the old address.
func (db *DB) ConfirmEmail(ctx context.Context, c EmailConfirmation) error {
	now := db.Now()
	err := db.tx(ctx, func(tx *sql.Tx) error {
		if err := useToken(ctx, tx, c.Hash, TokenVerify, now, c.UserID); err != nil {
			return err
		}
		q, args := `UPDATE users SET email_verified_at = ? WHERE id = ? AND deleted_at = 0`, []any{now.UnixMilli(), c.UserID}
		if c.NewIndex != nil {
			q, args = `UPDATE users SET email_verified_at = ?, email_index = ?, email = ? WHERE id = ? AND deleted_at = 0`,
				[]any{now.UnixMilli(), c.NewIndex, c.NewSealedEmail, c.UserID}
		}
		res, err := tx.ExecContext(ctx, q, args...)
		if isUnique(err, "users.email_index") {
			return app.Errorf(app.ECONFLICT, "Another account uses this address now, so it cannot become yours. Choose another address in your settings.")
		} else if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return errUserNotFound()
		}
		if c.Notice != nil {
			if err := enqueueMail(ctx, tx, now, c.Notice); err != nil {
				return err
			}
		}
		return appendAudit(ctx, tx, now, c.Audit)
	})
	var ae *app.Error
	if err != nil && !errors.As(err, &ae) {
		return fmt.Errorf("sqlite: confirm email: %w", err)
	}
	return err
}

// EmailVerified says whether the account's current address is confirmed.
func (db *DB) EmailVerified(ctx context.Context, userID string) (bool, error) {
	var at int64
	err := db.r.QueryRowContext(ctx, `SELECT email_verified_at FROM users WHERE id = ?`, userID).Scan(&at)
	if errors.Is(err, sql.ErrNoRows) {
		return false, errUserNotFound()
	} else if err != nil {
		return false, fmt.Errorf("sqlite: email verified: %w", err)
	}
	return at > 0, nil
}
