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

const exportColumns = `id, user_id, status, bytes, error, created_at, done_at, expires_at`

func scanExport(s rowScanner) (app.Export, error) {
	var e app.Export
	var created, done, expires int64
	err := s.Scan(&e.ID, &e.UserID, &e.Status, &e.Bytes, &e.Error, &created, &done, &expires)
	e.CreatedAt, e.DoneAt, e.ExpiresAt = fromMillis(created), fromMillis(done), fromMillis(expires)
	return e, err
}

func errExportNotFound(id string) error {
	return app.Errorf(app.ENOTFOUND, "There is no export %s: it may have expired and been deleted. Ask for a new one with POST /api/v1/me/exports.", id)
}

// CreateExport records a pending export for e.UserID, stamping CreatedAt,
// with the audit entries. A person with an export still pending or running
// gets ECONFLICT naming it: one export at a time.
func (db *DB) CreateExport(ctx context.Context, e *app.Export, audit ...app.AuditEntry) error {
	now := db.Now().Truncate(time.Millisecond)
	e.Status, e.CreatedAt = app.ExportPending, now
	err := db.tx(ctx, func(tx *sql.Tx) error {
		var busy string
		err := tx.QueryRowContext(ctx, `SELECT id FROM exports WHERE user_id = ? AND status IN ('pending','running')`, e.UserID).Scan(&busy)
		if err == nil {
			return app.Errorf(app.ECONFLICT, "Your export %s is still being made; wait for it to finish (GET /api/v1/me/exports/%s) before asking for another.", busy, busy)
		} else if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO exports (id, user_id, status, created_at) VALUES (?,?,?,?)`,
			e.ID, e.UserID, e.Status, now.UnixMilli()); err != nil {
			if strings.Contains(err.Error(), "UNIQUE constraint failed") {
				return app.Errorf(app.ECONFLICT, "An export of yours is already being made; wait for it to finish before asking for another.")
			}
			return err
		}
		for _, a := range audit {
			if err := appendAudit(ctx, tx, now, a); err != nil {
				return err
			}
		}
		return nil
	})
	if ae := (*app.Error)(nil); errors.As(err, &ae) {
		return err
	} else if err != nil {
		return fmt.Errorf("sqlite: create export: %w", err)
	}
	return nil
}

// Export returns userID's export id; another person's is ENOTFOUND.
func (db *DB) Export(ctx context.Context, userID, id string) (app.Export, error) {
	e, err := scanExport(db.r.QueryRowContext(ctx, `SELECT `+exportColumns+` FROM exports WHERE id = ? AND user_id = ?`, id, userID))
	if errors.Is(err, sql.ErrNoRows) {
		return e, errExportNotFound(id)
	} else if err != nil {
		return e, fmt.Errorf("sqlite: find export: %w", err)
	}
	return e, nil
}

// ExportsOf returns userID's exports, newest first.
func (db *DB) ExportsOf(ctx context.Context, userID string) ([]app.Export, error) {
	return db.queryExports(ctx, `SELECT `+exportColumns+` FROM exports WHERE user_id = ? ORDER BY created_at DESC, id DESC`, userID)
}

// UnfinishedExports returns every pending or running export, oldest
// first: the worker's backlog after a restart.
func (db *DB) UnfinishedExports(ctx context.Context) ([]app.Export, error) {
	return db.queryExports(ctx, `SELECT `+exportColumns+` FROM exports WHERE status IN ('pending','running') ORDER BY created_at, id`)
}

// ExpiredExports returns up to limit finished exports whose expiry is at
// or before now. Failed exports expire too (their expiry is set when they
// fail), so their rows do not pile up.
func (db *DB) ExpiredExports(ctx context.Context, now time.Time, limit int) ([]app.Export, error) {
	return db.queryExports(ctx, `SELECT `+exportColumns+` FROM exports WHERE status IN ('ready','failed')
		AND expires_at <= ? ORDER BY expires_at, id LIMIT ?`, now.UnixMilli(), limit)
}

// CountExpiredExports counts what ExpiredExports would find.
func (db *DB) CountExpiredExports(ctx context.Context, now time.Time) (int, error) {
	var n int
	if err := db.r.QueryRowContext(ctx, `SELECT count(*) FROM exports WHERE status IN ('ready','failed') AND expires_at <= ?`,
		now.UnixMilli()).Scan(&n); err != nil {
		return 0, fmt.Errorf("sqlite: count expired exports: %w", err)
	}
	return n, nil
}

func (db *DB) queryExports(ctx context.Context, q string, args ...any) ([]app.Export, error) {
	rows, err := db.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list exports: %w", err)
	}
	defer rows.Close()
	var out []app.Export
	for rows.Next() {
		e, err := scanExport(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: list exports: %w", err)
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// SetExportRunning marks export id running.
func (db *DB) SetExportRunning(ctx context.Context, id string) error {
	if _, err := db.w.ExecContext(ctx, `UPDATE exports SET status = 'running' WHERE id = ? AND status IN ('pending','running')`, id); err != nil {
		return fmt.Errorf("sqlite: start export: %w", err)
	}
	return nil
}

// FinishExport marks export id ready (errText "") or failed, stamps done
// and expiry, and closes the owner's open requests of closeKinds with
// resolution, all in one transaction: a finished export and the requests
// it answers never disagree.
func (db *DB) FinishExport(ctx context.Context, id string, size int64, errText string, keep time.Duration, closeKinds []string, resolution string) (app.Export, error) {
	now := db.Now().Truncate(time.Millisecond)
	var e app.Export
	err := db.tx(ctx, func(tx *sql.Tx) error {
		status := app.ExportReady
		if errText != "" {
			status = app.ExportFailed
		}
		if _, err := tx.ExecContext(ctx, `UPDATE exports SET status = ?, bytes = ?, error = ?, done_at = ?, expires_at = ? WHERE id = ?`,
			status, size, errText, now.UnixMilli(), now.Add(keep).UnixMilli(), id); err != nil {
			return err
		}
		var err error
		if e, err = scanExport(tx.QueryRowContext(ctx, `SELECT `+exportColumns+` FROM exports WHERE id = ?`, id)); err != nil {
			return err
		}
		if status != app.ExportReady {
			return nil
		}
		for _, k := range closeKinds {
			if _, err := closeRequestsOfKind(ctx, tx, now, e.UserID, k, resolution); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return e, fmt.Errorf("sqlite: finish export: %w", err)
	}
	return e, nil
}

// DeleteExportRows removes the rows of exports ids.
func (db *DB) DeleteExportRows(ctx context.Context, ids []string) (int, error) {
	var n int
	err := db.tx(ctx, func(tx *sql.Tx) error {
		for _, id := range ids {
			res, err := tx.ExecContext(ctx, `DELETE FROM exports WHERE id = ?`, id)
			if err != nil {
				return err
			}
			c, _ := res.RowsAffected()
			n += int(c)
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("sqlite: delete exports: %w", err)
	}
	return n, nil
}

// AuditEntriesOf returns the audit entries whose actor or subject is
// userID, oldest first, for the person's own export.
func (db *DB) AuditEntriesOf(ctx context.Context, userID string) ([]*app.AuditEntry, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT `+auditColumns+` FROM audit_log WHERE actor_id = ? OR subject_id = ? ORDER BY seq`, userID, userID)
	if err != nil {
		return nil, fmt.Errorf("sqlite: audit entries of user: %w", err)
	}
	defer rows.Close()
	var out []*app.AuditEntry
	for rows.Next() {
		e, err := scanAudit(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: audit entries of user: %w", err)
		}
		out = append(out, e)
	}
	return out, rows.Err()
}
