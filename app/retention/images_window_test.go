package retention

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"zimage/app"
	"zimage/app/media"
	"zimage/app/sqlite"
	"zimage/app/vault"
)

// imagesEnv is the images job over the real media store and database,
// with the database's clock in the test's hands.
type imagesEnv struct {
	db  *sqlite.DB
	dir string
	v   *vault.Vault
	now time.Time
}

func newImagesEnv(t *testing.T, start time.Time) *imagesEnv {
	t.Helper()
	dir := t.TempDir()
	e := &imagesEnv{dir: dir, db: openDB(t, filepath.Join(dir, "zimage.db")), now: start}
	e.db.Now = func() time.Time { return e.now }
	v, err := vault.Open(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })
	e.v = v
	return e
}

// store opens the media store as a start with retention.images = window
// would.
func (e *imagesEnv) store(t *testing.T, window time.Duration) *media.Store {
	t.Helper()
	m, err := media.New(e.dir, e.db, e.v, media.Options{ImagesRetention: window})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// stored inserts an image made at created under window.
func (e *imagesEnv) stored(t *testing.T, id string, created time.Time, window time.Duration) {
	t.Helper()
	row := sqlite.ImageRow{Image: app.Image{ID: id, UserID: "alice", GenerationID: "g-" + id, Width: 64, Height: 64,
		ContentType: "image/png", Bytes: 1, Steps: 8, Backend: "builtin", Model: "m", CreatedAt: created, ExpiresAt: created.Add(window)},
		SealedPrompt: []byte("p"), SealedNegativePrompt: []byte("n")}
	if err := e.db.InsertImages(context.Background(), []sqlite.ImageRow{row}); err != nil {
		t.Fatal(err)
	}
}

// expiry is what the gallery's countdown shows for id; zero once deleted.
func (e *imagesEnv) expiry(t *testing.T, id string) time.Time {
	t.Helper()
	r, err := e.db.Image(context.Background(), "alice", id)
	if app.ErrorCode(err) == app.ENOTFOUND {
		return time.Time{}
	} else if err != nil {
		t.Fatal(err)
	}
	return r.ExpiresAt
}

func (e *imagesEnv) run(t *testing.T, window time.Duration, m *media.Store, at time.Time, dryRun bool) int {
	t.Helper()
	e.now = at
	r := newRunner(t, e.db, "test")
	if err := r.Register(ImagesJob(window, m)); err != nil {
		t.Fatal(err)
	}
	rep, err := r.Run(context.Background(), "images", at, dryRun)
	if err != nil {
		t.Fatal(err)
	}
	return rep.Removed
}

// When an admin shortens retention.images, images already stored follow
// the shorter window at the next run (dry runs report it, changing
// nothing), and their countdown shows it; a longer window never moves an
// expiry later than people were told.
func TestImagesJobFollowsTheCurrentWindow(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name       string
		madeUnder  time.Duration // window when the images were made
		window     time.Duration // window configured now
		at         time.Time
		dryRun     bool
		wantGone   int
		wantExpiry map[string]time.Time // zero: deleted
	}{
		{"shorter window, before its end: countdown comes down", 90 * day, 30 * day, t0.Add(29 * day), false, 0,
			map[string]time.Time{"old": t0.Add(30 * day), "young": t0.Add(50*day + 30*day)}},
		{"shorter window, after its end: deleted", 90 * day, 30 * day, t0.Add(31 * day), false, 1,
			map[string]time.Time{"old": {}, "young": t0.Add(50*day + 30*day)}},
		{"shorter window, dry run: counted, nothing changed", 90 * day, 30 * day, t0.Add(31 * day), true, 1,
			map[string]time.Time{"old": t0.Add(90 * day), "young": t0.Add(50*day + 90*day)}},
		{"longer window: expiries stay", 30 * day, 90 * day, t0.Add(29 * day), false, 0,
			map[string]time.Time{"old": t0.Add(30 * day), "young": t0.Add(50*day + 30*day)}},
		{"longer window: deleted when first promised", 30 * day, 90 * day, t0.Add(30 * day), false, 1,
			map[string]time.Time{"old": {}, "young": t0.Add(50*day + 30*day)}},
		{"longer window, dry run", 30 * day, 90 * day, t0.Add(30 * day), true, 1,
			map[string]time.Time{"old": t0.Add(30 * day), "young": t0.Add(50*day + 30*day)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newImagesEnv(t, t0)
			e.stored(t, "old", t0, tt.madeUnder)
			e.stored(t, "young", t0.Add(50*day), tt.madeUnder)
			m := e.store(t, tt.window)
			if got := e.run(t, tt.window, m, tt.at, tt.dryRun); got != tt.wantGone {
				t.Errorf("removed %d, want %d", got, tt.wantGone)
			}
			for id, want := range tt.wantExpiry {
				if got := e.expiry(t, id); !got.Equal(want) {
					t.Errorf("%s: expiry %v, want %v", id, got, want)
				}
			}
		})
	}
}

// At start, serve brings stored expiries within the configured window, so
// the countdown is honest before the first retention run.
func TestStartShortensStoredExpiries(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	e := newImagesEnv(t, t0)
	e.stored(t, "old", t0, 90*day)
	m := e.store(t, 30*day)
	if n, err := m.ShortenExpiries(context.Background()); err != nil || n != 1 {
		t.Fatalf("ShortenExpiries = %d, %v; want 1", n, err)
	}
	if got := e.expiry(t, "old"); !got.Equal(t0.Add(30 * day)) {
		t.Errorf("expiry %v, want %v", got, t0.Add(30*day))
	}
	if n, err := e.store(t, 90*day).ShortenExpiries(context.Background()); err != nil || n != 0 {
		t.Errorf("a longer window changed %d expiries, %v", n, err)
	}
}
