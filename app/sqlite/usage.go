package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"zimage/app"
)

// RecordUsage stores one usage event, stamped now.
func (db *DB) RecordUsage(ctx context.Context, e app.UsageEvent) error {
	if e.Detail == "" {
		e.Detail = "{}"
	}
	var user any
	if e.UserID != "" {
		user = e.UserID
	}
	if _, err := db.w.ExecContext(ctx, `INSERT INTO usage_events (user_id, kind, route, at, detail) VALUES (?,?,?,?,?)`,
		user, e.Kind, e.Route, db.Now().UnixMilli(), e.Detail); err != nil {
		return fmt.Errorf("sqlite: record usage: %w", err)
	}
	return nil
}

// UsageEventsOf returns userID's usage events, oldest first.
func (db *DB) UsageEventsOf(ctx context.Context, userID string) ([]app.UsageEvent, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT id, user_id, kind, route, at, detail FROM usage_events
		WHERE user_id = ? ORDER BY at, id`, userID)
	if err != nil {
		return nil, fmt.Errorf("sqlite: usage events: %w", err)
	}
	defer rows.Close()
	var out []app.UsageEvent
	for rows.Next() {
		var e app.UsageEvent
		var user sql.NullString
		var at int64
		if err := rows.Scan(&e.ID, &user, &e.Kind, &e.Route, &at, &e.Detail); err != nil {
			return nil, fmt.Errorf("sqlite: usage events: %w", err)
		}
		e.UserID, e.At = user.String, fromMillis(at)
		out = append(out, e)
	}
	return out, rows.Err()
}

// CountUsageBefore counts usage events older than cutoff, and sessions
// last seen before it (their device and place are usage metadata too).
func (db *DB) CountUsageBefore(ctx context.Context, cutoff time.Time) (events, sessions int, err error) {
	err = db.r.QueryRowContext(ctx, `SELECT (SELECT count(*) FROM usage_events WHERE at < ?),
		(SELECT count(*) FROM sessions WHERE last_seen_at < ?)`, cutoff.UnixMilli(), cutoff.UnixMilli()).Scan(&events, &sessions)
	if err != nil {
		return 0, 0, fmt.Errorf("sqlite: count old usage: %w", err)
	}
	return events, sessions, nil
}

// DeleteUsageBefore removes usage events older than cutoff in batches.
func (db *DB) DeleteUsageBefore(ctx context.Context, cutoff time.Time, batch int) (int, error) {
	return db.deleteInBatches(ctx, "old usage events", `DELETE FROM usage_events WHERE id IN
		(SELECT id FROM usage_events WHERE at < ? ORDER BY at LIMIT ?)`, cutoff.UnixMilli(), batch)
}

// DeleteSessionsSeenBefore removes sessions (with their device and place)
// last seen before cutoff. Sessions expire far sooner; this is the
// backstop that keeps the usage window true whatever the session settings.
func (db *DB) DeleteSessionsSeenBefore(ctx context.Context, cutoff time.Time, batch int) (int, error) {
	return db.deleteInBatches(ctx, "old sessions", `DELETE FROM sessions WHERE id IN
		(SELECT id FROM sessions WHERE last_seen_at < ? LIMIT ?)`, cutoff.UnixMilli(), batch)
}
