package vault

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"zimage/app"
)

func TestShred(t *testing.T) {
	v := mustOpen(t, t.TempDir())
	mustUser(t, v, "gone")
	mustUser(t, v, "stays")
	prompt := mustSeal(t, v, "gone", "p", []byte("private prompt"))
	file := sealStream(t, v, "gone", "f", randomBytes(t, 100_000), 4096)
	kept := mustSeal(t, v, "stays", "p", []byte("still here"))
	// Open once so the key is in the cache: Shred must not leave it there.
	if _, err := v.Open("gone", []byte("p"), prompt); err != nil {
		t.Fatal(err)
	}

	if err := v.Shred("gone"); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Open("gone", []byte("p"), prompt); !errors.Is(err, ErrKeyDestroyed) {
		t.Errorf("Open after Shred: %v, want ErrKeyDestroyed", err)
	}
	if got := app.ErrorCode(func() error { _, err := v.Open("gone", []byte("p"), prompt); return err }()); got != app.ENOTFOUND {
		t.Errorf("error code after Shred = %q, want %q", got, app.ENOTFOUND)
	}
	if _, err := openStream(v, "gone", "f", bytes.NewReader(file)); !errors.Is(err, ErrKeyDestroyed) {
		t.Errorf("OpenReader after Shred: %v, want ErrKeyDestroyed", err)
	}
	if _, err := v.Seal("gone", []byte("p"), []byte("x")); !errors.Is(err, ErrKeyDestroyed) {
		t.Errorf("Seal after Shred: %v, want ErrKeyDestroyed", err)
	}
	if v.HasKey("gone") {
		t.Error("HasKey is true after Shred")
	}
	if err := v.EnsureUserKey("gone"); !errors.Is(err, ErrKeyDestroyed) {
		t.Errorf("EnsureUserKey after Shred: %v, want ErrKeyDestroyed (a shredded id must not come back)", err)
	}
	if err := v.Shred("gone"); err != nil {
		t.Errorf("second Shred: %v", err)
	}
	if err := v.Shred("never-existed"); err != nil {
		t.Errorf("Shred of a user without a key: %v", err)
	}
	if got, err := v.Open("stays", []byte("p"), kept); err != nil || string(got) != "still here" {
		t.Errorf("another user's data after Shred: %q, %v", got, err)
	}
	if !v.HasKey("stays") {
		t.Error("HasKey(stays) is false")
	}
}

func TestEnsureUserKeyIsIdempotent(t *testing.T) {
	v := mustOpen(t, t.TempDir())
	if v.HasKey("u1") {
		t.Fatal("HasKey before EnsureUserKey")
	}
	mustUser(t, v, "u1")
	sealed := mustSeal(t, v, "u1", "a", []byte("x"))
	mustUser(t, v, "u1")
	if !v.HasKey("u1") {
		t.Fatal("HasKey is false")
	}
	v.cache.clear()
	if _, err := v.Open("u1", []byte("a"), sealed); err != nil {
		t.Fatalf("a second EnsureUserKey replaced the key: %v", err)
	}
	if err := v.EnsureUserKey(""); app.ErrorCode(err) != app.EINVALID {
		t.Errorf("EnsureUserKey(\"\"): %v, want EINVALID", err)
	}
}

// TestShredLeavesNoKeyBytes reads the keyring files byte by byte: the
// wrapped key must be in them before Shred and nowhere after, WAL included.
func TestShredLeavesNoKeyBytes(t *testing.T) {
	dir := t.TempDir()
	v := mustOpen(t, dir)
	mustUser(t, v, "gone")
	mustUser(t, v, "stays")
	var wrapped []byte
	if err := v.db.QueryRow(`SELECT wrapped FROM user_keys WHERE user_id = 'gone'`).Scan(&wrapped); err != nil {
		t.Fatal(err)
	}
	keyringBytes := func() []byte {
		var all []byte
		for _, name := range []string{KeyringFile, KeyringFile + "-wal"} {
			b, err := os.ReadFile(filepath.Join(dir, name))
			if err != nil && !errors.Is(err, os.ErrNotExist) {
				t.Fatal(err)
			}
			all = append(all, b...)
		}
		return all
	}
	if !bytes.Contains(keyringBytes(), wrapped) {
		t.Fatal("wrapped key not found in the keyring files before Shred; this test would prove nothing")
	}
	if err := v.Shred("gone"); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(keyringBytes(), wrapped) {
		t.Error("the shredded user's wrapped key is still in the keyring files")
	}
}

// TestShredReachesBackups is the reason for the design: data backups hold
// ciphertext we cannot edit, so deletion must work by destroying the key.
// A keyring taken after the shred opens none of the user's data; a keyring
// backup taken before it still opens all of it — which is why keyring
// backups must expire within 30 days, or "deleted within 30 days" would
// not hold for backups.
func TestShredReachesBackups(t *testing.T) {
	dir := t.TempDir()
	v := mustOpen(t, dir)
	mustUser(t, v, "gone")
	const aad = "images/01J/prompt"
	// The "data backup": ciphertext copied elsewhere, out of our reach.
	dataBackup := bytes.Clone(mustSeal(t, v, "gone", aad, []byte("a private prompt")))
	backupDir := t.TempDir()
	keyringBefore, err := v.BackupKeyring(backupDir, time.Date(2026, 11, 28, 15, 4, 5, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}

	if err := v.Shred("gone"); err != nil {
		t.Fatal(err)
	}
	if err := v.Close(); err != nil {
		t.Fatal(err)
	}

	// restore builds a fresh data directory from a keyring file and the
	// master key, as someone restoring from backups would.
	restore := func(keyring string) *Vault {
		fresh := t.TempDir()
		copyFile(t, keyring, filepath.Join(fresh, KeyringFile), 0o600)
		copyFile(t, filepath.Join(dir, MasterKeyFile), filepath.Join(fresh, MasterKeyFile), 0o600)
		return mustOpen(t, fresh)
	}

	after := restore(filepath.Join(dir, KeyringFile))
	if got, err := after.Open("gone", []byte(aad), dataBackup); !errors.Is(err, ErrKeyDestroyed) || got != nil {
		t.Errorf("post-shred keyring opened backed-up data: %q, %v", got, err)
	}

	before := restore(keyringBefore)
	got, err := before.Open("gone", []byte(aad), dataBackup)
	if err != nil || string(got) != "a private prompt" {
		t.Errorf("pre-shred keyring backup: %q, %v; want it to open (that is why it must expire)", got, err)
	}
}

func TestKeyringBackups(t *testing.T) {
	v := mustOpen(t, t.TempDir())
	mustUser(t, v, "u1")
	backupDir := filepath.Join(t.TempDir(), "keys")
	day := func(d int) time.Time { return time.Date(2026, 11, d, 15, 4, 5, 0, time.UTC) }

	var paths []string
	for _, d := range []int{1, 10, 20, 28} {
		p, err := v.BackupKeyring(backupDir, day(d))
		if err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	if got, want := filepath.Base(paths[3]), "keyring-2026-11-28T150405Z.db"; got != want {
		t.Errorf("backup name = %q, want %q", got, want)
	}
	info, err := os.Stat(paths[0])
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 || info.Size() == 0 {
		t.Errorf("backup mode %#o size %d, want 0600 and non-empty", info.Mode().Perm(), info.Size())
	}
	if _, err := v.BackupKeyring(backupDir, day(28)); app.ErrorCode(err) != app.ECONFLICT {
		t.Errorf("second backup in the same second: %v, want ECONFLICT", err)
	}
	unrelated := filepath.Join(backupDir, "notes.txt")
	os.WriteFile(unrelated, []byte("keep me"), 0o600)

	removed, err := v.PruneKeyringBackups(backupDir, day(28).AddDate(0, 0, -10)) // older than Nov 18
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(removed, paths[:2]) {
		t.Errorf("removed %v, want %v", removed, paths[:2])
	}
	for i, p := range paths {
		_, err := os.Stat(p)
		if exists := err == nil; exists != (i >= 2) {
			t.Errorf("%s exists = %v", filepath.Base(p), exists)
		}
	}
	if _, err := os.Stat(unrelated); err != nil {
		t.Error("prune removed a file that is not a keyring backup")
	}
	if removed, err := v.PruneKeyringBackups(filepath.Join(backupDir, "missing"), day(28)); err != nil || len(removed) != 0 {
		t.Errorf("prune of a missing dir: %v, %v", removed, err)
	}
}
