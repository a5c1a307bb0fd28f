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

const apiKeyColumns = `id, user_id, name, prefix, scopes, created_at, last_used_at, revoked_at, name_sealed`

func scanAPIKey(s rowScanner) (*APIKeyRow, error) {
	var k APIKeyRow
	var scopes string
	var created, used, revoked int64
	if err := s.Scan(&k.ID, &k.UserID, &k.Name, &k.Prefix, &scopes, &created, &used, &revoked, &k.SealedName); err != nil {
		return nil, err
	}
	if scopes != "" {
		k.Scopes = strings.Split(scopes, ",")
	}
	k.CreatedAt, k.LastUsedAt, k.RevokedAt = fromMillis(created), fromMillis(used), fromMillis(revoked)
	return &k, nil
}

func errAPIKeyNotFound() error {
	return app.Errorf(app.ENOTFOUND, "There is no such API key.")
}

// CreateAPIKey stores k (CreatedAt stamped here) under the token's hash,
// with its audit entries. k.Name is not stored: sealedName is, sealed for
// the owner with APIKeyNameAAD.
func (db *DB) CreateAPIKey(ctx context.Context, k *app.APIKey, sealedName, tokenHash []byte, audit ...app.AuditEntry) error {
	now := db.Now().Truncate(time.Millisecond)
	k.CreatedAt = now
	err := db.tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO api_keys (id, user_id, name, name_sealed, prefix, token_hash, scopes, created_at)
			VALUES (?,?,'',?,?,?,?,?)`, k.ID, k.UserID, sealedName, k.Prefix, tokenHash, strings.Join(k.Scopes, ","), now.UnixMilli())
		if err != nil {
			return err
		}
		for _, e := range audit {
			if err := appendAudit(ctx, tx, now, e); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("sqlite: create api key: %w", err)
	}
	return nil
}

// apiKeyWithUserQuery finds a key and its owner in one indexed lookup.
var apiKeyWithUserQuery = `SELECT ` + qualify("k", apiKeyColumns) + `, ` + qualify("u", userColumns) + `
	FROM api_keys k JOIN users u ON u.id = k.user_id WHERE k.token_hash = ?`

// qualify prefixes each column of a column list with a table alias.
func qualify(alias, columns string) string {
	cols := strings.Split(columns, ",")
	for i, c := range cols {
		cols[i] = alias + "." + strings.TrimSpace(c)
	}
	return strings.Join(cols, ", ")
}

// scanFunc lets two scan helpers share one row: each passes its
// destinations on, and the innermost scans them all at once.
type scanFunc func(dest ...any) error

func (f scanFunc) Scan(dest ...any) error { return f(dest...) }

// APIKeyByTokenHash returns the key with the token hash and its owner, or
// ENOTFOUND. Revocation is the caller's to judge. Answers are cached until
// the next write transaction commits (see authCache).
func (db *DB) APIKeyByTokenHash(ctx context.Context, hash []byte) (*app.APIKey, *UserRecord, error) {
	writes, now := db.writes.Load(), db.Now()
	if k, u, ok := db.keys.get(hash, writes, now); ok {
		return k, u, nil
	}
	row := db.readRow(ctx, apiKeyWithUserQuery, hash)
	var u *UserRecord
	k, err := scanAPIKey(scanFunc(func(keyDest ...any) error {
		var err error
		u, err = scanUser(scanFunc(func(userDest ...any) error {
			return row.Scan(append(keyDest, userDest...)...)
		}))
		return err
	}))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil, errAPIKeyNotFound()
	} else if err != nil {
		return nil, nil, fmt.Errorf("sqlite: find api key: %w", err)
	}
	db.keys.put(hash, &k.APIKey, u, writes, now)
	return &k.APIKey, u, nil
}

// TouchAPIKey sets the key's last_used_at to now.
func (db *DB) TouchAPIKey(ctx context.Context, id string) error {
	now := db.Now()
	if _, err := db.w.ExecContext(ctx, `UPDATE api_keys SET last_used_at = ? WHERE id = ?`, now.UnixMilli(), id); err != nil {
		return fmt.Errorf("sqlite: touch api key: %w", err)
	}
	db.keys.touched(id, now)
	return nil
}

// ListAPIKeys returns the user's keys, newest first, revoked ones
// included, names still sealed.
func (db *DB) ListAPIKeys(ctx context.Context, userID string) ([]*APIKeyRow, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT `+apiKeyColumns+` FROM api_keys WHERE user_id = ? ORDER BY created_at DESC, id DESC`, userID)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list api keys: %w", err)
	}
	defer rows.Close()
	var out []*APIKeyRow
	for rows.Next() {
		k, err := scanAPIKey(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: list api keys: %w", err)
		}
		out = append(out, k)
	}
	return out, rows.Err()
}

// RevokeAPIKey revokes the user's key id. Another user's key, an unknown
// one and one already revoked are ENOTFOUND.
func (db *DB) RevokeAPIKey(ctx context.Context, userID, id string, audit ...app.AuditEntry) error {
	now := db.Now().Truncate(time.Millisecond)
	err := db.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE api_keys SET revoked_at = ? WHERE id = ? AND user_id = ? AND revoked_at = 0`,
			now.UnixMilli(), id, userID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return errAPIKeyNotFound()
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
		return fmt.Errorf("sqlite: revoke api key: %w", err)
	}
	return nil
}
