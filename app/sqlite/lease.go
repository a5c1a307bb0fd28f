package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Lease is a named, time-limited claim kept in the settings table, so that
// two processes sharing the database (the server and a CLI command) do not
// run the same work at once.
type Lease struct {
	Holder string
	Since  time.Time
}

// AcquireLease claims key for holder. If another holder claimed it less
// than staleAfter ago, nothing changes and that claim is returned; an older
// claim is taken over, since its process most likely died without
// releasing it.
func (db *DB) AcquireLease(ctx context.Context, key, holder string, staleAfter time.Duration) (*Lease, error) {
	now := db.Now()
	var held *Lease
	err := db.tx(ctx, func(tx *sql.Tx) error {
		var value string
		var since int64
		err := tx.QueryRowContext(ctx, `SELECT value, updated_at FROM settings WHERE key = ?`, key).Scan(&value, &since)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if err == nil && value != holder && now.Sub(fromMillis(since)) < staleAfter {
			held = &Lease{Holder: value, Since: fromMillis(since)}
			return nil
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO settings (key, value, updated_at) VALUES (?, ?, ?)
			ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`, key, holder, now.UnixMilli())
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: acquire lease %s: %w", key, err)
	}
	return held, nil
}

// ReleaseLease gives up holder's claim on key; a claim taken over by
// someone else meanwhile is left alone.
func (db *DB) ReleaseLease(ctx context.Context, key, holder string) error {
	if _, err := db.w.ExecContext(ctx, `DELETE FROM settings WHERE key = ? AND value = ?`, key, holder); err != nil {
		return fmt.Errorf("sqlite: release lease %s: %w", key, err)
	}
	return nil
}
