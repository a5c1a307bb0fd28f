// Package sqlite is Z Image's store: one SQLite file opened as a single
// writer connection plus a pool of readers, append-only migrations, and one
// file per noun holding that noun's plain SQL.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"zimage/app"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// applicationID marks a database as Z Image's ("ZIMG"), so a start against
// another program's SQLite file is refused instead of migrated.
const applicationID = 0x5A494D47

// DB is the store. Writes go through one connection (SQLite allows one
// writer; a pool would only queue on its lock), reads through a pool.
type DB struct {
	Path string
	w    *sql.DB
	r    *sql.DB
	// Now is the clock every store method uses, so retention and expiry
	// can be tested at any date.
	Now func() time.Time

	// stmts holds the prepared statements of hot reads, by their SQL:
	// parsing a query costs as much as running a small one.
	stmts sync.Map // string → *sql.Stmt
	// writes counts committed write transactions; caches of rows (see
	// authCache) compare it to know that what they hold may be stale.
	writes atomic.Uint64
	keys   authCache
}

func dsn(path string, readOnly bool) string {
	q := url.Values{}
	// busy_timeout first: modernc applies pragmas in order and the others
	// may need to wait for a lock.
	pragmas := []string{"busy_timeout(5000)", "journal_mode(WAL)", "synchronous(NORMAL)", "foreign_keys(1)", "cache_size(-16384)",
		// Freed pages are zeroed, so purged personal data leaves no
		// plaintext behind in the file.
		"secure_delete(1)"}
	if readOnly {
		pragmas = append(pragmas, "query_only(1)")
	}
	for _, p := range pragmas {
		q.Add("_pragma", p)
	}
	q.Set("_txlock", "immediate")
	return "file:" + escapePath(path) + "?" + q.Encode()
}

// escapePath makes path safe inside a file: URI: a '#' or '?' in a folder
// name would otherwise end the path there and open another file.
func escapePath(path string) string { return (&url.URL{Path: path}).EscapedPath() }

// Open opens (creating if needed) the database at path and brings its
// schema up to date. A file that is not a Z Image database, is corrupt, or
// was written by a newer version is refused with a message saying what to do.
func Open(ctx context.Context, path string) (*DB, error) {
	if err := checkIdentity(ctx, path); err != nil {
		return nil, err
	}
	// Create the file private before SQLite does (it would use the umask);
	// the -wal and -shm files copy its mode.
	if f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600); err != nil {
		return nil, fmt.Errorf("sqlite: create %s: %w", path, err)
	} else {
		f.Close()
	}
	w, err := sql.Open("sqlite", dsn(path, false))
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetConnMaxIdleTime(0)
	db := &DB{Path: path, w: w, Now: func() time.Time { return time.Now().UTC() }}
	if err := db.migrate(ctx); err != nil {
		w.Close()
		return nil, err
	}
	r, err := sql.Open("sqlite", dsn(path, true))
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlite: open readers %s: %w", path, err)
	}
	// A read is CPU work once the pages are cached, so more readers than
	// about two per core only queue. Every open reader stays open: one
	// closed after a burst takes its prepared statements and page cache
	// with it, and the next burst pays to open, parse and warm it again
	// (database/sql keeps only 2 idle connections unless told).
	readers := max(4, 2*runtime.NumCPU())
	r.SetMaxOpenConns(readers)
	r.SetMaxIdleConns(readers)
	r.SetConnMaxIdleTime(0)
	db.r = r
	return db, nil
}

// Close closes both pools; the last close checkpoints the WAL.
func (db *DB) Close() error {
	var errs []error
	db.stmts.Range(func(_, v any) bool {
		errs = append(errs, v.(*sql.Stmt).Close())
		return true
	})
	if db.r != nil {
		errs = append(errs, db.r.Close())
	}
	errs = append(errs, db.w.Close())
	return errors.Join(errs...)
}

// checkIdentity refuses foreign and corrupt files before anything is
// written: it reads through a read-only connection, because opening with our
// pragmas would already switch another program's file to WAL mode.
func checkIdentity(ctx context.Context, path string) error {
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	ro, err := sql.Open("sqlite", "file:"+escapePath(path)+"?mode=ro")
	if err != nil {
		return fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	defer ro.Close()
	var appID, version int
	if err := ro.QueryRowContext(ctx, "PRAGMA application_id").Scan(&appID); err != nil {
		return notOurs(path, err)
	}
	if err := ro.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil {
		return notOurs(path, err)
	}
	if appID == applicationID {
		return nil
	}
	if appID != 0 {
		return &app.Error{Code: app.EINVALID, Message: fmt.Sprintf("%s belongs to another program (SQLite application id %#x), not Z Image: point server.data_dir at Z Image's own folder", path, appID)}
	}
	var tables int
	if err := ro.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_schema").Scan(&tables); err != nil {
		return notOurs(path, err)
	}
	if tables > 0 || version > 0 {
		return &app.Error{Code: app.EINVALID, Message: fmt.Sprintf("%s is an SQLite database of another program, not Z Image: point server.data_dir at Z Image's own folder", path)}
	}
	return nil
}

func notOurs(path string, err error) error {
	var se *sqlite.Error
	if errors.As(err, &se) && (se.Code() == sqlite3.SQLITE_NOTADB || se.Code() == sqlite3.SQLITE_CORRUPT) {
		return &app.Error{Code: app.EINVALID, Message: fmt.Sprintf("%s is not a usable Z Image database (not SQLite, or corrupt): restore it from a backup (zimage restore) or move it away to start fresh", path), Err: err}
	}
	return fmt.Errorf("sqlite: read %s: %w", path, err)
}

// tx runs fn in one write transaction.
func (db *DB) tx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	// After the commit, never before: a reader that loads a row between
	// the two would otherwise cache the old row as current.
	db.writes.Add(1)
	return nil
}

// prepared returns the reader pool's prepared statement for query,
// preparing it on first use. database/sql prepares it again on each reader
// connection as needed, and keeps it there.
func (db *DB) prepared(ctx context.Context, query string) (*sql.Stmt, error) {
	if s, ok := db.stmts.Load(query); ok {
		return s.(*sql.Stmt), nil
	}
	s, err := db.r.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	if prev, loaded := db.stmts.LoadOrStore(query, s); loaded {
		s.Close()
		return prev.(*sql.Stmt), nil
	}
	return s, nil
}

// readRow runs a one-row read through its prepared statement. One that
// cannot be prepared runs unprepared, so its error comes out of Scan as
// usual.
func (db *DB) readRow(ctx context.Context, query string, args ...any) *sql.Row {
	s, err := db.prepared(ctx, query)
	if err != nil {
		return db.r.QueryRowContext(ctx, query, args...)
	}
	return s.QueryRowContext(ctx, args...)
}

// read runs a read through its prepared statement.
func (db *DB) read(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	s, err := db.prepared(ctx, query)
	if err != nil {
		return nil, err
	}
	return s.QueryContext(ctx, args...)
}

// Ready reports whether the database is writable and its schema current;
// /readyz calls it.
func (db *DB) Ready(ctx context.Context) error {
	v, err := db.SchemaVersion(ctx)
	if err != nil {
		return err
	}
	if v != len(migrations) {
		return fmt.Errorf("sqlite: schema version %d, want %d", v, len(migrations))
	}
	// BEGIN IMMEDIATE takes the write lock: proof that a write would succeed
	// now, without writing anything.
	return db.tx(ctx, func(tx *sql.Tx) error { return nil })
}

// SchemaVersion returns the number of migrations applied.
func (db *DB) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	err := db.w.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v)
	return v, err
}

// LatestSchemaVersion is the version this binary migrates to.
func LatestSchemaVersion() int { return len(migrations) }

// IntegrityCheck runs SQLite's integrity check and returns its findings.
func (db *DB) IntegrityCheck(ctx context.Context) error {
	rows, err := db.r.QueryContext(ctx, "PRAGMA integrity_check")
	if err != nil {
		return fmt.Errorf("sqlite: integrity check: %w", err)
	}
	defer rows.Close()
	var problems []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return err
		}
		if s != "ok" {
			problems = append(problems, s)
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("sqlite: integrity check found: %s", strings.Join(problems, "; "))
	}
	return rows.Err()
}

// SnapshotTo writes a consistent copy of the live database to path (which
// must not exist), without stopping writers: VACUUM INTO reads one snapshot.
func (db *DB) SnapshotTo(ctx context.Context, path string) error {
	// VACUUM INTO accepts an existing empty file: creating it first, with
	// O_EXCL and 0600, keeps the copy private whatever the umask and never
	// overwrites anything.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return fmt.Errorf("sqlite: snapshot: %s already exists", path)
	} else if err != nil {
		return fmt.Errorf("sqlite: snapshot: %w", err)
	}
	f.Close()
	// Its own connection: the readers are query_only, and the writer must
	// stay free for requests while the copy is made.
	c, err := sql.Open("sqlite", dsn(db.Path, false))
	if err != nil {
		os.Remove(path)
		return fmt.Errorf("sqlite: snapshot: %w", err)
	}
	defer c.Close()
	if _, err := c.ExecContext(ctx, "VACUUM INTO ?", path); err != nil {
		os.Remove(path)
		return fmt.Errorf("sqlite: snapshot to %s: %w", path, err)
	}
	// A snapshot leaves this machine (that is what backups are for): it
	// keeps usernames only sealed.
	if err := scrubUsernames(ctx, path); err != nil {
		os.Remove(path)
		return err
	}
	return nil
}

// IsBusy reports a lock timeout, which callers may retry.
func IsBusy(err error) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && (se.Code()&0xff == sqlite3.SQLITE_BUSY)
}
