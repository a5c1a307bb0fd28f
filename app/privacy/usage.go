package privacy

import (
	"context"
	"log/slog"
	"time"

	"zimage/app"
	"zimage/app/sqlite"
)

// Usage records first-party usage events: what kind of thing happened on
// which route pattern, never an address or a prompt. Whether a request
// may be counted at all (the person's objection, restriction, or their
// browser's Global Privacy Control) is the caller's to check first: only
// the caller sees the request.
type Usage struct {
	db  *sqlite.DB
	log *slog.Logger
}

// NewUsage returns the service.
func NewUsage(db *sqlite.DB, log *slog.Logger) *Usage {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Usage{db: db, log: log}
}

// Record stores one event for userID ("" for an anonymous visitor).
// Failures are logged, never returned: usage counting must not break the
// request it counts.
func (u *Usage) Record(ctx context.Context, userID, kind, route string) {
	if err := u.db.RecordUsage(ctx, app.UsageEvent{UserID: userID, Kind: kind, Route: route}); err != nil {
		u.log.Warn("usage: record", "kind", kind, "err", err)
	}
}

// UsageSweep is the usage retention job's work: usage events older than
// the cutoff, and sessions last seen before it. It needs only the store.
type UsageSweep struct{ DB *sqlite.DB }

// CountBefore counts what DeleteBefore would remove.
func (s UsageSweep) CountBefore(ctx context.Context, cutoff time.Time) (events, sessions int, err error) {
	return s.DB.CountUsageBefore(ctx, cutoff)
}

// DeleteBefore removes usage events and sessions older than cutoff.
func (s UsageSweep) DeleteBefore(ctx context.Context, cutoff time.Time, batch int) (events, sessions int, err error) {
	if events, err = s.DB.DeleteUsageBefore(ctx, cutoff, batch); err != nil {
		return events, 0, err
	}
	sessions, err = s.DB.DeleteSessionsSeenBefore(ctx, cutoff, batch)
	return events, sessions, err
}
