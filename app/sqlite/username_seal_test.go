package sqlite

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"zimage/app"
	"zimage/app/vault"
)

// A snapshot (what backups are made of) holds usernames only sealed;
// restoring unseals them for people whose key still exists.
func TestSnapshotSealsUsernames(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db := MustOpen(t)
	v, err := vault.Open(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	names := map[string]string{"01KEEP0000000000000000000A": "keeperofthings", "01GONE0000000000000000000B": "vanishingact"}
	for id, name := range names {
		if err := v.EnsureUserKey(id); err != nil {
			t.Fatal(err)
		}
		rec := &UserRecord{EmailIndex: []byte(id), SealedEmail: []byte("sealed"), PasswordHash: "x"}
		rec.ID, rec.Username, rec.Role = id, name, app.RoleUser
		if rec.SealedUsername, err = v.Seal(id, UsernameAAD(id), []byte(name)); err != nil {
			t.Fatal(err)
		}
		if err := db.CreateUser(ctx, NewUser{Record: rec}); err != nil {
			t.Fatal(err)
		}
	}
	snap := filepath.Join(t.TempDir(), "snap.db")
	if err := db.SnapshotTo(ctx, snap); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(snap)
	for _, name := range names {
		if bytes.Contains(raw, []byte(name)) {
			t.Errorf("snapshot file holds the username %q in plaintext", name)
		}
	}
	if live, _ := db.UserByUsername(ctx, "keeperofthings"); live == nil {
		t.Error("the live database lost a username")
	}

	if err := v.Shred("01GONE0000000000000000000B"); err != nil {
		t.Fatal(err)
	}
	restored, err := Open(ctx, snap)
	if err != nil {
		t.Fatal(err)
	}
	defer restored.Close()
	n, sealed, err := restored.UnsealUsernames(ctx, v)
	if err != nil || n != 1 || sealed != 1 {
		t.Fatalf("unseal: restored %d, still sealed %d, %v; want 1, 1", n, sealed, err)
	}
	if u, err := restored.UserByUsername(ctx, "keeperofthings"); err != nil || u.ID != "01KEEP0000000000000000000A" {
		t.Errorf("restored username: %v, %v", u, err)
	}
	if _, err := restored.UserByUsername(ctx, "vanishingact"); err == nil {
		t.Error("a shredded person's username came back from the backup")
	}
}
