package privacy

import (
	"context"
	"html"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"zimage/app"
	"zimage/app/sqlite"
)

const day = 24 * time.Hour

func testValues() PolicyValues {
	return PolicyValues{
		Controller: "Acme Pictures GmbH", ContactEmail: "privacy@acme.example", DPOEmail: "dpo@acme.example",
		Address: "1 Example Road\n12345 Sampletown", MinAge: 16, TLS: true,
		Images: 90 * day, DeletedAccounts: 30 * day, Usage: 365 * day, Support: 730 * day, Exports: 7 * day, KeyringBackups: 29 * day,
	}
}

func TestRenderPolicyStatesEveryValue(t *testing.T) {
	h, text, err := RenderPolicy(testValues())
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"Acme Pictures GmbH",
		`<a href="mailto:privacy@acme.example">privacy@acme.example</a>`,
		`<a href="mailto:dpo@acme.example">dpo@acme.example</a>`,
		"1 Example Road, 12345 Sampletown",
		"deleted 90 days after they are made",
		"physically removed within 30 days",
		"kept for 12 months",
		"kept for 24 months after the last message",
		"deleted 7 days after they are made",
		"deleted within 29 days",
		"children under 16",
		"TLS 1.3 only",
		"AES-256-GCM",
		"Two-factor authentication",
		"<strong>We never sell your personal information.</strong>",
		"unless you opt in",
		"one-click unsubscribe",
		"within 72 hours",
		"Your Rights under the GDPR",
		"Your Rights under the CCPA",
	} {
		if !strings.Contains(h, want) {
			t.Errorf("policy HTML lacks %q", want)
		}
	}
	for _, absent := range []string{"Google Analytics", "Stripe", "AWS", "credit card"} {
		if strings.Contains(text, absent) {
			t.Errorf("policy mentions %q, which Z Image does not use", absent)
		}
	}
	if strings.Contains(h, "{{") || strings.Contains(h, "<no value>") {
		t.Error("template left placeholders in the output")
	}
}

func TestRenderPolicyEscapesValues(t *testing.T) {
	v := testValues()
	v.Controller = `<script>alert(1)</script> **bold** [x](javascript:alert(2))`
	v.Address = "# Heading\n- item & <b>"
	v.ContactEmail = `"><img src=x onerror=alert(3)>@x.example`
	h, _, err := RenderPolicy(v)
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"<script", "<img", "<b>", `href="javascript:`, "<strong>bold</strong>", "<h1>Heading", "<li>item"} {
		if strings.Contains(h, bad) {
			t.Errorf("rendered policy contains %q: a config value became markup", bad)
		}
	}
	for _, want := range []string{"&lt;script&gt;alert(1)&lt;/script&gt; **bold** [x](javascript:alert(2))", "# Heading, - item &amp; &lt;b&gt;", "&lt;img src=x onerror=alert(3)&gt;@x.example"} {
		if !strings.Contains(h, want) {
			t.Errorf("rendered policy lacks the literal value %q", html.UnescapeString(want))
		}
	}
}

func TestRenderPolicyFallbacks(t *testing.T) {
	v := testValues()
	v.Controller, v.ContactEmail, v.DPOEmail, v.Address, v.TLS = "", "", " ", "", false
	h, _, err := RenderPolicy(v)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"has not set a contact address; ask your administrator",
		"has not named a Data Protection Officer; ask your administrator",
		"has not set a postal address; ask your administrator",
		"has not named themselves; ask your administrator",
		"reverse proxy",
	} {
		if !strings.Contains(h, want) {
			t.Errorf("policy with empty contacts lacks %q", want)
		}
	}
	if strings.Contains(h, "<strong>Email:</strong> </li>") || strings.Contains(h, "mailto:") {
		t.Error("empty contact rendered as a blank or a link")
	}
}

func TestRenderPolicyRefusesBadValues(t *testing.T) {
	tests := []struct {
		name   string
		change func(*PolicyValues)
		field  string
	}{
		{"zero window", func(v *PolicyValues) { v.Images = 0 }, "images"},
		{"negative window", func(v *PolicyValues) { v.Usage = -day }, "usage"},
		{"no minimum age", func(v *PolicyValues) { v.MinAge = 0 }, "min_age"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := testValues()
			tt.change(&v)
			_, _, err := RenderPolicy(v)
			var ae *app.Error
			if !asAppError(err, &ae) || ae.Code != app.EINVALID || ae.Fields[tt.field] == "" {
				t.Fatalf("got %v, want EINVALID on %s", err, tt.field)
			}
		})
	}
}

func asAppError(err error, target **app.Error) bool {
	e, ok := err.(*app.Error)
	if ok {
		*target = e
	}
	return ok
}

func TestHumanWindow(t *testing.T) {
	tests := []struct {
		given time.Duration
		want  string
	}{
		{90 * day, "90 days"}, {day, "1 day"}, {365 * day, "12 months"}, {730 * day, "24 months"},
		{36 * time.Hour, "36 hours"}, {90 * time.Minute, "2 hours"}, {400 * day, "400 days"},
	}
	for _, tt := range tests {
		if got := HumanWindow(tt.given); got != tt.want {
			t.Errorf("HumanWindow(%v) = %q, want %q", tt.given, got, tt.want)
		}
	}
}

func TestMarkdownSubset(t *testing.T) {
	tests := []struct{ name, given, want string }{
		{"heading and paragraph", "## Title\n\nline one\nline two\n", "<h2>Title</h2>\n<p>line one line two</p>\n"},
		{"list", "- **a:** b\n- [c](https://c.example)\n", "<ul>\n<li><strong>a:</strong> b</li>\n<li><a href=\"https://c.example\">c</a></li>\n</ul>\n"},
		{"unsafe link is text", "[x](javascript:alert(1))", "<p>x)</p>\n"},
		{"escapes", `\*\*not bold\*\* \[x\](y) <i>`, "<p>**not bold** [x](y) &lt;i&gt;</p>\n"},
		{"unclosed bold", "a ** b", "<p>a ** b</p>\n"},
		{"heading needs a space", "#nope", "<p>#nope</p>\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := markdownToHTML(tt.given); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// testDB opens a real database in a temporary folder with a settable clock.
func testDB(t *testing.T) (*sqlite.DB, *time.Time) {
	t.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "zimage.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	db.Now = func() time.Time { return now }
	return db, &now
}

func createUser(t *testing.T, db *sqlite.DB, id string) {
	t.Helper()
	rec := &sqlite.UserRecord{User: app.User{ID: id, Username: strings.ToLower(id), Role: app.RoleUser},
		EmailIndex: []byte("index-" + id), SealedEmail: []byte("sealed"), PasswordHash: "x"}
	if err := db.CreateUser(context.Background(), sqlite.NewUser{Record: rec}); err != nil {
		t.Fatal(err)
	}
}

type recordingNotifier struct{ versions []int }

func (n *recordingNotifier) NotifyPolicyChange(_ context.Context, v PolicyVersion) error {
	n.versions = append(n.versions, v.Version)
	return nil
}

func TestSyncVersions(t *testing.T) {
	ctx := context.Background()
	db, now := testDB(t)
	notes := &recordingNotifier{}
	p := NewPolicies(db, nil, notes)

	v1, created, err := p.Sync(ctx, testValues(), "", false)
	if err != nil || !created || v1.Version != 1 || v1.Summary != FirstVersionSummary {
		t.Fatalf("first sync: %+v created=%v err=%v", v1, created, err)
	}
	*now = now.Add(time.Hour)
	again, created, err := p.Sync(ctx, testValues(), "ignored", true)
	if err != nil || created || again.Version != 1 {
		t.Fatalf("identical text made a new version: %+v created=%v err=%v", again, created, err)
	}

	changed := testValues()
	changed.Images = 60 * day
	changed.ContactEmail = "new@acme.example"
	*now = now.Add(24 * time.Hour)
	v2, created, err := p.Sync(ctx, changed, "", false)
	if err != nil || !created || v2.Version != 2 {
		t.Fatalf("changed window: %+v created=%v err=%v", v2, created, err)
	}
	want := `Values in force changed: contact email "privacy@acme.example" → "new@acme.example"; images retention 90 days → 60 days`
	if v2.Summary != want {
		t.Errorf("summary = %q, want %q", v2.Summary, want)
	}
	if !v2.PublishedAt.Equal(*now) {
		t.Errorf("published at %v, want %v", v2.PublishedAt, *now)
	}
	if len(notes.versions) != 0 {
		t.Errorf("notices queued for a change not marked significant: %v", notes.versions)
	}

	old, err := p.Get(ctx, 1)
	if err != nil || !strings.Contains(old.HTML, "deleted 90 days after") || strings.Contains(old.HTML, "60 days") {
		t.Fatalf("version 1 is not kept as it was: err=%v", err)
	}
	list, err := p.List(ctx)
	if err != nil || len(list) != 2 || list[0].Version != 2 || list[1].Version != 1 || list[0].HTML != "" {
		t.Fatalf("list = %+v, err=%v", list, err)
	}
	if _, err := p.Get(ctx, 3); app.ErrorCode(err) != app.ENOTFOUND {
		t.Fatalf("missing version: err=%v, want not found", err)
	}
}

func TestSignificantChangeNeedsAcceptance(t *testing.T) {
	ctx := context.Background()
	db, now := testDB(t)
	notes := &recordingNotifier{}
	p := NewPolicies(db, nil, notes)
	if _, _, err := p.Sync(ctx, testValues(), "", false); err != nil {
		t.Fatal(err)
	}
	createUser(t, db, "01HZZOLDUSER0000000000000A")
	*now = now.Add(time.Hour)

	changed := testValues()
	changed.Usage = 2 * 365 * day
	v2, _, err := p.Sync(ctx, changed, "Usage data is now kept for two years.", true)
	if err != nil || !v2.Significant || v2.Summary != "Usage data is now kept for two years." {
		t.Fatalf("significant sync: %+v err=%v", v2, err)
	}
	if len(notes.versions) != 1 || notes.versions[0] != 2 {
		t.Errorf("notices = %v, want one for version 2", notes.versions)
	}
	*now = now.Add(time.Hour)
	createUser(t, db, "01HZZNEWUSER0000000000000B")

	tests := []struct {
		name, user string
		want       bool
	}{
		{"existing account must acknowledge", "01HZZOLDUSER0000000000000A", true},
		{"account made after the change agreed at sign-up", "01HZZNEWUSER0000000000000B", false},
		{"unknown account", "nobody", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, need, err := p.NeedsAcceptance(ctx, tt.user)
			if err != nil || need != tt.want || (need && v.Version != 2) {
				t.Fatalf("NeedsAcceptance = %d, %v, %v; want %v", v.Version, need, err, tt.want)
			}
		})
	}

	if err := p.Accept(ctx, "01HZZOLDUSER0000000000000A", 2); err != nil {
		t.Fatal(err)
	}
	if err := p.Accept(ctx, "01HZZOLDUSER0000000000000A", 2); err != nil {
		t.Fatalf("accepting twice: %v", err)
	}
	if _, need, err := p.NeedsAcceptance(ctx, "01HZZOLDUSER0000000000000A"); err != nil || need {
		t.Fatalf("after accepting: need=%v err=%v", need, err)
	}
	if err := p.Accept(ctx, "01HZZOLDUSER0000000000000A", 9); app.ErrorCode(err) != app.ENOTFOUND {
		t.Fatalf("accepting a version that does not exist: %v", err)
	}
	if err := p.Accept(ctx, "nobody", 2); app.ErrorCode(err) != app.ENOTFOUND {
		t.Fatalf("accepting for an unknown user: %v", err)
	}
}
