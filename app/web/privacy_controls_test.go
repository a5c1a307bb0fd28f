package web

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"zimage/app"
	"zimage/app/privacy"
	"zimage/app/sqlite"
)

// publishSignificantPolicy publishes version 1 as a significant change, so
// everyone is asked to acknowledge it.
func publishSignificantPolicy(t *testing.T, f *authzFixtures) {
	t.Helper()
	publishSignificant(t, f.env)
}

func publishSignificant(t *testing.T, env *authEnv) {
	t.Helper()
	// Published after everyone signed up: people who sign up later agree
	// to it at sign-up and are not asked again.
	env.clock.Advance(time.Minute)
	const day = 24 * time.Hour
	values := privacy.PolicyValues{Controller: "Example Lab", ContactEmail: "privacy@lab.example", MinAge: 13,
		Images: 90 * day, DeletedAccounts: 30 * day, Usage: 365 * day, Support: 730 * day, Exports: 7 * day, KeyringBackups: 29 * day}
	if _, _, err := env.policies.Sync(context.Background(), values, "Images are kept for 90 days.", true); err != nil {
		t.Fatal(err)
	}
}

// holdOwner puts the owner's account under a legal hold.
func holdOwner(t *testing.T, f *authzFixtures) {
	t.Helper()
	r := f.who[admin].do("POST", "/api/v1/admin/users/"+f.who[owner].userID+"/hold", `{"reason":"Preservation order 2026-114"}`)
	if r.Code != 200 {
		t.Fatalf("hold: %d %s", r.Code, r.Body)
	}
}

func TestDeleteAccountRechecks(t *testing.T) {
	env := newAuthEnv(t, authOptionsForTest(), Options{})
	env.signup(t, "boss") // first account: admin
	plain := env.signup(t, "plainperson")
	twofa := env.signup(t, "twofaperson")
	secret := twofa.do("POST", "/api/v1/me/2fa", "").json(t)["secret"].(string)
	if r := twofa.do("POST", "/api/v1/me/2fa/confirm", `{"code":"`+code(t, env, secret, 0)+`"}`); r.Code != 200 {
		t.Fatalf("confirm 2fa: %d %s", r.Code, r.Body)
	}
	env.clock.Advance(time.Minute) // the next code is a new one
	key, _ := plain.apiKey(t, "read", "generate")

	tests := []struct {
		name      string
		c         *client
		body      string
		wantCode  int
		wantField string
	}{
		{"no password", plain, `{}`, 400, "password"},
		{"wrong password", plain, `{"password":"not it at all"}`, 403, "password"},
		{"api key cannot delete", key, `{"password":"` + testPassword + `"}`, 403, ""},
		{"2fa on, no code", twofa, `{"password":"` + testPassword + `"}`, 400, "totp_code"},
		{"2fa on, wrong code", twofa, `{"password":"` + testPassword + `","totp_code":"000000"}`, 403, "totp_code"},
		{"unknown field", plain, `{"password":"x","force":true}`, 400, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.c.do("DELETE", "/api/v1/me", tt.body)
			if r.Code != tt.wantCode {
				t.Fatalf("status %d, want %d: %s", r.Code, tt.wantCode, r.Body)
			}
			if tt.wantField != "" && !strings.Contains(r.Body.String(), `"`+tt.wantField+`"`) {
				t.Errorf("error does not name %s: %s", tt.wantField, r.Body)
			}
		})
	}
	// Nothing was deleted by the refusals.
	if r := plain.do("GET", "/api/v1/me", ""); r.Code != 200 {
		t.Errorf("account gone after refused deletions: %d", r.Code)
	}
	if r := twofa.do("DELETE", "/api/v1/me", `{"password":"`+testPassword+`","totp_code":"`+code(t, env, secret, 0)+`"}`); r.Code != 204 {
		t.Errorf("delete with password and code: %d %s", r.Code, r.Body)
	}
}

func TestDeleteAccountImmediateEffects(t *testing.T) {
	env := newAuthEnv(t, authOptionsForTest(), Options{})
	env.signup(t, "boss")
	bob := env.signup(t, "bobby")
	key, _ := bob.apiKey(t, "read", "generate")
	_, imageID := generateAndWait(t, bob)
	other := env.login(t, "bobby") // a second browser
	wrong := env.anon().do("POST", "/api/v1/auth/login", `{"login":"boss","password":"wrong wrong wrong"}`)

	r := bob.do("DELETE", "/api/v1/me", `{"password":"`+testPassword+`"}`)
	if r.Code != 204 {
		t.Fatalf("delete: %d %s", r.Code, r.Body)
	}
	if !strings.Contains(r.Header().Get("Set-Cookie"), SessionCookie+"=;") {
		t.Errorf("session cookie not cleared: %q", r.Header().Get("Set-Cookie"))
	}
	checks := []struct {
		name string
		c    *client
		path string
	}{
		{"this session", bob, "/api/v1/me"},
		{"other session", other, "/api/v1/me"},
		{"api key", key, "/api/v1/me"},
		{"image via api key", key, "/api/v1/images/" + imageID},
	}
	for _, ch := range checks {
		if got := ch.c.do("GET", ch.path, ""); got.Code != 401 {
			t.Errorf("%s after deletion: %d, want 401", ch.name, got.Code)
		}
	}
	login := env.anon().do("POST", "/api/v1/auth/login", `{"login":"bobby","password":"`+testPassword+`"}`)
	if login.Code != 401 || login.json(t)["error"].(map[string]any)["message"] != wrong.json(t)["error"].(map[string]any)["message"] {
		t.Errorf("login after deletion: %d %s; want the wrong-password answer %s", login.Code, login.Body, wrong.Body)
	}
	if _, _, _, err := env.media.Open(context.Background(), bob.userID, imageID, "png", "full"); err == nil {
		t.Error("image still opens after deletion")
	}
	if env.keys.HasKey(bob.userID) {
		t.Error("data key survived deletion")
	}
	entries, err := env.db.AuditEntries(context.Background(), sqlite.AuditFilter{SubjectID: bob.userID, Limit: 200})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, e := range entries {
		if e.Action == privacy.AuditAccountDelete {
			found = e.ActorID == bob.userID && !strings.Contains(e.Detail, "bobby")
		}
	}
	if !found {
		t.Error("no pseudonymous audit entry for the deletion")
	}
	// The handle is free again.
	env.signup(t, "bobby")
}

func TestLegalHoldBlocksDeletionAndTellsThePerson(t *testing.T) {
	env := newAuthEnv(t, authOptionsForTest(), Options{})
	boss := env.signup(t, "boss")
	alice := env.signup(t, "alice")
	if me := alice.do("GET", "/api/v1/me", "").json(t); me["legal_hold"] != false {
		t.Errorf("legal_hold before any hold: %v", me["legal_hold"])
	}
	if r := boss.do("POST", "/api/v1/admin/users/"+alice.userID+"/hold", `{"reason":"Court order 77 about Jane Roe"}`); r.Code != 200 || !strings.Contains(r.Body.String(), "Court order 77") {
		t.Fatalf("hold: %d %s", r.Code, r.Body)
	}
	me := alice.do("GET", "/api/v1/me", "").json(t)
	if me["legal_hold"] != true || me["legal_hold_notice"] != privacy.HoldNotice {
		t.Errorf("person not told of the hold: %v", me)
	}
	if strings.Contains(alice.do("GET", "/api/v1/me", "").Body.String(), "Jane Roe") {
		t.Error("the person sees the hold's reason")
	}
	r := alice.do("DELETE", "/api/v1/me", `{"password":"`+testPassword+`"}`)
	if r.Code != 409 || !strings.Contains(r.Body.String(), "legal hold") {
		t.Errorf("delete while held: %d %s", r.Code, r.Body)
	}
	if r := boss.do("GET", "/api/v1/admin/audit?subject="+alice.userID, ""); strings.Contains(r.Body.String(), "Jane Roe") {
		t.Error("the audit log carries the hold's reason")
	}
	if r := boss.do("DELETE", "/api/v1/admin/users/"+alice.userID+"/hold", ""); r.Code != 204 {
		t.Fatalf("release: %d %s", r.Code, r.Body)
	}
	if r := alice.do("DELETE", "/api/v1/me", `{"password":"`+testPassword+`"}`); r.Code != 204 {
		t.Errorf("delete after release: %d %s", r.Code, r.Body)
	}
}

func TestChildAccountErasure(t *testing.T) {
	env := newAuthEnv(t, authOptionsForTest(), Options{})
	boss := env.signup(t, "boss")
	kid := env.signup(t, "kiddo")
	if r := boss.do("POST", "/api/v1/admin/users/"+kid.userID+"/under-13", `{"note":"reported by a parent"}`); r.Code != 204 {
		t.Fatalf("under-13: %d %s", r.Code, r.Body)
	}
	if r := kid.do("GET", "/api/v1/me", ""); r.Code != 401 {
		t.Errorf("child's session after erasure: %d", r.Code)
	}
	if r := boss.do("POST", "/api/v1/admin/users/"+kid.userID+"/under-13", ""); r.Code != 404 {
		t.Errorf("second erasure: %d, want 404", r.Code)
	}
	entries, _ := env.db.AuditEntries(context.Background(), sqlite.AuditFilter{SubjectID: kid.userID, Limit: 100})
	found := false
	for _, e := range entries {
		if e.Action == privacy.AuditAccountErasedChild && e.ActorID == boss.userID && !strings.Contains(e.Detail, "parent") {
			found = true
		}
	}
	if !found {
		t.Error("no account.erased_child audit entry by the admin (without the note)")
	}
}

func TestConsentsAPIAndGPC(t *testing.T) {
	env := newAuthEnv(t, authOptionsForTest(), Options{})
	env.signup(t, "boss")
	c := env.signup(t, "carol")
	state := func(r response) map[string]bool {
		t.Helper()
		var body struct {
			Purposes []struct {
				Purpose string `json:"purpose"`
				Granted bool   `json:"granted"`
			} `json:"purposes"`
		}
		if err := json.Unmarshal(r.Body.Bytes(), &body); err != nil || r.Code != 200 {
			t.Fatalf("consents: %d %s", r.Code, r.Body)
		}
		m := map[string]bool{}
		for _, p := range body.Purposes {
			m[p.Purpose] = p.Granted
		}
		return m
	}
	tests := []struct {
		name   string
		method string
		path   string
		body   string
		hdr    []string
		want   map[string]bool
		gpc    bool
	}{
		{"defaults", "GET", "/api/v1/me/consents", "", nil, map[string]bool{"training": false, "marketing": false, "analytics": true}, false},
		{"opt in to training", "POST", "/api/v1/me/consents", `{"purpose":"training","granted":true}`, nil, map[string]bool{"training": true, "marketing": false, "analytics": true}, false},
		{"gpc objects to analytics", "GET", "/api/v1/me/consents", "", []string{"Sec-GPC", "1"}, map[string]bool{"training": true, "marketing": false, "analytics": false}, true},
		{"dnt too", "GET", "/api/v1/me/consents", "", []string{"DNT", "1"}, map[string]bool{"training": true, "marketing": false, "analytics": false}, true},
		{"object to analytics", "POST", "/api/v1/me/consents", `{"purpose":"analytics","granted":false}`, nil, map[string]bool{"training": true, "marketing": false, "analytics": false}, false},
		{"restrict stops everything", "POST", "/api/v1/me/restrict", `{"restricted":true}`, nil, map[string]bool{"training": false, "marketing": false, "analytics": false}, false},
		{"lift restriction", "POST", "/api/v1/me/restrict", `{"restricted":false}`, nil, map[string]bool{"training": true, "marketing": false, "analytics": false}, false},
		{"withdraw training", "POST", "/api/v1/me/consents", `{"purpose":"training","granted":false}`, nil, map[string]bool{"training": false, "marketing": false, "analytics": false}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := c.do(tt.method, tt.path, tt.body, tt.hdr...)
			got := state(r)
			for p, w := range tt.want {
				if got[p] != w {
					t.Errorf("%s = %v, want %v", p, got[p], w)
				}
			}
			hasNotice := strings.Contains(r.Body.String(), "Global Privacy Control signal is honoured")
			if hasNotice != tt.gpc {
				t.Errorf("GPC notice shown = %v, want %v", hasNotice, tt.gpc)
			}
		})
	}
	hist := c.do("GET", "/api/v1/me/consents", "").json(t)["history"].([]any)
	if len(hist) != 3 || hist[0].(map[string]any)["granted"] != false || hist[2].(map[string]any)["purpose"] != "training" {
		t.Errorf("ledger history = %v, want 3 entries newest first", hist)
	}
	for _, bad := range []string{`{"purpose":"profiling","granted":true}`, `{"purpose":"training"}`} {
		if r := c.do("POST", "/api/v1/me/consents", bad); r.Code != 400 {
			t.Errorf("%s: %d, want 400", bad, r.Code)
		}
	}
}

// objectsToAnalytics is what usage recording asks; it must say yes for a
// GPC browser even when the person has consented.
func TestObjectsToAnalytics(t *testing.T) {
	env := newAuthEnv(t, authOptionsForTest(), Options{})
	env.signup(t, "boss")
	c := env.signup(t, "dave")
	tests := []struct {
		name   string
		setup  string
		hdr    []string
		anon   bool
		object bool
	}{
		{name: "anonymous, no signal", anon: true, object: false},
		{name: "anonymous with GPC", anon: true, hdr: []string{"Sec-GPC", "1"}, object: true},
		{name: "person, default", object: false},
		{name: "person with DNT", hdr: []string{"DNT", "1"}, object: true},
		{name: "person who objected", setup: `{"purpose":"analytics","granted":false}`, object: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.setup != "" {
				if r := c.do("POST", "/api/v1/me/consents", tt.setup); r.Code != 200 {
					t.Fatal(r.Body)
				}
			}
			req := httptest.NewRequest("GET", "/", nil)
			for i := 0; i+1 < len(tt.hdr); i += 2 {
				req.Header.Set(tt.hdr[i], tt.hdr[i+1])
			}
			ctx := env.s.e.NewContext(req, httptest.NewRecorder())
			if !tt.anon {
				p, err := env.auth.Authenticate(context.Background(), c.cookie)
				if err != nil {
					t.Fatal(err)
				}
				ctx.Set(principalKey, p)
			}
			var got bool
			_ = env.s.privacySignals(func(ec echo.Context) error { got = env.s.objectsToAnalytics(ec); return nil })(ctx)
			if got != tt.object {
				t.Errorf("objectsToAnalytics = %v, want %v", got, tt.object)
			}
		})
	}
}

func TestPolicyAckBanner(t *testing.T) {
	env := newAuthEnv(t, authOptionsForTest(), Options{})
	c := env.signup(t, "erin")
	const banner = "The privacy policy changed"
	if strings.Contains(c.do("GET", "/generate", "").Body.String(), banner) {
		t.Fatal("banner before any significant change")
	}
	publishSignificant(t, env)
	if me := c.do("GET", "/api/v1/me", "").json(t); me["policy_ack_needed"] != float64(1) {
		t.Errorf("policy_ack_needed = %v, want 1", me["policy_ack_needed"])
	}
	if page := c.do("GET", "/generate", "").Body.String(); !strings.Contains(page, banner) || !strings.Contains(page, privacy.FirstVersionSummary) {
		t.Error("no banner after a significant change")
	}
	if r := c.do("POST", "/api/v1/me/policy-ack", `{"version":0}`); r.Code != 400 {
		t.Errorf("ack of version 0: %d", r.Code)
	}
	if r := c.do("POST", "/api/v1/me/policy-ack", `{"version":1}`); r.Code != 204 {
		t.Fatalf("ack: %d %s", r.Code, r.Body)
	}
	if strings.Contains(c.do("GET", "/generate", "").Body.String(), banner) {
		t.Error("banner still shown after the acknowledgement")
	}
	if me := c.do("GET", "/api/v1/me", "").json(t); me["policy_ack_needed"] != float64(0) {
		t.Errorf("policy_ack_needed after ack = %v", me["policy_ack_needed"])
	}
}

// Consents are proof: the store refuses to rewrite them.
func TestConsentLedgerIsAppendOnly(t *testing.T) {
	env := newAuthEnv(t, authOptionsForTest(), Options{})
	c := env.signup(t, "frank")
	if r := c.do("POST", "/api/v1/me/consents", `{"purpose":"marketing","granted":true}`); r.Code != 200 {
		t.Fatal(r.Body)
	}
	if err := env.rights.SetConsent(context.Background(), unknownID, "marketing", true, ""); app.ErrorCode(err) != app.ENOTFOUND {
		t.Errorf("consent for an unknown account: %v, want not found", err)
	}
	recs, err := env.db.Consents(context.Background(), c.userID)
	if err != nil || len(recs) != 1 || recs[0].Method != privacy.MethodAPI || recs[0].PolicyVersion != 0 {
		t.Errorf("ledger: %+v %v", recs, err)
	}
}
