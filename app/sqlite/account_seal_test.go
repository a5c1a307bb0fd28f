package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"zimage/app/vault"
)

// openAtSchema writes a database with the first n migrations only, as an
// install of an older version left it.
func openAtSchema(t *testing.T, path string, n int) *sql.DB {
	t.Helper()
	raw, err := sql.Open("sqlite", "file:"+path+"?_pragma=foreign_keys(1)")
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		tx, err := raw.Begin()
		if err != nil {
			t.Fatal(err)
		}
		if err := migrations[i](tx); err != nil {
			t.Fatalf("migration %d: %v", i+1, err)
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := raw.Exec(fmt.Sprintf("PRAGMA application_id = %d", applicationID)); err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Exec(fmt.Sprintf("PRAGMA user_version = %d", n)); err != nil {
		t.Fatal(err)
	}
	return raw
}

// Rows written before the sealed columns: the migration empties session
// labels at once; the start-up step seals key names (they open again) and
// empties their plaintext; a snapshot holds none of it in plaintext at any
// point in between.
func TestSealSessionsAndKeyNamesMigration(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "zimage.db")
	raw := openAtSchema(t, path, 10)
	const keep, gone = "01KEEP0000000000000000000A", "01GONE0000000000000000000B"
	for _, id := range []string{keep, gone} {
		if _, err := raw.Exec(`INSERT INTO users (id, username, email_index, email, password_hash, role, age_confirmed_at, password_changed_at, created_at)
			VALUES (?, ?, ?, X'00', 'x', 'user', 1, 1, 1)`, id, "user"+id[2:6], []byte(id)); err != nil {
			t.Fatal(err)
		}
		if _, err := raw.Exec(`INSERT INTO sessions (id, user_id, token_hash, created_at, last_seen_at, expires_at, device, place)
			VALUES (?, ?, ?, 1, 1, 9999999999999, 'Edge on Windows', '203.0.113.0/24')`, "S"+id, id, []byte("S"+id)); err != nil {
			t.Fatal(err)
		}
		if _, err := raw.Exec(`INSERT INTO api_keys (id, user_id, name, prefix, token_hash, scopes, created_at)
			VALUES (?, ?, ?, 'zik_abc', ?, 'read', 1)`, "K"+id, id, "Quokka uploader of "+id, []byte("K"+id)); err != nil {
			t.Fatal(err)
		}
	}
	raw.Close()
	v, err := vault.Open(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	for _, id := range []string{keep, gone} {
		if err := v.EnsureUserKey(id); err != nil {
			t.Fatal(err)
		}
	}
	if err := v.Shred(gone); err != nil {
		t.Fatal(err)
	}

	db, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if v, _ := db.SchemaVersion(ctx); v != len(migrations) {
		t.Fatalf("schema %d after opening, want %d", v, len(migrations))
	}
	plaintext := func(what string) {
		t.Helper()
		snap := filepath.Join(t.TempDir(), "snap.db")
		if err := db.SnapshotTo(ctx, snap); err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(snap)
		for _, s := range []string{"Edge on Windows", "203.0.113.0/24", "Quokka uploader"} {
			if bytes.Contains(b, []byte(s)) {
				t.Errorf("%s: the snapshot holds %q in plaintext", what, s)
			}
		}
	}
	plaintext("after the migration")
	sessions, err := db.ListSessions(ctx, keep)
	if err != nil || len(sessions) != 1 || sessions[0].Device != "" || sessions[0].Place != "" {
		t.Errorf("sessions after the migration: %+v, %v; want the labels emptied", sessions, err)
	}

	n, err := db.SealPlaintextKeyNames(ctx, v)
	if err != nil || n != 1 {
		t.Fatalf("sealed %d key names, %v; want 1 (the other owner's key is destroyed)", n, err)
	}
	if n, _ := db.SealPlaintextKeyNames(ctx, v); n != 0 {
		t.Errorf("a second start sealed %d names again", n)
	}
	keys, err := db.ListAPIKeys(ctx, keep)
	if err != nil || len(keys) != 1 || keys[0].Name != "" {
		t.Fatalf("keys after sealing: %+v, %v; want the plaintext emptied", keys, err)
	}
	k, err := keys[0].Opened(v)
	if err != nil || k.Name != "Quokka uploader of "+keep {
		t.Errorf("sealed key name opens as %q, %v", k.Name, err)
	}
	if keys, _ := db.ListAPIKeys(ctx, gone); len(keys) != 1 || keys[0].Name != "" || keys[0].SealedName != nil {
		t.Errorf("the deleted person's key name: %+v; want emptied, nothing sealed", keys)
	}
	plaintext("after sealing")
	// The live file too, once the WAL is folded in: secure_delete zeroes
	// what the updates replaced.
	if err := db.CheckpointTruncate(ctx); err != nil {
		t.Fatal(err)
	}
	live, _ := os.ReadFile(path)
	for _, s := range []string{"Edge on Windows", "203.0.113.0/24", "Quokka uploader"} {
		if bytes.Contains(live, []byte(s)) {
			t.Errorf("the live database file still holds %q in plaintext", s)
		}
	}
}
