package vault

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"zimage/app"
)

// mustOpen opens a vault in dir with the key file, closing it at the end
// of the test.
func mustOpen(tb testing.TB, dir string, opts ...Option) *Vault {
	tb.Helper()
	v, err := Open(dir, "", opts...)
	if err != nil {
		tb.Fatalf("Open(%s): %v", dir, err)
	}
	tb.Cleanup(func() { v.Close() })
	return v
}

// mustUser gives userID a key in v.
func mustUser(tb testing.TB, v *Vault, userID string) {
	tb.Helper()
	if err := v.EnsureUserKey(userID); err != nil {
		tb.Fatalf("EnsureUserKey(%q): %v", userID, err)
	}
}

func mustSeal(tb testing.TB, v *Vault, userID, aad string, plaintext []byte) []byte {
	tb.Helper()
	sealed, err := v.Seal(userID, []byte(aad), plaintext)
	if err != nil {
		tb.Fatalf("Seal(%q, %q): %v", userID, aad, err)
	}
	return sealed
}

func randomBytes(tb testing.TB, n int) []byte {
	tb.Helper()
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func copyFile(t *testing.T, from, to string, mode os.FileMode) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, mode); err != nil {
		t.Fatal(err)
	}
}

func TestOpenCreatesMasterKey(t *testing.T) {
	dir := t.TempDir()
	v := mustOpen(t, dir)
	mustUser(t, v, "u1")
	sealed := mustSeal(t, v, "u1", "profile/u1/name", []byte("Ada"))
	index := v.BlindIndex("email", "ada@example.org")
	if err := v.Close(); err != nil {
		t.Fatal(err)
	}

	info, err := os.Stat(filepath.Join(dir, MasterKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := info.Mode().Perm(), os.FileMode(0o600); got != want {
		t.Errorf("master.key mode = %#o, want %#o", got, want)
	}
	if got := info.Size(); got != KeySize {
		t.Errorf("master.key size = %d, want %d", got, KeySize)
	}

	// A second start uses the same key: old data opens, the index is stable.
	v2 := mustOpen(t, dir)
	got, err := v2.Open("u1", []byte("profile/u1/name"), sealed)
	if err != nil || string(got) != "Ada" {
		t.Fatalf("Open after restart = %q, %v; want Ada", got, err)
	}
	if !bytes.Equal(v2.BlindIndex("email", "ada@example.org"), index) {
		t.Error("blind index changed across restarts")
	}
}

func TestOpenWithEnvKey(t *testing.T) {
	dir := t.TempDir()
	key := randomBytes(t, KeySize)
	env := base64.StdEncoding.EncodeToString(key)
	v, err := Open(dir, env)
	if err != nil {
		t.Fatal(err)
	}
	mustUser(t, v, "u1")
	sealed := mustSeal(t, v, "u1", "a", []byte("x"))
	v.Close()
	if _, err := os.Stat(filepath.Join(dir, MasterKeyFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("master.key was written although the key came from the environment: %v", err)
	}
	// URL-safe unpadded form of the same key is the same key.
	v, err = Open(dir, base64.RawURLEncoding.EncodeToString(key))
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	if got, err := v.Open("u1", []byte("a"), sealed); err != nil || string(got) != "x" {
		t.Fatalf("Open = %q, %v", got, err)
	}
	if err := v.RotateMasterFile(); app.ErrorCode(err) != app.EINVALID {
		t.Errorf("RotateMasterFile with an env key: err = %v, want EINVALID", err)
	}
}

// TestOpenRefuses checks every start that must not go ahead, and that the
// refusal tells the operator what to do.
func TestOpenRefuses(t *testing.T) {
	tests := []struct {
		name     string
		setup    func(t *testing.T, dir string) // dir holds an initialised keyring and its master.key
		env      string
		wantCode string
		wantMsg  string
	}{
		{
			name:     "key file readable by group",
			setup:    func(t *testing.T, dir string) { os.Chmod(filepath.Join(dir, MasterKeyFile), 0o640) },
			wantCode: app.EINVALID, wantMsg: "chmod 600",
		},
		{
			name:     "key file readable by others",
			setup:    func(t *testing.T, dir string) { os.Chmod(filepath.Join(dir, MasterKeyFile), 0o604) },
			wantCode: app.EINVALID, wantMsg: "other accounts",
		},
		{
			name:     "key file missing while keyring exists",
			setup:    func(t *testing.T, dir string) { os.Remove(filepath.Join(dir, MasterKeyFile)) },
			wantCode: app.EINVALID, wantMsg: "Restore master.key from your key backup",
		},
		{
			name: "key file too short",
			setup: func(t *testing.T, dir string) {
				os.WriteFile(filepath.Join(dir, MasterKeyFile), randomBytes(t, 31), 0o600)
			},
			wantCode: app.EINVALID, wantMsg: "exactly 32 bytes",
		},
		{
			name: "wrong key file",
			setup: func(t *testing.T, dir string) {
				os.WriteFile(filepath.Join(dir, MasterKeyFile), randomBytes(t, KeySize), 0o600)
			},
			wantCode: app.EINVALID, wantMsg: "would be unreadable",
		},
		{
			name: "wrong key in master.key.new too",
			setup: func(t *testing.T, dir string) {
				os.WriteFile(filepath.Join(dir, MasterKeyFile), randomBytes(t, KeySize), 0o600)
				os.WriteFile(filepath.Join(dir, masterKeyNewFile), randomBytes(t, KeySize), 0o600)
			},
			wantCode: app.EINVALID, wantMsg: "does not match the keyring",
		},
		{
			name:     "env key not base64",
			env:      "not base64 at all!",
			wantCode: app.EINVALID, wantMsg: "exactly 32 bytes",
		},
		{
			name:     "env key 16 bytes",
			env:      base64.StdEncoding.EncodeToString(make([]byte, 16)),
			wantCode: app.EINVALID, wantMsg: "ZIMAGE_MASTER_KEY",
		},
		{
			name:     "env key wrong",
			env:      base64.StdEncoding.EncodeToString(make([]byte, KeySize)),
			wantCode: app.EINVALID, wantMsg: "would be unreadable",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			v := mustOpen(t, dir)
			mustUser(t, v, "u1")
			v.Close()
			if tt.setup != nil {
				tt.setup(t, dir)
			}
			v, err := Open(dir, tt.env)
			if err == nil {
				v.Close()
				t.Fatal("Open succeeded, want a refusal")
			}
			var ae *app.Error
			if !errors.As(err, &ae) {
				t.Fatalf("error %v (%T) is not an *app.Error", err, err)
			}
			if ae.Code != tt.wantCode || !strings.Contains(ae.Message, tt.wantMsg) {
				t.Errorf("got %s %q, want code %s and a message containing %q", ae.Code, ae.Message, tt.wantCode, tt.wantMsg)
			}
		})
	}
}

func TestBlindIndex(t *testing.T) {
	v := mustOpen(t, t.TempDir())
	other := mustOpen(t, t.TempDir())
	base := v.BlindIndex("email", "ada@example.org")
	if len(base) != 32 {
		t.Fatalf("index is %d bytes, want 32", len(base))
	}
	tests := []struct {
		name           string
		vault          *Vault
		purpose, value string
		wantSame       bool
	}{
		{"same input", v, "email", "ada@example.org", true},
		{"other value", v, "email", "bob@example.org", false},
		{"other purpose", v, "username", "ada@example.org", false},
		{"purpose and value boundary moved", v, "email\x00ada", "@example.org", false},
		{"other installation", other, "email", "ada@example.org", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.vault.BlindIndex(tt.purpose, tt.value)
			if same := bytes.Equal(got, base); same != tt.wantSame {
				t.Errorf("equal to base index = %v, want %v", same, tt.wantSame)
			}
		})
	}
}

func TestCacheIsBounded(t *testing.T) {
	v := mustOpen(t, t.TempDir(), WithCacheSize(2))
	sealed := map[string][]byte{}
	for _, u := range []string{"a", "b", "c", "d"} {
		mustUser(t, v, u)
		sealed[u] = mustSeal(t, v, u, "x", []byte(u))
	}
	if got := v.cache.len(); got > 2 {
		t.Errorf("cache holds %d users, want at most 2", got)
	}
	// Evicted users still open: their keys are reloaded from the keyring.
	for u, s := range sealed {
		if got, err := v.Open(u, []byte("x"), s); err != nil || string(got) != u {
			t.Errorf("Open(%q) = %q, %v", u, got, err)
		}
	}
}
