package web

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"zimage/app"
	"zimage/app/privacy"
)

// Prepare hooks of the authorization matrix rows of this area.

func ownerTicket(t *testing.T, f *authzFixtures) {
	r := f.who[owner].do("POST", "/api/v1/tickets", `{"subject":"Lost image","body":"It vanished."}`)
	if r.Code != 201 {
		t.Fatalf("open ticket: %d %s", r.Code, r.Body)
	}
	f.setVar("{owner_ticket}", r.json(t)["id"].(string))
}

func ownerRequest(t *testing.T, f *authzFixtures) {
	r := f.who[owner].do("POST", "/api/v1/me/requests", `{"kind":"rectify","details":"Fix my name."}`)
	if r.Code != 201 {
		t.Fatalf("file request: %d %s", r.Code, r.Body)
	}
	f.setVar("{owner_request}", r.json(t)["id"].(string))
}

func ownerExportReady(t *testing.T, f *authzFixtures) {
	f.setVar("{owner_export}", exportAndWait(t, f.who[owner]))
}

func (f *authzFixtures) setVar(k, v string) {
	if f.vars == nil {
		f.vars = map[string]string{}
	}
	f.vars[k] = v
}

// exportAndWait asks for an export as c and returns its id once ready
// (bounded wait).
func exportAndWait(t testing.TB, c *client) string {
	t.Helper()
	r := c.do("POST", "/api/v1/me/exports", "")
	if r.Code != 202 {
		t.Fatalf("export: %d %s", r.Code, r.Body)
	}
	id := r.json(t)["id"].(string)
	waitExport(t, c, id)
	return id
}

func waitExport(t testing.TB, c *client, id string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		m := c.do("GET", "/api/v1/me/exports/"+id, "").json(t)
		switch m["status"] {
		case app.ExportReady:
			return m
		case app.ExportFailed:
			t.Fatalf("export failed: %v", m["error"])
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("export not ready within 20 s")
	return nil
}

func publishPolicy(t testing.TB, env *authEnv) int {
	t.Helper()
	d := 24 * time.Hour
	v, _, err := env.policies.Sync(context.Background(), privacy.PolicyValues{MinAge: 13, Images: 90 * d, DeletedAccounts: 30 * d,
		Usage: 365 * d, Support: 730 * d, Exports: 7 * d, KeyringBackups: 29 * d}, "", false)
	if err != nil {
		t.Fatal(err)
	}
	return v.Version
}

func TestExportArchive(t *testing.T) {
	env := newAuthEnv(t, authOptionsForTest(), Options{})
	version := publishPolicy(t, env)
	owner := env.signup(t, "exporter")
	_, imageID := generateAndWait(t, owner)
	if r := owner.do("POST", "/api/v1/tickets", `{"subject":"Billing question","body":"Where is my invoice, harbour?"}`); r.Code != 201 {
		t.Fatalf("ticket: %d %s", r.Code, r.Body)
	}
	// Filing "access" starts the export itself and closes when it is ready.
	r := owner.do("POST", "/api/v1/me/requests", `{"kind":"access","details":"Everything please."}`)
	if r.Code != 201 {
		t.Fatalf("request: %d %s", r.Code, r.Body)
	}
	exportID, _ := r.json(t)["export_id"].(string)
	if exportID == "" {
		t.Fatalf("access request started no export: %s", r.Body)
	}
	st := waitExport(t, owner, exportID)
	if st["expires_at"] == nil || st["download_url"] == nil {
		t.Fatalf("ready export without expiry or link: %v", st)
	}

	d := owner.do("GET", "/api/v1/me/exports/"+exportID+"/download", "")
	if d.Code != 200 || d.Header().Get("Content-Type") != "application/zip" {
		t.Fatalf("download: %d %s", d.Code, d.Header())
	}
	zr, err := zip.NewReader(bytes.NewReader(d.Body.Bytes()), int64(d.Body.Len()))
	if err != nil {
		t.Fatalf("not a ZIP: %v", err)
	}
	files := map[string][]byte{}
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		b.ReadFrom(rc)
		rc.Close()
		files[f.Name] = b.Bytes()
	}
	for _, f := range privacy.ExportFiles {
		t.Run(f.Name, func(t *testing.T) {
			body, ok := files[f.Name]
			if !ok {
				t.Fatalf("%s missing from the archive", f.Name)
			}
			if !json.Valid(body) {
				t.Errorf("%s is not valid JSON", f.Name)
			}
			schema, ok := files["schemas/"+strings.TrimSuffix(f.Name, ".json")+".schema.json"]
			if !ok {
				t.Fatalf("schema of %s missing", f.Name)
			}
			var s map[string]any
			if err := json.Unmarshal(schema, &s); err != nil || s["$schema"] != "https://json-schema.org/draft/2020-12/schema" {
				t.Errorf("schema of %s: %v %v", f.Name, err, s["$schema"])
			}
		})
	}
	readme := string(files["README.txt"])
	if want := "version " + itoa(version); !strings.Contains(readme, want) {
		t.Errorf("README does not name the policy %q:\n%s", want, readme)
	}
	img, ok := files["images/"+imageID+".png"]
	if !ok {
		t.Fatalf("image file missing; files: %v", keysOf(files))
	}
	if _, err := png.Decode(bytes.NewReader(img)); err != nil {
		t.Errorf("image does not decode: %v", err)
	}
	for name, want := range map[string]string{"generations.json": "a quiet harbour at dawn", "images.json": "a quiet harbour at dawn",
		"tickets.json": "Where is my invoice, harbour?", "requests.json": "Everything please.", "profile.json": "exporter@example.com",
		"audit.json": app.AuditExportRequest} {
		if !strings.Contains(string(files[name]), want) {
			t.Errorf("%s lacks %q:\n%s", name, want, files[name])
		}
	}

	// Sealed at rest: no ZIP signature, no prompt in the clear.
	sealed, err := os.ReadFile(filepath.Join(env.rs.exportsDir, owner.userID, exportID+".zip.sealed"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, []byte("PK\x03\x04")) || bytes.Contains(sealed, []byte("harbour")) {
		t.Error("the archive on disk is readable without the key")
	}

	// The access request answered itself.
	reqs := owner.do("GET", "/api/v1/me/requests", "").json(t)["requests"].([]any)
	if got := reqs[0].(map[string]any); got["status"] != "closed" || !strings.Contains(got["resolution"].(string), exportID) {
		t.Errorf("access request after export: %v", got)
	}
}

func keysOf(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestExportExpiryAndRetention(t *testing.T) {
	env := newAuthEnv(t, authOptionsForTest(), Options{})
	owner := env.signup(t, "expiring")
	id := exportAndWait(t, owner)
	path := filepath.Join(env.rs.exportsDir, owner.userID, id+".zip.sealed")

	env.clock.Advance(exportKeep - time.Minute)
	owner = env.login(t, "expiring") // sessions last a day in tests
	if r := owner.do("GET", "/api/v1/me/exports/"+id+"/download", ""); r.Code != 200 {
		t.Fatalf("download inside the window: %d %s", r.Code, r.Body)
	}
	ctx := context.Background()
	if n, err := env.rs.exports.DeleteExpired(ctx, env.clock.Now(), 10); err != nil || n != 0 {
		t.Fatalf("retention inside the window removed %d (%v)", n, err)
	}
	env.clock.Advance(2 * time.Minute)
	owner = env.login(t, "expiring")
	r := owner.do("GET", "/api/v1/me/exports/"+id+"/download", "")
	if r.Code != 410 || r.errCode(t) != app.EGONE {
		t.Fatalf("download after expiry: %d %s", r.Code, r.Body)
	}
	if n, err := env.rs.exports.CountExpired(ctx, env.clock.Now()); err != nil || n != 1 {
		t.Fatalf("count expired = %d, %v", n, err)
	}
	if n, err := env.rs.exports.DeleteExpired(ctx, env.clock.Now(), 10); err != nil || n != 1 {
		t.Fatalf("retention removed %d (%v), want 1", n, err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("archive still on disk after the exports job: %v", err)
	}
	if r := owner.do("GET", "/api/v1/me/exports/"+id, ""); r.Code != 404 {
		t.Errorf("export row after the exports job: %d", r.Code)
	}
}

func TestTickets(t *testing.T) {
	env := newAuthEnv(t, authOptionsForTest(), Options{})
	admin := env.signup(t, "boss")
	owner := env.signup(t, "asker")
	other := env.signup(t, "nosy")
	supUser := env.signup(t, "helper")
	if r := admin.do("PATCH", "/api/v1/admin/users/"+supUser.userID, `{"role":"support"}`); r.Code != 200 {
		t.Fatalf("make support: %d %s", r.Code, r.Body)
	}
	sup := env.login(t, "helper")

	r := owner.do("POST", "/api/v1/tickets", `{"subject":"Cannot log in on phone","body":"It says my session ended."}`)
	if r.Code != 201 {
		t.Fatalf("open: %d %s", r.Code, r.Body)
	}
	id := r.json(t)["id"].(string)
	if r := owner.do("POST", "/api/v1/tickets", `{"subject":"","body":""}`); r.Code != 400 {
		t.Errorf("empty ticket: %d", r.Code)
	}

	cases := []struct {
		name string
		who  *client
		path string
		want int
	}{
		{"owner reads own", owner, "/api/v1/tickets/" + id, 200},
		{"other cannot", other, "/api/v1/tickets/" + id, 404},
		{"support sees queue", sup, "/api/v1/support/tickets", 200},
		{"support reads", sup, "/api/v1/support/tickets/" + id, 200},
		{"admin reads", admin, "/api/v1/support/tickets/" + id, 200},
		{"user not staff", other, "/api/v1/support/tickets/" + id, 403},
		{"support cannot see request queue", sup, "/api/v1/admin/requests", 403},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if r := tc.who.do("GET", tc.path, ""); r.Code != tc.want {
				t.Errorf("%s = %d, want %d: %s", tc.path, r.Code, tc.want, r.Body)
			}
		})
	}
	// Staff reading is audited, with the ticket owner as subject.
	entries, err := env.db.AuditEntries(context.Background(), sqliteAuditFilter(owner.userID))
	if err != nil {
		t.Fatal(err)
	}
	reads := 0
	for _, e := range entries {
		if e.Action == app.AuditTicketRead && strings.Contains(e.Detail, id) {
			reads++
		}
	}
	if reads != 2 {
		t.Errorf("staff reads audited %d times, want 2", reads)
	}

	if r := sup.do("POST", "/api/v1/support/tickets/"+id+"/messages", `{"body":"Please sign in again."}`); r.Code != 201 {
		t.Fatalf("staff reply: %d %s", r.Code, r.Body)
	}
	got := owner.do("GET", "/api/v1/tickets/"+id, "").json(t)
	msgs := got["messages"].([]any)
	if got["status"] != app.TicketAnswered || len(msgs) != 2 || msgs[1].(map[string]any)["author_role"] != app.AuthorSupport ||
		msgs[1].(map[string]any)["body"] != "Please sign in again." {
		t.Fatalf("owner view after reply: %v", got)
	}
	if _, ok := msgs[1].(map[string]any)["author_id"]; ok {
		t.Error("the owner sees which staff member answered")
	}
	if r := owner.do("POST", "/api/v1/tickets/"+id+"/messages", `{"body":"Thanks, works."}`); r.Code != 201 {
		t.Fatalf("owner reply: %d", r.Code)
	}
	if r := sup.do("POST", "/api/v1/support/tickets/"+id+"/close", ""); r.Code != 204 {
		t.Fatalf("close: %d %s", r.Code, r.Body)
	}
	if r := owner.do("POST", "/api/v1/tickets/"+id+"/messages", `{"body":"One more thing"}`); r.Code != 409 {
		t.Errorf("message on a closed ticket: %d", r.Code)
	}

	// Retention counts from the last message: a ticket answered recently
	// stays, one silent for longer than the window goes with its messages.
	window := 730 * 24 * time.Hour
	env.clock.Advance(window - time.Hour)
	other = env.login(t, "nosy") // sessions last a day in tests
	r = other.do("POST", "/api/v1/tickets", `{"subject":"Recent","body":"Still talking."}`)
	recent := r.json(t)["id"].(string)
	env.clock.Advance(2 * time.Hour)
	owner, other = env.login(t, "asker"), env.login(t, "nosy")
	ctx := context.Background()
	cutoff := env.clock.Now().Add(-window)
	if n, err := env.rs.support.CountInactive(ctx, cutoff); err != nil || n != 1 {
		t.Fatalf("count inactive = %d, %v", n, err)
	}
	if n, err := env.rs.support.DeleteInactive(ctx, cutoff, 1); err != nil || n != 1 {
		t.Fatalf("delete inactive = %d, %v", n, err)
	}
	if r := owner.do("GET", "/api/v1/tickets/"+id, ""); r.Code != 404 {
		t.Errorf("old ticket after the support job: %d", r.Code)
	}
	if r := other.do("GET", "/api/v1/tickets/"+recent, ""); r.Code != 200 {
		t.Errorf("recent ticket after the support job: %d", r.Code)
	}
}

func TestUsageEvents(t *testing.T) {
	env := newAuthEnv(t, authOptionsForTest(), Options{})
	u := env.signup(t, "counted")
	env.login(t, "counted")
	generateAndWait(t, u)
	ctx := context.Background()
	events, err := env.db.UsageEventsOf(ctx, u.userID)
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]string{}
	for _, e := range events {
		kinds[e.Kind] = e.Route
	}
	if kinds[app.UsageLogin] != "/api/v1/auth/login" || kinds[app.UsageGeneration] != "/api/v1/generations" {
		t.Fatalf("events: %+v", events)
	}

	// An objection stops recording.
	if r := u.do("POST", "/api/v1/me/consents", `{"purpose":"analytics","granted":false}`); r.Code != 200 {
		t.Fatalf("object: %d %s", r.Code, r.Body)
	}
	generateAndWait(t, u)
	after, _ := env.db.UsageEventsOf(ctx, u.userID)
	if len(after) != len(events) {
		t.Errorf("recorded %d events after the objection", len(after)-len(events))
	}

	// The usage job removes what is older than the window, sessions too.
	sweep := privacy.UsageSweep{DB: env.db}
	window := 365 * 24 * time.Hour
	if ev, _, _ := sweep.CountBefore(ctx, env.clock.Now().Add(-window)); ev != 0 {
		t.Fatalf("fresh events counted as old: %d", ev)
	}
	env.clock.Advance(window + time.Hour)
	ev, sess, err := sweep.DeleteBefore(ctx, env.clock.Now().Add(-window), 1)
	if err != nil || ev != len(events) || sess < 2 {
		t.Fatalf("deleted %d events, %d sessions (%v); want %d events, ≥2 sessions", ev, sess, err, len(events))
	}
	if left, _ := env.db.UsageEventsOf(ctx, u.userID); len(left) != 0 {
		t.Errorf("%d events left", len(left))
	}
}

func TestDataRequests(t *testing.T) {
	env := newAuthEnv(t, authOptionsForTest(), Options{})
	admin := env.signup(t, "dpo")
	u := env.signup(t, "rights")
	other := env.signup(t, "someone")

	tests := []struct {
		name string
		body string
		want int
	}{
		{"object", `{"kind":"object","details":"No analytics please."}`, 201},
		{"erase", `{"kind":"erase"}`, 201},
		{"unknown kind", `{"kind":"forget-me-not"}`, 400},
		{"another account", `{"kind":"access","user_id":"` + other.userID + `"}`, 404},
		{"own account named", `{"kind":"restrict","user_id":"` + u.userID + `"}`, 201},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := u.do("POST", "/api/v1/me/requests", tc.body)
			if r.Code != tc.want {
				t.Fatalf("%d, want %d: %s", r.Code, tc.want, r.Body)
			}
			if r.Code != 201 {
				return
			}
			m := r.json(t)
			created, _ := time.Parse(time.RFC3339, m["created_at"].(string))
			due, _ := time.Parse(time.RFC3339, m["due_at"].(string))
			if due.Sub(created) != app.RequestDeadline || m["next"] == "" {
				t.Errorf("due %s after creation, next %v", due.Sub(created), m["next"])
			}
		})
	}
	if got := len(other.do("GET", "/api/v1/me/requests", "").json(t)["requests"].([]any)); got != 0 {
		t.Errorf("another person sees %d requests", got)
	}
	q := admin.do("GET", "/api/v1/admin/requests?status=open", "").json(t)
	if q["overdue"].(float64) != 0 || len(q["requests"].([]any)) != 3 {
		t.Fatalf("queue: %v", q)
	}
	env.clock.Advance(app.RequestDeadline + time.Hour)
	admin, u = env.login(t, "dpo"), env.login(t, "rights") // sessions last a day in tests
	q = admin.do("GET", "/api/v1/admin/requests?status=open", "").json(t)
	first := q["requests"].([]any)[0].(map[string]any)
	if q["overdue"].(float64) != 3 || first["overdue"] != true {
		t.Fatalf("queue after the deadline: %v", q)
	}
	id := ""
	for _, x := range q["requests"].([]any) {
		if m := x.(map[string]any); m["kind"] == "object" {
			id = m["id"].(string)
		}
	}
	if r := admin.do("POST", "/api/v1/admin/requests/"+id+"/close", `{"resolution":""}`); r.Code != 400 {
		t.Errorf("close without resolution: %d", r.Code)
	}
	if r := admin.do("POST", "/api/v1/admin/requests/"+id+"/close", `{"resolution":"Analytics turned off."}`); r.Code != 200 {
		t.Fatalf("close: %d %s", r.Code, r.Body)
	}
	if r := admin.do("POST", "/api/v1/admin/requests/"+id+"/close", `{"resolution":"again"}`); r.Code != 409 {
		t.Errorf("close twice: %d", r.Code)
	}

	// Account deletion's hook closes erase requests.
	n, err := env.rs.requests.CloseRequestsOfKind(context.Background(), u.userID, app.RequestErase, "Account deleted.")
	if err != nil || n != 1 {
		t.Fatalf("CloseRequestsOfKind = %d, %v", n, err)
	}
	for _, x := range u.do("GET", "/api/v1/me/requests", "").json(t)["requests"].([]any) {
		if m := x.(map[string]any); m["kind"] == "erase" && (m["status"] != "closed" || m["resolution"] != "Account deleted.") {
			t.Errorf("erase request after deletion: %v", m)
		}
	}
}
