package cli

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"zimage/app"
	"zimage/app/auth"
	"zimage/app/privacy"
	"zimage/app/sqlite"
	"zimage/app/vault"
)

// TestRestoreKeepsDeletedAccountsDeleted is the whole story of a restore
// after an erasure: back up, delete person C and purge, restore the backup
// with the current keyring. C's rows come back with the backup, but C must
// stay deleted: listed as deleted, unable to sign in or use an old session
// or API key, and purged (rows, media, exports) by the next retention run.
// Person A, backed up and not deleted, works throughout.
func TestRestoreKeepsDeletedAccountsDeleted(t *testing.T) {
	ctx := context.Background()
	dataDir := filepath.Join(t.TempDir(), "data")
	const password = "a long and quiet passphrase 42"
	create := func(email, username string, extra ...string) {
		t.Helper()
		args := append([]string{"user", "create", "--email", email, "--username", username, "--password-stdin"}, extra...)
		var out, errb strings.Builder
		code := Run(ctx, args, Env{Stdout: &out, Stderr: &errb, Stdin: strings.NewReader(password + "\n"), Environ: []string{"ZIMAGE_SERVER_DATA_DIR=" + dataDir}})
		if code != 0 {
			t.Fatalf("user create %s: %s", username, errb.String())
		}
	}
	create("alice@example.com", "alice", "--admin")
	create("carol@example.com", "carolgone")

	// Credentials of both, made while the data is live: an API key and a
	// session each.
	env := Env{Environ: []string{"ZIMAGE_SERVER_DATA_DIR=" + dataDir}}
	svc, _, closeAccounts, err := openAccounts(ctx, env, "")
	if err != nil {
		t.Fatal(err)
	}
	type person struct {
		id, apiKey, session string
	}
	credentials := func(login string) person {
		t.Helper()
		res, err := svc.Login(ctx, auth.LoginInput{Login: login, Password: password})
		if err != nil {
			t.Fatalf("login %s: %v", login, err)
		}
		_, key, err := svc.CreateAPIKey(ctx, &auth.Principal{User: res.User, Session: res.Session}, "laptop script", []string{app.ScopeRead})
		if err != nil {
			t.Fatal(err)
		}
		return person{id: res.User.ID, apiKey: key, session: res.Token}
	}
	alice, carol := credentials("alice"), credentials("carolgone")
	closeAccounts()
	// Something of Carol's on disk: an (already sealed) media file and an
	// export archive.
	for _, p := range []string{filepath.Join(dataDir, "media", carol.id, "img.orig"), filepath.Join(dataDir, "exports", carol.id, "export.zip")} {
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("sealed bytes"), 0o600); err != nil {
			t.Fatal(err)
		}
	}

	backup := filepath.Join(t.TempDir(), "backup")
	if code, _, stderr := runWithDataDir(t, dataDir, "backup", "--out", backup); code != 0 {
		t.Fatalf("backup: %s", stderr)
	}

	// Carol deletes her account; the retention job purges it.
	db, err := sqlite.Open(ctx, filepath.Join(dataDir, "zimage.db"))
	if err != nil {
		t.Fatal(err)
	}
	keys, err := vault.Open(dataDir, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := privacy.NewControls(privacy.ControlsDeps{DB: db, Vault: keys}).DeleteAccount(ctx, carol.id, password, ""); err != nil {
		t.Fatalf("delete: %v", err)
	}
	keys.Close()
	db.Close()
	if code, stdout, stderr := runWithDataDir(t, dataDir, "retention", "run", "--job", "deleted-accounts"); code != 0 || !strings.Contains(stdout, `"removed": 1`) {
		t.Fatalf("purge after the deletion: %d %s %s", code, stdout, stderr)
	}
	keyDir := filepath.Join(t.TempDir(), "keys")
	if code, _, stderr := runWithDataDir(t, dataDir, "backup", "--keyring", "--out", keyDir); code != 0 {
		t.Fatalf("keyring backup: %s", stderr)
	}
	current, _ := filepath.Glob(filepath.Join(keyDir, "keyring-*.db"))
	if len(current) != 1 {
		t.Fatalf("keyring backups: %v", current)
	}

	// The data folder is lost; the backup comes back with today's keyring.
	fresh := filepath.Join(t.TempDir(), "fresh")
	os.MkdirAll(fresh, 0o700)
	master, _ := os.ReadFile(filepath.Join(dataDir, vault.MasterKeyFile))
	os.WriteFile(filepath.Join(fresh, vault.MasterKeyFile), master, 0o600)
	code, stdout, stderr := runWithDataDir(t, fresh, "restore", "--from", backup, "--keyring", current[0])
	if code != 0 {
		t.Fatalf("restore: %s", stderr)
	}
	if !strings.Contains(stdout, "1 account(s) deleted since the backup") || !strings.Contains(stdout, "marked deleted") {
		t.Errorf("restore output does not say what became of the deleted account:\n%s", stdout)
	}
	if _, err := os.Stat(filepath.Join(fresh, "media", carol.id, "img.orig")); err != nil {
		t.Fatalf("the backup's media did not come back (the purge below proves nothing then): %v", err)
	}
	os.MkdirAll(filepath.Join(fresh, "exports", carol.id), 0o700)
	os.WriteFile(filepath.Join(fresh, "exports", carol.id, "export.zip"), []byte("sealed bytes"), 0o600)

	// Listed as deleted, not active.
	code, stdout, _ = runWithDataDir(t, fresh, "user", "list")
	for _, line := range strings.Split(stdout, "\n") {
		if strings.HasPrefix(line, carol.id) && (!strings.Contains(line, "deleted") || strings.Contains(line, "active")) {
			t.Errorf("user list shows the deleted account as: %q", line)
		}
		if strings.HasPrefix(line, alice.id) && !strings.Contains(line, "active") {
			t.Errorf("user list shows the kept account as: %q", line)
		}
	}
	if code != 0 || !strings.Contains(stdout, carol.id) {
		t.Fatalf("user list before the purge: %d\n%s", code, stdout)
	}

	// No sign-in, no old session, no old API key.
	svc, _, closeAccounts, err = openAccounts(ctx, Env{Environ: []string{"ZIMAGE_SERVER_DATA_DIR=" + fresh}}, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Login(ctx, auth.LoginInput{Login: "carolgone", Password: password}); err == nil {
		t.Error("the deleted person signs in after the restore")
	}
	if _, err := svc.Authenticate(ctx, carol.session); err == nil {
		t.Error("the deleted person's old session works after the restore")
	}
	if _, err := svc.Authenticate(ctx, alice.session); err != nil {
		t.Errorf("the kept person's session: %v", err)
	}
	closeAccounts()

	cfg := testConfig(t)
	cfg.Server.DataDir = fresh
	srv := startServe(t, cfg, 20*time.Second, nil)
	get := func(key string) int {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, "http://"+srv.addrs["http"]+"/api/v1/images", nil)
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := get(carol.apiKey); got != http.StatusUnauthorized {
		t.Errorf("the deleted person's old API key answers %d, want 401", got)
	}
	if got := get(alice.apiKey); got != http.StatusOK {
		t.Errorf("the kept person's API key answers %d, want 200", got)
	}

	// The next retention run purges rows, media and exports.
	code, stdout, stderr = runWithDataDir(t, fresh, "retention", "run", "--job", "deleted-accounts")
	if code != 0 || !strings.Contains(stdout, `"removed": 1`) {
		t.Fatalf("purge after the restore: %d %s %s", code, stdout, stderr)
	}
	for _, p := range []string{filepath.Join(fresh, "media", carol.id), filepath.Join(fresh, "exports", carol.id)} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s survived the purge: %v", p, err)
		}
	}
	db, err = sqlite.Open(ctx, filepath.Join(fresh, "zimage.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.UserByID(ctx, carol.id); app.ErrorCode(err) != app.ENOTFOUND {
		t.Errorf("the deleted person's row after the purge: %v", err)
	}
	if got := get(alice.apiKey); got != http.StatusOK {
		t.Errorf("after the purge the kept person's API key answers %d, want 200", got)
	}
}
