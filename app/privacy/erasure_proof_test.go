package privacy

import (
	"bytes"
	"context"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"zimage/app"
	"zimage/app/auth"
	"zimage/app/backend"
	"zimage/app/media"
	"zimage/app/queue"
	"zimage/app/sqlite"
)

// TestErasureProof is the promise "deleted means gone, backups included"
// checked on a real data folder: after deletion and purge, no file under
// the data folder (database, WAL, keyring, media, data backups) holds the
// person's email, username or prompts in any letter case, none of their
// sealed blobs in a backup taken before the deletion opens any more, and
// the other person's data is intact.
func TestErasureProof(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	// The first account becomes admin; the victim is an ordinary user.
	other := w.signup(t, "keeper.of.things@example.net", "keeperofthings")
	victim := w.signup(t, "Zanzibar.Quillfeather@Example.org", "zanzibarquill")
	const victimPrompt = "Quokkas Juggling Turquoise Lanterns 7319"
	const otherPrompt = "a quiet harbour at dawn"
	_, victimImage := w.generate(t, victim.ID, victimPrompt)
	w.generate(t, victim.ID, victimPrompt+" again")
	otherGen, otherImage := w.generate(t, other.ID, otherPrompt)
	if err := w.ctl.SetConsent(ctx, victim.ID, PurposeTraining, true, MethodAPI); err != nil {
		t.Fatal(err)
	}
	if _, err := w.accounts.UpdateProfile(ctx, victim.ID, "Zanzibar Quillfeather"); err != nil {
		t.Fatal(err)
	}
	// A sign-in from a recognisable browser and network, and an API key
	// with a name only the victim would choose: free text and labels that
	// say who and where someone is.
	const victimKeyName = "Quokka Lantern Uploader 5521"
	const victimDevice, victimPlace = "Edge on Windows", "203.0.113.0/24"
	signin, err := w.accounts.Login(ctx, auth.LoginInput{Login: "zanzibarquill", Password: testPassword, IP: netip.MustParseAddr("203.0.113.77"),
		UserAgent: "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36 Edg/120.0"})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := w.accounts.CreateAPIKey(ctx, &auth.Principal{User: signin.User, Session: signin.Session}, victimKeyName, []string{app.ScopeRead}); err != nil {
		t.Fatal(err)
	}
	sessions, err := w.accounts.ListSessions(ctx, victim.ID)
	if err != nil || len(sessions) != 1 || sessions[0].Device != victimDevice || sessions[0].Place != victimPlace {
		t.Fatalf("the victim's sessions read back as %+v, %v; want one %q from %q (else the scans below prove nothing)", sessions, err, victimDevice, victimPlace)
	}
	if keys, err := w.accounts.ListAPIKeys(ctx, victim.ID); err != nil || len(keys) != 1 || keys[0].Name != victimKeyName {
		t.Fatalf("the victim's API keys read back as %+v, %v", keys, err)
	}
	// Sealed at rest from the start: the live database holds none of it
	// in plaintext while the account exists.
	labelNeedles := []string{strings.ToLower(victimKeyName), strings.ToLower(victimDevice), victimPlace}
	if err := w.db.CheckpointTruncate(ctx); err != nil {
		t.Fatal(err)
	}
	if hits, _ := scanFolder(t, w.dir, filepath.Join(w.dir, "no-backup-yet"), labelNeedles); len(hits) > 0 {
		t.Errorf("plaintext session labels or key names in the live data folder: %v", hits)
	}

	// A data backup, as `zimage backup --out` writes it: a snapshot of the
	// database plus a copy of the sealed media, inside the data folder.
	backupDir := filepath.Join(w.dir, "backups", "data-2026-03-01")
	if err := os.MkdirAll(backupDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := w.db.SnapshotTo(ctx, filepath.Join(backupDir, "zimage.db")); err != nil {
		t.Fatal(err)
	}
	copyTree(t, filepath.Join(w.dir, "media"), filepath.Join(backupDir, "media"))
	// openBackupImage opens the victim's image file in the backup exactly
	// as the check after the deletion does; it must work now, or that
	// check would pass for the wrong reason (a wrong path or associated
	// data rather than a destroyed key).
	openBackupImage := func() error {
		f, err := os.Open(media.FilePath(filepath.Join(backupDir, "media"), victim.ID, victimImage, "orig"))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		r, err := w.keys.OpenReader(victim.ID, []byte("media/"+victimImage+"/orig"), f)
		if err != nil {
			return err
		}
		_, err = io.ReadAll(r)
		return err
	}
	if err := openBackupImage(); err != nil {
		t.Fatalf("the victim's image in the backup does not open before the deletion, so the check after it proves nothing: %v", err)
	}

	// A job still waiting when the person deletes their account: a second,
	// never started queue keeps it queued for certain.
	b, err := backend.NewBuiltin(backend.Options{Name: "builtin", Kind: backend.KindBuiltin, Slots: 1, Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	idlePool, err := backend.NewPool([]backend.Backend{b}, map[string]int{"builtin": 1}, backend.PoolOptions{})
	if err != nil {
		t.Fatal(err)
	}
	idle := queue.New(w.db, idlePool, w.keys, media.Sink{Media: w.media}, queue.Options{})
	waiting, _, err := idle.Submit(ctx, victim.ID, app.GenerationParams{Prompt: victimPrompt + " queued", Width: 64, Height: 64, Steps: 1, Count: 1, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	ctl := NewControls(ControlsDeps{DB: w.db, Vault: w.keys, Hasher: cheapHasher, Jobs: idle, Media: w.media})

	if err := ctl.DeleteAccount(ctx, victim.ID, "not my password", ""); app.ErrorCode(err) != app.EFORBIDDEN {
		t.Fatalf("delete with a wrong password: %v, want forbidden", err)
	}
	if err := ctl.DeleteAccount(ctx, victim.ID, testPassword, ""); err != nil {
		t.Fatalf("delete: %v", err)
	}

	// Immediate effects.
	rec, err := w.db.Generation(ctx, victim.ID, waiting.ID)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Status != app.GenerationCanceled {
		t.Errorf("queued job is %s after deletion, want canceled", rec.Status)
	}
	_, loginErr := w.accounts.Login(ctx, auth.LoginInput{Login: "zanzibarquill", Password: testPassword})
	_, wrongErr := w.accounts.Login(ctx, auth.LoginInput{Login: "keeperofthings", Password: "wrong password here"})
	if loginErr == nil || app.ErrorMessage(loginErr) != app.ErrorMessage(wrongErr) {
		t.Errorf("login after deletion: %v; want the wrong-password message %q", loginErr, app.ErrorMessage(wrongErr))
	}
	if _, _, _, err := w.media.Open(ctx, victim.ID, victimImage, "png", "full"); err == nil {
		t.Error("the victim's image still opens after deletion")
	}
	// Username and email are free for someone new at once.
	if _, err := w.accounts.SignUp(ctx, auth.SignUpInput{Email: "zanzibar.quillfeather@example.org", Username: "zanzibarquill", Password: "a different long passphrase", AgeConfirmed: true}); err != nil {
		t.Errorf("username and email not freed at deletion: %v", err)
	} else {
		// That newcomer is not the victim; remove them again so the
		// scan below looks for the victim's traces only.
		n, _ := w.accounts.UserByLogin(ctx, "zanzibarquill")
		if err := w.ctl.DeleteAccount(ctx, n.ID, "a different long passphrase", ""); err != nil {
			t.Fatal(err)
		}
	}

	res, err := w.ctl.PurgeDeleted(ctx, w.clock.Now(), 10)
	if err != nil {
		t.Fatalf("purge: %v", err)
	}
	if res.Accounts != 2 || res.Rows["generations"] < 3 {
		t.Errorf("purge removed %+v, want 2 accounts and the victim's 3 generations", res)
	}
	if _, err := os.Stat(filepath.Join(w.dir, "media", victim.ID)); !os.IsNotExist(err) {
		t.Errorf("the victim's media folder survived the purge: %v", err)
	}
	if got, _ := w.db.Consents(ctx, victim.ID); len(got) != 1 {
		t.Errorf("consent ledger after purge has %d entries, want the 1 pseudonymous record kept", len(got))
	}

	needles := append([]string{"zanzibar.quillfeather@example.org", "zanzibarquill", "zanzibar quillfeather", strings.ToLower(victimPrompt)}, labelNeedles...)
	live, backup := scanFolder(t, w.dir, backupDir, needles)
	for _, hit := range live {
		t.Errorf("plaintext left in live data: %s", hit)
	}
	for _, hit := range backup {
		t.Errorf("plaintext left in the backup: %s", hit)
	}

	// The backup's sealed blobs no longer open with the live keyring.
	bdb := openCopy(t, filepath.Join(backupDir, "zimage.db"))
	gens, err := bdb.Generations(ctx, victim.ID, "", 100)
	if err != nil || len(gens) < 2 {
		t.Fatalf("backup generations of the victim: %d, %v", len(gens), err)
	}
	for _, g := range gens {
		if _, err := w.keys.Open(victim.ID, []byte("generations/"+g.ID+"/prompt"), g.SealedPrompt); err == nil {
			t.Errorf("the victim's prompt of %s in the backup still opens", g.ID)
		}
	}
	vrec, err := bdb.UserByID(ctx, victim.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.keys.Open(victim.ID, []byte("users/"+victim.ID+"/email"), vrec.SealedEmail); err == nil {
		t.Error("the victim's email in the backup still opens")
	}
	if err := openBackupImage(); err == nil {
		t.Error("the victim's image file in the backup still opens")
	}

	// The other person is untouched.
	g, err := w.queue.Get(ctx, other.ID, otherGen)
	if err != nil || g.Prompt != otherPrompt {
		t.Errorf("other person's generation: %q, %v", g.Prompt, err)
	}
	rc, _, _, err := w.media.Open(ctx, other.ID, otherImage, "png", "full")
	if err != nil {
		t.Fatalf("other person's image: %v", err)
	}
	png, _ := io.ReadAll(rc)
	rc.Close()
	if !bytes.HasPrefix(png, []byte("\x89PNG")) {
		t.Error("other person's image is not a PNG any more")
	}
	if _, err := w.accounts.Login(ctx, auth.LoginInput{Login: "keeperofthings", Password: testPassword}); err != nil {
		t.Errorf("other person cannot sign in: %v", err)
	}
}

// scanFolder reads every file under root byte by byte, letter case folded,
// and reports "needle in path" for each needle found, split into files
// under backupDir and the rest.
func scanFolder(t *testing.T, root, backupDir string, needles []string) (live, backup []string) {
	t.Helper()
	files := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		files++
		lower := bytes.ToLower(data)
		for _, n := range needles {
			if bytes.Contains(lower, []byte(n)) {
				rel, _ := filepath.Rel(root, path)
				hit := n + " in " + rel
				if strings.HasPrefix(path, backupDir+string(filepath.Separator)) {
					backup = append(backup, hit)
				} else {
					live = append(live, hit)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 6 {
		t.Fatalf("scanned only %d files: the data folder is not what the test thinks", files)
	}
	return live, backup
}

func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o700)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(target, data, 0o600)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// openCopy opens a copy of a backed-up database outside the data folder,
// so reading it leaves the backup as it was.
func openCopy(t *testing.T, path string) *sqlite.DB {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	cp := filepath.Join(t.TempDir(), "restored.db")
	if err := os.WriteFile(cp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	db, err := sqlite.Open(context.Background(), cp)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}
