package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"zimage/app"
)

// One-time tokens: invite links (sign-up when it is not open) and password
// reset links (issued by an admin until mail exists). Only their hashes are
// stored; each works once and until it expires.
const (
	TokenInvite = "invite"
	TokenReset  = "reset"
	TokenVerify = "verify"
)

// CreateOneTimeToken stores a token's hash. userID is whose password a
// reset token sets ("" for invites); createdBy is the admin's id.
func (db *DB) CreateOneTimeToken(ctx context.Context, kind string, hash []byte, userID, createdBy string, ttl time.Duration, audit ...app.AuditEntry) (expires time.Time, err error) {
	return db.CreateMailedToken(ctx, OneTimeToken{Kind: kind, Hash: hash, UserID: userID, CreatedBy: createdBy, TTL: ttl}, nil, audit...)
}

// OneTimeToken is a token to store (only its hash).
type OneTimeToken struct {
	Kind      string
	Hash      []byte
	UserID    string // whose password a reset sets, whose address a verify confirms; "" for invites
	CreatedBy string
	TTL       time.Duration
	// SealedEmail is the address a verify token confirms, sealed for
	// UserID with VerifyEmailAAD.
	SealedEmail []byte
}

// VerifyEmailAAD binds the sealed address of a verify token to its hash.
func VerifyEmailAAD(hash []byte) []byte { return []byte(fmt.Sprintf("one_time_tokens/%x/email", hash)) }

// CreateMailedToken stores a token and, when m is set, the message that
// carries it, in one transaction: there is never a token whose mail was
// lost, nor a mail whose token was not stored.
func (db *DB) CreateMailedToken(ctx context.Context, t OneTimeToken, m *Mail, audit ...app.AuditEntry) (expires time.Time, err error) {
	now := db.Now().Truncate(time.Millisecond)
	expires = now.Add(t.TTL)
	err = db.tx(ctx, func(tx *sql.Tx) error {
		if err := insertToken(ctx, tx, now, t); err != nil {
			return err
		}
		if m != nil {
			if err := enqueueMail(ctx, tx, now, m); err != nil {
				return err
			}
		}
		for _, e := range audit {
			if err := appendAudit(ctx, tx, now, e); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return time.Time{}, fmt.Errorf("sqlite: create %s token: %w", t.Kind, err)
	}
	return expires, nil
}

func insertToken(ctx context.Context, tx *sql.Tx, now time.Time, t OneTimeToken) error {
	var uid any
	if t.UserID != "" {
		uid = t.UserID
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO one_time_tokens (token_hash, kind, user_id, created_by, created_at, expires_at, email)
		VALUES (?,?,?,?,?,?,?)`, t.Hash, t.Kind, uid, t.CreatedBy, now.UnixMilli(), now.Add(t.TTL).UnixMilli(), t.SealedEmail)
	return err
}

// ResetTokenUser returns the id of the user a valid (unused, unexpired)
// reset token belongs to, or an EINVALID error.
func (db *DB) ResetTokenUser(ctx context.Context, hash []byte) (string, error) {
	var uid sql.NullString
	err := db.r.QueryRowContext(ctx, `SELECT user_id FROM one_time_tokens WHERE token_hash = ? AND kind = 'reset' AND used_at = 0 AND expires_at > ?`,
		hash, db.Now().UnixMilli()).Scan(&uid)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && !uid.Valid) {
		return "", errBadToken(TokenReset)
	} else if err != nil {
		return "", fmt.Errorf("sqlite: reset token: %w", err)
	}
	return uid.String, nil
}

func errBadToken(kind string) error {
	if kind == TokenInvite {
		return &app.Error{Code: app.EINVALID, Message: "This invite is invalid, expired or already used. Ask an administrator for a new invite link.",
			Fields: map[string]string{"invite": "invalid, expired or already used"}}
	}
	if kind == TokenVerify {
		return &app.Error{Code: app.EINVALID, Message: "This confirmation link is invalid, expired or already used. Sign in and ask for a new one in your settings.",
			Fields: map[string]string{"token": "invalid, expired or already used"}}
	}
	return &app.Error{Code: app.EINVALID, Message: "This reset link is invalid, expired or already used. Ask an administrator for a new one.",
		Fields: map[string]string{"token": "invalid, expired or already used"}}
}

// useToken marks a token used, failing with EINVALID if it is unknown,
// expired, used, of another kind, or (for resets) for another user.
func useToken(ctx context.Context, tx *sql.Tx, hash []byte, kind string, now time.Time, userID string) error {
	q := `UPDATE one_time_tokens SET used_at = ? WHERE token_hash = ? AND kind = ? AND used_at = 0 AND expires_at > ?`
	args := []any{now.UnixMilli(), hash, kind, now.UnixMilli()}
	if kind == TokenReset || kind == TokenVerify {
		q += ` AND user_id = ?`
		args = append(args, userID)
	}
	res, err := tx.ExecContext(ctx, q, args...)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return errBadToken(kind)
	}
	return nil
}
