package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"zimage/app"
	"zimage/app/auth"
	"zimage/app/privacy"
	"zimage/app/sqlite"
	"zimage/app/vault"
)

// TestDeletedAccountsJobAndTrainingExport runs the purge and the training
// export through the CLI over a real data folder.
func TestDeletedAccountsJobAndTrainingExport(t *testing.T) {
	dir := t.TempDir()
	environ := []string{"ZIMAGE_SERVER_DATA_DIR=" + dir}
	run := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := Run(context.Background(), args, Env{Stdout: &out, Stderr: &errb, Stdin: strings.NewReader(""), Environ: environ})
		return code, out.String(), errb.String()
	}
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(dir, "zimage.db"))
	if err != nil {
		t.Fatal(err)
	}
	keys, err := vault.Open(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	hasher := auth.NewHasher(auth.Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}, 2)
	accounts := auth.New(db, keys, auth.Options{Signup: app.SignupOpen, Hasher: hasher})
	ctl := privacy.NewControls(privacy.ControlsDeps{DB: db, Vault: keys, Hasher: hasher})
	var ids []string
	for _, name := range []string{"firstadmin", "leaver", "stayer"} {
		u, err := accounts.SignUp(ctx, auth.SignUpInput{Email: name + "@example.com", Username: name, Password: "correct horse battery staple", AgeConfirmed: true})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, u.ID)
	}
	if err := ctl.SetConsent(ctx, ids[2], privacy.PurposeTraining, true, privacy.MethodAPI); err != nil {
		t.Fatal(err)
	}
	if err := ctl.DeleteAccount(ctx, ids[1], "correct horse battery staple", ""); err != nil {
		t.Fatal(err)
	}
	keys.Close()
	db.Close()

	jobRemoved := func(out string) int {
		t.Helper()
		var res retentionRunOutput
		if err := json.Unmarshal([]byte(out), &res); err != nil || len(res.Jobs) != 1 || res.Jobs[0].Name != "deleted-accounts" {
			t.Fatalf("retention output: %v %s", err, out)
		}
		return res.Jobs[0].Removed
	}
	tests := []struct {
		name string
		args []string
		want int
	}{
		{"dry run counts", []string{"retention", "run", "--job", "deleted-accounts", "--dry-run"}, 1},
		{"run purges", []string{"retention", "run", "--job", "deleted-accounts"}, 1},
		{"nothing left", []string{"retention", "run", "--job", "deleted-accounts"}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errs := run(tt.args...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errs)
			}
			if got := jobRemoved(out); got != tt.want {
				t.Errorf("removed %d, want %d", got, tt.want)
			}
		})
	}

	if code, _, errs := run("training", "export"); code != exitConfig || !strings.Contains(errs, "--out is needed") {
		t.Errorf("training export without --out: %d %q", code, errs)
	}
	out := filepath.Join(t.TempDir(), "dataset")
	code, stdout, errs := run("training", "export", "--out", out)
	if code != 0 || !strings.Contains(stdout, "0 images from 0 consenting people") {
		t.Fatalf("training export: %d %q %q", code, stdout, errs)
	}
	if _, err := os.Stat(filepath.Join(out, "dataset.jsonl")); err != nil {
		t.Error(err)
	}
	if code, _, errs := run("training", "export", "--out", out); code == 0 || !strings.Contains(errs, "not empty") {
		t.Errorf("export into a used folder: %d %q", code, errs)
	}
}
