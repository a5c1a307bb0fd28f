package web

import (
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"zimage/app/auth"
)

// Tests of the account, settings and admin pages, through the real router
// as a browser without JavaScript would use them: form posts, cookies, the
// _csrf field, 303 redirects.

// form posts vals as an HTML form. A signed-in client sends its CSRF token
// as the _csrf field, as the pages do, not in the header.
func (c *client) form(path string, vals url.Values) response {
	if c.csrf != "" && vals.Get("_csrf") == "" {
		vals.Set("_csrf", c.csrf)
	}
	return c.do("POST", path, vals.Encode(), "Content-Type", "application/x-www-form-urlencoded", "X-CSRF-Token", "")
}

// keepCookie stores the session cookie a page response set (or cleared)
// and derives the CSRF token the pages would carry.
func (c *client) keepCookie(r response) {
	for _, ck := range r.Result().Cookies() {
		if ck.Name == SessionCookie {
			c.cookie = ck.Value
			c.csrf = ""
			if ck.Value != "" {
				c.csrf = auth.CSRFToken([]byte(ck.Value))
			}
		}
	}
}

func location(r response) string { return r.Header().Get("Location") }

// fieldMarked reports whether the page marks field as at fault: the input
// flagged invalid and pointing at its message.
func fieldMarked(body, field string) bool {
	return strings.Contains(body, `aria-invalid="true" aria-describedby="`+field+`-error"`) &&
		strings.Contains(body, `class="field-error" id="`+field+`-error"`)
}

func signupForm(email, username, password string) url.Values {
	return url.Values{"email": {email}, "username": {username}, "password": {password}, "age_confirmed": {"1"}}
}

func TestSignupPageSignsInAndLandsOnGenerate(t *testing.T) {
	env := newAuthEnv(t, authOptionsForTest(), Options{})
	c := env.anon()
	r := c.do("GET", "/signup", "")
	if r.Code != 200 || !strings.Contains(r.Body.String(), "I am 13 or older") {
		t.Fatalf("signup page: %d %s", r.Code, r.Body)
	}
	vals := signupForm("dora@example.com", "dora", testPassword)
	vals.Set("next", "/gallery")
	r = c.form("/signup", vals)
	if r.Code != http.StatusSeeOther || location(r) != "/gallery" {
		t.Fatalf("signup post: %d %q %s", r.Code, location(r), r.Body)
	}
	c.keepCookie(r)
	if c.cookie == "" {
		t.Fatal("no session cookie after sign-up")
	}
	if r := c.do("GET", "/generate", ""); r.Code != 200 {
		t.Errorf("generate after sign-up: %d", r.Code)
	}
	if r := c.do("GET", "/", ""); r.Code != http.StatusSeeOther || location(r) != "/generate" {
		t.Errorf("home when signed in: %d %q", r.Code, location(r))
	}
	if r := c.do("GET", "/signup", ""); r.Code != http.StatusSeeOther {
		t.Errorf("signup page when signed in: %d", r.Code)
	}
	// Signing out through the form ends the session.
	r = c.form("/logout", url.Values{})
	if r.Code != http.StatusSeeOther || !strings.HasPrefix(location(r), "/login") {
		t.Fatalf("logout: %d %q", r.Code, location(r))
	}
	old := c.cookie
	c.keepCookie(r)
	if c.cookie != "" {
		t.Error("logout did not clear the cookie")
	}
	c.cookie = old
	if r := c.do("GET", "/generate", ""); r.Code != http.StatusSeeOther {
		t.Errorf("old cookie after logout: %d, want a redirect to sign in", r.Code)
	}
}

func TestSignupFormKeepsValuesAndMarksFields(t *testing.T) {
	env := newAuthEnv(t, authOptionsForTest(), Options{})
	env.signup(t, "taken")
	long := strings.Repeat("x", 300)
	tests := []struct {
		name       string
		vals       url.Values
		wantStatus int
		wantField  string
	}{
		{"all empty", url.Values{}, 400, "email"},
		{"no age confirmation", url.Values{"email": {"eve@example.com"}, "username": {"eve"}, "password": {testPassword}}, 400, "age_confirmed"},
		{"email without at", signupForm("not-an-email", "eve", testPassword), 400, "email"},
		{"over-long username", signupForm("eve@example.com", long, testPassword), 400, "username"},
		{"weak password", signupForm("eve@example.com", "eve", "password123"), 400, "password"},
		{"taken username", signupForm("eve@example.com", "taken", testPassword), 409, "username"},
		{"taken email", signupForm("taken@example.com", "eve2", testPassword), 409, "email"},
		{"display name too long", func() url.Values {
			v := signupForm("eve@example.com", "eve", testPassword)
			v.Set("display_name", strings.Repeat("é", 101))
			return v
		}(), 400, "display_name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := env.anon().form("/signup", tt.vals)
			body := r.Body.String()
			if r.Code != tt.wantStatus {
				t.Fatalf("status %d, want %d: %s", r.Code, tt.wantStatus, body)
			}
			if !fieldMarked(body, tt.wantField) {
				t.Errorf("field %s not marked in:\n%s", tt.wantField, body)
			}
			if !strings.Contains(body, `class="banner error"`) {
				t.Error("no error banner above the form")
			}
			for _, k := range []string{"email", "username", "display_name"} {
				if v := tt.vals.Get(k); v != "" && !strings.Contains(body, `value="`+html.EscapeString(v)+`"`) {
					t.Errorf("typed %s %q was lost", k, v)
				}
			}
			if pw := tt.vals.Get("password"); pw != "" && strings.Contains(body, pw) {
				t.Error("the password was sent back in the page")
			}
			if r.Result().Cookies() != nil {
				for _, ck := range r.Result().Cookies() {
					if ck.Name == SessionCookie && ck.Value != "" {
						t.Error("a refused sign-up set a session cookie")
					}
				}
			}
		})
	}
	// A double submit: the second answer is a clear conflict, not a 500.
	vals := signupForm("twice@example.com", "twice", testPassword)
	if r := env.anon().form("/signup", vals); r.Code != http.StatusSeeOther {
		t.Fatalf("first submit: %d", r.Code)
	}
	if r := env.anon().form("/signup", vals); r.Code != http.StatusConflict || !fieldMarked(r.Body.String(), "username") {
		t.Errorf("second submit: %d %s", r.Code, r.Body)
	}
}

func TestSignupPageInviteMode(t *testing.T) {
	opts := authOptionsForTest()
	opts.Signup = "invite"
	env := newAuthEnv(t, opts, Options{})
	r := env.anon().do("GET", "/signup", "")
	if r.Code != 200 || !strings.Contains(r.Body.String(), `name="invite"`) || !strings.Contains(r.Body.String(), "needs an invite") {
		t.Fatalf("invite mode page: %d %s", r.Code, r.Body)
	}
	r = env.anon().form("/signup", signupForm("nia@example.com", "nia", testPassword))
	if r.Code != http.StatusForbidden || !strings.Contains(r.Body.String(), "needs an invite") || !strings.Contains(r.Body.String(), `value="nia@example.com"`) {
		t.Errorf("without invite: %d %s", r.Code, r.Body)
	}
	vals := signupForm("nia@example.com", "nia", testPassword)
	vals.Set("invite", "zin_bogus")
	if r := env.anon().form("/signup", vals); r.Code != 400 || !fieldMarked(r.Body.String(), "invite") {
		t.Errorf("bogus invite: %d %s", r.Code, r.Body)
	}
}

var (
	csrfFieldRe = regexp.MustCompile(`name="_csrf" value="([^"]+)"`)
	ticketRe    = regexp.MustCompile(`name="ticket" value="([^"]+)"`)
	secretRe    = regexp.MustCompile(`id="totp-secret">([A-Z2-7]+)<`)
	codesRe     = regexp.MustCompile(`<li><code>([^<]+)</code></li>`)
)

// enable2FAByPages turns on 2FA through the security page and returns the
// secret and recovery codes.
func enable2FAByPages(t *testing.T, env *authEnv, c *client) (string, []string) {
	t.Helper()
	r := c.form("/settings/security/2fa", url.Values{})
	body := r.Body.String()
	if r.Code != 200 || !strings.Contains(body, `src="/api/v1/me/2fa/qr.png"`) {
		t.Fatalf("start 2fa: %d %s", r.Code, body)
	}
	m := secretRe.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no secret on the page: %s", body)
	}
	secret := m[1]
	if qr := c.do("GET", "/api/v1/me/2fa/qr.png", ""); qr.Code != 200 {
		t.Errorf("the page's QR image: %d", qr.Code)
	}
	r = c.form("/settings/security/2fa/confirm", url.Values{"code": {"000000"}, "secret": {secret}})
	if r.Code != 400 || !strings.Contains(r.Body.String(), `id="totp-secret">`+secret) || !strings.Contains(r.Body.String(), `aria-invalid="true"`) {
		t.Fatalf("wrong confirm code: %d %s", r.Code, r.Body)
	}
	r = c.form("/settings/security/2fa/confirm", url.Values{"code": {code(t, env, secret, 0)}, "secret": {secret}})
	if r.Code != 200 || r.Header().Get("Cache-Control") != "no-store" {
		t.Fatalf("confirm: %d %s", r.Code, r.Body)
	}
	var codes []string
	for _, m := range codesRe.FindAllStringSubmatch(r.Body.String(), -1) {
		codes = append(codes, m[1])
	}
	if len(codes) != auth.DefaultRecoveryCodes {
		t.Fatalf("recovery codes shown: %d, want %d", len(codes), auth.DefaultRecoveryCodes)
	}
	// A second confirm (double submit) is told calmly what happened.
	r = c.form("/settings/security/2fa/confirm", url.Values{"code": {code(t, env, secret, 0)}})
	if r.Code != http.StatusSeeOther || !strings.Contains(location(r), "2fa-already-on") {
		t.Errorf("second confirm: %d %q", r.Code, location(r))
	}
	return secret, codes
}

func TestLoginWithTwoFactorInTwoSteps(t *testing.T) {
	env := newAuthEnv(t, authOptionsForTest(), Options{})
	secret, codes := enable2FAByPages(t, env, env.signup(t, "tess"))
	env.clock.Advance(30 * time.Second) // the confirm code's step is spent

	step1 := func(c *client) string {
		t.Helper()
		r := c.form("/login", url.Values{"login": {"tess"}, "password": {testPassword}, "next": {"/gallery"}})
		body := r.Body.String()
		if r.Code != 200 || !strings.Contains(body, `action="/login/2fa"`) {
			t.Fatalf("step 1: %d %s", r.Code, body)
		}
		if strings.Contains(body, testPassword) {
			t.Fatal("the 2FA page contains the password")
		}
		if r.Header().Get("Cache-Control") != "no-store" {
			t.Error("the 2FA page may be cached")
		}
		for _, ck := range r.Result().Cookies() {
			if ck.Name == SessionCookie && ck.Value != "" {
				t.Fatal("a session started before the second factor")
			}
		}
		return html.UnescapeString(ticketRe.FindStringSubmatch(body)[1])
	}

	t.Run("wrong code keeps the step, right code signs in", func(t *testing.T) {
		c := env.anon()
		ticket := step1(c)
		r := c.form("/login/2fa", url.Values{"ticket": {ticket}, "code": {"000000"}, "next": {"/gallery"}})
		if r.Code != 401 || !fieldMarked(r.Body.String(), "code") || !strings.Contains(r.Body.String(), `value="000000"`) {
			t.Fatalf("wrong code: %d %s", r.Code, r.Body)
		}
		r = c.form("/login/2fa", url.Values{"ticket": {ticket}, "code": {""}})
		if r.Code != 400 || !fieldMarked(r.Body.String(), "code") {
			t.Fatalf("empty code: %d %s", r.Code, r.Body)
		}
		r = c.form("/login/2fa", url.Values{"ticket": {ticket}, "code": {code(t, env, secret, 0)}, "next": {"/gallery"}})
		if r.Code != http.StatusSeeOther || location(r) != "/gallery" {
			t.Fatalf("right code: %d %q %s", r.Code, location(r), r.Body)
		}
		c.keepCookie(r)
		if r := c.do("GET", "/settings/security", ""); r.Code != 200 || !strings.Contains(r.Body.String(), "Turn off two-factor") {
			t.Errorf("signed in after 2FA: %d", r.Code)
		}
	})
	t.Run("recovery code", func(t *testing.T) {
		c := env.anon()
		r := c.form("/login/2fa", url.Values{"ticket": {step1(c)}, "code": {codes[3]}})
		if r.Code != http.StatusSeeOther || location(r) != "/generate" {
			t.Fatalf("recovery code: %d %q %s", r.Code, location(r), r.Body)
		}
	})
	t.Run("forged ticket", func(t *testing.T) {
		r := env.anon().form("/login/2fa", url.Values{"ticket": {"AAAA" + strings.Repeat("b", 80)}, "code": {code(t, env, secret, 0)}})
		if r.Code != 400 || !strings.Contains(r.Body.String(), `action="/login"`) {
			t.Errorf("forged ticket: %d %s", r.Code, r.Body)
		}
	})
	t.Run("expired ticket", func(t *testing.T) {
		c := env.anon()
		ticket := step1(c)
		env.clock.Advance(loginTicketTTL + time.Minute)
		r := c.form("/login/2fa", url.Values{"ticket": {ticket}, "code": {code(t, env, secret, 0)}})
		if r.Code != 400 || !strings.Contains(r.Body.String(), "took too long") || !strings.Contains(r.Body.String(), `value="tess"`) {
			t.Errorf("expired ticket: %d %s", r.Code, r.Body)
		}
	})
}

func TestLoginPageErrorsAndNext(t *testing.T) {
	env := newAuthEnv(t, authOptionsForTest(), Options{})
	env.signup(t, "nick")
	t.Run("wrong password keeps the login, not the password", func(t *testing.T) {
		r := env.anon().form("/login", url.Values{"login": {"nick"}, "password": {"wrong password here"}})
		body := r.Body.String()
		if r.Code != 401 || !strings.Contains(body, `value="nick"`) || strings.Contains(body, "wrong password here") || !strings.Contains(body, `class="banner error"`) {
			t.Errorf("wrong password: %d %s", r.Code, body)
		}
	})
	t.Run("empty fields are marked", func(t *testing.T) {
		r := env.anon().form("/login", url.Values{})
		if r.Code != 400 || !fieldMarked(r.Body.String(), "login") || !fieldMarked(r.Body.String(), "password") {
			t.Errorf("empty: %d %s", r.Code, r.Body)
		}
	})
	tests := []struct{ next, want string }{
		{"/gallery?q=fox", "/gallery?q=fox"},
		{"/settings/api-keys", "/settings/api-keys"},
		{"//evil.example/x", "/generate"},
		{"https://evil.example/", "/generate"},
		{"/\\evil.example", "/generate"},
		{"/\t/evil.example", "/generate"},
		{"javascript:alert(1)", "/generate"},
		{"evil.example", "/generate"},
		{"", "/generate"},
	}
	for _, tt := range tests {
		t.Run("next "+tt.next, func(t *testing.T) {
			r := env.anon().form("/login", url.Values{"login": {"nick"}, "password": {testPassword}, "next": {tt.next}})
			if r.Code != http.StatusSeeOther || location(r) != tt.want {
				t.Errorf("next %q: %d → %q, want %q", tt.next, r.Code, location(r), tt.want)
			}
		})
	}
	// The login page repeats a good next in its form and drops a bad one.
	if r := env.anon().do("GET", "/login?next=%2F%2Fevil.example", ""); strings.Contains(r.Body.String(), "evil.example") {
		t.Error("the login page carried a foreign next")
	}
	if r := env.anon().do("GET", "/login?next=%2Fgallery", ""); !strings.Contains(r.Body.String(), `name="next" value="/gallery"`) {
		t.Errorf("the login page lost a local next: %s", r.Body)
	}
	// A guarded page sends an anonymous visitor to sign in and back.
	if r := env.anon().do("GET", "/settings/api-keys", ""); r.Code != http.StatusSeeOther || location(r) != "/login?next=%2Fsettings%2Fapi-keys" {
		t.Errorf("guarded page: %d %q", r.Code, location(r))
	}
}

func TestLoginFormFromAnotherSiteIsRefused(t *testing.T) {
	env := newAuthEnv(t, authOptionsForTest(), Options{})
	env.signup(t, "olga")
	r := env.anon().do("POST", "/login", url.Values{"login": {"olga"}, "password": {testPassword}}.Encode(),
		"Content-Type", "application/x-www-form-urlencoded", "Sec-Fetch-Site", "cross-site")
	if r.Code != http.StatusForbidden {
		t.Errorf("cross-site login: %d, want 403", r.Code)
	}
}

func TestSettingsPages(t *testing.T) {
	env := newAuthEnv(t, authOptionsForTest(), Options{})
	c := env.signup(t, "sam")
	if r := c.do("GET", "/settings", ""); r.Code != http.StatusSeeOther || location(r) != "/settings/profile" {
		t.Errorf("/settings: %d %q", r.Code, location(r))
	}
	for _, section := range []string{"profile", "password", "security", "api-keys", "privacy", "communications"} {
		t.Run("GET "+section, func(t *testing.T) {
			r := c.do("GET", "/settings/"+section, "")
			body := r.Body.String()
			if r.Code != 200 {
				t.Fatalf("%d %s", r.Code, body)
			}
			if !strings.Contains(body, `href="/settings/`+section+`" aria-current="page"`) {
				t.Error("the section is not marked current in the menu")
			}
			if !strings.Contains(body, `href="/settings" aria-current="page"`) {
				t.Error("Settings is not marked current in the main navigation")
			}
			m := csrfFieldRe.FindStringSubmatch(body)
			if m == nil || !auth.CheckCSRF([]byte(c.cookie), m[1]) {
				t.Error("forms lack a valid CSRF field")
			}
		})
	}
	t.Run("profile", func(t *testing.T) {
		if r := c.do("GET", "/settings/profile", ""); !strings.Contains(r.Body.String(), "sam@example.com") {
			t.Error("the profile does not show the email")
		}
		long := strings.Repeat("a", 101)
		r := c.form("/settings/profile", url.Values{"display_name": {long}})
		if r.Code != 400 || !fieldMarked(r.Body.String(), "display_name") || !strings.Contains(r.Body.String(), long) {
			t.Errorf("long display name: %d %s", r.Code, r.Body)
		}
		r = c.form("/settings/profile", url.Values{"display_name": {"Sam Q"}})
		if r.Code != http.StatusSeeOther {
			t.Fatalf("save: %d %s", r.Code, r.Body)
		}
		if r := c.do("GET", location(r), ""); !strings.Contains(r.Body.String(), `value="Sam Q"`) || !strings.Contains(r.Body.String(), "profile is saved") {
			t.Errorf("after save: %s", r.Body)
		}
	})
	t.Run("password", func(t *testing.T) {
		other := env.login(t, "sam")
		tests := []struct {
			name             string
			cur, next, again string
			status           int
			field            string
		}{
			{"mismatch", testPassword, "velvet lantern orbit meadow", "velvet lantern orbit", 400, "new_password_confirm"},
			{"wrong current", "not my password at all", "velvet lantern orbit meadow", "velvet lantern orbit meadow", 403, "current_password"},
			{"empty current", "", "velvet lantern orbit meadow", "velvet lantern orbit meadow", 400, "current_password"},
			{"weak new", testPassword, "password", "password", 400, "new_password"},
		}
		for _, tt := range tests {
			r := c.form("/settings/password", url.Values{"current_password": {tt.cur}, "new_password": {tt.next}, "new_password_confirm": {tt.again}})
			if r.Code != tt.status || !fieldMarked(r.Body.String(), tt.field) {
				t.Errorf("%s: %d %s", tt.name, r.Code, r.Body)
			}
		}
		r := c.form("/settings/password", url.Values{"current_password": {testPassword}, "new_password": {"velvet lantern orbit meadow"}, "new_password_confirm": {"velvet lantern orbit meadow"}})
		if r.Code != http.StatusSeeOther {
			t.Fatalf("change: %d %s", r.Code, r.Body)
		}
		if r := c.do("GET", "/settings/password", ""); r.Code != 200 {
			t.Errorf("this session after the change: %d", r.Code)
		}
		if r := other.do("GET", "/settings/password", ""); r.Code != http.StatusSeeOther {
			t.Errorf("the other session after the change: %d, want it signed out", r.Code)
		}
	})
}

func TestSessionsPage(t *testing.T) {
	env := newAuthEnv(t, authOptionsForTest(), Options{})
	c := env.signup(t, "ula")
	laptop := env.login(t, "ula")
	stranger := env.signup(t, "vic")
	laptopID := sessionIDOf(t, laptop)
	r := c.do("GET", "/settings/security", "")
	if !strings.Contains(r.Body.String(), "Firefox on Linux") || !strings.Contains(r.Body.String(), "(this device)") {
		t.Errorf("sessions list: %s", r.Body)
	}
	// Another person's session id is answered like an ended one, and
	// stays signed in.
	if r := stranger.form("/settings/security/sessions/"+laptopID+"/revoke", url.Values{}); r.Code != http.StatusSeeOther || !strings.Contains(location(r), "session-gone") {
		t.Errorf("stranger revoke: %d %q", r.Code, location(r))
	}
	if r := laptop.do("GET", "/settings/profile", ""); r.Code != 200 {
		t.Fatalf("laptop after a stranger's revoke: %d", r.Code)
	}
	for i, want := range []string{"session-revoked", "session-gone"} { // twice: the second is harmless
		if r := c.form("/settings/security/sessions/"+laptopID+"/revoke", url.Values{}); r.Code != http.StatusSeeOther || !strings.Contains(location(r), want) {
			t.Errorf("revoke #%d: %d %q", i+1, r.Code, location(r))
		}
	}
	if r := laptop.do("GET", "/settings/profile", ""); r.Code != http.StatusSeeOther {
		t.Errorf("laptop after revoke: %d, want signed out", r.Code)
	}
	phone := env.login(t, "ula")
	if r := c.form("/settings/security/sessions/revoke-others", url.Values{}); r.Code != http.StatusSeeOther {
		t.Fatalf("revoke others: %d", r.Code)
	}
	if r := phone.do("GET", "/settings/profile", ""); r.Code != http.StatusSeeOther {
		t.Errorf("phone after revoke-others: %d", r.Code)
	}
	if r := c.do("GET", "/settings/profile", ""); r.Code != 200 {
		t.Errorf("this device after revoke-others: %d", r.Code)
	}
}

var newKeyRe = regexp.MustCompile(`id="new-key">(zik_[^<]+)<`)

func TestAPIKeyFormShowsTheKeyOnce(t *testing.T) {
	env := newAuthEnv(t, authOptionsForTest(), Options{})
	env.signup(t, "first") // the first account is the admin
	c := env.signup(t, "wes")
	r := c.form("/settings/api-keys", url.Values{"name": {""}, "scope": {"read"}})
	if r.Code != 400 || !fieldMarked(r.Body.String(), "name") || !strings.Contains(r.Body.String(), `value="read" checked`) {
		t.Errorf("empty name: %d %s", r.Code, r.Body)
	}
	if r := c.form("/settings/api-keys", url.Values{"name": {"box"}}); r.Code != 400 || !strings.Contains(r.Body.String(), `id="scopes-error"`) {
		t.Errorf("no scope: %d %s", r.Code, r.Body)
	}
	if r := c.form("/settings/api-keys", url.Values{"name": {"box"}, "scope": {"admin"}}); r.Code != 400 || !strings.Contains(r.Body.String(), "Only admins") {
		t.Errorf("admin scope for a user: %d %s", r.Code, r.Body)
	}
	r = c.form("/settings/api-keys", url.Values{"name": {"laptop script"}, "scope": {"read"}})
	m := newKeyRe.FindStringSubmatch(r.Body.String())
	if r.Code != http.StatusCreated || m == nil || r.Header().Get("Cache-Control") != "no-store" {
		t.Fatalf("create: %d %s", r.Code, r.Body)
	}
	key := m[1]
	if !strings.Contains(r.Body.String(), `data-copy="`+key+`"`) {
		t.Error("no copy button for the key")
	}
	script := &client{env: env, bearer: key, ip: c.ip}
	if r := script.do("GET", "/api/v1/me", ""); r.Code != 200 {
		t.Fatalf("the new key does not work: %d", r.Code)
	}
	list := c.do("GET", "/settings/api-keys", "")
	if strings.Contains(list.Body.String(), key) || !strings.Contains(list.Body.String(), "laptop script") {
		t.Errorf("the list shows the key again, or not its name: %s", list.Body)
	}
	keyID := regexp.MustCompile(`/settings/api-keys/([0-9A-Z]+)/revoke`).FindStringSubmatch(list.Body.String())[1]
	// Another person cannot revoke it, and learns nothing from trying.
	if r := env.signup(t, "xan").form("/settings/api-keys/"+keyID+"/revoke", url.Values{}); r.Code != http.StatusSeeOther || !strings.Contains(location(r), "key-gone") {
		t.Errorf("stranger revoke: %d %q", r.Code, location(r))
	}
	if r := script.do("GET", "/api/v1/me", ""); r.Code != 200 {
		t.Fatalf("the key stopped working after a stranger's revoke: %d", r.Code)
	}
	for i, want := range []string{"key-revoked", "key-gone"} {
		if r := c.form("/settings/api-keys/"+keyID+"/revoke", url.Values{}); r.Code != http.StatusSeeOther || !strings.Contains(location(r), want) {
			t.Errorf("revoke #%d: %d %q", i+1, r.Code, location(r))
		}
	}
	if r := script.do("GET", "/api/v1/me", ""); r.Code != 401 {
		t.Errorf("revoked key: %d", r.Code)
	}
	if r := c.do("GET", "/settings/api-keys?done=key-gone", ""); !strings.Contains(r.Body.String(), "already revoked") {
		t.Error("no message after the second revoke")
	}
}

func TestAdminPages(t *testing.T) {
	env := newAuthEnv(t, authOptionsForTest(), Options{})
	admin := env.signup(t, "root")
	user := env.signup(t, "yara")
	for _, path := range []string{"/admin/users", "/admin/backends", "/admin/audit"} {
		t.Run(path, func(t *testing.T) {
			if r := admin.do("GET", path, ""); r.Code != 200 || !strings.Contains(r.Body.String(), `href="/admin" aria-current="page"`) {
				t.Errorf("admin: %d %s", r.Code, r.Body)
			}
			r := user.do("GET", path, "")
			if r.Code != http.StatusForbidden || !strings.Contains(r.Body.String(), "Not allowed") || !strings.Contains(r.Body.String(), "for the administrators") {
				t.Errorf("user: %d %s", r.Code, r.Body)
			}
			if r := env.anon().do("GET", path, ""); r.Code != http.StatusSeeOther || location(r) != "/login?next="+url.QueryEscape(path) {
				t.Errorf("anonymous: %d %q", r.Code, location(r))
			}
		})
	}
	if r := admin.do("GET", "/admin/backends", ""); !strings.Contains(r.Body.String(), "No AI model") || !strings.Contains(r.Body.String(), "builtin") {
		t.Errorf("backends page: %s", r.Body)
	} else if body := r.Body.String(); !strings.Contains(body, "healthy") || strings.Contains(body, "not checked yet") {
		// A backend that passed its check has no "not checked yet" beside it.
		t.Errorf("backends page shows a healthy backend as not checked yet: %s", body)
	}
	if r := admin.do("GET", "/admin/audit", ""); !strings.Contains(r.Body.String(), "signup") {
		t.Errorf("audit page lacks the sign-ups: %s", r.Body)
	}
	if r := admin.do("GET", "/admin/users", ""); !strings.Contains(r.Body.String(), "yara") || strings.Contains(r.Body.String(), "yara@example.com") {
		t.Errorf("users page: names missing, or personal data shown: %s", r.Body)
	}
	if r := user.do("GET", "/settings/profile", ""); strings.Contains(r.Body.String(), `href="/admin"`) {
		t.Error("the nav shows Admin to a user")
	}

	t.Run("reset link shown once and usable", func(t *testing.T) {
		r := admin.form("/admin/users/"+user.userID+"/reset-link", url.Values{})
		m := regexp.MustCompile(`id="one-time-link">[^<]*(/reset\?token=[^<]+)<`).FindStringSubmatch(r.Body.String())
		if r.Code != http.StatusCreated || m == nil {
			t.Fatalf("reset link: %d %s", r.Code, r.Body)
		}
		link := html.UnescapeString(m[1])
		if r := admin.do("GET", "/admin/users", ""); strings.Contains(r.Body.String(), "token=") {
			t.Error("the link is shown again")
		}
		anon := env.anon()
		if r := anon.do("GET", link, ""); r.Code != 200 || !strings.Contains(r.Body.String(), `name="token"`) {
			t.Fatalf("reset page: %d %s", r.Code, r.Body)
		}
		token := strings.TrimPrefix(link, "/reset?token=")
		token, _ = url.QueryUnescape(token)
		r = anon.form("/reset", url.Values{"token": {token}, "password": {"amber tide willow crane"}, "password_confirm": {"amber tide willow"}})
		if r.Code != 400 || !fieldMarked(r.Body.String(), "password_confirm") {
			t.Errorf("mismatch: %d %s", r.Code, r.Body)
		}
		r = anon.form("/reset", url.Values{"token": {token}, "password": {"amber tide willow crane"}, "password_confirm": {"amber tide willow crane"}})
		if r.Code != http.StatusSeeOther || !strings.HasPrefix(location(r), "/login?done=password-reset") {
			t.Fatalf("reset: %d %q %s", r.Code, location(r), r.Body)
		}
		if r := user.do("GET", "/settings/profile", ""); r.Code != http.StatusSeeOther {
			t.Errorf("old session after reset: %d", r.Code)
		}
		r = anon.form("/login", url.Values{"login": {"yara"}, "password": {"amber tide willow crane"}})
		if r.Code != http.StatusSeeOther {
			t.Errorf("login with the new password: %d %s", r.Code, r.Body)
		}
		r = anon.form("/reset", url.Values{"token": {token}, "password": {"amber tide willow crane"}, "password_confirm": {"amber tide willow crane"}})
		if r.Code < 400 || r.Code >= 500 || !strings.Contains(r.Body.String(), `class="banner error"`) {
			t.Errorf("reused link: %d %s", r.Code, r.Body)
		}
	})
	t.Run("invite link, sign-up mode, role, disable", func(t *testing.T) {
		if r := admin.form("/admin/signup-mode", url.Values{"mode": {"sometimes"}}); r.Code != 400 {
			t.Errorf("bad mode: %d", r.Code)
		}
		if r := admin.form("/admin/signup-mode", url.Values{"mode": {"invite"}}); r.Code != http.StatusSeeOther {
			t.Fatalf("mode: %d %s", r.Code, r.Body)
		}
		if r := env.anon().form("/signup", signupForm("zed@example.com", "zed", testPassword)); r.Code != http.StatusForbidden {
			t.Errorf("sign-up without invite in invite mode: %d", r.Code)
		}
		r := admin.form("/admin/invites", url.Values{})
		m := regexp.MustCompile(`/signup\?invite=(zin_[^<"]+)<`).FindStringSubmatch(r.Body.String())
		if r.Code != http.StatusCreated || m == nil {
			t.Fatalf("invite: %d %s", r.Code, r.Body)
		}
		inv, _ := url.QueryUnescape(m[1])
		if r := env.anon().do("GET", "/signup?invite="+url.QueryEscape(inv), ""); !strings.Contains(r.Body.String(), `value="`+inv+`"`) {
			t.Error("the invite link does not fill the form")
		}
		vals := signupForm("zed@example.com", "zed", testPassword)
		vals.Set("invite", inv)
		if r := env.anon().form("/signup", vals); r.Code != http.StatusSeeOther {
			t.Fatalf("sign-up with invite: %d %s", r.Code, r.Body)
		}
		zed, err := env.auth.UserByLogin(t.Context(), "zed")
		if err != nil {
			t.Fatal(err)
		}
		if r := admin.form("/admin/users/"+zed.ID+"/role", url.Values{"role": {"emperor"}}); r.Code != 400 || !strings.Contains(r.Body.String(), "Role must be") {
			t.Errorf("bad role: %d %s", r.Code, r.Body)
		}
		if r := admin.form("/admin/users/"+zed.ID+"/role", url.Values{"role": {"support"}}); r.Code != http.StatusSeeOther {
			t.Errorf("role: %d %s", r.Code, r.Body)
		}
		if r := admin.form("/admin/users/"+admin.userID+"/role", url.Values{"role": {"user"}}); r.Code != http.StatusConflict || !strings.Contains(r.Body.String(), "last admin") {
			t.Errorf("demoting the last admin: %d %s", r.Code, r.Body)
		}
		for i := 0; i < 2; i++ { // a double submit disables once and answers the same
			if r := admin.form("/admin/users/"+zed.ID+"/status", url.Values{"disabled": {"1"}}); r.Code != http.StatusSeeOther {
				t.Errorf("disable #%d: %d %s", i+1, r.Code, r.Body)
			}
		}
		if r := env.anon().form("/login", url.Values{"login": {"zed"}, "password": {testPassword}}); r.Code != 401 || !strings.Contains(r.Body.String(), "disabled") {
			t.Errorf("disabled login: %d %s", r.Code, r.Body)
		}
		if r := admin.form("/admin/users/"+zed.ID+"/status", url.Values{"disabled": {"0"}}); r.Code != http.StatusSeeOther {
			t.Errorf("enable: %d", r.Code)
		}
		if r := admin.form("/admin/users/"+zed.ID+"/status", url.Values{"disabled": {"maybe"}}); r.Code != 400 {
			t.Errorf("wrong-type disabled: %d", r.Code)
		}
	})
}

func TestAdminPagesRequireTwoFactorWhenConfigured(t *testing.T) {
	opts := authOptionsForTest()
	opts.RequireAdmin2FA = true
	env := newAuthEnv(t, opts, Options{})
	admin := env.signup(t, "root")
	r := admin.do("GET", "/admin/users", "")
	if r.Code != http.StatusForbidden || !strings.Contains(r.Body.String(), "/settings/security") {
		t.Fatalf("admin without 2FA: %d %s", r.Code, r.Body)
	}
	enable2FAByPages(t, env, admin)
	if r := admin.do("GET", "/admin/users", ""); r.Code != 200 {
		t.Errorf("admin with 2FA: %d %s", r.Code, r.Body)
	}
}

func TestSupportPage(t *testing.T) {
	env := newAuthEnv(t, authOptionsForTest(), Options{})
	for _, c := range []*client{env.anon(), env.signup(t, "amy")} {
		r := c.do("GET", "/support", "")
		if r.Code != 200 || !strings.Contains(r.Body.String(), "administrator") {
			t.Errorf("support: %d %s", r.Code, r.Body)
		}
	}
}
