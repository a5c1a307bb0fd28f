package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"zimage/app"
)

// migrateAccounts creates every table of accounts and their security:
// users, sessions, API keys, recovery codes, one-time tokens (invites and
// reset links), admin access grants, the mail outbox and the audit log.
func migrateAccounts(tx *sql.Tx) error {
	return execAll(tx,
		`CREATE TABLE users (
		id                  TEXT PRIMARY KEY, -- ULID
		username            TEXT NOT NULL UNIQUE, -- normalized (case-folded, NFKC): the public handle
		email_index         BLOB NOT NULL UNIQUE, -- vault blind index of the normalized email
		email               BLOB NOT NULL, -- sealed, aad users/<id>/email
		display_name        BLOB, -- sealed, aad users/<id>/display_name; NULL when unset
		password_hash       TEXT NOT NULL, -- argon2id PHC string
		role                TEXT NOT NULL CHECK (role IN ('user','support','admin')),
		totp_secret         BLOB, -- sealed, aad users/<id>/totp; set at enrolment, NULL when off
		totp_enabled        INTEGER NOT NULL DEFAULT 0,
		totp_last_step      INTEGER NOT NULL DEFAULT 0, -- last accepted TOTP step: no code twice
		age_confirmed_at    INTEGER NOT NULL, -- when the minimum age was affirmed; no birth date is kept
		password_changed_at INTEGER NOT NULL,
		created_at          INTEGER NOT NULL,
		disabled_at         INTEGER NOT NULL DEFAULT 0,
		deleted_at          INTEGER NOT NULL DEFAULT 0
	) STRICT`,
		`CREATE TABLE recovery_codes (
		user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
		hash    BLOB NOT NULL,
		PRIMARY KEY (user_id, hash)
	) STRICT, WITHOUT ROWID`,
		`CREATE TABLE sessions (
		id           TEXT PRIMARY KEY,
		user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
		token_hash   BLOB NOT NULL UNIQUE, -- SHA-256 of the cookie's token
		created_at   INTEGER NOT NULL,
		last_seen_at INTEGER NOT NULL,
		expires_at   INTEGER NOT NULL, -- absolute end
		device       TEXT NOT NULL DEFAULT '',
		place        TEXT NOT NULL DEFAULT '' -- truncated address (IPv4 /24, IPv6 /48)
	) STRICT`,
		`CREATE INDEX sessions_user ON sessions (user_id, last_seen_at DESC)`,
		`CREATE INDEX sessions_expires ON sessions (expires_at)`,
		`CREATE TABLE api_keys (
		id           TEXT PRIMARY KEY,
		user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
		name         TEXT NOT NULL,
		prefix       TEXT NOT NULL, -- visible start of the key
		token_hash   BLOB NOT NULL UNIQUE,
		scopes       TEXT NOT NULL, -- comma list of generate, read, admin
		created_at   INTEGER NOT NULL,
		last_used_at INTEGER NOT NULL DEFAULT 0,
		revoked_at   INTEGER NOT NULL DEFAULT 0
	) STRICT`,
		`CREATE INDEX api_keys_user ON api_keys (user_id, created_at DESC)`,
		`CREATE TABLE one_time_tokens (
		token_hash BLOB PRIMARY KEY,
		kind       TEXT NOT NULL CHECK (kind IN ('invite','reset')),
		user_id    TEXT REFERENCES users (id) ON DELETE CASCADE, -- whose password a reset sets; NULL for invites
		created_by TEXT NOT NULL DEFAULT '',
		created_at INTEGER NOT NULL,
		expires_at INTEGER NOT NULL,
		used_at    INTEGER NOT NULL DEFAULT 0
	) STRICT`,
		`CREATE TABLE access_grants (
		id         TEXT PRIMARY KEY,
		user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE, -- whose content
		admin_id   TEXT NOT NULL,
		reason     BLOB NOT NULL, -- sealed for user_id, aad access_grants/<id>/reason
		created_at INTEGER NOT NULL,
		expires_at INTEGER NOT NULL
	) STRICT`,
		`CREATE INDEX access_grants_user ON access_grants (user_id, created_at DESC)`,
		`CREATE TABLE outbox (
		id         TEXT PRIMARY KEY,
		user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
		kind       TEXT NOT NULL,
		payload    BLOB NOT NULL, -- sealed for user_id, aad outbox/<id>/payload
		created_at INTEGER NOT NULL,
		sent_at    INTEGER NOT NULL DEFAULT 0
	) STRICT`,
		`CREATE INDEX outbox_unsent ON outbox (sent_at, created_at)`,
		`CREATE TABLE audit_log (
		seq        INTEGER PRIMARY KEY, -- 1, 2, 3, … without gaps
		at         INTEGER NOT NULL,
		actor_id   TEXT NOT NULL DEFAULT '', -- no foreign keys: entries outlive purged accounts
		subject_id TEXT NOT NULL DEFAULT '',
		action     TEXT NOT NULL,
		detail     TEXT NOT NULL DEFAULT '{}',
		prev_hash  BLOB NOT NULL,
		hash       BLOB NOT NULL
	) STRICT`,
		`CREATE INDEX audit_log_subject ON audit_log (subject_id, seq)`,
		// The chain makes tampering visible; these triggers make it
		// deliberate: the application can never rewrite history by mistake.
		`CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
		BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END`,
		`CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
		BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END`,
	)
}

// UserRecord is a user as stored: email, display name and TOTP secret stay
// sealed here, since sealing is the auth service's business and the store
// only moves bytes.
type UserRecord struct {
	app.User
	EmailIndex        []byte
	SealedEmail       []byte
	SealedDisplayName []byte
	PasswordHash      string
	SealedTOTPSecret  []byte
	TOTPLastStep      int64
	// SealedUsername is a sealed copy of Username. Backups carry only this
	// copy (see SnapshotTo), so a deleted person's handle cannot be read in
	// a backup once their key is destroyed.
	SealedUsername []byte
}

const userColumns = `id, username, email_index, email, display_name, password_hash, role, totp_secret,
	totp_enabled, totp_last_step, age_confirmed_at, password_changed_at, created_at, disabled_at, deleted_at`

func scanUser(s rowScanner) (*UserRecord, error) {
	var r UserRecord
	var ageAt, pwAt, created, disabled, deleted int64
	u := &r.User
	err := s.Scan(&u.ID, &u.Username, &r.EmailIndex, &r.SealedEmail, &r.SealedDisplayName, &r.PasswordHash, &u.Role,
		&r.SealedTOTPSecret, &u.TOTPEnabled, &r.TOTPLastStep, &ageAt, &pwAt, &created, &disabled, &deleted)
	if err != nil {
		return nil, err
	}
	u.AgeConfirmedAt, u.PasswordChangedAt, u.CreatedAt = fromMillis(ageAt), fromMillis(pwAt), fromMillis(created)
	u.DisabledAt, u.DeletedAt = fromMillis(disabled), fromMillis(deleted)
	return &r, nil
}

func millis(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// errUserNotFound never says whether the id exists elsewhere or is
// someone else's.
func errUserNotFound() error {
	return app.Errorf(app.ENOTFOUND, "There is no such user.")
}

// isUnique reports a UNIQUE constraint failure on column (e.g.
// "users.username").
func isUnique(err error, column string) bool {
	return err != nil && strings.Contains(err.Error(), "UNIQUE constraint failed") && strings.Contains(err.Error(), column)
}

// NewUser is what CreateUser needs besides the record: the one-time token
// (an invite) to consume, and whether the first account should become admin.
type NewUser struct {
	Record *UserRecord
	// InviteHash, if set, must be an unused, unexpired invite; it is used up
	// in the same transaction.
	InviteHash []byte
	// FirstIsAdmin makes the account an admin when no other account exists.
	FirstIsAdmin bool
	Audit        []app.AuditEntry
	// Verify, when set, is a token confirming the address, stored with its
	// Mail in the same transaction as the account.
	Verify *OneTimeToken
	Mail   *Mail
}

// CreateUser inserts a user. Username and email are unique: a clash is an
// ECONFLICT error naming the field. Role is set to admin when n.FirstIsAdmin
// and the table is empty (checked in the same transaction, so two first
// sign-ups cannot both become admin). Audit entries are appended in the same
// transaction, with the new user as subject when theirs is empty.
func (db *DB) CreateUser(ctx context.Context, n NewUser) error {
	r := n.Record
	now := db.Now().Truncate(time.Millisecond)
	r.CreatedAt, r.PasswordChangedAt = now, now
	if r.AgeConfirmedAt.IsZero() {
		r.AgeConfirmedAt = now
	}
	err := db.tx(ctx, func(tx *sql.Tx) error {
		if n.FirstIsAdmin {
			var count int
			if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM users`).Scan(&count); err != nil {
				return err
			}
			if count == 0 {
				r.Role = app.RoleAdmin
			}
		}
		if n.InviteHash != nil {
			if err := useToken(ctx, tx, n.InviteHash, "invite", now, ""); err != nil {
				return err
			}
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO users (`+userColumns+`) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`,
			r.ID, r.Username, r.EmailIndex, r.SealedEmail, r.SealedDisplayName, r.PasswordHash, r.Role,
			r.SealedTOTPSecret, r.TOTPEnabled, r.TOTPLastStep, millis(r.AgeConfirmedAt), millis(r.PasswordChangedAt),
			millis(r.CreatedAt), millis(r.DisabledAt), millis(r.DeletedAt))
		switch {
		case isUnique(err, "users.username"):
			return &app.Error{Code: app.ECONFLICT, Message: "This username is taken. Please choose another.",
				Fields: map[string]string{"username": "This username is taken. Please choose another."}}
		case isUnique(err, "users.email_index"):
			msg := "An account with this email address already exists. Sign in instead, or ask an administrator for a password reset link."
			return &app.Error{Code: app.ECONFLICT, Message: msg, Fields: map[string]string{"email": msg}}
		case err != nil:
			return err
		}
		if r.SealedUsername != nil {
			if _, err := tx.ExecContext(ctx, `UPDATE users SET username_sealed = ? WHERE id = ?`, r.SealedUsername, r.ID); err != nil {
				return err
			}
		}
		if n.Verify != nil {
			if err := insertToken(ctx, tx, now, *n.Verify); err != nil {
				return err
			}
		}
		if n.Mail != nil {
			if err := enqueueMail(ctx, tx, now, n.Mail); err != nil {
				return err
			}
		}
		for _, e := range n.Audit {
			if e.SubjectID == "" {
				e.SubjectID = r.ID
			}
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
		return fmt.Errorf("sqlite: create user: %w", err)
	}
	return nil
}

// UserByID returns the user with id, or ENOTFOUND.
func (db *DB) UserByID(ctx context.Context, id string) (*UserRecord, error) {
	return db.userWhere(ctx, "id = ?", id)
}

// UserByUsername returns the user with the normalized username, or ENOTFOUND.
func (db *DB) UserByUsername(ctx context.Context, username string) (*UserRecord, error) {
	return db.userWhere(ctx, "username = ?", username)
}

// UserByEmailIndex returns the user whose email has the blind index, or
// ENOTFOUND.
func (db *DB) UserByEmailIndex(ctx context.Context, index []byte) (*UserRecord, error) {
	return db.userWhere(ctx, "email_index = ?", index)
}

func (db *DB) userWhere(ctx context.Context, where string, arg any) (*UserRecord, error) {
	r, err := scanUser(db.r.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE `+where, arg))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errUserNotFound()
	} else if err != nil {
		return nil, fmt.Errorf("sqlite: find user: %w", err)
	}
	return r, nil
}

// ListUsers returns up to limit users after the id afterID (keyset paging;
// "" for the first page), oldest first.
func (db *DB) ListUsers(ctx context.Context, afterID string, limit int) ([]*UserRecord, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT `+userColumns+` FROM users WHERE id > ? ORDER BY id LIMIT ?`, afterID, limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list users: %w", err)
	}
	defer rows.Close()
	var out []*UserRecord
	for rows.Next() {
		r, err := scanUser(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: list users: %w", err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// CountUsers returns how many accounts exist.
func (db *DB) CountUsers(ctx context.Context) (int, error) {
	var n int
	if err := db.r.QueryRowContext(ctx, `SELECT count(*) FROM users`).Scan(&n); err != nil {
		return 0, fmt.Errorf("sqlite: count users: %w", err)
	}
	return n, nil
}

// UserChange is one update of a user row, applied with its audit entries
// in one transaction. Nil fields are left alone.
type UserChange struct {
	PasswordHash      *string
	SealedDisplayName *[]byte
	Role              *string
	// Disabled sets disabled_at to now (true) or clears it (false).
	Disabled *bool
	// SealedTOTPSecret stores a pending (not yet enabled) secret; an empty
	// slice clears it.
	SealedTOTPSecret *[]byte
	TOTPEnabled      *bool
	TOTPLastStep     *int64
	// RecoveryHashes replaces the user's recovery codes (nil leaves them,
	// an empty slice removes them all).
	RecoveryHashes [][]byte
	SetRecovery    bool
	// UseRecoveryHash deletes this one code; the change fails with
	// EUNAUTHORIZED if it was already gone (used by a concurrent login).
	UseRecoveryHash []byte
	// RevokeSessions deletes the user's sessions except KeepSessionID.
	RevokeSessions bool
	KeepSessionID  string
	// RevokeAPIKeys revokes every API key of the user still in use.
	RevokeAPIKeys bool
	// Revoked, when set, receives how many sessions and keys the change
	// ended, so the person can be told.
	Revoked *Revoked
	// UseResetHash consumes a reset token for this user in the same
	// transaction.
	UseResetHash []byte
	Audit        []app.AuditEntry
	// Mail, when set, is a notice of the change, queued in its
	// transaction.
	Mail *Mail
}

// Revoked counts what a UserChange ended.
type Revoked struct {
	Sessions int `json:"sessions"`
	APIKeys  int `json:"api_keys"`
}

// UpdateUser applies c to user id. It returns ENOTFOUND for an unknown id.
func (db *DB) UpdateUser(ctx context.Context, id string, c UserChange) error {
	now := db.Now().Truncate(time.Millisecond)
	err := db.tx(ctx, func(tx *sql.Tx) error {
		return updateUser(ctx, tx, now, id, c)
	})
	if err != nil {
		var ae *app.Error
		if errors.As(err, &ae) {
			return err
		}
		return fmt.Errorf("sqlite: update user: %w", err)
	}
	return nil
}

func updateUser(ctx context.Context, tx *sql.Tx, now time.Time, id string, c UserChange) error {
	var sets []string
	var args []any
	set := func(col string, v any) { sets = append(sets, col+" = ?"); args = append(args, v) }
	if c.PasswordHash != nil {
		set("password_hash", *c.PasswordHash)
		set("password_changed_at", now.UnixMilli())
	}
	if c.SealedDisplayName != nil {
		if len(*c.SealedDisplayName) == 0 {
			set("display_name", nil)
		} else {
			set("display_name", *c.SealedDisplayName)
		}
	}
	if c.Role != nil {
		set("role", *c.Role)
	}
	if c.Disabled != nil {
		if *c.Disabled {
			set("disabled_at", now.UnixMilli())
		} else {
			set("disabled_at", 0)
		}
	}
	if c.SealedTOTPSecret != nil {
		if len(*c.SealedTOTPSecret) == 0 {
			set("totp_secret", nil)
		} else {
			set("totp_secret", *c.SealedTOTPSecret)
		}
	}
	if c.TOTPEnabled != nil {
		set("totp_enabled", *c.TOTPEnabled)
	}
	if c.TOTPLastStep != nil {
		set("totp_last_step", *c.TOTPLastStep)
	}
	if c.UseResetHash != nil {
		if err := useToken(ctx, tx, c.UseResetHash, "reset", now, id); err != nil {
			return err
		}
	}
	// Always touch the row, so an unknown id is noticed even when only
	// side tables change.
	q := `UPDATE users SET id = id`
	if len(sets) > 0 {
		q = `UPDATE users SET ` + strings.Join(sets, ", ")
	}
	where, whereArgs := ` WHERE id = ?`, []any{id}
	if c.TOTPLastStep != nil {
		// Compare and set in one statement: two logins racing with the
		// same code cannot both pass.
		where += ` AND totp_last_step < ?`
		whereArgs = append(whereArgs, *c.TOTPLastStep)
	}
	res, err := tx.ExecContext(ctx, q+where, append(args, whereArgs...)...)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		var one int
		if c.TOTPLastStep != nil && tx.QueryRowContext(ctx, `SELECT 1 FROM users WHERE id = ?`, id).Scan(&one) == nil {
			return app.Errorf(app.EUNAUTHORIZED, "This code was already used. Wait for your authenticator app to show the next code and enter that one.")
		}
		return errUserNotFound()
	}
	if c.UseRecoveryHash != nil {
		res, err := tx.ExecContext(ctx, `DELETE FROM recovery_codes WHERE user_id = ? AND hash = ?`, id, c.UseRecoveryHash)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return app.Errorf(app.EUNAUTHORIZED, "This recovery code was already used. Each code works once; use another one.")
		}
	}
	if c.SetRecovery {
		if _, err := tx.ExecContext(ctx, `DELETE FROM recovery_codes WHERE user_id = ?`, id); err != nil {
			return err
		}
		for _, h := range c.RecoveryHashes {
			if _, err := tx.ExecContext(ctx, `INSERT INTO recovery_codes (user_id, hash) VALUES (?, ?)`, id, h); err != nil {
				return err
			}
		}
	}
	var revoked Revoked
	if c.RevokeSessions {
		res, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE user_id = ? AND id != ?`, id, c.KeepSessionID)
		if err != nil {
			return err
		}
		n, _ := res.RowsAffected()
		revoked.Sessions = int(n)
	}
	if c.RevokeAPIKeys {
		res, err := tx.ExecContext(ctx, `UPDATE api_keys SET revoked_at = ? WHERE user_id = ? AND revoked_at = 0`, now.UnixMilli(), id)
		if err != nil {
			return err
		}
		n, _ := res.RowsAffected()
		revoked.APIKeys = int(n)
	}
	if c.Revoked != nil {
		*c.Revoked = revoked
	}
	if c.Mail != nil {
		if err := enqueueMail(ctx, tx, now, c.Mail); err != nil {
			return err
		}
	}
	for _, e := range c.Audit {
		if err := appendAudit(ctx, tx, now, e); err != nil {
			return err
		}
	}
	return nil
}

// RecoveryHashes returns the hashes of the user's unused recovery codes.
func (db *DB) RecoveryHashes(ctx context.Context, userID string) ([][]byte, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT hash FROM recovery_codes WHERE user_id = ?`, userID)
	if err != nil {
		return nil, fmt.Errorf("sqlite: recovery codes: %w", err)
	}
	defer rows.Close()
	var out [][]byte
	for rows.Next() {
		var h []byte
		if err := rows.Scan(&h); err != nil {
			return nil, fmt.Errorf("sqlite: recovery codes: %w", err)
		}
		out = append(out, h)
	}
	return out, rows.Err()
}

// CountActiveAdmins returns how many admins can still sign in, so the last
// one cannot be demoted or disabled by mistake.
func (db *DB) CountActiveAdmins(ctx context.Context) (int, error) {
	var n int
	err := db.r.QueryRowContext(ctx, `SELECT count(*) FROM users WHERE role = 'admin' AND disabled_at = 0 AND deleted_at = 0`).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("sqlite: count admins: %w", err)
	}
	return n, nil
}
