package cli

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"zimage/app"
	"zimage/app/sqlite"
)

func TestExportCommand(t *testing.T) {
	dir := t.TempDir()
	environ := []string{"ZIMAGE_SERVER_DATA_DIR=" + dir}
	run := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := Run(context.Background(), args, Env{Stdout: &out, Stderr: &errb, Stdin: strings.NewReader(""), Environ: environ})
		return code, out.String(), errb.String()
	}
	if code, out, errs := run("user", "create", "--email", "dana@example.com", "--username", "dana"); code != 0 {
		t.Fatalf("create: %d %q %q", code, out, errs)
	}
	file := filepath.Join(t.TempDir(), "dana.zip")

	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantText string
	}{
		{"missing flags", []string{"export", "--user", "dana"}, exitConfig, "both are needed"},
		{"unknown user", []string{"export", "--user", "nobody", "--out", file}, exitFail, "no account"},
		{"by username", []string{"export", "--user", "dana", "--out", file}, exitOK, "wrote the export of dana"},
		{"refuses an existing file", []string{"export", "--user", "dana@example.com", "--out", file}, exitFail, "already exists"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errs := run(tc.args...)
			if code != tc.wantCode || !strings.Contains(out+errs, tc.wantText) {
				t.Errorf("code %d (want %d), output %q %q (want %q)", code, tc.wantCode, out, errs, tc.wantText)
			}
		})
	}

	zr, err := zip.OpenReader(file)
	if err != nil {
		t.Fatalf("the file is not a ZIP: %v", err)
	}
	defer zr.Close()
	var account map[string]any
	seen := map[string]bool{}
	for _, f := range zr.File {
		seen[f.Name] = true
		if f.Name == "account.json" {
			rc, _ := f.Open()
			json.NewDecoder(rc).Decode(&account)
			rc.Close()
		}
	}
	if account["username"] != "dana" || !seen["profile.json"] || !seen["schemas/profile.schema.json"] || !seen["README.txt"] {
		t.Errorf("archive: account %v, files %v", account, seen)
	}

	db, err := sqlite.Open(context.Background(), filepath.Join(dir, "zimage.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	entries, err := db.AuditEntries(context.Background(), sqlite.AuditFilter{SubjectID: account["id"].(string), Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	audited := 0
	for _, e := range entries {
		if e.Action == app.AuditExportAdmin {
			audited++
		}
	}
	if audited != 1 {
		t.Errorf("export.admin audit entries = %d, want 1", audited)
	}
	if _, err := os.Stat(file); err != nil {
		t.Error(err)
	}

	// The rights retention jobs are registered and run from the CLI.
	code, out, errs := run("retention", "run", "--dry-run")
	if code != 0 {
		t.Fatalf("retention dry run: %d %q", code, errs)
	}
	for _, job := range []string{`"usage"`, `"support"`, `"exports"`} {
		if !strings.Contains(out, job) {
			t.Errorf("retention run lacks job %s:\n%s", job, out)
		}
	}
}
