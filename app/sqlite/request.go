package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"zimage/app"
)

// DataRequestRow is a data_requests row with its details still sealed.
type DataRequestRow struct {
	app.DataRequest
	SealedDetails []byte
}

const dataRequestColumns = `id, user_id, kind, status, details, created_at, due_at, closed_at, resolution`

func scanDataRequest(s rowScanner) (DataRequestRow, error) {
	var r DataRequestRow
	var created, due, closed int64
	err := s.Scan(&r.ID, &r.UserID, &r.Kind, &r.Status, &r.SealedDetails, &created, &due, &closed, &r.Resolution)
	r.CreatedAt, r.DueAt, r.ClosedAt = fromMillis(created), fromMillis(due), fromMillis(closed)
	return r, err
}

func errDataRequestNotFound(id string) error {
	return app.Errorf(app.ENOTFOUND, "There is no data request %s.", id)
}

// CreateDataRequest stores r as open, stamping CreatedAt and DueAt (now +
// app.RequestDeadline), with the audit entries.
func (db *DB) CreateDataRequest(ctx context.Context, r *DataRequestRow, audit ...app.AuditEntry) error {
	now := db.Now().Truncate(time.Millisecond)
	r.Status, r.CreatedAt, r.DueAt = app.RequestOpen, now, now.Add(app.RequestDeadline)
	err := db.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO data_requests (id, user_id, kind, status, details, created_at, due_at)
			VALUES (?,?,?,?,?,?,?)`, r.ID, r.UserID, r.Kind, r.Status, r.SealedDetails, now.UnixMilli(), r.DueAt.UnixMilli()); err != nil {
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
		return fmt.Errorf("sqlite: create data request: %w", err)
	}
	return nil
}

// DataRequestsOf returns userID's requests, newest first.
func (db *DB) DataRequestsOf(ctx context.Context, userID string) ([]DataRequestRow, error) {
	return db.queryDataRequests(ctx, `SELECT `+dataRequestColumns+` FROM data_requests WHERE user_id = ?
		ORDER BY created_at DESC, id DESC`, userID)
}

// DataRequestQueue returns up to limit requests in status ("" for all),
// the soonest due first.
func (db *DB) DataRequestQueue(ctx context.Context, status string, limit int) ([]DataRequestRow, error) {
	if status == "" {
		return db.queryDataRequests(ctx, `SELECT `+dataRequestColumns+` FROM data_requests
			ORDER BY status DESC, due_at, id LIMIT ?`, limit)
	}
	return db.queryDataRequests(ctx, `SELECT `+dataRequestColumns+` FROM data_requests WHERE status = ?
		ORDER BY due_at, id LIMIT ?`, status, limit)
}

func (db *DB) queryDataRequests(ctx context.Context, q string, args ...any) ([]DataRequestRow, error) {
	rows, err := db.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list data requests: %w", err)
	}
	defer rows.Close()
	var out []DataRequestRow
	for rows.Next() {
		r, err := scanDataRequest(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: list data requests: %w", err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// CloseDataRequest closes request id with resolution and the audit
// entries. A request already closed is ECONFLICT.
func (db *DB) CloseDataRequest(ctx context.Context, id, resolution string, audit ...app.AuditEntry) (DataRequestRow, error) {
	now := db.Now().Truncate(time.Millisecond)
	var r DataRequestRow
	err := db.tx(ctx, func(tx *sql.Tx) error {
		var err error
		r, err = scanDataRequest(tx.QueryRowContext(ctx, `SELECT `+dataRequestColumns+` FROM data_requests WHERE id = ?`, id))
		if errors.Is(err, sql.ErrNoRows) {
			return errDataRequestNotFound(id)
		} else if err != nil {
			return err
		}
		if r.Status == app.RequestClosed {
			return app.Errorf(app.ECONFLICT, "Data request %s was already closed on %s.", id, r.ClosedAt.Format(time.DateOnly))
		}
		if _, err := tx.ExecContext(ctx, `UPDATE data_requests SET status = 'closed', closed_at = ?, resolution = ? WHERE id = ?`,
			now.UnixMilli(), resolution, id); err != nil {
			return err
		}
		r.Status, r.ClosedAt, r.Resolution = app.RequestClosed, now, resolution
		for _, e := range audit {
			if err := appendAudit(ctx, tx, now, e); err != nil {
				return err
			}
		}
		return nil
	})
	if ae := (*app.Error)(nil); errors.As(err, &ae) {
		return r, err
	} else if err != nil {
		return r, fmt.Errorf("sqlite: close data request: %w", err)
	}
	return r, nil
}

// CloseRequestsOfKind closes every open request of kind by userID with
// note as the resolution and returns how many it closed. Work the
// software does itself (an export, an account deletion) calls it when
// done, so the request answers itself.
func (db *DB) CloseRequestsOfKind(ctx context.Context, userID, kind, note string) (int, error) {
	now := db.Now().Truncate(time.Millisecond)
	var n int
	err := db.tx(ctx, func(tx *sql.Tx) error {
		var err error
		n, err = closeRequestsOfKind(ctx, tx, now, userID, kind, note)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("sqlite: close data requests: %w", err)
	}
	return n, nil
}

func closeRequestsOfKind(ctx context.Context, tx *sql.Tx, now time.Time, userID, kind, note string) (int, error) {
	res, err := tx.ExecContext(ctx, `UPDATE data_requests SET status = 'closed', closed_at = ?, resolution = ?
		WHERE user_id = ? AND kind = ? AND status = 'open'`, now.UnixMilli(), note, userID, kind)
	if err != nil {
		return 0, err
	}
	n, err := res.RowsAffected()
	if n > 0 {
		err = appendAudit(ctx, tx, now, app.AuditEntry{SubjectID: userID, Action: app.AuditRequestClose,
			Detail: fmt.Sprintf(`{"kind":%q,"count":%d,"by":"system"}`, kind, n)})
	}
	return int(n), err
}
