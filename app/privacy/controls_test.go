package privacy

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"zimage/app"
	"zimage/app/sqlite"
)

func TestLegalHoldPausesDeletionAndPurge(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	admin := w.signup(t, "admin@example.com", "theadmin")
	held := w.signup(t, "held@example.com", "heldperson")

	if err := w.ctl.SetHold(ctx, admin.ID, held.ID, ""); app.ErrorCode(err) != app.EINVALID {
		t.Errorf("hold without a reason: %v, want invalid", err)
	}
	if err := w.ctl.SetHold(ctx, admin.ID, held.ID, "Preservation order 2026-114 (Jane Roe v. Example)"); err != nil {
		t.Fatal(err)
	}
	err := w.ctl.DeleteAccount(ctx, held.ID, testPassword, "")
	if app.ErrorCode(err) != app.ECONFLICT || !strings.Contains(app.ErrorMessage(err), "legal hold") {
		t.Fatalf("delete while held: %v, want a conflict naming the hold", err)
	}
	if err := w.ctl.EraseChild(ctx, admin.ID, held.ID); app.ErrorCode(err) != app.ECONFLICT {
		t.Errorf("child erasure while held: %v, want conflict", err)
	}
	if u, err := w.db.UserByID(ctx, held.ID); err != nil || !u.DeletedAt.IsZero() {
		t.Fatalf("held account was deleted anyway: %v", err)
	}
	h, ok, err := w.ctl.Hold(ctx, held.ID)
	if err != nil || !ok || !strings.Contains(h.Reason, "2026-114") || h.AdminID != admin.ID {
		t.Errorf("hold as the admin sees it: %+v %v %v", h, ok, err)
	}
	// The audit log records who and when, never the reason text.
	entries, err := w.db.AuditEntries(ctx, sqlite.AuditFilter{SubjectID: held.ID, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, e := range entries {
		if strings.Contains(e.Detail, "Roe") || strings.Contains(e.Detail, "2026-114") {
			t.Errorf("audit entry %s carries the hold's reason: %s", e.Action, e.Detail)
		}
		found = found || (e.Action == AuditLegalHoldSet && e.ActorID == admin.ID)
	}
	if !found {
		t.Error("no audit entry for setting the hold")
	}

	if err := w.ctl.ReleaseHold(ctx, admin.ID, held.ID); err != nil {
		t.Fatal(err)
	}
	if err := w.ctl.ReleaseHold(ctx, admin.ID, held.ID); app.ErrorCode(err) != app.ENOTFOUND {
		t.Errorf("release twice: %v, want not found", err)
	}
	if err := w.ctl.DeleteAccount(ctx, held.ID, testPassword, ""); err != nil {
		t.Fatalf("delete after release: %v", err)
	}
	if n, err := w.ctl.CountPurgeable(ctx, w.clock.Now()); err != nil || n != 1 {
		t.Errorf("purgeable: %d %v, want 1", n, err)
	}
	if res, err := w.ctl.PurgeDeleted(ctx, w.clock.Now(), 10); err != nil || res.Accounts != 1 {
		t.Errorf("purge: %+v %v", res, err)
	}
	if _, err := w.db.UserByID(ctx, held.ID); app.ErrorCode(err) != app.ENOTFOUND {
		t.Errorf("users row after purge: %v, want gone", err)
	}
}

// The purge honours its cutoff and leaves held accounts alone; a hold
// cannot be put on an account already deleted (its key is gone, there is
// nothing left to preserve).
func TestPurgeSkipsHeldAndWindow(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	admin := w.signup(t, "admin@example.com", "theadmin")
	gone := w.signup(t, "gone@example.com", "goneperson")
	keep := w.signup(t, "keep@example.com", "keepperson")
	if err := w.ctl.SetHold(ctx, admin.ID, keep.ID, "Litigation hold"); err != nil {
		t.Fatal(err)
	}
	if err := w.ctl.DeleteAccount(ctx, gone.ID, testPassword, ""); err != nil {
		t.Fatal(err)
	}
	if err := w.ctl.SetHold(ctx, admin.ID, gone.ID, "too late"); app.ErrorCode(err) != app.ENOTFOUND {
		t.Errorf("hold on a deleted account: %v, want not found", err)
	}
	deletedAt := w.clock.Now()
	tests := []struct {
		name   string
		cutoff time.Time
		want   int
	}{
		{name: "deleted after the cutoff: kept for now", cutoff: deletedAt.Add(-time.Millisecond), want: 0},
		{name: "deleted at the cutoff: purged", cutoff: deletedAt, want: 1},
		{name: "again: nothing left but the held account", cutoff: deletedAt.Add(time.Hour), want: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := w.ctl.PurgeDeleted(ctx, tt.cutoff, 10)
			if err != nil || res.Accounts != tt.want {
				t.Errorf("purge: %+v %v, want %d accounts", res, err, tt.want)
			}
		})
	}
	if _, err := w.db.UserByID(ctx, keep.ID); err != nil {
		t.Errorf("held account was purged: %v", err)
	}
}

func TestChildErasure(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	admin := w.signup(t, "admin@example.com", "theadmin")
	child := w.signup(t, "kid@example.com", "youngone")
	w.generate(t, child.ID, "a dragon made of crayons")
	if err := w.ctl.EraseChild(ctx, admin.ID, admin.ID); app.ErrorCode(err) != app.EINVALID {
		t.Errorf("admin on themself: %v, want invalid", err)
	}
	if err := w.ctl.EraseChild(ctx, admin.ID, child.ID); err != nil {
		t.Fatal(err)
	}
	if err := w.ctl.EraseChild(ctx, admin.ID, child.ID); app.ErrorCode(err) != app.ENOTFOUND {
		t.Errorf("second erasure: %v, want not found", err)
	}
	if w.keys.HasKey(child.ID) {
		t.Error("the child's key survived")
	}
	entries, err := w.db.AuditEntries(ctx, sqlite.AuditFilter{SubjectID: child.ID, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	var got *app.AuditEntry
	for _, e := range entries {
		if e.Action == AuditAccountErasedChild {
			got = e
		}
	}
	if got == nil || got.ActorID != admin.ID || !strings.Contains(got.Detail, "under_13") {
		t.Errorf("audit of the child erasure: %+v", got)
	}
}

func TestConsentLedger(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	u := w.signup(t, "person@example.com", "someperson")
	st, err := w.ctl.Consents(ctx, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{PurposeTraining: false, PurposeMarketing: false, PurposeAnalytics: true}
	for _, p := range st.Purposes {
		if p.Granted != want[p.Purpose] || !p.Default {
			t.Errorf("default %s = %v (default %v), want %v", p.Purpose, p.Granted, p.Default, want[p.Purpose])
		}
	}
	steps := []struct {
		purpose string
		granted bool
	}{{PurposeTraining, true}, {PurposeAnalytics, false}, {PurposeTraining, false}, {PurposeMarketing, true}}
	for _, s := range steps {
		w.clock.Advance(1000)
		if err := w.ctl.SetConsent(ctx, u.ID, s.purpose, s.granted, MethodAPI); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.ctl.SetConsent(ctx, u.ID, "profiling", true, MethodAPI); app.ErrorCode(err) != app.EINVALID {
		t.Errorf("unknown purpose: %v", err)
	}
	st, _ = w.ctl.Consents(ctx, u.ID)
	if len(st.History) != 4 || st.History[0].Purpose != PurposeMarketing || st.History[3].Purpose != PurposeTraining || !st.History[3].Granted {
		t.Errorf("history (newest first) = %+v", st.History)
	}
	if st.Granted(PurposeTraining) || st.Granted(PurposeAnalytics) || !st.Granted(PurposeMarketing) {
		t.Errorf("state = %+v, want training withdrawn, analytics objected, marketing granted", st.Purposes)
	}
	if err := w.ctl.SetRestricted(ctx, u.ID, true); err != nil {
		t.Fatal(err)
	}
	if ok, _ := w.ctl.Allows(ctx, u.ID, PurposeMarketing); ok {
		t.Error("marketing allowed while processing is restricted")
	}
	if err := w.ctl.SetRestricted(ctx, u.ID, false); err != nil {
		t.Fatal(err)
	}
	if ok, _ := w.ctl.Allows(ctx, u.ID, PurposeMarketing); !ok {
		t.Error("marketing still off after the restriction was lifted")
	}
}

func TestTrainingExportSelectsConsentingPeople(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	w.signup(t, "admin@example.com", "theadmin")
	type person struct {
		name    string
		consent []bool // ledger entries for training, in order
		delete  bool
		restict bool
		want    bool
	}
	people := []person{
		{name: "granted", consent: []bool{true}, want: true},
		{name: "withdrawn", consent: []bool{true, false}},
		{name: "regranted", consent: []bool{true, false, true}, want: true},
		{name: "never"},
		{name: "deleted", consent: []bool{true}, delete: true},
		{name: "restricted", consent: []bool{true}, restict: true},
	}
	for _, p := range people {
		u := w.signup(t, p.name+"@example.com", p.name+"person")
		w.generate(t, u.ID, "prompt of "+p.name)
		for _, g := range p.consent {
			if err := w.ctl.SetConsent(ctx, u.ID, PurposeTraining, g, MethodAPI); err != nil {
				t.Fatal(err)
			}
		}
		if p.restict {
			if err := w.ctl.SetRestricted(ctx, u.ID, true); err != nil {
				t.Fatal(err)
			}
		}
		if p.delete {
			if err := w.ctl.DeleteAccount(ctx, u.ID, testPassword, ""); err != nil {
				t.Fatal(err)
			}
		}
	}
	out := filepath.Join(t.TempDir(), "dataset")
	res, err := w.ctl.ExportTraining(ctx, w.media, out)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join(out, "dataset.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got := map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var rec TrainingRecord
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("bad line %q: %v", sc.Text(), err)
		}
		got[strings.TrimPrefix(rec.Prompt, "prompt of ")] = true
		data, err := os.ReadFile(filepath.Join(out, filepath.FromSlash(rec.File)))
		if err != nil || !strings.HasPrefix(string(data), "\x89PNG") {
			t.Errorf("image %s of %q is not a decrypted PNG: %v", rec.File, rec.Prompt, err)
		}
		if rec.Seed != 7 || rec.Width != 64 || rec.Steps != 1 {
			t.Errorf("parameters lost: %+v", rec)
		}
	}
	for _, p := range people {
		if got[p.name] != p.want {
			t.Errorf("%s in dataset = %v, want %v", p.name, got[p.name], p.want)
		}
	}
	if res.People != 2 || res.Images != 2 {
		t.Errorf("result %+v, want 2 people, 2 images", res)
	}
	if _, err := w.ctl.ExportTraining(ctx, w.media, out); app.ErrorCode(err) != app.EINVALID {
		t.Errorf("export into a non-empty folder: %v, want invalid", err)
	}
}

func TestMailNotifierQueuesSealedNoticeForActivePeople(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	w.signup(t, "admin@example.com", "theadmin")
	stay := w.signup(t, "stay@example.com", "stayer")
	gone := w.signup(t, "gone@example.com", "goner")
	if err := w.ctl.DeleteAccount(ctx, gone.ID, testPassword, ""); err != nil {
		t.Fatal(err)
	}
	n := MailNotifier{DB: w.db, Vault: w.keys}
	if err := n.NotifyPolicyChange(ctx, PolicyVersion{Version: 2, Summary: "Images are kept for 60 days.", PublishedAt: w.clock.Now()}); err != nil {
		t.Fatal(err)
	}
	mail, err := w.db.PendingMail(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]PolicyChangeMail{}
	for _, m := range mail {
		if m.Kind != MailKindPolicyChange {
			continue
		}
		plain, err := w.keys.Open(m.UserID, []byte("outbox/"+m.ID+"/payload"), m.SealedPayload)
		if err != nil {
			t.Fatalf("payload of %s does not open: %v", m.UserID, err)
		}
		if strings.Contains(string(m.SealedPayload), "@example.com") {
			t.Error("payload stored in plaintext")
		}
		var p PolicyChangeMail
		json.Unmarshal(plain, &p)
		got[m.UserID] = p
	}
	if len(got) != 2 || got[stay.ID].To != "stay@example.com" || got[stay.ID].Version != 2 {
		t.Errorf("notices = %+v, want one each for the 2 active people", got)
	}
	if _, ok := got[gone.ID]; ok {
		t.Error("a deleted account got a notice")
	}
}

// Deleting the account fulfils the person's erase request, and the purge
// removes their export archives with everything else.
func TestDeletionClosesEraseRequestAndPurgeRemovesExports(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	w.signup(t, "first@example.com", "firstadmin")
	u := w.signup(t, "leaving@example.com", "leavingsoon")
	reqs := NewRequests(w.db, w.keys, nil, nil)
	if _, err := reqs.File(ctx, u.ID, app.RequestErase, "Please delete everything about me."); err != nil {
		t.Fatal(err)
	}
	exportsDir := filepath.Join(w.dir, "exports")
	archive := filepath.Join(exportsDir, u.ID, "01EXPORT.zip.sealed")
	if err := os.MkdirAll(filepath.Dir(archive), 0o700); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(archive, []byte("sealed archive"), 0o600)
	ctl := NewControls(ControlsDeps{DB: w.db, Vault: w.keys, Hasher: cheapHasher, Jobs: w.queue, Media: w.media, ExportsDir: exportsDir})

	if err := ctl.DeleteAccount(ctx, u.ID, testPassword, ""); err != nil {
		t.Fatal(err)
	}
	rows, err := w.db.DataRequestsOf(ctx, u.ID)
	if err != nil || len(rows) != 1 || rows[0].Status != app.RequestClosed {
		t.Fatalf("erase request after deletion: %+v, %v; want closed", rows, err)
	}
	if _, err := ctl.PurgeDeleted(ctx, w.clock.Now(), 10); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Dir(archive)); !os.IsNotExist(err) {
		t.Errorf("the person's export folder survived the purge: %v", err)
	}
}
