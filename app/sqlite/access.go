package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"zimage/app"
)

// AccessGrantRecord is a grant as stored: the reason stays sealed with the
// person's key.
type AccessGrantRecord struct {
	app.AccessGrant
	SealedReason []byte
}

// CreateAccessGrant records an admin's access to a person's content, with
// its audit entry, in one transaction. CreatedAt is stamped here and
// ExpiresAt is CreatedAt plus ttl.
func (db *DB) CreateAccessGrant(ctx context.Context, g *AccessGrantRecord, ttl time.Duration, audit ...app.AuditEntry) error {
	now := db.Now().Truncate(time.Millisecond)
	g.CreatedAt, g.ExpiresAt = now, now.Add(ttl)
	err := db.tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO access_grants (id, user_id, admin_id, reason, created_at, expires_at) VALUES (?,?,?,?,?,?)`,
			g.ID, g.UserID, g.AdminID, g.SealedReason, now.UnixMilli(), g.ExpiresAt.UnixMilli())
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
		return fmt.Errorf("sqlite: create access grant: %w", err)
	}
	return nil
}

// ActiveAccessGrant returns the newest unexpired grant of adminID to
// userID's content, or ENOTFOUND.
func (db *DB) ActiveAccessGrant(ctx context.Context, adminID, userID string) (*AccessGrantRecord, error) {
	g, err := scanGrant(db.r.QueryRowContext(ctx, `SELECT id, user_id, admin_id, reason, created_at, expires_at FROM access_grants
		WHERE user_id = ? AND admin_id = ? AND expires_at > ? ORDER BY created_at DESC LIMIT 1`, userID, adminID, db.Now().UnixMilli()))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, app.Errorf(app.ENOTFOUND, "no access grant")
	} else if err != nil {
		return nil, fmt.Errorf("sqlite: access grant: %w", err)
	}
	return g, nil
}

// AccessGrants returns every grant to userID's content, newest first: the
// person's access history.
func (db *DB) AccessGrants(ctx context.Context, userID string) ([]*AccessGrantRecord, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT id, user_id, admin_id, reason, created_at, expires_at FROM access_grants
		WHERE user_id = ? ORDER BY created_at DESC, id DESC`, userID)
	if err != nil {
		return nil, fmt.Errorf("sqlite: access grants: %w", err)
	}
	defer rows.Close()
	var out []*AccessGrantRecord
	for rows.Next() {
		g, err := scanGrant(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: access grants: %w", err)
		}
		out = append(out, g)
	}
	return out, rows.Err()
}

func scanGrant(s rowScanner) (*AccessGrantRecord, error) {
	var g AccessGrantRecord
	var created, expires int64
	if err := s.Scan(&g.ID, &g.UserID, &g.AdminID, &g.SealedReason, &created, &expires); err != nil {
		return nil, err
	}
	g.CreatedAt, g.ExpiresAt = fromMillis(created), fromMillis(expires)
	return &g, nil
}
