package web

import (
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"zimage/app"
	"zimage/app/privacy"
)

// Tests of the privacy & data, communications, support and request-queue
// pages, through the real router as a browser without JavaScript uses
// them: form posts with _csrf, 303 redirects, pages read back.

// pageText GETs path as c, wants status, and returns the body with HTML
// entities decoded, so checks read like the page does.
func pageText(t *testing.T, c *client, path string, want int, hdr ...string) string {
	t.Helper()
	r := c.do("GET", path, "", hdr...)
	if r.Code != want {
		t.Fatalf("GET %s: %d, want %d: %s", path, r.Code, want, r.Body)
	}
	return html.UnescapeString(r.Body.String())
}

// postForm posts vals as c and wants a 303 to a location containing
// wantLoc; it returns that location.
func postForm(t *testing.T, c *client, path string, vals url.Values, wantLoc string) string {
	t.Helper()
	r := c.form(path, vals)
	if r.Code != http.StatusSeeOther || !strings.Contains(location(r), wantLoc) {
		t.Fatalf("POST %s: %d to %q, want 303 to …%s…: %s", path, r.Code, location(r), wantLoc, r.Body)
	}
	return location(r)
}

// makeSupport promotes c's account to the support role and returns a new
// signed-in browser for it (a role change ends sessions).
func makeSupport(t *testing.T, env *authEnv, admin, c *client, username string) *client {
	t.Helper()
	if r := admin.do("PATCH", "/api/v1/admin/users/"+c.userID, `{"role":"support"}`); r.Code != 200 {
		t.Fatalf("make support: %d %s", r.Code, r.Body)
	}
	return env.login(t, username)
}

func TestPrivacyPagesRenderForTheirAudience(t *testing.T) {
	env := newAuthEnv(t, authOptionsForTest(), Options{})
	admin := env.signup(t, "root")
	amy := env.signup(t, "amy")
	sue := makeSupport(t, env, admin, env.signup(t, "sue"), "sue")
	publishSignificant(t, env)

	tests := []struct {
		name       string
		who        *client
		path       string
		hdr        []string
		want       []string
		wantAbsent []string
	}{
		{"privacy page", amy, "/settings/privacy", nil,
			[]string{"Your data", "Request an export", "consents.json", "deleted 7 days after it is made",
				"Consents", "Use my images and prompts to train AI models", "You have not chosen yet",
				"Restrict processing", "Data-rights requests", "Portability: my data in a machine-readable form",
				"Privacy policy", "version 1", "I have read the privacy policy",
				"Delete account", "within 30 days", "I understand this cannot be undone"},
			[]string{GPCNotice, `name="totp_code"`}},
		{"privacy page with Global Privacy Control", amy, "/settings/privacy", []string{"Sec-GPC", "1"}, []string{GPCNotice}, nil},
		{"privacy page with Do Not Track", amy, "/settings/privacy", []string{"DNT", "1"}, []string{GPCNotice}, nil},
		{"communications", amy, "/settings/communications", nil,
			[]string{"This server sends no email yet", "Send me news and offers", "one-click unsubscribe"},
			[]string{"Use my images and prompts to train AI models"}},
		{"support, signed in", amy, "/support", nil,
			[]string{"Your tickets", "You have no tickets", "Open a ticket", "privacy@lab.example", "deleted 24 months after the last one"},
			[]string{"/support/queue"}},
		{"support, visitor", env.anon(), "/support", nil,
			[]string{"Example Lab", "privacy@lab.example", "open a support ticket"},
			[]string{"Your tickets", `action="/support/tickets"`}},
		{"support, staff", sue, "/support", nil, []string{"Open the support queue", "Your tickets"}, []string{`href="/admin"`}},
		{"support queue, staff", sue, "/support/queue", nil, []string{"Support queue", "No tickets here"}, []string{`href="/admin"`}},
		{"support queue, admin", admin, "/support/queue", nil, []string{"Support queue"}, nil},
		{"request queue, admin", admin, "/admin/requests", nil, []string{"Data-rights requests", "No requests here", `href="/admin/requests" aria-current="page"`}, nil},
		{"goodbye, visitor", env.anon(), "/goodbye", nil, []string{"Your account is deleted", "within 30 days"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := pageText(t, tt.who, tt.path, 200, tt.hdr...)
			for _, w := range tt.want {
				if !strings.Contains(body, w) {
					t.Errorf("%s lacks %q", tt.path, w)
				}
			}
			for _, w := range tt.wantAbsent {
				if strings.Contains(body, w) {
					t.Errorf("%s shows %q", tt.path, w)
				}
			}
		})
	}

	t.Run("support staff see no admin pages", func(t *testing.T) {
		if r := sue.do("GET", "/admin/requests", ""); r.Code != http.StatusForbidden {
			t.Errorf("support on /admin/requests: %d", r.Code)
		}
	})
	t.Run("people see no staff pages", func(t *testing.T) {
		if r := amy.do("GET", "/support/queue", ""); r.Code != http.StatusForbidden {
			t.Errorf("a person on /support/queue: %d", r.Code)
		}
	})
}

var downloadRe = regexp.MustCompile(`href="/api/v1/me/exports/([0-9A-Z]+)/download"`)

func TestExportThroughThePrivacyPage(t *testing.T) {
	env := newAuthEnv(t, authOptionsForTest(), Options{})
	env.signup(t, "root")
	amy := env.signup(t, "amy")
	postForm(t, amy, "/settings/privacy/exports", url.Values{}, "/settings/privacy?done=export")

	list := amy.do("GET", "/api/v1/me/exports", "").json(t)["exports"].([]any)
	if len(list) != 1 {
		t.Fatalf("exports after the form: %d", len(list))
	}
	id := list[0].(map[string]any)["id"].(string)
	waitExport(t, amy, id)

	body := pageText(t, amy, "/settings/privacy", 200)
	m := downloadRe.FindStringSubmatch(body)
	if m == nil || m[1] != id {
		t.Fatalf("no download link for export %s on the page: %v", id, m)
	}
	for _, w := range []string{"ready", "8 Mar 2026"} { // the clock's day + the 7-day window
		if !strings.Contains(body, w) {
			t.Errorf("export row lacks %q", w)
		}
	}
	if r := amy.do("GET", "/api/v1/me/exports/"+id+"/download", ""); r.Code != 200 || r.Header().Get("Content-Type") != "application/zip" {
		t.Errorf("the page's download link: %d %s", r.Code, r.Header().Get("Content-Type"))
	}

	t.Run("one at a time is refused calmly", func(t *testing.T) {
		// With the worker stopped, the next export stays pending.
		env.rs.exports.Stop()
		postForm(t, amy, "/settings/privacy/exports", url.Values{}, "done=export")
		r := amy.form("/settings/privacy/exports", url.Values{})
		body := html.UnescapeString(r.Body.String())
		if r.Code != http.StatusConflict || !strings.Contains(body, `role="alert">An export of yours is still being made`) {
			t.Fatalf("second export: %d %s", r.Code, body)
		}
		if strings.Contains(body, "/api/v1/") && strings.Contains(body, "GET /api/v1/me/exports/") {
			t.Error("the page shows the API's wording")
		}
		if !strings.Contains(body, "waiting") {
			t.Error("the pending export is not listed")
		}
	})
}

func TestDataRightsRequestThroughThePrivacyPage(t *testing.T) {
	env := newAuthEnv(t, authOptionsForTest(), Options{})
	admin := env.signup(t, "root")
	amy := env.signup(t, "amy")

	t.Run("refused form keeps its values and marks the field", func(t *testing.T) {
		r := amy.form("/settings/privacy/requests", url.Values{"kind": {"everything"}, "details": {"please & thanks"}})
		body := r.Body.String()
		if r.Code != http.StatusBadRequest || !fieldMarked(body, "kind") || !strings.Contains(body, "please &amp; thanks</textarea>") {
			t.Fatalf("bad kind: %d %s", r.Code, body)
		}
	})

	postForm(t, amy, "/settings/privacy/requests", url.Values{"kind": {"rectify"}, "details": {"My display name is misspelt."}}, "done=request#requests")
	body := pageText(t, amy, "/settings/privacy?done=request", 200)
	// Filed on 1 March 2026 (the test clock): due 30 days later.
	for _, w := range []string{"Rectification: correct something wrong", "31 Mar 2026", "An administrator answers it by the due date"} {
		if !strings.Contains(body, w) {
			t.Errorf("after filing, the page lacks %q", w)
		}
	}

	list := amy.do("GET", "/api/v1/me/requests", "").json(t)["requests"].([]any)
	if len(list) != 1 {
		t.Fatalf("requests: %d", len(list))
	}
	id := list[0].(map[string]any)["id"].(string)

	t.Run("the admin queue flags it once overdue", func(t *testing.T) {
		before := pageText(t, admin, "/admin/requests", 200)
		if !strings.Contains(before, "My display name is misspelt.") || strings.Contains(before, "past its due date") {
			t.Fatalf("queue before the due date: %s", before)
		}
		env.clock.Advance(app.RequestDeadline + time.Hour)
		// A month on, both sessions have ended: sign in again.
		admin, amy = env.login(t, "root"), env.login(t, "amy")
		after := pageText(t, admin, "/admin/requests", 200)
		if !strings.Contains(after, "1 request is past its due date") || !strings.Contains(after, `class="overdue">overdue`) {
			t.Errorf("queue after the due date lacks the warning: %s", after)
		}
		if !strings.Contains(pageText(t, amy, "/settings/privacy", 200), "overdue") {
			t.Error("the person's list does not say their request is overdue")
		}
	})

	t.Run("admin closes it with a resolution", func(t *testing.T) {
		r := admin.form("/admin/requests/"+id+"/close", url.Values{"resolution": {"  "}})
		if r.Code != http.StatusBadRequest || !fieldMarked(r.Body.String(), "resolution-"+id) {
			t.Fatalf("empty resolution: %d %s", r.Code, r.Body)
		}
		postForm(t, admin, "/admin/requests/"+id+"/close", url.Values{"resolution": {"Corrected the display name."}}, "done=request-closed")
		if open := pageText(t, admin, "/admin/requests", 200); strings.Contains(open, id) {
			t.Error("a closed request is still in the open queue")
		}
		if closed := pageText(t, admin, "/admin/requests?status=closed", 200); !strings.Contains(closed, "Corrected the display name.") {
			t.Error("the closed list lacks the request")
		}
		mine := pageText(t, amy, "/settings/privacy", 200)
		if !strings.Contains(mine, "Corrected the display name.") || !strings.Contains(mine, "closed") {
			t.Error("the person does not see the resolution")
		}
		// A second close of the same request is refused, not repeated.
		if r := admin.form("/admin/requests/"+id+"/close", url.Values{"resolution": {"Again."}}); r.Code != http.StatusConflict {
			t.Errorf("second close: %d", r.Code)
		}
	})
}

func TestSupportTicketsThroughThePages(t *testing.T) {
	env := newAuthEnv(t, authOptionsForTest(), Options{})
	admin := env.signup(t, "root")
	amy := env.signup(t, "amy")
	bob := env.signup(t, "bob")
	sue := makeSupport(t, env, admin, env.signup(t, "sue"), "sue")

	r := amy.form("/support/tickets", url.Values{"subject": {""}, "body": {"It vanished <b>yesterday</b>."}})
	if r.Code != http.StatusBadRequest || !fieldMarked(r.Body.String(), "subject") || !strings.Contains(r.Body.String(), "It vanished &lt;b&gt;yesterday&lt;/b&gt;.</textarea>") {
		t.Fatalf("ticket without subject: %d %s", r.Code, r.Body)
	}
	loc := postForm(t, amy, "/support/tickets", url.Values{"subject": {"Lost image"}, "body": {"It vanished <b>yesterday</b>."}}, "/support/tickets/")
	id := strings.TrimPrefix(strings.SplitN(loc, "?", 2)[0], "/support/tickets/")

	thread := pageText(t, amy, loc, 200)
	for _, w := range []string{"Lost image", "It vanished <b>yesterday</b>.", "Your ticket is open"} {
		if !strings.Contains(thread, w) {
			t.Errorf("ticket page lacks %q", w)
		}
	}
	if strings.Contains(amy.do("GET", loc, "").Body.String(), "<b>yesterday</b>") {
		t.Error("the message is not escaped")
	}
	if !strings.Contains(pageText(t, amy, "/support", 200), `href="/support/tickets/`+id+`">Lost image`) {
		t.Error("the ticket is not in the person's list")
	}

	t.Run("another person gets 404", func(t *testing.T) {
		if r := bob.do("GET", "/support/tickets/"+id, ""); r.Code != http.StatusNotFound || strings.Contains(r.Body.String(), "Lost image") {
			t.Errorf("bob on amy's ticket: %d", r.Code)
		}
		if r := bob.form("/support/tickets/"+id+"/reply", url.Values{"body": {"hijack"}}); r.Code != http.StatusNotFound {
			t.Errorf("bob replying to amy's ticket: %d", r.Code)
		}
	})

	postForm(t, amy, "/support/tickets/"+id+"/reply", url.Values{"body": {"It was a fox picture."}}, "done=ticket-reply")

	t.Run("staff answer and close from the queue", func(t *testing.T) {
		queue := pageText(t, sue, "/support/queue", 200)
		if !strings.Contains(queue, `href="/support/queue/`+id+`">Lost image`) || !strings.Contains(queue, amy.userID) {
			t.Fatalf("queue lacks the ticket: %s", queue)
		}
		staff := pageText(t, sue, "/support/queue/"+id, 200)
		if !strings.Contains(staff, "It was a fox picture.") || !strings.Contains(staff, "Ticket owner") {
			t.Errorf("staff ticket page lacks the thread")
		}
		if r := sue.form("/support/queue/"+id+"/reply", url.Values{"body": {" "}}); r.Code != http.StatusBadRequest || !fieldMarked(r.Body.String(), "body") {
			t.Errorf("empty staff reply: %d %s", r.Code, r.Body)
		}
		postForm(t, sue, "/support/queue/"+id+"/reply", url.Values{"body": {"Found it in the trash."}}, "done=staff-reply")
		mine := pageText(t, amy, "/support/tickets/"+id, 200)
		if !strings.Contains(mine, "Found it in the trash.") || !strings.Contains(mine, "<strong>Support</strong>") || strings.Contains(mine, sue.userID) {
			t.Errorf("the owner's view of the staff reply: %s", mine)
		}
		postForm(t, sue, "/support/queue/"+id+"/close", url.Values{}, "done=ticket-closed")
		if !strings.Contains(pageText(t, amy, "/support", 200), "closed") {
			t.Error("the owner's list does not show the ticket closed")
		}
		// Reading the conversation as staff is audited.
		entries, err := env.db.AuditEntries(t.Context(), sqliteAuditFilter(amy.userID))
		if err != nil {
			t.Fatal(err)
		}
		reads := 0
		for _, e := range entries {
			if e.Action == app.AuditTicketRead && e.ActorID == sue.userID {
				reads++
			}
		}
		if reads == 0 {
			t.Error("staff reads of the ticket are not in the audit log")
		}
	})
}

// consentHistory returns the ledger entries of c through the API.
func consentHistory(t *testing.T, c *client) []any {
	t.Helper()
	h, _ := c.do("GET", "/api/v1/me/consents", "").json(t)["history"].([]any)
	return h
}

func TestConsentFormsAndRestriction(t *testing.T) {
	env := newAuthEnv(t, authOptionsForTest(), Options{})
	env.signup(t, "root")
	amy := env.signup(t, "amy")
	all := url.Values{"purpose": {privacy.PurposeTraining, privacy.PurposeMarketing, privacy.PurposeAnalytics}}

	// Opt in to training, leave marketing off and analytics on: one entry.
	v := url.Values{"purpose": all["purpose"], "granted_training": {"1"}, "granted_analytics": {"1"}}
	postForm(t, amy, "/settings/privacy/consents", v, "done=consents")
	h := consentHistory(t, amy)
	if len(h) != 1 {
		t.Fatalf("ledger after opting in to training: %d entries, want 1: %v", len(h), h)
	}
	if e := h[0].(map[string]any); e["purpose"] != "training" || e["granted"] != true || e["method"] != privacy.MethodForm {
		t.Errorf("ledger entry: %v", e)
	}
	// Saving the same choices again records nothing.
	postForm(t, amy, "/settings/privacy/consents", v, "done=consents")
	if n := len(consentHistory(t, amy)); n != 1 {
		t.Errorf("ledger after an unchanged save: %d entries", n)
	}
	body := pageText(t, amy, "/settings/privacy", 200)
	if !strings.Contains(body, `name="granted_training" value="1" checked`) || !strings.Contains(body, "Last changed 1 Mar 2026") {
		t.Errorf("the page does not show the recorded choice")
	}

	// The communications form touches marketing only: unticking nothing
	// else, even though training is not in it.
	postForm(t, amy, "/settings/communications/consents", url.Values{"purpose": {"marketing"}, "granted_marketing": {"1"}}, "/settings/communications?done=consents")
	st, err := env.rights.Consents(t.Context(), amy.userID)
	if err != nil {
		t.Fatal(err)
	}
	if !st.Granted(privacy.PurposeMarketing) || !st.Granted(privacy.PurposeTraining) {
		t.Errorf("after the communications form: %+v", st.Purposes)
	}
	if !strings.Contains(pageText(t, amy, "/settings/communications", 200), `name="granted_marketing" value="1" checked`) {
		t.Error("communications page does not show marketing on")
	}

	// Restriction overrides every consent until lifted.
	postForm(t, amy, "/settings/privacy/restrict", url.Values{"restricted": {"1"}}, "done=restricted")
	if ok, _ := env.rights.Allows(t.Context(), amy.userID, privacy.PurposeTraining); ok {
		t.Error("training allowed while restricted")
	}
	if body := pageText(t, amy, "/settings/privacy", 200); !strings.Contains(body, "Processing is restricted") || !strings.Contains(body, "Lift the restriction") {
		t.Error("the page does not show the restriction")
	}
	postForm(t, amy, "/settings/privacy/restrict", url.Values{"restricted": {"0"}}, "done=unrestricted")
	if ok, _ := env.rights.Allows(t.Context(), amy.userID, privacy.PurposeTraining); !ok {
		t.Error("training consent not back after lifting the restriction")
	}
}

func TestPolicyAcknowledgementThroughThePrivacyPage(t *testing.T) {
	env := newAuthEnv(t, authOptionsForTest(), Options{})
	amy := env.signup(t, "amy")
	publishSignificant(t, env)
	if body := pageText(t, amy, "/settings/privacy", 200); !strings.Contains(body, "The privacy policy changed") || !strings.Contains(body, `name="version" value="1"`) {
		t.Fatalf("no acknowledgement asked: %s", body)
	}
	postForm(t, amy, "/settings/privacy/policy-ack", url.Values{"version": {"1"}}, "done=policy-ack")
	body := pageText(t, amy, "/settings/privacy", 200)
	if strings.Contains(body, "I have read the privacy policy") || strings.Contains(body, "The privacy policy changed") {
		t.Error("still asked to acknowledge after acknowledging")
	}
	if r := amy.form("/settings/privacy/policy-ack", url.Values{"version": {"x"}}); r.Code != http.StatusBadRequest {
		t.Errorf("ack without a version: %d", r.Code)
	}
}

func TestDeleteAccountThroughThePrivacyPage(t *testing.T) {
	env := newAuthEnv(t, authOptionsForTest(), Options{})
	admin := env.signup(t, "root")
	amy := env.signup(t, "amy")
	_, codes := enable2FAByPages(t, env, amy)

	if !strings.Contains(pageText(t, amy, "/settings/privacy", 200), `name="totp_code"`) {
		t.Error("with 2FA on, the form asks for no code")
	}
	tests := []struct {
		name   string
		vals   url.Values
		status int
		marked string
	}{
		{"no confirmation", url.Values{"password": {testPassword}, "totp_code": {codes[0]}}, http.StatusBadRequest, "delete-confirm"},
		{"no code", url.Values{"password": {testPassword}, "confirm": {"1"}}, http.StatusBadRequest, "delete-code"},
		{"wrong password", url.Values{"password": {"not it"}, "totp_code": {codes[0]}, "confirm": {"1"}}, http.StatusForbidden, "delete-password"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := amy.form("/settings/privacy/delete", tt.vals)
			if r.Code != tt.status || !fieldMarked(r.Body.String(), tt.marked) || !strings.Contains(r.Body.String(), "nothing was deleted") && tt.status == http.StatusForbidden {
				t.Errorf("%d, want %d with %s marked: %s", r.Code, tt.status, tt.marked, r.Body)
			}
		})
	}

	t.Run("under a legal hold there is no form", func(t *testing.T) {
		if r := admin.do("POST", "/api/v1/admin/users/"+amy.userID+"/hold", `{"reason":"Order 12"}`); r.Code != 200 {
			t.Fatalf("hold: %d %s", r.Code, r.Body)
		}
		body := pageText(t, amy, "/settings/privacy", 200)
		if !strings.Contains(body, privacy.HoldNotice) || strings.Contains(body, `action="/settings/privacy/delete"`) || strings.Contains(body, "Order 12") {
			t.Errorf("held account's page: %s", body)
		}
		r := amy.form("/settings/privacy/delete", url.Values{"password": {testPassword}, "totp_code": {codes[0]}, "confirm": {"1"}})
		if r.Code != http.StatusConflict || !strings.Contains(html.UnescapeString(r.Body.String()), "legal hold") {
			t.Errorf("delete while held: %d", r.Code)
		}
		if r := admin.do("DELETE", "/api/v1/admin/users/"+amy.userID+"/hold", ""); r.Code != 204 {
			t.Fatalf("release: %d", r.Code)
		}
	})

	r := amy.form("/settings/privacy/delete", url.Values{"password": {testPassword}, "totp_code": {codes[1]}, "confirm": {"1"}})
	if r.Code != http.StatusSeeOther || location(r) != "/goodbye" {
		t.Fatalf("delete: %d to %q: %s", r.Code, location(r), r.Body)
	}
	cleared := false
	for _, ck := range r.Result().Cookies() {
		cleared = cleared || (ck.Name == SessionCookie && ck.MaxAge < 0)
	}
	if !cleared {
		t.Error("the answer does not clear the session cookie")
	}
	if r := amy.do("GET", "/settings/privacy", ""); r.Code != http.StatusSeeOther || !strings.HasPrefix(location(r), "/login") {
		t.Errorf("the old session still opens pages: %d %q", r.Code, location(r))
	}
	amy.keepCookie(r)
	if !strings.Contains(pageText(t, amy, "/goodbye", 200), "Your account is deleted") {
		t.Error("no goodbye page")
	}
	if r := env.anon().do("POST", "/api/v1/auth/login", `{"login":"amy","password":"`+testPassword+`"}`); r.Code == http.StatusOK {
		t.Errorf("login after deletion: %d %s", r.Code, r.Body)
	}
}
