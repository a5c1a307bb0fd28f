package sqlite

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"zimage/app"
)

// MustOpen opens a fresh database in a temporary folder.
func MustOpen(tb testing.TB) *DB {
	tb.Helper()
	db, err := Open(context.Background(), filepath.Join(tb.TempDir(), "zimage.db"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

func TestOpenMigratesAndReopens(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "zimage.db")
	db, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.SetSetting(ctx, "k", "v1"); err != nil {
		t.Fatal(err)
	}
	if err := db.Ready(ctx); err != nil {
		t.Fatalf("Ready: %v", err)
	}
	db.Close()

	db, err = Open(ctx, path)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer db.Close()
	if v, err := db.Setting(ctx, "k"); err != nil || v != "v1" {
		t.Fatalf("Setting = %q, %v", v, err)
	}
	if _, err := db.Setting(ctx, "missing"); app.ErrorCode(err) != app.ENOTFOUND {
		t.Fatalf("missing setting: %v", err)
	}
	var mode string
	db.r.QueryRow("PRAGMA journal_mode").Scan(&mode)
	if mode != "wal" {
		t.Errorf("journal_mode = %q", mode)
	}
	var fk int
	db.w.QueryRow("PRAGMA foreign_keys").Scan(&fk)
	if fk != 1 {
		t.Errorf("foreign_keys = %d", fk)
	}
	if _, err := db.r.Exec("INSERT INTO settings VALUES ('x','y',0)"); err == nil {
		t.Error("reader pool accepted a write")
	}
}

func TestOpenRefuses(t *testing.T) {
	tests := []struct {
		name    string
		prepare func(t *testing.T, path string)
		want    string
	}{
		{"garbage file", func(t *testing.T, path string) {
			os.WriteFile(path, []byte(strings.Repeat("not a database ", 400)), 0o600)
		}, "not a usable Z Image database"},
		{"another program's database", func(t *testing.T, path string) {
			db, _ := sql.Open("sqlite", "file:"+path)
			defer db.Close()
			if _, err := db.Exec("CREATE TABLE notes (body TEXT)"); err != nil {
				t.Fatal(err)
			}
		}, "another program"},
		{"foreign application id", func(t *testing.T, path string) {
			db, _ := sql.Open("sqlite", "file:"+path)
			defer db.Close()
			db.Exec("PRAGMA application_id = 1234")
		}, "another program"},
		{"newer schema", func(t *testing.T, path string) {
			db, err := Open(context.Background(), path)
			if err != nil {
				t.Fatal(err)
			}
			db.w.Exec("PRAGMA user_version = 9999")
			db.Close()
		}, "newer Z Image"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "zimage.db")
			tt.prepare(t, path)
			before, _ := os.ReadFile(path)
			db, err := Open(context.Background(), path)
			if err == nil {
				db.Close()
				t.Fatal("Open succeeded")
			}
			if !strings.Contains(app.ErrorMessage(err), tt.want) {
				t.Errorf("message %q does not say %q", app.ErrorMessage(err), tt.want)
			}
			after, _ := os.ReadFile(path)
			if string(before) != string(after) {
				t.Error("the refused file was changed")
			}
		})
	}
}

func TestSnapshotTo(t *testing.T) {
	ctx := context.Background()
	db := MustOpen(t)
	db.SetSetting(ctx, "k", "v")
	out := filepath.Join(t.TempDir(), "snap.db")
	if err := db.SnapshotTo(ctx, out); err != nil {
		t.Fatal(err)
	}
	if err := db.SnapshotTo(ctx, out); err == nil {
		t.Error("snapshot over an existing file succeeded")
	}
	snap, err := Open(ctx, out)
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Close()
	if v, _ := snap.Setting(ctx, "k"); v != "v" {
		t.Errorf("snapshot lost data: %q", v)
	}
	if err := snap.IntegrityCheck(ctx); err != nil {
		t.Error(err)
	}
}
