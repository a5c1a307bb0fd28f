package retention

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/robfig/cron/v3"

	"zimage/app"
	"zimage/app/sqlite"
	"zimage/app/vault"
)

const day = 24 * time.Hour

var asOf = time.Date(2026, 6, 15, 12, 30, 0, 0, time.UTC)

func openDB(t *testing.T, path string) *sqlite.DB {
	t.Helper()
	db, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	db.Now = func() time.Time { return asOf }
	return db
}

// dbAuditor writes to the real hash-chained audit log.
type dbAuditor struct{ db *sqlite.DB }

func (a dbAuditor) Append(ctx context.Context, action string, detail map[string]any) error {
	b, _ := json.Marshal(detail)
	return a.db.AppendAudit(ctx, app.AuditEntry{Action: action, Detail: string(b)})
}

func newRunner(t *testing.T, db *sqlite.DB, holder string) *Runner {
	t.Helper()
	return NewRunner(Options{DB: db, Auditor: dbAuditor{db}, BatchSize: 2, Holder: holder, Now: func() time.Time { return asOf }})
}

func listDir(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	return names
}

func TestKeyringBackupsJob(t *testing.T) {
	ages := []time.Duration{40 * day, 31 * day, 29*day + time.Hour, 10 * day, day}
	tests := []struct {
		name        string
		asOf        time.Time
		dryRun      bool
		wantRemoved int
	}{
		{"dry run counts and keeps", asOf, true, 3},
		{"run removes those older than the window", asOf, false, 3},
		{"as of the past removes less", asOf.Add(-10 * day), false, 1},
		{"as of the future (dry run) would remove more", asOf.Add(30 * day), true, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dataDir := t.TempDir()
			keys, err := vault.Open(dataDir, "")
			if err != nil {
				t.Fatal(err)
			}
			defer keys.Close()
			dir := filepath.Join(dataDir, "backups", "keyring")
			for _, age := range ages {
				if _, err := keys.BackupKeyring(dir, asOf.Add(-age)); err != nil {
					t.Fatal(err)
				}
			}
			os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("not a backup"), 0o600)
			before := listDir(t, dir)

			db := openDB(t, filepath.Join(dataDir, "zimage.db"))
			r := newRunner(t, db, "test")
			if err := r.Register(KeyringBackupsJob(dir, 29*day, keys)); err != nil {
				t.Fatal(err)
			}
			rep, err := r.Run(context.Background(), "keyring-backups", tt.asOf, tt.dryRun)
			if err != nil {
				t.Fatal(err)
			}
			if rep.Removed != tt.wantRemoved || rep.Files != tt.wantRemoved {
				t.Errorf("removed %d (files %d), want %d", rep.Removed, rep.Files, tt.wantRemoved)
			}
			after := listDir(t, dir)
			wantLeft := len(before)
			if !tt.dryRun {
				wantLeft -= tt.wantRemoved
			}
			if len(after) != wantLeft {
				t.Errorf("%d files left %v, want %d", len(after), after, wantLeft)
			}
			if !strings.Contains(strings.Join(after, " "), "notes.txt") {
				t.Error("a file not named like a backup was removed")
			}
			entries, err := db.AuditEntries(context.Background(), sqlite.AuditFilter{})
			if err != nil {
				t.Fatal(err)
			}
			if tt.dryRun && len(entries) != 0 {
				t.Errorf("a dry run wrote %d audit entries", len(entries))
			}
			if !tt.dryRun && (len(entries) != 1 || entries[0].Action != "retention.run" ||
				!strings.Contains(entries[0].Detail, fmt.Sprintf(`"removed":%d`, tt.wantRemoved))) {
				t.Errorf("audit entries = %+v", entries)
			}
		})
	}
}

// sqlImages is a small real image sweeper over its own SQLite table, in
// the shape app/media's store has: delete in batches, check ctx between.
type sqlImages struct {
	db      *sql.DB
	batches int
}

func newSQLImages(t *testing.T, expiries ...time.Time) *sqlImages {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(t.TempDir(), "images.db")+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { db.Close() })
	if _, err := db.Exec(`CREATE TABLE images (id INTEGER PRIMARY KEY, expires_at INTEGER NOT NULL) STRICT`); err != nil {
		t.Fatal(err)
	}
	for _, e := range expiries {
		if _, err := db.Exec(`INSERT INTO images (expires_at) VALUES (?)`, e.UnixMilli()); err != nil {
			t.Fatal(err)
		}
	}
	return &sqlImages{db: db}
}

func (s *sqlImages) DeleteExpired(ctx context.Context, now time.Time, _ time.Duration, batch int) (int, error) {
	total := 0
	for {
		if err := ctx.Err(); err != nil {
			return total, err
		}
		res, err := s.db.ExecContext(ctx, `DELETE FROM images WHERE id IN (SELECT id FROM images WHERE expires_at <= ? LIMIT ?)`, now.UnixMilli(), batch)
		if err != nil {
			return total, err
		}
		n, _ := res.RowsAffected()
		s.batches++
		total += int(n)
		if int(n) < batch {
			return total, nil
		}
	}
}

func (s *sqlImages) CountExpired(ctx context.Context, now time.Time, _ time.Duration) (int, error) {
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM images WHERE expires_at <= ?`, now.UnixMilli()).Scan(&n)
	return n, err
}

func (s *sqlImages) count(t *testing.T) int {
	t.Helper()
	var n int
	if err := s.db.QueryRow(`SELECT count(*) FROM images`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestImagesJob(t *testing.T) {
	expiries := []time.Time{asOf.Add(-3 * day), asOf.Add(-2 * day), asOf.Add(-time.Hour), asOf, asOf.Add(time.Hour), asOf.Add(30 * day)}
	tests := []struct {
		name        string
		asOf        time.Time
		dryRun      bool
		wantRemoved int
	}{
		{"dry run", asOf, true, 4},
		{"run", asOf, false, 4},
		{"past", asOf.Add(-36 * time.Hour), false, 2},
		{"future dry run", asOf.Add(31 * day), true, 6},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			imgs := newSQLImages(t, expiries...)
			r := newRunner(t, openDB(t, filepath.Join(t.TempDir(), "zimage.db")), "test")
			if err := r.Register(ImagesJob(90*day, imgs)); err != nil {
				t.Fatal(err)
			}
			reports, err := r.RunAll(context.Background(), tt.asOf, tt.dryRun)
			if err != nil {
				t.Fatal(err)
			}
			if len(reports) != 1 || reports[0].Removed != tt.wantRemoved {
				t.Fatalf("reports = %+v, want %d removed", reports, tt.wantRemoved)
			}
			wantLeft := len(expiries)
			if !tt.dryRun {
				wantLeft -= tt.wantRemoved
				// Batch size 2: more than one transaction, never one big one.
				if imgs.batches < tt.wantRemoved/2 {
					t.Errorf("%d batches for %d rows at batch size 2", imgs.batches, tt.wantRemoved)
				}
			}
			if got := imgs.count(t); got != wantLeft {
				t.Errorf("%d images left, want %d", got, wantLeft)
			}
		})
	}
}

func TestOverlappingRunsRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "zimage.db")
	db := openDB(t, path)
	started, finish := make(chan struct{}), make(chan struct{})
	blocking := Job{Name: "slow", Window: day, Run: func(ctx context.Context, _ time.Time, _ bool, _ int) (Result, error) {
		close(started)
		<-finish
		return Result{Removed: 1}, nil
	}}
	r := newRunner(t, db, "server")
	if err := r.Register(blocking); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	var firstErr error
	go func() {
		defer wg.Done()
		_, firstErr = r.Run(context.Background(), "slow", asOf, false)
	}()
	<-started

	// Same process.
	rep, err := r.Run(context.Background(), "slow", asOf, false)
	if app.ErrorCode(err) != app.ECONFLICT || !strings.Contains(err.Error(), "already running since 2026-06-15T12:30:00Z") {
		t.Errorf("second run in the same process: %v", err)
	}
	if rep.Err == "" {
		t.Error("the refused run's report has no error")
	}
	// Another process sharing the database (a CLI run beside the server).
	other := newRunner(t, openDB(t, path), "cli")
	other.Register(Job{Name: "slow", Window: day, Run: func(context.Context, time.Time, bool, int) (Result, error) {
		t.Error("the other process ran the job while it was running")
		return Result{}, nil
	}})
	if _, err := other.Run(context.Background(), "slow", asOf, false); app.ErrorCode(err) != app.ECONFLICT || !strings.Contains(err.Error(), "another process") {
		t.Errorf("run from another process: %v", err)
	}

	close(finish)
	wg.Wait()
	if firstErr != nil {
		t.Fatal(firstErr)
	}
	// Released: both may run again.
	other.jobs[0].Run = func(context.Context, time.Time, bool, int) (Result, error) { return Result{}, nil }
	if _, err := other.Run(context.Background(), "slow", asOf, false); err != nil {
		t.Errorf("after the first run ended: %v", err)
	}
}

func TestPanicRecoveredAndRecorded(t *testing.T) {
	path := filepath.Join(t.TempDir(), "zimage.db")
	db := openDB(t, path)
	r := newRunner(t, db, "test")
	calls := 0
	r.Register(Job{Name: "broken", Window: day, Run: func(context.Context, time.Time, bool, int) (Result, error) {
		calls++
		var m map[string]int
		m["boom"]++ // nil map: panics
		return Result{}, nil
	}})
	r.Register(Job{Name: "fine", Window: day, Run: func(context.Context, time.Time, bool, int) (Result, error) {
		return Result{Removed: 3, Files: 1, Details: map[string]int{"rows": 3}}, nil
	}})
	reports, err := r.RunAll(context.Background(), asOf, false)
	if err == nil || !strings.Contains(err.Error(), "retention job broken: panic: assignment to entry in nil map") {
		t.Fatalf("RunAll error = %v", err)
	}
	if len(reports) != 2 || reports[0].Err == "" || reports[1].Removed != 3 {
		t.Fatalf("a panicking job stopped the others: %+v", reports)
	}
	// The lease was released despite the panic.
	if _, err := r.Run(context.Background(), "broken", asOf, false); app.ErrorCode(err) == app.ECONFLICT || calls != 2 {
		t.Fatalf("second run after a panic: %v (calls %d)", err, calls)
	}

	// Status survives a restart: a new runner over the same file sees it.
	later := NewRunner(Options{DB: openDB(t, path)})
	later.Register(Job{Name: "broken", Window: day, Run: r.jobs[0].Run})
	later.Register(Job{Name: "fine", Window: 2 * day, Run: r.jobs[1].Run})
	later.Register(Job{Name: "never-run", Window: day, Run: r.jobs[1].Run})
	if err := later.SetSchedule("@hourly"); err != nil {
		t.Fatal(err)
	}
	sts, err := later.Status(context.Background(), asOf)
	if err != nil {
		t.Fatal(err)
	}
	if len(sts) != 3 {
		t.Fatalf("status = %+v", sts)
	}
	next := time.Date(2026, 6, 15, 13, 0, 0, 0, time.UTC)
	for _, st := range sts {
		if !st.Next.Equal(next) {
			t.Errorf("%s: next run %v, want %v", st.Name, st.Next, next)
		}
	}
	if sts[0].Last == nil || !strings.Contains(sts[0].Last.Error, "panic") {
		t.Errorf("broken: last = %+v", sts[0].Last)
	}
	if l := sts[1].Last; l == nil || l.Removed != 3 || l.Files != 1 || l.Details["rows"] != 3 || l.Error != "" || !l.AsOf.Equal(asOf) {
		t.Errorf("fine: last = %+v", l)
	}
	if sts[2].Last != nil {
		t.Errorf("never-run has a last run: %+v", sts[2].Last)
	}
}

func TestDryRunIsNotRecorded(t *testing.T) {
	db := openDB(t, filepath.Join(t.TempDir(), "zimage.db"))
	r := newRunner(t, db, "test")
	r.Register(Job{Name: "j", Window: day, Run: func(_ context.Context, _ time.Time, dry bool, _ int) (Result, error) {
		return Result{Removed: 5}, nil
	}})
	if _, err := r.Run(context.Background(), "j", asOf, true); err != nil {
		t.Fatal(err)
	}
	sts, _ := r.Status(context.Background(), asOf)
	if sts[0].Last != nil {
		t.Errorf("a dry run replaced the last real run: %+v", sts[0].Last)
	}
}

func TestCancelledContextStopsRunAll(t *testing.T) {
	r := newRunner(t, openDB(t, filepath.Join(t.TempDir(), "zimage.db")), "test")
	ran := 0
	for _, n := range []string{"a", "b"} {
		r.Register(Job{Name: n, Window: day, Run: func(context.Context, time.Time, bool, int) (Result, error) { ran++; return Result{}, nil }})
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := r.RunAll(ctx, asOf, false); !errors.Is(err, context.Canceled) || ran != 0 {
		t.Fatalf("err=%v ran=%d", err, ran)
	}
}

func TestRegisterAndScheduleRefuseBadInput(t *testing.T) {
	ok := func(context.Context, time.Time, bool, int) (Result, error) { return Result{}, nil }
	r := NewRunner(Options{})
	r.Register(Job{Name: "taken", Window: day, Run: ok})
	tests := []struct {
		name string
		job  Job
		code string
	}{
		{"no name", Job{Window: day, Run: ok}, app.EINVALID},
		{"zero window", Job{Name: "z", Run: ok}, app.EINVALID},
		{"negative window", Job{Name: "n", Window: -day, Run: ok}, app.EINVALID},
		{"no func", Job{Name: "f", Window: day}, app.EINVALID},
		{"duplicate", Job{Name: "taken", Window: day, Run: ok}, app.ECONFLICT},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := r.Register(tt.job); app.ErrorCode(err) != tt.code {
				t.Errorf("got %v, want %s", err, tt.code)
			}
		})
	}
	c := cron.New(cron.WithLocation(time.UTC))
	if err := r.Schedule(context.Background(), c, "every hour"); app.ErrorCode(err) != app.EINVALID || !strings.Contains(err.Error(), "@hourly") {
		t.Errorf("bad schedule: %v", err)
	}
	if _, err := r.Run(context.Background(), "nope", asOf, false); app.ErrorCode(err) != app.ENOTFOUND || !strings.Contains(err.Error(), "taken") {
		t.Errorf("unknown job: %v", err)
	}
}

func TestScheduledRunsUseCron(t *testing.T) {
	db := openDB(t, filepath.Join(t.TempDir(), "zimage.db"))
	done := make(chan time.Time, 1)
	r := newRunner(t, db, "server")
	r.Register(Job{Name: "tick", Window: day, Run: func(_ context.Context, at time.Time, dry bool, _ int) (Result, error) {
		if !dry {
			select {
			case done <- at:
			default:
			}
		}
		return Result{}, nil
	}})
	c := cron.New(cron.WithLocation(time.UTC), cron.WithSeconds())
	if err := r.Schedule(context.Background(), c, "@every 1s"); err != nil {
		t.Fatal(err)
	}
	c.Start()
	defer func() { <-c.Stop().Done() }()
	sts, _ := r.Status(context.Background(), asOf)
	if sts[0].Next.IsZero() || sts[0].Next.Before(time.Now().Add(-time.Second)) {
		t.Errorf("next run from cron = %v", sts[0].Next)
	}
	select {
	case at := <-done:
		if !at.Equal(asOf) {
			t.Errorf("scheduled run as of %v, want the runner's clock %v", at, asOf)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the scheduled job never ran")
	}
}
