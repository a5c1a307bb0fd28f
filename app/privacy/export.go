package privacy

import (
	"archive/zip"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"zimage/app"
	"zimage/app/sqlite"
)

// StreamSealer seals whole files as streams; *vault.Vault implements it.
type StreamSealer interface {
	Sealer
	SealWriter(userID string, aad []byte, w io.Writer) (io.WriteCloser, error)
	OpenReader(userID string, aad []byte, r io.Reader) (io.Reader, error)
}

// ProfileSource opens a person's profile (email, display name);
// *auth.Service implements it.
type ProfileSource interface {
	Profile(ctx context.Context, userID string) (*app.User, error)
}

// ImageSource lists a person's images with their prompts and opens their
// files; *media.Store implements it.
type ImageSource interface {
	List(ctx context.Context, userID, cursor string, limit int, query string) ([]app.Image, string, error)
	Open(ctx context.Context, userID, imageID, format, size string) (io.ReadCloser, string, int64, error)
}

// ExportOptions configure the export service.
type ExportOptions struct {
	// Dir holds the sealed archives: Dir/<user>/<id>.zip.sealed.
	Dir string
	// Keep is how long a finished archive can be downloaded
	// (retention.exports).
	Keep time.Duration
	Log  *slog.Logger
}

// Exports builds and serves data-export archives: everything Z Image holds
// on a person, as JSON with a JSON Schema per file plus the image files,
// in one ZIP sealed at rest with the person's key. Archives are built by
// one background worker (Start), one at a time per person.
type Exports struct {
	db       *sqlite.DB
	sealer   StreamSealer
	profiles ProfileSource
	images   ImageSource
	policies *Policies
	opts     ExportOptions

	kick chan struct{}
	wg   sync.WaitGroup
	stop context.CancelFunc
}

// NewExports returns the export service. policies may be nil (the README
// then says no policy version was published).
func NewExports(db *sqlite.DB, sealer StreamSealer, profiles ProfileSource, images ImageSource, policies *Policies, o ExportOptions) *Exports {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Keep <= 0 {
		o.Keep = 7 * 24 * time.Hour
	}
	return &Exports{db: db, sealer: sealer, profiles: profiles, images: images, policies: policies, opts: o, kick: make(chan struct{}, 1)}
}

func exportAAD(id string) []byte { return []byte("exports/" + id) }

func (x *Exports) path(userID, id string) string {
	return filepath.Join(x.opts.Dir, userID, id+".zip.sealed")
}

// Request asks for a new export of userID's data. A person whose previous
// export is still pending or running gets ECONFLICT naming it.
func (x *Exports) Request(ctx context.Context, userID string) (app.Export, error) {
	e := app.Export{ID: newID(x.db.Now()), UserID: userID}
	if err := x.db.CreateExport(ctx, &e, app.AuditEntry{ActorID: userID, SubjectID: userID, Action: app.AuditExportRequest,
		Detail: fmt.Sprintf(`{"export":%q}`, e.ID)}); err != nil {
		return e, err
	}
	x.wake()
	return e, nil
}

func (x *Exports) wake() {
	select {
	case x.kick <- struct{}{}:
	default:
	}
}

// List returns userID's exports, newest first.
func (x *Exports) List(ctx context.Context, userID string) ([]app.Export, error) {
	return x.db.ExportsOf(ctx, userID)
}

// Get returns userID's export id; another person's is ENOTFOUND.
func (x *Exports) Get(ctx context.Context, userID, id string) (app.Export, error) {
	return x.db.Export(ctx, userID, id)
}

// Open returns the decrypted archive of userID's ready export id, as a
// stream: an archive of a large gallery never sits in memory. Each 64 KiB
// chunk is authenticated before it is returned, and a cut-off file fails
// at its end, so a damaged archive breaks the download instead of passing
// for a complete one. An export past its expiry is EGONE; one not ready
// yet, or failed, ECONFLICT.
func (x *Exports) Open(ctx context.Context, userID, id string) (io.ReadCloser, app.Export, error) {
	e, err := x.db.Export(ctx, userID, id)
	if err != nil {
		return nil, e, err
	}
	switch {
	case e.Status == app.ExportPending || e.Status == app.ExportRunning:
		return nil, e, app.Errorf(app.ECONFLICT, "Export %s is still being made; try again in a moment (GET /api/v1/me/exports/%s shows its status).", id, id)
	case e.Status == app.ExportFailed:
		return nil, e, app.Errorf(app.ECONFLICT, "Export %s failed: %s Ask for a new one.", id, e.Error)
	case !x.db.Now().Before(e.ExpiresAt):
		return nil, e, app.Errorf(app.EGONE, "Export %s expired on %s and was deleted, as the privacy policy promises. Ask for a new one with POST /api/v1/me/exports.", id, e.ExpiresAt.Format(time.RFC3339))
	}
	f, err := os.Open(x.path(userID, id))
	if errors.Is(err, os.ErrNotExist) {
		return nil, e, app.Errorf(app.EGONE, "The archive of export %s is no longer on the server. Ask for a new one with POST /api/v1/me/exports.", id)
	} else if err != nil {
		return nil, e, app.Wrap(err, "Could not read export %s.", id)
	}
	r, err := x.sealer.OpenReader(userID, exportAAD(id), f)
	if err != nil {
		f.Close()
		return nil, e, app.Wrap(err, "Could not decrypt export %s.", id)
	}
	return struct {
		io.Reader
		io.Closer
	}{r, f}, e, nil
}

// Start runs the worker until ctx ends or Stop. It first takes up exports
// a previous run left pending or running (a crash or a restart mid-build
// leaves at most a temporary file, removed here), then waits for requests.
func (x *Exports) Start(ctx context.Context) {
	ctx, x.stop = context.WithCancel(ctx)
	x.wg.Add(1)
	go func() {
		defer x.wg.Done()
		x.removeTemporaries()
		for {
			x.drain(ctx)
			select {
			case <-ctx.Done():
				return
			case <-x.kick:
			}
		}
	}()
}

// Stop ends the worker and waits for it; an export it was building stays
// running in the database and is rebuilt at the next Start.
func (x *Exports) Stop() {
	if x.stop != nil {
		x.stop()
	}
	x.wg.Wait()
}

func (x *Exports) drain(ctx context.Context) {
	for ctx.Err() == nil {
		todo, err := x.db.UnfinishedExports(ctx)
		if err != nil {
			if ctx.Err() == nil {
				x.opts.Log.Error("exports: list pending", "err", err)
			}
			return
		}
		if len(todo) == 0 {
			return
		}
		for _, e := range todo {
			if ctx.Err() != nil {
				return
			}
			x.build(ctx, e)
		}
	}
}

// build writes one archive: sealed into a temporary file beside its final
// name, synced, renamed. Only then is the row marked ready, so a ready row
// always has a whole file.
func (x *Exports) build(ctx context.Context, e app.Export) {
	log := x.opts.Log.With("export", e.ID)
	if err := x.db.SetExportRunning(ctx, e.ID); err != nil {
		log.Error("exports: start", "err", err)
		return
	}
	size, err := x.writeSealed(ctx, e)
	if ctx.Err() != nil {
		return // shutting down: rebuilt at the next start
	}
	errText := ""
	if err != nil {
		log.Error("exports: build failed", "err", err)
		errText = app.ErrorMessage(err)
	}
	done, ferr := x.db.FinishExport(context.WithoutCancel(ctx), e.ID, size, errText, x.opts.Keep,
		[]string{app.RequestAccess, app.RequestPort}, "Answered by export "+e.ID+": the archive was ready to download.")
	if ferr != nil {
		log.Error("exports: finish", "err", ferr)
		return
	}
	log.Info("exports: done", "status", done.Status, "bytes", size)
}

func (x *Exports) writeSealed(ctx context.Context, e app.Export) (int64, error) {
	final := x.path(e.UserID, e.ID)
	if err := os.MkdirAll(filepath.Dir(final), 0o700); err != nil {
		return 0, app.Wrap(err, "Could not create the export folder.")
	}
	tmp := final + ".tmp-" + randomSuffix()
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return 0, app.Wrap(err, "Could not create the export file.")
	}
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	sw, err := x.sealer.SealWriter(e.UserID, exportAAD(e.ID), f)
	if err != nil {
		return 0, app.Wrap(err, "Could not encrypt the export.")
	}
	cw := &countingWriter{w: sw}
	if err := x.Write(ctx, e.UserID, cw); err != nil {
		return 0, err
	}
	if err := sw.Close(); err != nil {
		return 0, app.Wrap(err, "Could not write the export file.")
	}
	if err := f.Sync(); err != nil {
		return 0, app.Wrap(err, "Could not write the export file.")
	}
	if err := f.Close(); err != nil {
		return 0, app.Wrap(err, "Could not write the export file.")
	}
	if err := os.Rename(tmp, final); err != nil {
		return 0, app.Wrap(err, "Could not store the export file.")
	}
	// Until the folder is synced the rename may not survive a power cut,
	// and FinishExport would record an archive that is not there: fail the
	// export (the person can ask again) rather than promise a file.
	if err := syncDir(filepath.Dir(final)); err != nil {
		os.Remove(final)
		ok = true // f is closed and tmp renamed: nothing left for the deferred clean-up
		return 0, app.Wrap(err, "Could not store the export file.")
	}
	ok = true
	return cw.n, nil
}

// removeTemporaries deletes half-written archives a crash left behind.
func (x *Exports) removeTemporaries() {
	paths, _ := filepath.Glob(filepath.Join(x.opts.Dir, "*", "*.zip.sealed.tmp-*"))
	for _, p := range paths {
		if err := os.Remove(p); err != nil {
			x.opts.Log.Warn("exports: remove leftover temporary file", "path", p, "err", err)
		}
	}
}

// CountExpired counts exports whose download window has passed as of now.
func (x *Exports) CountExpired(ctx context.Context, now time.Time) (int, error) {
	return x.db.CountExpiredExports(ctx, now)
}

// DeleteExpired deletes the archives and rows of exports whose window
// passed as of now, batch at a time, files first so that a crash in
// between leaves a row the next run still finds.
func (x *Exports) DeleteExpired(ctx context.Context, now time.Time, batch int) (int, error) {
	return DeleteExpiredExports(ctx, x.db, x.opts.Dir, now, batch)
}

// DeleteExpiredExports is DeleteExpired without a running service: it
// needs no keys, so the CLI's retention run can call it too.
func DeleteExpiredExports(ctx context.Context, db *sqlite.DB, dir string, now time.Time, batch int) (int, error) {
	if batch <= 0 {
		batch = 500
	}
	total := 0
	for {
		if err := ctx.Err(); err != nil {
			return total, err
		}
		list, err := db.ExpiredExports(ctx, now, batch)
		if err != nil || len(list) == 0 {
			return total, err
		}
		ids := make([]string, 0, len(list))
		for _, e := range list {
			p := filepath.Join(dir, e.UserID, e.ID+".zip.sealed")
			if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
				return total, fmt.Errorf("exports: delete %s: %w", p, err)
			}
			os.Remove(filepath.Dir(p)) // only succeeds once the folder is empty
			ids = append(ids, e.ID)
		}
		n, err := db.DeleteExportRows(ctx, ids)
		total += n
		if err != nil {
			return total, err
		}
		if len(list) < batch {
			return total, nil
		}
	}
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

func randomSuffix() string {
	b := make([]byte, 6)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("exports: sync folder: %w", err)
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("exports: sync folder: %w", err)
	}
	return nil
}

// Write writes the plaintext ZIP of everything held on userID to w. The
// worker writes it into a sealed file; `zimage export` into a file an
// admin hands over. It reads through the store's reader pool only, so
// building a large archive never holds up writes.
func (x *Exports) Write(ctx context.Context, userID string, w io.Writer) error {
	zw := zip.NewWriter(w)
	b := &archive{ctx: ctx, x: x, userID: userID, zw: zw, made: x.db.Now().UTC()}
	if err := b.writeAll(); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return app.Wrap(err, "Could not finish the export archive.")
	}
	return nil
}

// ExportFiles names the archive's JSON files, in the order the README
// lists them, with what each holds.
var ExportFiles = []struct{ Name, About string }{
	{"account.json", "your account: id, username, role, when it was made, security settings (never your password)"},
	{"profile.json", "your profile: email address and display name"},
	{"consents.json", "every consent you gave or withdrew, with the policy version in force at the time"},
	{"sessions.json", "your signed-in browsers: device summary and approximate network, when they started and were last seen"},
	{"api_keys.json", "your API keys: names, visible prefixes, scopes and dates (never the keys themselves)"},
	{"generations.json", "every generation request we still hold: prompts and parameters, status, timings"},
	{"images.json", "your images: parameters, prompts, dates, and the file of each in images/"},
	{"usage_events.json", "first-party usage events recorded about you (kind, route pattern, time)"},
	{"tickets.json", "your support tickets with every message, staff replies included"},
	{"audit.json", "audit log entries about you or made by you (staff are not named)"},
	{"requests.json", "your data-rights requests, their due dates and how they were answered"},
}
