package vault

import (
	"errors"
	"os"
	"path/filepath"
	"sort"
	"time"

	"zimage/app"
)

// KeyringBackupsOlderThan lists, oldest first, the keyring backups in dir
// that PruneKeyringBackups(dir, olderThan) would remove, without removing
// anything: the retention job's dry run. It needs no open keyring.
func KeyringBackupsOlderThan(dir string, olderThan time.Time) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, app.Wrap(err, "Could not list keyring backups in %s.", dir)
	}
	var out []string
	for _, e := range entries {
		taken, ok := backupTime(e.Name())
		if !ok || e.IsDir() || !taken.Before(olderThan) {
			continue
		}
		out = append(out, filepath.Join(dir, e.Name()))
	}
	sort.Strings(out)
	return out, nil
}
