// Package vault keeps personal data encrypted at rest and makes deleting it
// final, backups included.
//
// A master key (master.key in the data directory, or ZIMAGE_MASTER_KEY)
// wraps one random data key per user; those wrapped keys live in their own
// SQLite file, keyring.db, apart from the main database so that data backups
// never carry user keys. Everything personal is sealed with its owner's key.
// Destroying that key (Shred) makes every copy of the owner's ciphertext
// unreadable at once — in the live data and in every data backup — which is
// how "deleted within 30 days" can hold for backups we cannot edit. The same
// reasoning is why keyring backups must themselves expire inside 30 days:
// a keyring backup taken before a Shred still opens the shredded user's data.
//
// Restoring a keyring backup (see BackupKeyring) is copying the backup file
// back to <dataDir>/keyring.db while the server is stopped, and removing any
// keyring.db-wal and keyring.db-shm beside it. It opens only with the master
// key that was current when the backup was taken.
package vault

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"zimage/app"

	_ "modernc.org/sqlite"
)

// File names inside the data directory.
const (
	MasterKeyFile    = "master.key"
	masterKeyNewFile = "master.key.new" // exists only while a rotation is in flight
	KeyringFile      = "keyring.db"
)

// KeySize is the size of the master key and of every data key: AES-256.
const KeySize = 32

// Errors callers branch on. They are wrapped with context; test with
// errors.Is.
var (
	// ErrTampered means sealed bytes did not authenticate: they were
	// truncated, altered, copied from another row or user, or sealed by
	// another installation. The data cannot be trusted or recovered.
	ErrTampered = errors.New("vault: sealed data is damaged, was altered, or belongs to another record")
	// ErrKeyDestroyed means the user's key was shredded: their data is
	// gone for good, which is what account deletion promises.
	ErrKeyDestroyed = &app.Error{Code: app.ENOTFOUND, Message: "This account's data was deleted and can no longer be read."}
	// ErrNoKey means the user never got a key: EnsureUserKey was not
	// called when the account was created.
	ErrNoKey = errors.New("vault: user has no data key (EnsureUserKey must run when the account is created)")
)

// Vault seals and opens personal data with per-user keys. It is safe for
// concurrent use.
type Vault struct {
	dataDir string
	fromEnv bool
	db      *sql.DB
	now     func() time.Time
	log     *slog.Logger

	// mu guards master and blindKey, which Rotate replaces.
	mu       sync.RWMutex
	master   []byte
	blindKey []byte

	cache *keyCache
}

// Option configures Open.
type Option func(*options)

type options struct {
	now       func() time.Time
	log       *slog.Logger
	cacheSize int
}

// WithClock sets the clock used for created_at/destroyed_at stamps, so
// tests can run at any date.
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// WithLogger sets where Open reports recoveries (such as finishing an
// interrupted master key rotation). Plaintext and keys are never logged.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// WithCacheSize bounds how many users' unwrapped keys stay in memory.
func WithCacheSize(n int) Option { return func(o *options) { o.cacheSize = n } }

// Open opens (creating on first start) the keyring in dataDir. envKey is the
// base64 value of ZIMAGE_MASTER_KEY as read by the caller, or "" to use
// <dataDir>/master.key. Every refusal is an *app.Error that says what to do.
func Open(dataDir, envKey string, opts ...Option) (*Vault, error) {
	o := options{now: time.Now, log: slog.New(slog.DiscardHandler), cacheSize: 4096}
	for _, opt := range opts {
		opt(&o)
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, app.Wrap(err, "Could not create the data directory %s: check that the account running Z Image may write there.", dataDir)
	}
	db, err := openKeyringDB(filepath.Join(dataDir, KeyringFile))
	if err != nil {
		return nil, err
	}
	v := &Vault{dataDir: dataDir, fromEnv: envKey != "", db: db, now: o.now, log: o.log, cache: newKeyCache(o.cacheSize)}
	if err := v.unlock(envKey); err != nil {
		db.Close()
		return nil, err
	}
	return v, nil
}

// Close closes the keyring and forgets every key held in memory.
func (v *Vault) Close() error {
	v.cache.clear()
	v.mu.Lock()
	clear(v.master)
	clear(v.blindKey)
	v.mu.Unlock()
	if err := v.db.Close(); err != nil {
		return fmt.Errorf("vault: close keyring: %w", err)
	}
	return nil
}

// unlock finds the master key, creating one on first start, and proves it
// is the keyring's before anything is sealed with it.
func (v *Vault) unlock(envKey string) error {
	meta, err := v.readMeta()
	if err != nil {
		return err
	}
	if v.fromEnv {
		key, err := decodeMasterKey(envKey)
		if err != nil {
			return &app.Error{Code: app.EINVALID, Message: "ZIMAGE_MASTER_KEY is not a valid master key: it must be the base64 encoding of exactly 32 bytes (generate one with `head -c 32 /dev/urandom | base64`), or unset it to use master.key in the data directory.", Err: err}
		}
		if meta == nil {
			return v.initKeyring(key)
		}
		if !meta.matches(key) {
			return errWrongKey("ZIMAGE_MASTER_KEY", v.dataDir)
		}
		return v.loadKeys(key, meta)
	}

	keyPath := filepath.Join(v.dataDir, MasterKeyFile)
	newPath := filepath.Join(v.dataDir, masterKeyNewFile)
	key, err := readMasterKeyFile(keyPath)
	missing := errors.Is(err, os.ErrNotExist)
	if err != nil && !missing {
		return err
	}
	if meta == nil {
		if missing {
			// The key file must exist before the keyring refers to it: a crash
			// in between then leaves a key and no keyring, never the reverse.
			if key, err = NewMasterKey(); err != nil {
				return err
			}
			if err := writeKeyFileAtomic(keyPath, key); err != nil {
				return err
			}
			v.log.Info("vault: created a new master key; back it up apart from the data", "path", keyPath)
		}
		os.Remove(newPath)
		return v.initKeyring(key)
	}

	// A rotation writes master.key.new, re-wraps in one transaction, then
	// renames. Whichever key the keyring's check value accepts is the
	// current one; the other is a leftover of a crash.
	if !missing && meta.matches(key) {
		if err := os.Remove(newPath); err == nil {
			v.log.Warn("vault: removed master.key.new left by an interrupted key rotation; the keyring still uses master.key")
		}
		return v.loadKeys(key, meta)
	}
	newKey, newErr := readMasterKeyFile(newPath)
	if newErr == nil && meta.matches(newKey) {
		if err := os.Rename(newPath, keyPath); err != nil {
			return app.Wrap(err, "Could not finish an interrupted master key rotation: rename %s to %s by hand, then start again.", newPath, keyPath)
		}
		if err := syncDir(v.dataDir); err != nil {
			return err
		}
		v.log.Warn("vault: finished an interrupted master key rotation; master.key now holds the new key — back it up")
		return v.loadKeys(newKey, meta)
	}
	if missing {
		return &app.Error{Code: app.EINVALID, Message: fmt.Sprintf("The master key file %s is missing but the keyring %s exists: without it all sealed data would be unreadable. Restore master.key from your key backup (mode 0600), or set ZIMAGE_MASTER_KEY, then start again. Do not delete the keyring.", keyPath, filepath.Join(v.dataDir, KeyringFile))}
	}
	return errWrongKey(keyPath, v.dataDir)
}

func errWrongKey(source, dataDir string) error {
	return &app.Error{Code: app.EINVALID, Message: fmt.Sprintf("The master key from %s does not match the keyring in %s: with a wrong key all sealed data would be unreadable. Use the master key that belongs to this data directory (from your key backup), then start again.", source, dataDir)}
}

// Blind-index key and check value live in the meta table, wrapped by the
// master key, so rotation re-wraps them and the blind index survives.
const (
	metaCheck     = "check"
	metaBlindKey  = "blind_key"
	checkConstant = "zimage vault master key check v1"
	adCheck       = "zimage/vault/check/v1"
	adBlindKey    = "zimage/vault/blind-index-key/v1"
)

type keyringMeta struct {
	check    []byte
	blindKey []byte
}

func (m *keyringMeta) matches(master []byte) bool {
	got, err := unwrap(master, m.check, []byte(adCheck))
	return err == nil && hmac.Equal(got, []byte(checkConstant))
}

// readMeta returns nil when the keyring was never initialised.
func (v *Vault) readMeta() (*keyringMeta, error) {
	rows, err := v.db.Query(`SELECT name, value FROM meta WHERE name IN (?, ?)`, metaCheck, metaBlindKey)
	if err != nil {
		return nil, app.Wrap(err, "Could not read the keyring: check that keyring.db in the data directory is a readable SQLite file.")
	}
	defer rows.Close()
	m := &keyringMeta{}
	for rows.Next() {
		var name string
		var value []byte
		if err := rows.Scan(&name, &value); err != nil {
			return nil, app.Wrap(err, "Could not read the keyring.")
		}
		switch name {
		case metaCheck:
			m.check = value
		case metaBlindKey:
			m.blindKey = value
		}
	}
	if err := rows.Err(); err != nil {
		return nil, app.Wrap(err, "Could not read the keyring.")
	}
	if m.check == nil && m.blindKey == nil {
		return nil, nil
	}
	if m.check == nil || m.blindKey == nil {
		return nil, &app.Error{Code: app.EINTERNAL, Message: "The keyring is incomplete (its check value or blind-index key is missing): restore keyring.db from your most recent keyring backup."}
	}
	return m, nil
}

func (v *Vault) initKeyring(master []byte) error {
	blind := make([]byte, KeySize)
	rand.Read(blind)
	check, err := wrap(master, []byte(checkConstant), []byte(adCheck))
	if err != nil {
		return err
	}
	wrappedBlind, err := wrap(master, blind, []byte(adBlindKey))
	if err != nil {
		return err
	}
	// INSERT (not REPLACE) so two processes racing on first start cannot
	// both win: the loser fails instead of overwriting the blind-index key.
	_, err = v.db.Exec(`INSERT INTO meta (name, value) VALUES (?, ?), (?, ?)`, metaCheck, check, metaBlindKey, wrappedBlind)
	if err != nil {
		return app.Wrap(err, "Could not initialise the keyring.")
	}
	v.master, v.blindKey = master, blind
	return nil
}

func (v *Vault) loadKeys(master []byte, m *keyringMeta) error {
	blind, err := unwrap(master, m.blindKey, []byte(adBlindKey))
	if err != nil {
		return &app.Error{Code: app.EINTERNAL, Message: "The keyring's blind-index key does not open with the master key although its check value does: the keyring is damaged. Restore keyring.db from your most recent keyring backup.", Err: err}
	}
	v.master, v.blindKey = master, blind
	return nil
}

// BlindIndex returns HMAC-SHA256(blindKey, purpose || 0x00 || value): a
// keyed, deterministic index for lookups and uniqueness (e.g. email) that
// reveals nothing without the key. Callers normalise value first (e.g.
// lowercase an email); purpose keeps indexes of different fields apart.
func (v *Vault) BlindIndex(purpose, value string) []byte {
	v.mu.RLock()
	mac := hmac.New(sha256.New, v.blindKey)
	v.mu.RUnlock()
	mac.Write([]byte(purpose))
	mac.Write([]byte{0})
	mac.Write([]byte(value))
	return mac.Sum(nil)
}

// newGCM is the one place an AES-256-GCM instance is made.
func newGCM(key []byte) (cipher.AEAD, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("vault: key is %d bytes, want %d", len(key), KeySize)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// wrap seals a key (or check constant) under the master key as
// nonce || ciphertext; ad binds it to what it is for.
func wrap(master, plaintext, ad []byte) ([]byte, error) {
	gcm, err := newGCM(master)
	if err != nil {
		return nil, err
	}
	out := make([]byte, gcm.NonceSize(), gcm.NonceSize()+len(plaintext)+gcm.Overhead())
	rand.Read(out)
	return gcm.Seal(out, out, plaintext, ad), nil
}

func unwrap(master, wrapped, ad []byte) ([]byte, error) {
	gcm, err := newGCM(master)
	if err != nil {
		return nil, err
	}
	if len(wrapped) < gcm.NonceSize()+gcm.Overhead() {
		return nil, ErrTampered
	}
	n := gcm.NonceSize()
	out, err := gcm.Open(nil, wrapped[:n], wrapped[n:], ad)
	if err != nil {
		return nil, ErrTampered
	}
	return out, nil
}

var _ io.Closer = (*Vault)(nil)
