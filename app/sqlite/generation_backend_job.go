package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// migrateGenerationBackendJob adds backend_job: what a backend handed back
// when it accepted a job (ComfyUI's prompt ids), written before the server
// starts the work, so that a process killed mid-job can take over that work
// after a restart instead of paying for it twice.
func migrateGenerationBackendJob(tx *sql.Tx) error {
	return execAll(tx, `ALTER TABLE generations ADD COLUMN backend_job TEXT NOT NULL DEFAULT ''`)
}

// SetGenerationBackendJob records job for generation id while it runs; a
// generation that is no longer running keeps what it had.
func (db *DB) SetGenerationBackendJob(ctx context.Context, id, job string) error {
	if _, err := db.w.ExecContext(ctx, `UPDATE generations SET backend_job = ? WHERE id = ? AND status = 'running'`, job, id); err != nil {
		return fmt.Errorf("sqlite: set generation backend job: %w", err)
	}
	return nil
}

// GenerationBackendJob returns what SetGenerationBackendJob last recorded
// for generation id ("" when nothing was).
func (db *DB) GenerationBackendJob(ctx context.Context, id string) (string, error) {
	var job string
	err := db.r.QueryRowContext(ctx, `SELECT backend_job FROM generations WHERE id = ?`, id).Scan(&job)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	} else if err != nil {
		return "", fmt.Errorf("sqlite: generation backend job: %w", err)
	}
	return job, nil
}
