package vault

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"zimage/app"
)

// backupLayout names keyring backups by their UTC time, so the retention
// job can tell their age from the name even after they were copied (which
// resets modification times).
const (
	backupPrefix = "keyring-"
	backupSuffix = ".db"
	backupLayout = "2006-01-02T150405Z"
)

// BackupKeyring writes a consistent copy of the keyring to dir as
// keyring-<UTC time>.db, with mode 0600, and returns its path. The copy is
// useless without the master key of its time, and it still holds the keys
// of users shredded after it was taken — so keyring backups must be
// deleted within 30 days (PruneKeyringBackups), or "deleted within 30 days"
// stops being true for data backups.
//
// To restore: stop the server, copy the backup to <dataDir>/keyring.db,
// remove keyring.db-wal and keyring.db-shm if present, and start with the
// master key that was current when the backup was taken.
func (v *Vault) BackupKeyring(dir string, now time.Time) (string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", app.Wrap(err, "Could not create the keyring backup directory %s: check that it is writable.", dir)
	}
	path := filepath.Join(dir, backupPrefix+now.UTC().Format(backupLayout)+backupSuffix)
	// VACUUM INTO accepts an existing empty file; creating it first, with
	// O_EXCL and 0600, means the copy is never readable by others and
	// never overwrites an earlier backup.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return "", &app.Error{Code: app.ECONFLICT, Message: fmt.Sprintf("A keyring backup %s already exists: wait a second and try again.", path)}
	} else if err != nil {
		return "", app.Wrap(err, "Could not create the keyring backup %s: check free space and permissions.", path)
	}
	f.Close()
	if _, err := v.db.Exec(`VACUUM INTO ?`, path); err != nil {
		os.Remove(path)
		return "", app.Wrap(err, "Could not write the keyring backup %s: check free space and permissions.", path)
	}
	if err := syncFile(path); err != nil {
		return "", err
	}
	return path, nil
}

// PruneKeyringBackups removes keyring backups in dir taken before
// olderThan, judged by the time in their names, and returns the removed
// paths oldest first. Files not named like a keyring backup are left alone.
func (v *Vault) PruneKeyringBackups(dir string, olderThan time.Time) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, app.Wrap(err, "Could not list keyring backups in %s.", dir)
	}
	var removed []string
	var errs []error
	for _, e := range entries {
		taken, ok := backupTime(e.Name())
		if !ok || e.IsDir() || !taken.Before(olderThan) {
			continue
		}
		path := filepath.Join(dir, e.Name())
		if err := os.Remove(path); err != nil {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, path)
	}
	sort.Strings(removed)
	if len(errs) > 0 {
		return removed, app.Wrap(errors.Join(errs...), "Could not remove %d expired keyring backups in %s: they hold keys of deleted accounts; remove them by hand.", len(errs), dir)
	}
	return removed, nil
}

func backupTime(name string) (time.Time, bool) {
	stamp, ok := strings.CutPrefix(name, backupPrefix)
	if !ok {
		return time.Time{}, false
	}
	stamp, ok = strings.CutSuffix(stamp, backupSuffix)
	if !ok {
		return time.Time{}, false
	}
	t, err := time.Parse(backupLayout, stamp)
	return t, err == nil
}

func syncFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return app.Wrap(err, "Could not reopen %s to make it durable.", path)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return app.Wrap(err, "Could not make %s durable.", path)
	}
	return nil
}
