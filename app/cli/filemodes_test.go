package cli

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"zimage/app/sqlite"
	"zimage/app/vault"
)

// TestDataFilesArePrivateUnderUmask022: with the usual umask, every file
// Z Image writes into the data folder and the backup folders (databases
// with their -wal and -shm, keys, media, exports, backups) is 0600, and
// doctor flags a file that is not.
func TestDataFilesArePrivateUnderUmask022(t *testing.T) {
	old := syscall.Umask(0o022)
	t.Cleanup(func() { syscall.Umask(old) })

	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	if err := os.Mkdir(data, 0o700); err != nil {
		t.Fatal(err)
	}
	seedDataFolder(t, data)
	environ := []string{"ZIMAGE_SERVER_DATA_DIR=" + data}
	backup := filepath.Join(dir, "backup")
	for _, args := range [][]string{{"backup", "--out", backup}, {"backup", "--keyring"}} {
		if code, out, errs := run(t, environ, args...); code != 0 {
			t.Fatalf("%v: exit %d\n%s%s", args, code, out, errs)
		}
	}

	// The databases as a running server holds them: -wal and -shm exist.
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(data, "zimage.db"))
	if err != nil {
		t.Fatal(err)
	}
	keys, err := vault.Open(data, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.SchemaVersion(ctx); err != nil {
		t.Fatal(err)
	}
	if err := keys.EnsureUserKey("01AAAAAAAAAAAAAAAAAAAAAAAA"); err != nil {
		t.Fatal(err)
	}

	seen := map[string]bool{}
	for _, root := range []string{data, backup} {
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			fi, err := d.Info()
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(dir, path)
			seen[filepath.Base(path)] = true
			if strings.Contains(path, string(filepath.Separator)+"media"+string(filepath.Separator)) {
				seen["media file"] = true
			}
			if strings.Contains(path, string(filepath.Separator)+"exports"+string(filepath.Separator)) {
				seen["export file"] = true
			}
			if strings.Contains(path, string(filepath.Separator)+"keyring"+string(filepath.Separator)) {
				seen["keyring backup"] = true
			}
			if fi.Mode().Perm() != 0o600 {
				t.Errorf("%s has mode %04o, want 0600", rel, fi.Mode().Perm())
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, want := range []string{"zimage.db", "zimage.db-wal", "zimage.db-shm", "keyring.db", "keyring.db-wal", "keyring.db-shm",
		"master.key", manifestName, "media file", "export file", "keyring backup"} {
		if !seen[want] {
			t.Errorf("no %s was written: the check above did not cover it", want)
		}
	}
	keys.Close()
	db.Close()

	if code, out, errs := run(t, environ, "doctor"); !strings.Contains(out, "OK   file modes") {
		t.Errorf("doctor with private files: exit %d\n%s%s", code, out, errs)
	}
	loose := filepath.Join(data, "keyring.db")
	if err := os.Chmod(loose, 0o644); err != nil {
		t.Fatal(err)
	}
	if code, out, _ := run(t, environ, "doctor"); code == 0 || !strings.Contains(out, "FAIL file modes") || !strings.Contains(out, loose+" (0644)") {
		t.Errorf("doctor with keyring.db at 0644: exit %d\n%s", code, out)
	}
}
