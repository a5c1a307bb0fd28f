package mail_test

import (
	"context"
	"testing"

	"zimage/app"
)

// After erasure a person's unsent mail is gone and their sent mail leaves
// only the count of its kind.
func TestErasureLeavesOnlyCounts(t *testing.T) {
	w := newWorld(t)
	fs := startFaultServer(t, "ok")
	ctx := context.Background()
	w.enqueue(t)
	if r, err := faultSender(w, fs, 3).SendDue(ctx); err != nil || r.Sent != 1 {
		t.Fatalf("round: %+v, %v", r, err)
	}
	w.enqueue(t) // unsent
	if err := w.db.MarkUserDeleted(ctx, w.userID, app.AuditEntry{Action: "account.delete"}); err != nil {
		t.Fatal(err)
	}
	pending, err := w.db.PendingMail(ctx, 10)
	if err != nil || len(pending) != 0 {
		t.Fatalf("pending after erasure: %d, %v; want none", len(pending), err)
	}
	sum, err := w.db.MailSummary(ctx)
	if err != nil || sum.SentByKind["password_reset"] != 1 || sum.Pending+sum.Retrying+sum.Dead != 0 {
		t.Fatalf("summary after erasure %+v, %v; want only the count of the sent reset", sum, err)
	}
}

// Every kind in the catalog renders both parts with sample fields, and a
// subject that would break a header line is refused.
func TestTemplatesRenderEveryKind(t *testing.T) {
	w := newWorld(t)
	fields := map[string]any{"link": "/x?token=t", "ttl": "1 hour", "change": "password", "version": 3, "summary": "Shorter retention.", "published_at": "2026-03-01"}
	for _, kind := range w.tmpl.Kinds() {
		m, err := w.tmpl.Render(kind, fields)
		if err != nil {
			t.Errorf("%s: %v", kind, err)
			continue
		}
		if m.Subject == "" || m.Text == "" || m.HTML == "" {
			t.Errorf("%s rendered empty parts: %+v", kind, m)
		}
	}
	if _, err := w.tmpl.Render("security_change", map[string]any{"change": "x"}); err != nil {
		t.Fatalf("plain change: %v", err)
	}
	if _, err := w.tmpl.Render("policy_change", map[string]any{"version": "3\r\nBcc: victim@example.test", "summary": "s", "published_at": "d"}); err == nil {
		t.Error("a subject with CR/LF was rendered; want it refused")
	}
	if _, err := w.tmpl.Render("password_reset", map[string]any{"link": "https://evil.example/", "ttl": "1 hour"}); err == nil {
		t.Error("a link off the site was rendered; want it refused")
	}
}
