package vault

import (
	"crypto/cipher"
	"crypto/rand"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"net/url"
	"os"

	"zimage/app"
)

// secure_delete zeroes freed pages so a shredded key's bytes do not linger
// in the file; Shred also truncates the WAL for the same reason.
const keyringPragmas = "?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=secure_delete(1)&_txlock=immediate"

const keyringSchema = `
CREATE TABLE IF NOT EXISTS meta (
	name  TEXT PRIMARY KEY,
	value BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS user_keys (
	user_id      TEXT NOT NULL,
	version      INTEGER NOT NULL,
	wrapped      BLOB,
	created_at   TEXT NOT NULL,
	destroyed_at TEXT,
	PRIMARY KEY (user_id, version)
);`

// timeFormat sorts as text, so SQL comparisons on stamps work.
const timeFormat = "2006-01-02T15:04:05.000000000Z"

func openKeyringDB(path string) (*sql.DB, error) {
	// synchronous(FULL), not NORMAL: a key that a sealed file already
	// depends on must survive a power cut.
	dsn := "file:" + (&url.URL{Path: path}).EscapedPath() + keyringPragmas
	// Create the file private before SQLite does (it would use the umask:
	// 0644 under the usual 022); the -wal and -shm files copy its mode.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, app.Wrap(err, "Could not create the keyring %s: check that the data folder is writable by the account running Z Image.", path)
	}
	f.Close()
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, app.Wrap(err, "Could not open the keyring %s.", path)
	}
	// One connection: keyring traffic is cache misses, and a single writer
	// keeps SQLITE_BUSY and WAL checkpoints simple.
	db.SetMaxOpenConns(1)
	if _, err := db.Exec(keyringSchema); err != nil {
		db.Close()
		return nil, app.Wrap(err, "Could not open the keyring %s: check that it is a SQLite file the server may read and write, or restore it from your most recent keyring backup.", path)
	}
	return db, nil
}

// EnsureUserKey gives userID a data key unless it has one. It refuses to
// give a shredded user a new key: their id must not come back to life.
func (v *Vault) EnsureUserKey(userID string) error {
	if err := checkUserID(userID); err != nil {
		return err
	}
	key := make([]byte, KeySize)
	rand.Read(key)
	defer clear(key)
	const version = 1
	// Held until commit: a Rotate in between would otherwise leave this key
	// wrapped by a master key the keyring no longer uses.
	v.mu.RLock()
	defer v.mu.RUnlock()
	wrapped, err := wrap(v.master, key, userKeyAD(userID, version))
	if err != nil {
		return fmt.Errorf("vault: ensure key: %w", err)
	}
	tx, err := v.db.Begin()
	if err != nil {
		return fmt.Errorf("vault: ensure key: %w", err)
	}
	defer tx.Rollback()
	var destroyed sql.NullString
	err = tx.QueryRow(`SELECT destroyed_at FROM user_keys WHERE user_id = ? ORDER BY version DESC LIMIT 1`, userID).Scan(&destroyed)
	switch {
	case err == nil && destroyed.Valid:
		return fmt.Errorf("vault: ensure key: %w", ErrKeyDestroyed)
	case err == nil:
		return nil
	case !errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("vault: ensure key: %w", err)
	}
	if _, err := tx.Exec(`INSERT INTO user_keys (user_id, version, wrapped, created_at) VALUES (?, ?, ?, ?)`,
		userID, version, wrapped, v.now().UTC().Format(timeFormat)); err != nil {
		return fmt.Errorf("vault: ensure key: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("vault: ensure key: %w", err)
	}
	return nil
}

// HasKey reports whether userID has a live (not shredded) key. A keyring
// that cannot be read counts as no key.
func (v *Vault) HasKey(userID string) bool {
	var n int
	err := v.db.QueryRow(`SELECT COUNT(*) FROM user_keys WHERE user_id = ? AND wrapped IS NOT NULL`, userID).Scan(&n)
	return err == nil && n > 0
}

// KeyDestroyed reports whether userID's key was shredded: the keyring
// keeps a tombstone, so "deleted" can be told from "never had a key here"
// (a keyring older than the account).
func (v *Vault) KeyDestroyed(userID string) bool {
	var n int
	err := v.db.QueryRow(`SELECT COUNT(*) FROM user_keys WHERE user_id = ? AND destroyed_at IS NOT NULL`, userID).Scan(&n)
	return err == nil && n > 0
}

// Shred destroys userID's key material: every byte ever sealed for them,
// in any copy, becomes unreadable. The row stays as a tombstone with its
// key overwritten, so later reads say "deleted" rather than "never
// existed" and EnsureUserKey cannot revive the id. Shredding a user without
// a key is not an error: deleting an account must be repeatable.
func (v *Vault) Shred(userID string) error {
	if err := checkUserID(userID); err != nil {
		return err
	}
	now := v.now().UTC().Format(timeFormat)
	// zeroblob first, then NULL: the first UPDATE rewrites the cell in
	// place with zeros; secure_delete zeroes whatever the second frees.
	tx, err := v.db.Begin()
	if err != nil {
		return fmt.Errorf("vault: shred: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.Exec(`UPDATE user_keys SET wrapped = zeroblob(length(wrapped)) WHERE user_id = ? AND wrapped IS NOT NULL`, userID); err != nil {
		return fmt.Errorf("vault: shred: %w", err)
	}
	if _, err := tx.Exec(`UPDATE user_keys SET wrapped = NULL, destroyed_at = COALESCE(destroyed_at, ?) WHERE user_id = ?`, now, userID); err != nil {
		return fmt.Errorf("vault: shred: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("vault: shred: %w", err)
	}
	v.cache.evict(userID)
	// The WAL still holds the page as it was before the shred; copy the
	// new page into the database and cut the WAL to zero length.
	if err := v.checkpoint(); err != nil {
		return fmt.Errorf("vault: shred: the key is destroyed, but its old copy may remain in the keyring's WAL until the next checkpoint: %w", err)
	}
	return nil
}

func (v *Vault) checkpoint() error {
	var busy, logFrames, checkpointed int
	if err := v.db.QueryRow(`PRAGMA wal_checkpoint(TRUNCATE)`).Scan(&busy, &logFrames, &checkpointed); err != nil {
		return err
	}
	if busy != 0 {
		return errors.New("checkpoint was blocked by a reader")
	}
	return nil
}

// userKeys is everything needed to seal and open for one user.
type userKeys struct {
	current  uint32
	versions map[uint32]dataKey
}

type dataKey struct {
	raw  []byte // for deriving per-stream keys
	aead cipher.AEAD
}

// keysFor returns userID's keys from the cache or the keyring.
func (v *Vault) keysFor(userID string) (*userKeys, error) {
	if k := v.cache.get(userID); k != nil {
		return k, nil
	}
	// A Shred that commits while we read must win: gen tells the cache to
	// drop what we loaded if a shred happened in between.
	gen := v.cache.generation()
	// Held while reading so rows and master key come from the same side of
	// a Rotate.
	v.mu.RLock()
	defer v.mu.RUnlock()
	master := v.master
	rows, err := v.db.Query(`SELECT version, wrapped FROM user_keys WHERE user_id = ?`, userID)
	if err != nil {
		return nil, fmt.Errorf("vault: load key: %w", err)
	}
	defer rows.Close()
	k := &userKeys{versions: map[uint32]dataKey{}}
	destroyed := false
	for rows.Next() {
		var version int64
		var wrapped []byte
		if err := rows.Scan(&version, &wrapped); err != nil {
			return nil, fmt.Errorf("vault: load key: %w", err)
		}
		if wrapped == nil {
			destroyed = true
			continue
		}
		raw, err := unwrap(master, wrapped, userKeyAD(userID, uint32(version)))
		if err != nil {
			return nil, &app.Error{Code: app.EINTERNAL, Message: "A user key in the keyring does not open with the master key: the keyring is damaged. Restore keyring.db from your most recent keyring backup.", Err: err}
		}
		aead, err := newGCM(raw)
		if err != nil {
			return nil, fmt.Errorf("vault: load key: %w", err)
		}
		k.versions[uint32(version)] = dataKey{raw: raw, aead: aead}
		k.current = max(k.current, uint32(version))
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("vault: load key: %w", err)
	}
	if len(k.versions) == 0 {
		if destroyed {
			return nil, ErrKeyDestroyed
		}
		return nil, ErrNoKey
	}
	v.cache.put(userID, k, gen)
	return k, nil
}

// userKeyAD binds a wrapped key to its owner and version, so a wrapped key
// copied to another user's row does not unwrap.
func userKeyAD(userID string, version uint32) []byte {
	ad := appendField([]byte("zimage/vault/user-key/v1"), []byte(userID))
	return binary.BigEndian.AppendUint32(ad, version)
}

// appendField appends a length-prefixed field, so ("ab","c") and
// ("a","bc") never give the same associated data.
func appendField(dst, field []byte) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(field)))
	return append(dst, field...)
}

func checkUserID(userID string) error {
	if userID == "" {
		return &app.Error{Code: app.EINVALID, Message: "A user id is required."}
	}
	return nil
}
