package cli

import (
	"bytes"
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"
)

func TestUserCreateListDisableAndAuditVerify(t *testing.T) {
	dir := t.TempDir()
	environ := []string{"ZIMAGE_SERVER_DATA_DIR=" + dir}
	run := func(stdin string, args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := Run(context.Background(), args, Env{Stdout: &out, Stderr: &errb, Stdin: strings.NewReader(stdin), Environ: environ})
		return code, out.String(), errb.String()
	}
	code, out, errs := run("correct horse battery staple\n", "user", "create", "--admin", "--email", "Root@Example.com", "--username", "Root", "--password-stdin")
	if code != 0 || !strings.Contains(out, "created admin root") {
		t.Fatalf("create admin: %d %q %q", code, out, errs)
	}
	code, out, _ = run("", "user", "create", "--email", "bob@example.com", "--username", "bob")
	if code != 0 || !strings.Contains(out, "password: ") {
		t.Fatalf("create with generated password: %d %q", code, out)
	}
	if code, _, errs = run("", "user", "create", "--email", "BOB@example.com", "--username", "bobby"); code != 1 || !strings.Contains(errs, "already exists") {
		t.Errorf("duplicate email: %d %q", code, errs)
	}
	if code, _, errs = run("password\n", "user", "create", "--email", "c@example.com", "--username", "carol", "--password-stdin"); code != 1 || !strings.Contains(errs, "10 characters") {
		t.Errorf("weak password: %d %q", code, errs)
	}
	code, out, _ = run("", "user", "list")
	if code != 0 || !strings.Contains(out, "root") || !strings.Contains(out, "admin") || strings.Contains(out, "example.com") {
		t.Errorf("list (must not show emails): %d\n%s", code, out)
	}
	if code, out, errs = run("", "user", "disable", "bob@example.com"); code != 0 || !strings.Contains(out, "disabled bob") {
		t.Errorf("disable: %d %q %q", code, out, errs)
	}
	if code, out, _ = run("", "audit", "verify"); code != 0 || !strings.Contains(out, "intact") {
		t.Fatalf("verify intact: %d %q", code, out)
	}

	// Someone with the file edits an entry.
	raw, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "zimage.db"))
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{`DROP TRIGGER audit_log_no_update`, `UPDATE audit_log SET action = 'logout' WHERE seq = 2`} {
		if _, err := raw.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	raw.Close()
	if code, _, errs = run("", "audit", "verify"); code != 1 || !strings.Contains(errs, "entry 2") {
		t.Errorf("verify after tampering: %d %q", code, errs)
	}
}
