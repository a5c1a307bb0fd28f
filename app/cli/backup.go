package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"zimage/app"
	"zimage/app/config"
	"zimage/app/privacy"
	"zimage/app/sqlite"
	"zimage/app/vault"
)

// manifest describes a data backup; restore reads it first.
type manifest struct {
	Format        int       `json:"format"`
	Version       string    `json:"zimage_version"`
	SchemaVersion int       `json:"schema_version"`
	CreatedAt     time.Time `json:"created_at"`
	MediaFiles    int       `json:"media_files"`
	MediaBytes    int64     `json:"media_bytes"`
	// Filled by restore, not stored.
	UsernamesRestored int                     `json:"-"`
	UsernamesSealed   int                     `json:"-"`
	KeyringMissing    bool                    `json:"-"`
	Keyless           privacy.KeylessAccounts `json:"-"`
}

const manifestName = "zimage-backup.json"

func runBackup(ctx context.Context, env Env, args []string) error {
	fs := newFlags(env, "backup", `backup --out DIR [--config FILE]
       backup --keyring [--out DIR] [--config FILE]

Without --keyring: writes a consistent snapshot of the database and the
(sealed) media files into DIR, which must be empty or not exist. Safe while
the server runs. The keyring and master key are NOT included: a data backup
alone can never be read, and deleting an account (destroying its key) makes
its data unreadable in every backup.

With --keyring: writes keyring-<date>.db into DIR (default backup.keyring_dir).
Keyring backups older than retention.keyring_backups are deleted by the
retention job. Keep master.key somewhere safe yourself: nothing opens without it.`)
	cfgPath := configFlag(fs, env)
	out := fs.String("out", "", "destination `DIR`")
	keyring := fs.Bool("keyring", false, "back up the keyring instead of the data")
	if err := parse(fs, args); err != nil {
		return err
	}
	cfg, err := config.Load(*cfgPath, env.Environ)
	if err != nil {
		return err
	}
	if *keyring {
		dir := *out
		if dir == "" {
			dir = cfg.KeyringBackupDir()
		}
		v, err := vault.Open(cfg.Server.DataDir, lookupEnv(env.Environ, "ZIMAGE_MASTER_KEY"))
		if err != nil {
			return err
		}
		defer v.Close()
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("create %s: %w", dir, err)
		}
		path, err := v.BackupKeyring(dir, time.Now().UTC())
		if err != nil {
			return err
		}
		fmt.Fprintf(env.Stdout, "keyring backup written to %s (delete it within %s; it can revive deleted accounts)\n", path, cfg.Retention.KeyringBackups)
		return nil
	}
	if *out == "" {
		return &usageError{msg: "backup needs --out DIR"}
	}
	m, err := backupData(ctx, cfg.Server.DataDir, *out)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "backup written to %s: schema %d, %d media files (%d bytes); keyring not included\n", *out, m.SchemaVersion, m.MediaFiles, m.MediaBytes)
	return nil
}

// checkEmptyDir makes sure dir is a new or empty, writable folder.
func checkEmptyDir(dir string) error {
	entries, err := os.ReadDir(dir)
	if err == nil && len(entries) > 0 {
		return &app.Error{Code: app.EINVALID, Message: fmt.Sprintf("%s is not empty: choose a new folder so no earlier backup is mixed in or overwritten", dir)}
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return &app.Error{Code: app.EINVALID, Message: fmt.Sprintf("cannot read %s (%v)", dir, unwrapPathErr(err))}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return &app.Error{Code: app.EINVALID, Message: fmt.Sprintf("cannot create %s (%v): choose a writable folder", dir, unwrapPathErr(err))}
	}
	probe, err := os.CreateTemp(dir, ".probe-*")
	if err != nil {
		return &app.Error{Code: app.EINVALID, Message: fmt.Sprintf("%s is not writable (%v): choose a writable folder", dir, unwrapPathErr(err))}
	}
	probe.Close()
	return os.Remove(probe.Name())
}

// backupData snapshots the database first, then copies media. A media file
// written after the snapshot is copied without a row (harmless: restore
// ignores it and retention removes it); one deleted in between is missing
// from the copy (its row then points at nothing, which the gallery reports).
func backupData(ctx context.Context, dataDir, out string) (*manifest, error) {
	dbPath := filepath.Join(dataDir, "zimage.db")
	if _, err := os.Stat(dbPath); err != nil {
		return nil, &app.Error{Code: app.EINVALID, Message: fmt.Sprintf("no database at %s: check server.data_dir", dbPath)}
	}
	if err := checkEmptyDir(out); err != nil {
		return nil, err
	}
	db, err := sqlite.Open(ctx, dbPath)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	if err := db.SnapshotTo(ctx, filepath.Join(out, "zimage.db")); err != nil {
		return nil, err
	}
	v, _ := db.SchemaVersion(ctx)
	m := &manifest{Format: 1, Version: Version(), SchemaVersion: v, CreatedAt: time.Now().UTC()}
	m.MediaFiles, m.MediaBytes, err = copyTree(filepath.Join(dataDir, "media"), filepath.Join(out, "media"))
	if err != nil {
		return nil, fmt.Errorf("copy media: %w", err)
	}
	data, _ := json.MarshalIndent(m, "", "  ")
	if err := os.WriteFile(filepath.Join(out, manifestName), data, 0o600); err != nil {
		return nil, err
	}
	return m, nil
}

// copyTree copies regular files from src to dst (0700 folders, 0600 files),
// skipping temporary files of writes in progress. A missing src is empty.
func copyTree(src, dst string) (files int, bytes int64, err error) {
	err = filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return nil // vanished while walking (deleted by the server)
		} else if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o700)
		}
		if !d.Type().IsRegular() || filepath.Ext(path) == ".tmp" || containsTmp(d.Name()) {
			return nil
		}
		n, err := copyFile(path, target)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		files++
		bytes += n
		return err
	})
	if errors.Is(err, fs.ErrNotExist) {
		err = nil
	}
	return files, bytes, err
}

func containsTmp(name string) bool {
	for i := 0; i+5 <= len(name); i++ {
		if name[i:i+5] == ".tmp-" {
			return true
		}
	}
	return false
}

func copyFile(src, dst string) (int64, error) {
	in, err := os.Open(src)
	if err != nil {
		return 0, err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return 0, err
	}
	n, err := io.Copy(out, in)
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return n, err
}

func runRestore(ctx context.Context, env Env, args []string) error {
	fs := newFlags(env, "restore", `restore --from DIR [--keyring FILE] [--config FILE]

Puts a data backup made by zimage backup back into server.data_dir. The server
must be stopped. The data folder must hold no database yet (move the old one
away first); nothing is overwritten. With --keyring, a keyring backup is put
back too (it must match the master key in the data folder or ZIMAGE_MASTER_KEY).`)
	cfgPath := configFlag(fs, env)
	from := fs.String("from", "", "backup `DIR` written by zimage backup --out")
	keyringFile := fs.String("keyring", "", "keyring backup `FILE` to restore as well")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *from == "" {
		return &usageError{msg: "restore needs --from DIR"}
	}
	cfg, err := config.Load(*cfgPath, env.Environ)
	if err != nil {
		return err
	}
	m, err := restoreData(ctx, cfg.Server.DataDir, *from, *keyringFile, lookupEnv(env.Environ, "ZIMAGE_MASTER_KEY"))
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "restored backup of %s (schema %d, %d media files) into %s\n", m.CreatedAt.Format(time.RFC3339), m.SchemaVersion, m.MediaFiles, cfg.Server.DataDir)
	if m.KeyringMissing {
		fmt.Fprintf(env.Stdout, "no keyring in %s: restore one with --keyring, or nothing sealed (emails, prompts, images, usernames) can be read\n", cfg.Server.DataDir)
	} else {
		k := m.Keyless
		if k.Ended+k.Held > 0 {
			fmt.Fprintf(env.Stdout, "%d account(s) deleted since the backup stay unreadable (their keys are destroyed): they are marked deleted again, cannot sign in or use API keys, and the next retention run (zimage retention run) purges them\n", k.Ended+k.Held)
		}
		if k.Held > 0 {
			fmt.Fprintf(env.Stdout, "%d of them are under a legal hold: they stay unusable and are not purged until the hold is lifted\n", k.Held)
		}
		if k.Unknown > 0 {
			fmt.Fprintf(env.Stdout, "warning: %d account(s) have no key at all in this keyring, which is older than they are: they cannot sign in and their data cannot be read. Restore a newer keyring backup (stop, move %s away, restore again) to get them back\n", k.Unknown, cfg.Server.DataDir)
		}
	}
	return nil
}

func restoreData(ctx context.Context, dataDir, from, keyringFile, envKey string) (*manifest, error) {
	data, err := os.ReadFile(filepath.Join(from, manifestName))
	if err != nil {
		return nil, &app.Error{Code: app.EINVALID, Message: fmt.Sprintf("%s is not a Z Image backup (no %s): point --from at a folder written by zimage backup --out", from, manifestName)}
	}
	var m manifest
	if err := json.Unmarshal(data, &m); err != nil || m.Format != 1 {
		return nil, &app.Error{Code: app.EINVALID, Message: fmt.Sprintf("%s/%s is damaged or of an unknown format", from, manifestName)}
	}
	if m.SchemaVersion > sqlite.LatestSchemaVersion() {
		return nil, &app.Error{Code: app.EINVALID, Message: fmt.Sprintf("the backup was made by a newer Z Image (schema %d; this binary knows up to %d): restore it with that version", m.SchemaVersion, sqlite.LatestSchemaVersion())}
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create %s: %w", dataDir, err)
	}
	release, err := lockDataDir(dataDir, "stop the server before restoring")
	if err != nil {
		return nil, err
	}
	defer release()
	target := filepath.Join(dataDir, "zimage.db")
	if _, err := os.Stat(target); err == nil {
		return nil, &app.Error{Code: app.ECONFLICT, Message: fmt.Sprintf("%s already holds a database: move %s (and its media folder) away first; restore never overwrites data", dataDir, target)}
	}
	if keyringFile != "" {
		if _, err := os.Stat(filepath.Join(dataDir, vault.KeyringFile)); err == nil {
			return nil, &app.Error{Code: app.ECONFLICT, Message: fmt.Sprintf("%s already holds a keyring: move it away first to restore %s", dataDir, keyringFile)}
		}
	}
	// Stage everything, check it opens, then move it into place.
	stage, err := os.MkdirTemp(dataDir, ".restore-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(stage)
	if _, err := copyFile(filepath.Join(from, "zimage.db"), filepath.Join(stage, "zimage.db")); err != nil {
		return nil, fmt.Errorf("copy database: %w", err)
	}
	db, err := sqlite.Open(ctx, filepath.Join(stage, "zimage.db"))
	if err != nil {
		return nil, err
	}
	err = db.IntegrityCheck(ctx)
	db.Close()
	if err != nil {
		return nil, err
	}
	if _, _, err := copyTree(filepath.Join(from, "media"), filepath.Join(stage, "media")); err != nil {
		return nil, fmt.Errorf("copy media: %w", err)
	}
	if keyringFile != "" {
		if _, err := copyFile(keyringFile, filepath.Join(stage, vault.KeyringFile)); err != nil {
			return nil, fmt.Errorf("copy keyring: %w", err)
		}
	}
	for _, name := range []string{"zimage.db", "zimage.db-wal", "zimage.db-shm", vault.KeyringFile} {
		if _, err := os.Stat(filepath.Join(stage, name)); err == nil {
			if err := os.Rename(filepath.Join(stage, name), filepath.Join(dataDir, name)); err != nil {
				return nil, err
			}
		}
	}
	if keyringFile != "" {
		v, err := vault.Open(dataDir, envKey)
		if err != nil {
			// The keyring that does not open must leave the data folder, or
			// the next start would find it there: say so if it cannot, in
			// the one line the admin reads (errMessage shows the message).
			rejected := filepath.Join(dataDir, vault.KeyringFile)
			if rerr := os.Rename(rejected, keyringFile+".rejected"); rerr != nil {
				return nil, &app.Error{Code: app.ErrorCode(err), Err: errors.Join(err, rerr),
					Message: fmt.Sprintf("%s The restored keyring could not be moved out of the way (%v), so it is still in the data folder: remove %s by hand before you start again.", errMessage(err), rerr, rejected)}
			}
			return nil, err
		}
		v.Close()
	}
	// Backups hold usernames only sealed; put them back for everyone whose
	// key the keyring still has.
	if _, err := os.Stat(filepath.Join(dataDir, vault.KeyringFile)); err == nil {
		v, err := vault.Open(dataDir, envKey)
		if err != nil {
			return nil, err
		}
		db, err := sqlite.Open(ctx, filepath.Join(dataDir, "zimage.db"))
		if err != nil {
			v.Close()
			return nil, err
		}
		m.UsernamesRestored, m.UsernamesSealed, err = db.UnsealUsernames(ctx, v)
		if err == nil {
			// Whoever was deleted after the backup was taken must stay
			// deleted: their key is gone, and their rows came back.
			ctl := privacy.NewControls(privacy.ControlsDeps{DB: db, Vault: v})
			m.Keyless, err = ctl.EndKeylessAccounts(ctx)
		}
		db.Close()
		v.Close()
		if err != nil {
			return nil, err
		}
	} else {
		m.KeyringMissing = true
	}
	if _, err := os.Stat(filepath.Join(stage, "media")); err == nil {
		if _, err := os.Stat(filepath.Join(dataDir, "media")); err == nil {
			// Without this the next rename fails with a bare "file exists"
			// that hides the cause.
			if err := os.Rename(filepath.Join(dataDir, "media"), filepath.Join(dataDir, fmt.Sprintf("media.before-restore-%d", time.Now().Unix()))); err != nil {
				return nil, fmt.Errorf("move the current media folder aside: %w", err)
			}
		}
		if err := os.Rename(filepath.Join(stage, "media"), filepath.Join(dataDir, "media")); err != nil {
			return nil, err
		}
	}
	return &m, nil
}

func runKeys(ctx context.Context, env Env, args []string) error {
	fs := newFlags(env, "keys", `keys rotate [--config FILE]

Makes a new master key and re-wraps every user key with it in one
transaction. Stop the server first. A rotation interrupted at any point
leaves a keyring that opens with the old or the new key. With
ZIMAGE_MASTER_KEY set, rotate prints the new key instead of writing a file.`)
	cfgPath := configFlag(fs, env)
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 || fs.Arg(0) != "rotate" {
		return &usageError{msg: "usage: zimage keys rotate"}
	}
	cfg, err := config.Load(*cfgPath, env.Environ)
	if err != nil {
		return err
	}
	release, err := lockDataDir(cfg.Server.DataDir, "stop the server before rotating keys")
	if err != nil {
		return err
	}
	defer release()
	envKey := lookupEnv(env.Environ, "ZIMAGE_MASTER_KEY")
	v, err := vault.Open(cfg.Server.DataDir, envKey)
	if err != nil {
		return err
	}
	defer v.Close()
	if envKey != "" {
		key, err := vault.NewMasterKey()
		if err != nil {
			return err
		}
		// Print before rotating: if the process dies after the commit, the
		// admin already has the key the keyring now needs.
		fmt.Fprintf(env.Stdout, "new master key (set ZIMAGE_MASTER_KEY to it now; the old one stops working):\n%s\n", vault.EncodeMasterKey(key))
		return v.Rotate(key)
	}
	if err := v.RotateMasterFile(); err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "master key rotated: %s holds the new key; back it up now — old key backups no longer open this keyring\n", filepath.Join(cfg.Server.DataDir, vault.MasterKeyFile))
	return nil
}
