package privacy

import (
	"archive/zip"
	"bytes"
	"context"
	"database/sql"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"zimage/app"
)

func waitExportStatus(t *testing.T, x *Exports, userID, id, want string) app.Export {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		e, err := x.Get(context.Background(), userID, id)
		if err != nil {
			t.Fatal(err)
		}
		if e.Status == want {
			return e
		}
		if e.Status == app.ExportFailed {
			t.Fatalf("export failed: %s", e.Error)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("export %s not %s within 20 s", id, want)
	return app.Export{}
}

func TestExportOneAtATimeAndCrashRestart(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	u := w.signup(t, "erin@example.com", "erin")
	w.generate(t, u.ID, "a lighthouse in fog")
	dir := filepath.Join(w.dir, "exports")
	x := NewExports(w.db, w.keys, w.accounts, w.media, nil, ExportOptions{Dir: dir, Keep: 7 * 24 * time.Hour})

	first, err := x.Request(ctx, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	_, err = x.Request(ctx, u.ID)
	if app.ErrorCode(err) != app.ECONFLICT || !strings.Contains(app.ErrorMessage(err), first.ID) {
		t.Fatalf("second request while pending: %v", err)
	}

	// A crash mid-build leaves the row running and a temporary file; the
	// next start removes the file and builds the export again.
	if err := w.db.SetExportRunning(ctx, first.ID); err != nil {
		t.Fatal(err)
	}
	leftover := filepath.Join(dir, u.ID, first.ID+".zip.sealed.tmp-deadbeef")
	os.MkdirAll(filepath.Dir(leftover), 0o700)
	os.WriteFile(leftover, []byte("half"), 0o600)
	runCtx, cancel := context.WithCancel(ctx)
	x.Start(runCtx)
	defer func() { cancel(); x.Stop() }()
	done := waitExportStatus(t, x, u.ID, first.ID, app.ExportReady)
	if _, err := os.Stat(leftover); !os.IsNotExist(err) {
		t.Errorf("leftover temporary file still there: %v", err)
	}
	if want := done.DoneAt.Add(7 * 24 * time.Hour); !done.ExpiresAt.Equal(want) {
		t.Errorf("expires %s, want %s", done.ExpiresAt, want)
	}

	rc, e, err := x.Open(ctx, u.ID, first.ID)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || int64(len(body)) != e.Bytes {
		t.Fatalf("read %d bytes (%v), row says %d", len(body), err, e.Bytes)
	}
	zr, err := zip.NewReader(bytes.NewReader(body), int64(len(body)))
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, f := range zr.File {
		names[f.Name] = true
	}
	if !names["README.txt"] || !names["consents.json"] || !names["schemas/consents.schema.json"] {
		t.Errorf("files: %v", names)
	}

	// Another person cannot open it; the next export is allowed now.
	v := w.signup(t, "vic@example.com", "vic")
	if _, _, err := x.Open(ctx, v.ID, first.ID); app.ErrorCode(err) != app.ENOTFOUND {
		t.Errorf("another person's export: %v", err)
	}
	if _, err := x.Request(ctx, u.ID); err != nil {
		t.Errorf("a new export after the first finished: %v", err)
	}
}

func TestSupportTextIsSealedAtRest(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	u := w.signup(t, "fay@example.com", "fay")
	s := NewSupport(w.db, w.keys, nil)
	tk, err := s.Open(ctx, u.ID, "zebra subject", "quokka body")
	if err != nil {
		t.Fatal(err)
	}
	staff := &app.User{ID: "01STAFF0000000000000000000", Role: app.RoleSupport}
	if _, err := s.StaffReply(ctx, staff, tk.ID, "wombat reply"); err != nil {
		t.Fatal(err)
	}
	raw, err := sql.Open("sqlite", "file:"+filepath.Join(w.dir, "zimage.db")+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	var blob []byte
	for _, q := range []string{`SELECT group_concat(subject) FROM tickets`, `SELECT group_concat(body) FROM ticket_messages`} {
		var b []byte
		if err := raw.QueryRow(q).Scan(&b); err != nil {
			t.Fatal(err)
		}
		blob = append(blob, b...)
	}
	for _, word := range []string{"zebra", "quokka", "wombat"} {
		if bytes.Contains(blob, []byte(word)) {
			t.Errorf("%q stored in the clear", word)
		}
	}
	// The staff reply is sealed with the owner's key: the owner reads it.
	got, err := s.Get(ctx, u.ID, tk.ID)
	if err != nil || len(got.Messages) != 2 || got.Messages[1].Body != "wombat reply" || got.Status != app.TicketAnswered {
		t.Fatalf("owner view: %+v %v", got, err)
	}
}
