package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"zimage/app"
)

func migrateGenerations(tx *sql.Tx) error {
	return execAll(tx, `CREATE TABLE generations (
		id               TEXT PRIMARY KEY, -- ULID: sorts by creation time
		user_id          TEXT NOT NULL,
		status           TEXT NOT NULL CHECK (status IN ('queued','running','succeeded','failed','canceled')),
		prompt           BLOB NOT NULL, -- sealed for user_id, aad generations/<id>/prompt
		negative_prompt  BLOB NOT NULL, -- sealed, aad generations/<id>/negative_prompt
		width            INTEGER NOT NULL,
		height           INTEGER NOT NULL,
		steps            INTEGER NOT NULL,
		guidance         REAL NOT NULL,
		seed             INTEGER NOT NULL,
		count            INTEGER NOT NULL,
		backend          TEXT NOT NULL DEFAULT '', -- requested; '' means any
		model            TEXT NOT NULL DEFAULT '', -- requested; '' means the default
		assigned_backend TEXT NOT NULL DEFAULT '',
		attempts         INTEGER NOT NULL DEFAULT 0,
		error_reason     TEXT NOT NULL DEFAULT '',
		error_message    TEXT NOT NULL DEFAULT '',
		created_at       INTEGER NOT NULL,
		started_at       INTEGER NOT NULL DEFAULT 0, -- 0 until started
		finished_at      INTEGER NOT NULL DEFAULT 0  -- 0 until final
	) STRICT`,
		`CREATE INDEX generations_status_created ON generations (status, created_at)`,
		`CREATE INDEX generations_user_created ON generations (user_id, created_at DESC, id DESC)`,
	)
}

// migrateGenerationsSamplerScheduler adds the sampler and scheduler a
// person chose (” means the model's recommended ones, the backend's
// defaults).
func migrateGenerationsSamplerScheduler(tx *sql.Tx) error {
	return execAll(tx,
		`ALTER TABLE generations ADD COLUMN sampler TEXT NOT NULL DEFAULT ''`,
		`ALTER TABLE generations ADD COLUMN scheduler TEXT NOT NULL DEFAULT ''`,
	)
}

// GenerationRecord is a generation as stored: the prompts stay sealed here
// (Prompt and NegativePrompt of Generation are empty), because sealing is
// the queue's business and the store only moves bytes.
type GenerationRecord struct {
	app.Generation
	SealedPrompt         []byte
	SealedNegativePrompt []byte
}

const generationColumns = `id, user_id, status, prompt, negative_prompt, width, height, steps, guidance, seed, count,
	backend, model, assigned_backend, attempts, error_reason, error_message, created_at, started_at, finished_at,
	sampler, scheduler, api_key_id`

type rowScanner interface{ Scan(dest ...any) error }

func scanGeneration(s rowScanner) (GenerationRecord, error) {
	var r GenerationRecord
	var created, started, finished int64
	g := &r.Generation
	err := s.Scan(&g.ID, &g.UserID, &g.Status, &r.SealedPrompt, &r.SealedNegativePrompt, &g.Width, &g.Height,
		&g.Steps, &g.Guidance, &g.Seed, &g.Count, &g.Backend, &g.Model, &g.AssignedBackend, &g.Attempts,
		&g.ErrorReason, &g.ErrorMessage, &created, &started, &finished, &g.Sampler, &g.Scheduler, &g.APIKeyID)
	g.CreatedAt, g.StartedAt, g.FinishedAt = fromMillis(created), fromMillis(started), fromMillis(finished)
	return r, err
}

func fromMillis(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms).UTC()
}

// CreateGeneration inserts r as queued, stamping CreatedAt, unless its
// owner already has maxQueued generations queued: then it returns an
// ECONFLICT error and inserts nothing. The count and the insert share one
// transaction, so concurrent submits cannot overshoot the cap.
func (db *DB) CreateGeneration(ctx context.Context, r *GenerationRecord, maxQueued int) error {
	r.Status = app.GenerationQueued
	r.CreatedAt = db.Now().Truncate(time.Millisecond)
	err := db.tx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM generations WHERE user_id = ? AND status = 'queued'`, r.UserID).Scan(&n); err != nil {
			return err
		}
		if n >= maxQueued {
			return app.Errorf(app.ECONFLICT, "You already have %d waiting in the queue, the most allowed. Wait for some to finish or cancel one, then try again.", n)
		}
		g := r.Generation
		_, err := tx.ExecContext(ctx, `INSERT INTO generations (id, user_id, status, prompt, negative_prompt, width, height,
			steps, guidance, seed, count, backend, model, created_at, sampler, scheduler, api_key_id)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			g.ID, g.UserID, g.Status, r.SealedPrompt, r.SealedNegativePrompt, g.Width, g.Height,
			g.Steps, g.Guidance, g.Seed, g.Count, g.Backend, g.Model, g.CreatedAt.UnixMilli(), g.Sampler, g.Scheduler, g.APIKeyID)
		return err
	})
	if app.ErrorCode(err) == app.ECONFLICT {
		return err
	} else if err != nil {
		return fmt.Errorf("sqlite: create generation: %w", err)
	}
	return nil
}

// Generation returns userID's generation id, or ENOTFOUND when there is no
// such generation or it belongs to someone else.
func (db *DB) Generation(ctx context.Context, userID, id string) (GenerationRecord, error) {
	r, err := scanGeneration(db.readRow(ctx, `SELECT `+generationColumns+` FROM generations WHERE id = ? AND user_id = ?`, id, userID))
	if errors.Is(err, sql.ErrNoRows) {
		return r, app.Errorf(app.ENOTFOUND, "There is no generation %q.", id)
	} else if err != nil {
		return r, fmt.Errorf("sqlite: find generation: %w", err)
	}
	return r, nil
}

// Generations returns userID's generations newest first, at most limit,
// starting after the generation before (its id; "" for the first page).
func (db *DB) Generations(ctx context.Context, userID, before string, limit int) ([]GenerationRecord, error) {
	q := `SELECT ` + generationColumns + ` FROM generations WHERE user_id = ?`
	args := []any{userID}
	if before != "" {
		q += ` AND (created_at, id) < (SELECT created_at, id FROM generations WHERE id = ? AND user_id = ?)`
		args = append(args, before, userID)
	}
	q += ` ORDER BY created_at DESC, id DESC LIMIT ?`
	args = append(args, limit)
	return db.queryGenerations(ctx, db.r, "list generations", q, args...)
}

type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

func (db *DB) queryGenerations(ctx context.Context, q querier, what, query string, args ...any) ([]GenerationRecord, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: %s: %w", what, err)
	}
	defer rows.Close()
	var out []GenerationRecord
	for rows.Next() {
		r, err := scanGeneration(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: %s: %w", what, err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: %s: %w", what, err)
	}
	return out, nil
}

// QueuedGeneration is the little the queue keeps in memory per waiting job.
type QueuedGeneration struct {
	ID, UserID     string
	Backend, Model string
	CreatedAt      time.Time
}

// QueuedGenerations lists every queued generation, oldest first, for the
// queue to rebuild its index at start.
func (db *DB) QueuedGenerations(ctx context.Context) ([]QueuedGeneration, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT id, user_id, backend, model, created_at FROM generations
		WHERE status = 'queued' ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: queued generations: %w", err)
	}
	defer rows.Close()
	var out []QueuedGeneration
	for rows.Next() {
		var g QueuedGeneration
		var created int64
		if err := rows.Scan(&g.ID, &g.UserID, &g.Backend, &g.Model, &created); err != nil {
			return nil, fmt.Errorf("sqlite: queued generations: %w", err)
		}
		g.CreatedAt = fromMillis(created)
		out = append(out, g)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: queued generations: %w", err)
	}
	return out, nil
}

// StartGeneration marks a queued generation running on backend, counts the
// attempt, and returns the updated row. A generation that is no longer
// queued (canceled meanwhile) gives ECONFLICT.
func (db *DB) StartGeneration(ctx context.Context, id, backend string) (GenerationRecord, error) {
	var out []GenerationRecord
	err := db.tx(ctx, func(tx *sql.Tx) error {
		var err error
		out, err = db.queryGenerations(ctx, tx, "start generation", `UPDATE generations
			SET status = 'running', assigned_backend = ?, attempts = attempts + 1, started_at = ?
			WHERE id = ? AND status = 'queued' RETURNING `+generationColumns, backend, db.Now().UnixMilli(), id)
		return err
	})
	if err != nil {
		return GenerationRecord{}, err
	}
	if len(out) == 0 {
		return GenerationRecord{}, app.Errorf(app.ECONFLICT, "Generation %s is no longer queued.", id)
	}
	return out[0], nil
}

// RequeueGeneration puts a running generation back in the queue. refund
// gives the attempt back: a clean shutdown is not the job's fault.
func (db *DB) RequeueGeneration(ctx context.Context, id string, refund bool) (bool, error) {
	n := 0
	if refund {
		n = 1
	}
	res, err := db.w.ExecContext(ctx, `UPDATE generations SET status = 'queued', attempts = max(attempts - ?, 0)
		WHERE id = ? AND status = 'running'`, n, id)
	if err != nil {
		return false, fmt.Errorf("sqlite: requeue generation: %w", err)
	}
	changed, err := res.RowsAffected()
	return changed == 1, err
}

// FinishGeneration moves a queued or running generation of userID to a
// final status. It reports false, changing nothing, when the generation
// was already final: the first ending wins (a cancel racing a success).
func (db *DB) FinishGeneration(ctx context.Context, userID, id, status, reason, message string) (bool, error) {
	if status != app.GenerationSucceeded && status != app.GenerationFailed && status != app.GenerationCanceled {
		return false, fmt.Errorf("sqlite: finish generation: %q is not a final status", status)
	}
	res, err := db.w.ExecContext(ctx, `UPDATE generations SET status = ?, error_reason = ?, error_message = ?, finished_at = ?
		WHERE id = ? AND user_id = ? AND status IN ('queued', 'running')`,
		status, reason, message, db.Now().UnixMilli(), id, userID)
	if err != nil {
		return false, fmt.Errorf("sqlite: finish generation: %w", err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// RecoveredGeneration is one generation RecoverGenerations changed.
type RecoveredGeneration struct {
	ID, UserID string
	Status     string // queued or failed
}

// RecoverGenerations ends the "running" status of rows a crashed process
// left behind: each goes back to queued if it has had fewer than
// maxAttempts starts, and fails with reason "interrupted" otherwise. It
// must run before the queue starts anything.
func (db *DB) RecoverGenerations(ctx context.Context, maxAttempts int, message string) ([]RecoveredGeneration, error) {
	var out []RecoveredGeneration
	err := db.tx(ctx, func(tx *sql.Tx) error {
		out = out[:0]
		for _, q := range []struct {
			query string
			args  []any
		}{
			{`UPDATE generations SET status = 'queued' WHERE status = 'running' AND attempts < ? RETURNING id, user_id, status`, []any{maxAttempts}},
			{`UPDATE generations SET status = 'failed', error_reason = 'interrupted', error_message = ?, finished_at = ?
				WHERE status = 'running' RETURNING id, user_id, status`, []any{message, db.Now().UnixMilli()}},
		} {
			rows, err := tx.QueryContext(ctx, q.query, q.args...)
			if err != nil {
				return err
			}
			for rows.Next() {
				var r RecoveredGeneration
				if err := rows.Scan(&r.ID, &r.UserID, &r.Status); err != nil {
					rows.Close()
					return err
				}
				out = append(out, r)
			}
			if err := errors.Join(rows.Err(), rows.Close()); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: recover generations: %w", err)
	}
	return out, nil
}
