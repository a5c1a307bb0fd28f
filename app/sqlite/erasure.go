package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"zimage/app"
)

// migrateErasure adds what account erasure needs: the "restrict
// processing" flag on users, legal holds (which pause deletion), and an
// index to find deleted accounts waiting for their purge.
func migrateErasure(tx *sql.Tx) error {
	return execAll(tx,
		`ALTER TABLE users ADD COLUMN restricted_at INTEGER NOT NULL DEFAULT 0`,
		`CREATE INDEX users_deleted ON users (deleted_at) WHERE deleted_at > 0`,
		`CREATE TABLE legal_holds (
		user_id    TEXT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
		admin_id   TEXT NOT NULL,
		reason     BLOB NOT NULL, -- sealed for user_id, aad legal_holds/<user_id>/reason: it may name people
		created_at INTEGER NOT NULL
	) STRICT, WITHOUT ROWID`,
	)
}

// errLegalHold is what a deletion of a held account answers.
func errLegalHold() error {
	return app.Errorf(app.ECONFLICT, "Your account is under a legal hold; deletion will happen when it ends. Nothing was deleted. Contact the administrator of this server if you have questions.")
}

// MarkUserDeleted ends account userID at once, in one transaction: it
// stamps deleted_at, frees the username and email (the blind index is
// replaced, the sealed email and profile are cleared), removes sessions,
// API keys, recovery codes, one-time tokens, unsent mail and export rows,
// and appends audit. ECONFLICT while the account is under a legal hold;
// ENOTFOUND for an unknown or already deleted account.
//
// The username becomes "~deleted-<id>", which no sign-up can choose (a
// username never holds "~"), so the handle is free for someone else at
// once and the live row no longer carries it in plaintext.
func (db *DB) MarkUserDeleted(ctx context.Context, userID string, audit ...app.AuditEntry) error {
	now := db.Now().Truncate(time.Millisecond)
	return db.auditedTx(ctx, "mark user deleted", now, audit, func(tx *sql.Tx) error {
		var held int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM legal_holds WHERE user_id = ?`, userID).Scan(&held); err != nil {
			return err
		}
		if held > 0 {
			return errLegalHold()
		}
		res, err := tx.ExecContext(ctx, `UPDATE users SET deleted_at = ?, username = '~deleted-' || id,
			email_index = CAST('deleted:' || id AS BLOB), email = X'', display_name = NULL, totp_secret = NULL,
			totp_enabled = 0, password_hash = '!' WHERE id = ? AND deleted_at = 0`, now.UnixMilli(), userID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return errUserNotFound()
		}
		// Tickets and access grants go too: from this moment every route
		// answers "not found" for the account, staff queues included,
		// rather than failing on sealed text whose key is destroyed.
		for _, table := range []string{"sessions", "api_keys", "recovery_codes", "one_time_tokens", "outbox", "tickets", "access_grants"} {
			if _, err := tx.ExecContext(ctx, `DELETE FROM `+table+` WHERE user_id = ?`, userID); err != nil {
				return fmt.Errorf("%s: %w", table, err)
			}
		}
		if err := deleteExportsOf(ctx, tx, userID); err != nil {
			return err
		}
		// Open data-rights requests close with the account: an erasure
		// request is fulfilled, the others have nothing left to act on.
		for _, kind := range app.RequestKinds {
			note := RequestNoteAccountDeleted
			if kind == app.RequestErase {
				note = RequestNoteErasureFulfilled
			}
			if _, err := closeRequestsOfKind(ctx, tx, now, userID, kind, note); err != nil {
				return fmt.Errorf("data_requests: %w", err)
			}
		}
		return nil
	})
}

// Resolutions of the requests a deletion closes.
const (
	RequestNoteErasureFulfilled = "Fulfilled: the account was deleted; its data key is destroyed and the data is purged by the next retention run."
	RequestNoteAccountDeleted   = "Closed: the account was deleted, so there is nothing left to act on; its data is purged by the next retention run."
)

// ActiveUserIDs returns the id of every account not deleted, for a
// restore to check each against the keyring.
func (db *DB) ActiveUserIDs(ctx context.Context) ([]string, error) {
	return db.queryIDs(ctx, "active users", `SELECT id FROM users WHERE deleted_at = 0 ORDER BY id`)
}

// queryIDs runs q, which selects one id column, and returns the ids.
func (db *DB) queryIDs(ctx context.Context, what, q string, args ...any) ([]string, error) {
	rows, err := db.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: %s: %w", what, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("sqlite: %s: %w", what, err)
		}
		out = append(out, id)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: %s: %w", what, err)
	}
	return out, nil
}

// deleteExportsOf is the hook between erasure and data exports, which are
// built in parallel: when an exports table exists, the person's rows go
// (an export running at that moment finds its row gone and its key
// destroyed, and fails). Archive files are sealed with the destroyed key;
// the purge removes whatever the exports store leaves.
func deleteExportsOf(ctx context.Context, tx *sql.Tx, userID string) error {
	ok, err := tableHasColumn(ctx, tx, "exports", "user_id")
	if err != nil || !ok {
		return err
	}
	_, err = tx.ExecContext(ctx, `DELETE FROM exports WHERE user_id = ?`, userID)
	return err
}

func tableHasColumn(ctx context.Context, q querier, table, column string) (bool, error) {
	cols, err := columnsOf(ctx, q, table)
	if err != nil {
		return false, err
	}
	for _, c := range cols {
		if c == column {
			return true, nil
		}
	}
	return false, nil
}

func columnsOf(ctx context.Context, q querier, table string) ([]string, error) {
	rows, err := q.QueryContext(ctx, `SELECT name FROM pragma_table_info(?)`, table)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, rows.Err()
}

// ActiveGenerationIDs returns userID's queued and running generations, for
// erasure to cancel them.
func (db *DB) ActiveGenerationIDs(ctx context.Context, userID string) ([]string, error) {
	return db.queryIDs(ctx, "active generations", `SELECT id FROM generations WHERE user_id = ? AND status IN ('queued','running') ORDER BY id`, userID)
}

// PurgeableUsers returns up to limit accounts deleted at or before cutoff
// and not under a legal hold, oldest deletion first.
func (db *DB) PurgeableUsers(ctx context.Context, cutoff time.Time, limit int) ([]string, error) {
	return db.queryIDs(ctx, "purgeable users", `SELECT id FROM users WHERE deleted_at > 0 AND deleted_at <= ?
		AND id NOT IN (SELECT user_id FROM legal_holds) ORDER BY deleted_at, id LIMIT ?`, cutoff.UnixMilli(), limit)
}

// CountPurgeableUsers counts what PurgeableUsers would return without a
// limit: the dry run of the purge.
func (db *DB) CountPurgeableUsers(ctx context.Context, cutoff time.Time) (int, error) {
	var n int
	err := db.r.QueryRowContext(ctx, `SELECT count(*) FROM users WHERE deleted_at > 0 AND deleted_at <= ?
		AND id NOT IN (SELECT user_id FROM legal_holds)`, cutoff.UnixMilli()).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("sqlite: count purgeable users: %w", err)
	}
	return n, nil
}

// keptAfterPurge are tables with a user_id column whose rows outlive the
// account: the consent ledger is proof that past processing was lawful,
// and holds only the (now meaningless) random id.
var keptAfterPurge = map[string]bool{"consents": true}

// PurgeUser physically removes deleted account userID: every row of every
// table with a user_id column (except keptAfterPurge), then the users row
// itself, with audit in the same transaction. It returns the rows removed
// per table. Tables added later by other areas are covered without change
// here, since every personal row carries user_id. ECONFLICT if the account
// is not deleted or is held (a purge never ends a live account).
func (db *DB) PurgeUser(ctx context.Context, userID string, audit ...app.AuditEntry) (map[string]int, error) {
	now := db.Now().Truncate(time.Millisecond)
	removed := map[string]int{}
	err := db.auditedTx(ctx, "purge user", now, audit, func(tx *sql.Tx) error {
		var deletedAt int64
		var held int
		err := tx.QueryRowContext(ctx, `SELECT deleted_at, (SELECT count(*) FROM legal_holds WHERE user_id = users.id) FROM users WHERE id = ?`, userID).Scan(&deletedAt, &held)
		if errors.Is(err, sql.ErrNoRows) {
			return nil // purged already: a repeat is a no-op
		} else if err != nil {
			return err
		}
		if deletedAt == 0 || held > 0 {
			return app.Errorf(app.ECONFLICT, "Account %s is not deleted, or is under a legal hold: it was not purged.", userID)
		}
		// Rows may reference each other (messages of a ticket): check
		// foreign keys once everything of the person is gone.
		if _, err := tx.ExecContext(ctx, `PRAGMA defer_foreign_keys = ON`); err != nil {
			return err
		}
		tables, err := userTables(ctx, tx)
		if err != nil {
			return err
		}
		for _, t := range tables {
			res, err := tx.ExecContext(ctx, `DELETE FROM "`+t+`" WHERE user_id = ?`, userID)
			if err != nil {
				return fmt.Errorf("%s: %w", t, err)
			}
			if n, _ := res.RowsAffected(); n > 0 {
				removed[t] = int(n)
			}
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM users WHERE id = ?`, userID); err != nil {
			return err
		}
		removed["users"] = 1
		return nil
	})
	if err != nil {
		return nil, err
	}
	return removed, nil
}

// CountUserRows counts, per table, the rows PurgeUser would remove for
// userID now (tables with none are left out; "users" is 1): the dry run
// of the purge. It reads in one snapshot and changes nothing.
func (db *DB) CountUserRows(ctx context.Context, userID string) (map[string]int, error) {
	tx, err := db.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("sqlite: count rows of user: %w", err)
	}
	defer tx.Rollback()
	tables, err := userTables(ctx, tx)
	if err != nil {
		return nil, fmt.Errorf("sqlite: count rows of user: %w", err)
	}
	counts := map[string]int{}
	for _, t := range tables {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM "`+t+`" WHERE user_id = ?`, userID).Scan(&n); err != nil {
			return nil, fmt.Errorf("sqlite: count rows of user in %s: %w", t, err)
		}
		if n > 0 {
			counts[t] = n
		}
	}
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM users WHERE id = ?`, userID).Scan(&n); err != nil {
		return nil, fmt.Errorf("sqlite: count rows of user: %w", err)
	}
	if n > 0 {
		counts["users"] = n
	}
	return counts, nil
}

// userTables lists the tables holding a user_id column, except those kept
// after a purge.
func userTables(ctx context.Context, tx *sql.Tx) ([]string, error) {
	rows, err := tx.QueryContext(ctx, `SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name`)
	if err != nil {
		return nil, err
	}
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			rows.Close()
			return nil, err
		}
		names = append(names, n)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	var out []string
	for _, n := range names {
		if keptAfterPurge[n] || n == "users" {
			continue
		}
		ok, err := tableHasColumn(ctx, tx, n, "user_id")
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, n)
		}
	}
	return out, nil
}

// CheckpointTruncate copies the WAL into the database and cuts it to zero
// length, so pages as they were before a purge do not linger in the WAL.
// secure_delete (set in the DSN) has already zeroed what the purge freed.
func (db *DB) CheckpointTruncate(ctx context.Context) error {
	var busy, logFrames, done int
	if err := db.w.QueryRowContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`).Scan(&busy, &logFrames, &done); err != nil {
		return fmt.Errorf("sqlite: checkpoint: %w", err)
	}
	if busy != 0 {
		return fmt.Errorf("sqlite: checkpoint: a reader held the WAL; the purged pages leave it at the next checkpoint")
	}
	return nil
}

// LegalHold is an admin's hold on an account: deletion waits while it
// lasts. The reason stays sealed with the held person's key.
type LegalHold struct {
	UserID       string
	AdminID      string
	SealedReason []byte
	CreatedAt    time.Time
}

// SetLegalHold puts userID under hold (replacing an earlier hold's reason).
// ENOTFOUND for an unknown or deleted account: a deleted account's key is
// gone, there is nothing left to preserve.
func (db *DB) SetLegalHold(ctx context.Context, h *LegalHold, audit ...app.AuditEntry) error {
	now := db.Now().Truncate(time.Millisecond)
	h.CreatedAt = now
	return db.auditedTx(ctx, "set legal hold", now, audit, func(tx *sql.Tx) error {
		var deletedAt int64
		err := tx.QueryRowContext(ctx, `SELECT deleted_at FROM users WHERE id = ?`, h.UserID).Scan(&deletedAt)
		if errors.Is(err, sql.ErrNoRows) || (err == nil && deletedAt != 0) {
			return errUserNotFound()
		} else if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO legal_holds (user_id, admin_id, reason, created_at) VALUES (?,?,?,?)
			ON CONFLICT (user_id) DO UPDATE SET admin_id = excluded.admin_id, reason = excluded.reason, created_at = excluded.created_at`,
			h.UserID, h.AdminID, h.SealedReason, now.UnixMilli()); err != nil {
			return err
		}
		return nil
	})
}

// ReleaseLegalHold lifts userID's hold; ENOTFOUND when there is none.
func (db *DB) ReleaseLegalHold(ctx context.Context, userID string, audit ...app.AuditEntry) error {
	now := db.Now().Truncate(time.Millisecond)
	return db.auditedTx(ctx, "release legal hold", now, audit, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM legal_holds WHERE user_id = ?`, userID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return app.Errorf(app.ENOTFOUND, "This account is not under a legal hold.")
		}
		return nil
	})
}

// LegalHoldOf returns userID's hold, or ENOTFOUND when there is none.
func (db *DB) LegalHoldOf(ctx context.Context, userID string) (*LegalHold, error) {
	var h LegalHold
	var created int64
	err := db.r.QueryRowContext(ctx, `SELECT user_id, admin_id, reason, created_at FROM legal_holds WHERE user_id = ?`, userID).
		Scan(&h.UserID, &h.AdminID, &h.SealedReason, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, app.Errorf(app.ENOTFOUND, "This account is not under a legal hold.")
	} else if err != nil {
		return nil, fmt.Errorf("sqlite: legal hold: %w", err)
	}
	h.CreatedAt = fromMillis(created)
	return &h, nil
}

// SetRestricted sets or clears userID's "restrict processing" flag.
// ENOTFOUND for an unknown or deleted account.
func (db *DB) SetRestricted(ctx context.Context, userID string, restricted bool, audit ...app.AuditEntry) error {
	now := db.Now().Truncate(time.Millisecond)
	return db.auditedTx(ctx, "set restricted", now, audit, func(tx *sql.Tx) error {
		v := int64(0)
		if restricted {
			v = now.UnixMilli()
		}
		// Keep the first stamp when restricting twice.
		res, err := tx.ExecContext(ctx, `UPDATE users SET restricted_at = CASE WHEN ? = 0 THEN 0 WHEN restricted_at > 0 THEN restricted_at ELSE ? END
			WHERE id = ? AND deleted_at = 0`, v, v, userID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return errUserNotFound()
		}
		return nil
	})
}

// RestrictedSince returns when userID restricted processing, or the zero
// time when they have not; ENOTFOUND for an unknown account.
func (db *DB) RestrictedSince(ctx context.Context, userID string) (time.Time, error) {
	var at int64
	err := db.r.QueryRowContext(ctx, `SELECT restricted_at FROM users WHERE id = ?`, userID).Scan(&at)
	if errors.Is(err, sql.ErrNoRows) {
		return time.Time{}, errUserNotFound()
	} else if err != nil {
		return time.Time{}, fmt.Errorf("sqlite: restricted: %w", err)
	}
	return fromMillis(at), nil
}

// auditedTx runs fn and appends audit in one transaction stamped now. An
// *app.Error from fn is returned as is (it speaks to a person); anything
// else is wrapped with what.
func (db *DB) auditedTx(ctx context.Context, what string, now time.Time, audit []app.AuditEntry, fn func(*sql.Tx) error) error {
	err := db.tx(ctx, func(tx *sql.Tx) error {
		if err := fn(tx); err != nil {
			return err
		}
		for _, e := range audit {
			if err := appendAudit(ctx, tx, now, e); err != nil {
				return err
			}
		}
		return nil
	})
	var ae *app.Error
	if err != nil && !errors.As(err, &ae) {
		return fmt.Errorf("sqlite: %s: %w", what, err)
	}
	return err
}
