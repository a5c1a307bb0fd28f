package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// migrateUserPrefs adds the per-person preferences.
//
// embed_parameters: write the generation parameters (prompt included) into
// each new PNG's own metadata. Off by default: a downloaded file is what
// people share, and it should not carry their prompt unless they chose so.
func migrateUserPrefs(tx *sql.Tx) error {
	return execAll(tx, `ALTER TABLE users ADD COLUMN embed_parameters INTEGER NOT NULL DEFAULT 0`)
}

// EmbedParameters reports the person's choice for new images.
func (db *DB) EmbedParameters(ctx context.Context, userID string) (bool, error) {
	var on bool
	err := db.r.QueryRowContext(ctx, `SELECT embed_parameters FROM users WHERE id = ?`, userID).Scan(&on)
	if errors.Is(err, sql.ErrNoRows) {
		return false, errUserNotFound()
	} else if err != nil {
		return false, fmt.Errorf("sqlite: embed parameters: %w", err)
	}
	return on, nil
}

// SetEmbedParameters records the person's choice for new images.
func (db *DB) SetEmbedParameters(ctx context.Context, userID string, on bool) error {
	res, err := db.w.ExecContext(ctx, `UPDATE users SET embed_parameters = ? WHERE id = ? AND deleted_at = 0`, on, userID)
	if err != nil {
		return fmt.Errorf("sqlite: set embed parameters: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return errUserNotFound()
	}
	return nil
}
