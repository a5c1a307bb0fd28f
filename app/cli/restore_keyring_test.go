package cli

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"zimage/app/sqlite"
	"zimage/app/vault"
)

// TestRestoreSaysWhenRejectedKeyringStays: a keyring backup that does not
// open with the data folder's master key is moved out of the data folder.
// When that move fails too, the error must say the keyring is still there
// (before, the failed move was ignored and only the vault's error shown).
func TestRestoreSaysWhenRejectedKeyringStays(t *testing.T) {
	ctx := context.Background()
	from := t.TempDir()
	db, err := sqlite.Open(ctx, filepath.Join(from, "zimage.db"))
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	m, _ := json.Marshal(manifest{Format: 1, SchemaVersion: sqlite.LatestSchemaVersion(), CreatedAt: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)})
	writeFile(t, from, manifestName, string(m))

	// A keyring made under one master key, a data folder with another.
	keysDir, otherDir := t.TempDir(), t.TempDir()
	for _, dir := range []string{keysDir, otherDir} {
		v, err := vault.Open(dir, "")
		if err != nil {
			t.Fatal(err)
		}
		v.Close()
	}
	keyringFile := filepath.Join(keysDir, vault.KeyringFile)
	dataDir := filepath.Join(t.TempDir(), "data")
	os.MkdirAll(dataDir, 0o700)
	key, _ := os.ReadFile(filepath.Join(otherDir, vault.MasterKeyFile))
	os.WriteFile(filepath.Join(dataDir, vault.MasterKeyFile), key, 0o600)
	// A non-empty folder where the rejected keyring would go: the move
	// fails, even for root.
	os.MkdirAll(filepath.Join(keyringFile+".rejected", "taken"), 0o700)

	_, err = restoreData(ctx, dataDir, from, keyringFile, "")
	if err == nil {
		t.Fatal("restore with a keyring of another master key succeeded")
	}
	if _, serr := os.Stat(filepath.Join(dataDir, vault.KeyringFile)); serr != nil {
		t.Fatalf("the test expects the rejected keyring to stay in the data folder: %v", serr)
	}
	// errMessage is the one line the admin reads.
	if msg := errMessage(err); !strings.Contains(msg, "still in the data folder") {
		t.Errorf("message %q does not say the rejected keyring is still in the data folder", msg)
	}
}
