package web

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"zimage/app"
	"zimage/app/auth"
)

func TestSignupValidation(t *testing.T) {
	env := newAuthEnv(t, authOptionsForTest(), Options{})
	env.signup(t, "alice")
	body := func(email, username, password string, age bool) string {
		b, _ := json.Marshal(map[string]any{"email": email, "username": username, "password": password, "age_confirmed": age})
		return string(b)
	}
	tests := []struct {
		name      string
		body      string
		wantCode  int
		wantField string
	}{
		{"ok", body("bob@example.com", "bob", testPassword, true), 201, ""},
		{"empty email", body("", "carol", testPassword, true), 400, "email"},
		{"invalid email", body("carol.example.com", "carol", testPassword, true), 400, "email"},
		{"over-long email", body(strings.Repeat("a", 250)+"@example.com", "carol", testPassword, true), 400, "email"},
		{"empty username", body("carol@example.com", "", testPassword, true), 400, "username"},
		{"over-long username", body("carol@example.com", strings.Repeat("c", 40), testPassword, true), 400, "username"},
		{"look-alike username", body("carol@example.com", "аlice", testPassword, true), 400, "username"}, // Cyrillic а
		{"duplicate username in other case", body("carol@example.com", "ALICE", testPassword, true), 409, "username"},
		{"duplicate email in other case", body("Alice@Example.COM", "carol", testPassword, true), 409, "email"},
		{"weak password", body("carol@example.com", "carol", "password123", true), 400, "password"},
		{"empty password", body("carol@example.com", "carol", "", true), 400, "password"},
		{"password contains username", body("carol@example.com", "carolyn", "carolyn-secret-words", true), 400, "password"},
		{"age not confirmed", body("carol@example.com", "carol", testPassword, false), 400, "age_confirmed"},
		{"malformed json", `{"email":`, 400, ""},
		{"unknown field", `{"email":"a@b.co","birthdate":"2010-01-01"}`, 400, "birthdate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := env.anon().do("POST", "/api/v1/auth/signup", tt.body)
			if r.Code != tt.wantCode {
				t.Fatalf("status = %d, want %d: %s", r.Code, tt.wantCode, r.Body)
			}
			if tt.wantField != "" {
				var e apiError
				json.Unmarshal(r.Body.Bytes(), &e)
				if e.Error.Fields[tt.wantField] == "" || e.Error.Message == "" {
					t.Errorf("no message for field %q: %s", tt.wantField, r.Body)
				}
			}
		})
	}
}

func TestFirstAccountIsAdminAndSignupModes(t *testing.T) {
	env := newAuthEnv(t, authOptionsForTest(), Options{})
	first, second := env.signup(t, "first"), env.signup(t, "second")
	if role := first.do("GET", "/api/v1/me", "").json(t)["role"]; role != "admin" {
		t.Errorf("first account role = %v, want admin", role)
	}
	if role := second.do("GET", "/api/v1/me", "").json(t)["role"]; role != "user" {
		t.Errorf("second account role = %v, want user", role)
	}
	if r := first.do("PUT", "/api/v1/admin/settings/signup", `{"mode":"invite"}`); r.Code != 200 {
		t.Fatalf("set mode: %d %s", r.Code, r.Body)
	}
	if r := env.anon().do("POST", "/api/v1/auth/signup", signupBody("x@example.com", "xavier")); r.Code != 403 {
		t.Errorf("signup without invite: %d, want 403", r.Code)
	}
	inv := first.do("POST", "/api/v1/admin/invites", "").json(t)["invite"].(string)
	withInvite := func(u string) string {
		return strings.Replace(signupBody(u+"@example.com", u), "{", `{"invite":"`+inv+`",`, 1)
	}
	if r := env.anon().do("POST", "/api/v1/auth/signup", withInvite("xavier")); r.Code != 201 {
		t.Errorf("signup with invite: %d %s", r.Code, r.Body)
	}
	if r := env.anon().do("POST", "/api/v1/auth/signup", withInvite("yvonne")); r.Code != 400 {
		t.Errorf("invite used twice: %d, want 400", r.Code)
	}
	first.do("PUT", "/api/v1/admin/settings/signup", `{"mode":"closed"}`)
	if r := env.anon().do("POST", "/api/v1/auth/signup", signupBody("z@example.com", "zoe")); r.Code != 403 {
		t.Errorf("closed signup: %d, want 403", r.Code)
	}
	if r := first.do("POST", "/api/v1/admin/users", `{"email":"z@example.com","username":"zoe","age_confirmed":true}`); r.Code != 201 || r.json(t)["password"] == "" {
		t.Errorf("admin create while closed: %d %s", r.Code, r.Body)
	}
}

func TestLoginMessagesAndCookie(t *testing.T) {
	env := newAuthEnv(t, authOptionsForTest(), Options{BaseURL: "https://images.example.com"})
	env.signup(t, "alice")
	login := func(login, pw string) response {
		b, _ := json.Marshal(map[string]string{"login": login, "password": pw})
		return env.anon().do("POST", "/api/v1/auth/login", string(b))
	}
	for _, l := range []string{"alice", "ALICE", "alice@example.com", "Alice@Example.com"} {
		r := login(l, testPassword)
		if r.Code != 200 {
			t.Fatalf("login %q: %d %s", l, r.Code, r.Body)
		}
		ck := r.Result().Cookies()[0]
		if ck.Name != SessionCookie || !ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode || !ck.Secure || ck.Path != "/" {
			t.Errorf("cookie flags: %+v", ck)
		}
		if !strings.HasPrefix(ck.Value, auth.SessionTokenPrefix) || r.json(t)["csrf_token"] == "" {
			t.Errorf("token %q / body %s", ck.Value, r.Body)
		}
	}
	unknown, wrong := login("nobody", testPassword), login("alice", "wrong password here")
	if unknown.Code != 401 || wrong.Code != 401 {
		t.Fatalf("statuses %d %d, want 401", unknown.Code, wrong.Code)
	}
	var a, b apiError
	json.Unmarshal(unknown.Body.Bytes(), &a)
	json.Unmarshal(wrong.Body.Bytes(), &b)
	if a.Error.Message != b.Error.Message || a.Error.Code != b.Error.Code {
		t.Errorf("unknown user and wrong password differ: %q vs %q", a.Error.Message, b.Error.Message)
	}
	if r := login("", ""); r.Code != 400 {
		t.Errorf("empty login: %d", r.Code)
	}
	// Without TLS or an https base URL the cookie is not Secure, so
	// plain-HTTP localhost installs can sign in.
	plain := newAuthEnv(t, authOptionsForTest(), Options{})
	plain.signup(t, "bob")
	r := plain.anon().do("POST", "/api/v1/auth/login", `{"login":"bob","password":"`+testPassword+`"}`)
	if ck := r.Result().Cookies()[0]; ck.Secure {
		t.Errorf("plain http cookie is Secure")
	}
}

func TestLoginThrottle(t *testing.T) {
	env := newAuthEnv(t, authOptionsForTest(), Options{})
	env.signup(t, "alice")
	var last response
	for i := 0; i < 6; i++ {
		last = env.anon().do("POST", "/api/v1/auth/login", `{"login":"alice","password":"wrong password again"}`)
	}
	if last.Code != 429 {
		t.Fatalf("6th failure: %d, want 429: %s", last.Code, last.Body)
	}
	secs, err := strconv.Atoi(last.Header().Get("Retry-After"))
	if err != nil || secs < 1 {
		t.Errorf("Retry-After = %q", last.Header().Get("Retry-After"))
	}
	// Even the right password waits, until the delay is over.
	if r := env.anon().do("POST", "/api/v1/auth/login", `{"login":"alice","password":"`+testPassword+`"}`); r.Code != 429 {
		t.Errorf("right password while throttled: %d", r.Code)
	}
	// An unknown account is throttled the same way: no existence leak.
	for i := 0; i < 6; i++ {
		last = env.anon().do("POST", "/api/v1/auth/login", `{"login":"ghost","password":"wrong password again"}`)
	}
	if last.Code != 429 {
		t.Errorf("unknown account not throttled: %d", last.Code)
	}
	entries, _ := env.auth.Audit(t.Context(), 0, "", 1000)
	lockouts := 0
	for _, e := range entries {
		if e.Action == app.AuditLockout {
			lockouts++
		}
		if strings.Contains(e.Detail, "ghost") || strings.Contains(e.Detail, "alice") {
			t.Errorf("audit entry holds a login name: %+v", e)
		}
	}
	if lockouts < 2 {
		t.Errorf("lockouts recorded = %d, want 2", lockouts)
	}
	env.clock.Advance(time.Duration(secs+1) * time.Second)
	if r := env.anon().do("POST", "/api/v1/auth/login", `{"login":"alice","password":"`+testPassword+`"}`); r.Code != 200 {
		t.Errorf("after the delay: %d %s", r.Code, r.Body)
	}
}

func TestSessionExpiryAndLogout(t *testing.T) {
	env := newAuthEnv(t, authOptionsForTest(), Options{}) // idle 1h, absolute 24h
	c := env.signup(t, "alice")
	for i := 0; i < 30; i++ { // active every 50 min: idle never hits
		env.clock.Advance(50 * time.Minute)
		if r := c.do("GET", "/api/v1/me", ""); r.Code != 200 {
			t.Fatalf("after %d×50min: %d", i+1, r.Code)
		}
		if i == 27 {
			break // 23h20m
		}
	}
	env.clock.Advance(50 * time.Minute) // past 24h absolute
	if r := c.do("GET", "/api/v1/me", ""); r.Code != 401 {
		t.Errorf("past absolute expiry: %d", r.Code)
	}
	c = env.login(t, "alice")
	env.clock.Advance(61 * time.Minute)
	if r := c.do("GET", "/api/v1/me", ""); r.Code != 401 {
		t.Errorf("past idle expiry: %d", r.Code)
	}
	c = env.login(t, "alice")
	stolen := *c
	if r := c.do("POST", "/api/v1/auth/logout", ""); r.Code != 204 {
		t.Fatalf("logout: %d %s", r.Code, r.Body)
	}
	if r := stolen.do("GET", "/api/v1/me", ""); r.Code != 401 || r.errCode(t) != "unauthorized" {
		t.Errorf("token after logout: %d", r.Code)
	}
	// A login replaces the token the browser held (session fixation).
	old := env.login(t, "alice")
	fresh := *old
	r := fresh.do("POST", "/api/v1/auth/login", `{"login":"alice","password":"`+testPassword+`"}`)
	fresh.take(t, r)
	if fresh.cookie == old.cookie {
		t.Fatal("login kept the old token")
	}
	if r := old.do("GET", "/api/v1/me", ""); r.Code != 401 {
		t.Errorf("replaced token still works: %d", r.Code)
	}
}

func TestCSRF(t *testing.T) {
	env := newAuthEnv(t, authOptionsForTest(), Options{})
	c := env.signup(t, "alice")
	tests := []struct {
		name string
		csrf string
		hdr  []string
		want int
	}{
		{"valid token", c.csrf, nil, 200},
		{"missing token", "", nil, 403},
		{"wrong token", auth.CSRFToken([]byte("zis_another session")), nil, 403},
		{"garbage token", "not-a-token", nil, 403},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cl := *c
			cl.csrf = tt.csrf
			r := cl.do("PATCH", "/api/v1/me", `{"display_name":"A"}`, tt.hdr...)
			if r.Code != tt.want {
				t.Fatalf("status %d, want %d: %s", r.Code, tt.want, r.Body)
			}
			if tt.want == 403 && !strings.Contains(r.Body.String(), "CSRF") {
				t.Errorf("message does not say what is wrong: %s", r.Body)
			}
		})
	}
	// A bearer key needs no CSRF token (alice, the first account, is admin).
	key, _ := c.apiKey(t, "admin")
	if r := key.do("POST", "/api/v1/admin/invites", ""); r.Code != 201 {
		t.Errorf("bearer post without CSRF token: %d %s", r.Code, r.Body)
	}
	// Cross-site unauthenticated posts (login CSRF) are refused.
	for _, h := range [][]string{{"Sec-Fetch-Site", "cross-site"}, {"Origin", "https://evil.example"}, {"Origin", "null"}} {
		r := env.anon().do("POST", "/api/v1/auth/login", `{"login":"alice","password":"`+testPassword+`"}`, h...)
		if r.Code != 403 {
			t.Errorf("%v: %d, want 403", h, r.Code)
		}
	}
	if r := env.anon().do("POST", "/api/v1/auth/login", `{"login":"alice","password":"`+testPassword+`"}`, "Sec-Fetch-Site", "same-origin"); r.Code != 200 {
		t.Errorf("same-origin login: %d", r.Code)
	}
}

func TestAPIKeys(t *testing.T) {
	env := newAuthEnv(t, authOptionsForTest(), Options{})
	adm := env.signup(t, "admin")
	user := env.signup(t, "alice")
	readKey, readID := user.apiKey(t, "read")
	genKey, _ := user.apiKey(t, "generate")
	admKey, _ := adm.apiKey(t, "admin", "read")
	admReadKey, _ := adm.apiKey(t, "read")
	tests := []struct {
		name   string
		c      *client
		method string
		path   string
		want   int
	}{
		{"read key reads me", readKey, "GET", "/api/v1/me", 200},
		{"generate key cannot read me", genKey, "GET", "/api/v1/me", 403},
		{"key cannot change password", readKey, "POST", "/api/v1/me/password", 403},
		{"key cannot list keys", readKey, "GET", "/api/v1/me/api-keys", 403},
		{"user key on admin route", readKey, "GET", "/api/v1/admin/users", 403},
		{"admin key on admin route", admKey, "GET", "/api/v1/admin/users", 200},
		{"admin's read key on admin route", admReadKey, "GET", "/api/v1/admin/users", 403},
		{"malformed key", &client{env: env, bearer: "zik_short"}, "GET", "/api/v1/me", 401},
		{"session token as bearer", &client{env: env, bearer: user.cookie}, "GET", "/api/v1/me", 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := ""
			if tt.method == "POST" {
				body = `{"current_password":"x","new_password":"y"}`
			}
			if r := tt.c.do(tt.method, tt.path, body); r.Code != tt.want {
				t.Errorf("status %d, want %d: %s", r.Code, tt.want, r.Body)
			}
		})
	}
	if r := user.do("POST", "/api/v1/me/api-keys", `{"name":"x","scopes":["admin"]}`); r.Code != 400 {
		t.Errorf("user made an admin key: %d", r.Code)
	}
	list := user.do("GET", "/api/v1/me/api-keys", "").json(t)["api_keys"].([]any)
	for _, k := range list {
		if m := k.(map[string]any); m["key"] != nil || !strings.HasPrefix(m["prefix"].(string), "zik_") {
			t.Errorf("listed key shows its secret or lacks a prefix: %v", m)
		}
	}
	if r := user.do("DELETE", "/api/v1/me/api-keys/"+readID, ""); r.Code != 204 {
		t.Fatalf("revoke: %d", r.Code)
	}
	r := readKey.do("GET", "/api/v1/me", "")
	if r.Code != 401 || !strings.Contains(r.Body.String(), "revoked") {
		t.Errorf("revoked key: %d %s", r.Code, r.Body)
	}
}

// code returns the TOTP code for secret at the env's time plus offset.
func code(t *testing.T, env *authEnv, secret string, offset time.Duration) string {
	t.Helper()
	c, err := totp.GenerateCode(secret, env.clock.Now().Add(offset))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestTwoFactor(t *testing.T) {
	env := newAuthEnv(t, authOptionsForTest(), Options{})
	c := env.signup(t, "alice")
	start := c.do("POST", "/api/v1/me/2fa", "").json(t)
	secret := start["secret"].(string)
	if !strings.HasPrefix(start["otpauth_url"].(string), "otpauth://totp/") {
		t.Errorf("otpauth url: %v", start)
	}
	qr := c.do("GET", "/api/v1/me/2fa/qr.png", "")
	if qr.Code != 200 || qr.Header().Get("Content-Type") != "image/png" || !strings.HasPrefix(qr.Body.String(), "\x89PNG") {
		t.Fatalf("qr: %d %s", qr.Code, qr.Header())
	}
	if r := c.do("POST", "/api/v1/me/2fa/confirm", `{"code":"123456"}`); r.Code != 400 {
		t.Errorf("wrong confirm code: %d", r.Code)
	}
	conf := c.do("POST", "/api/v1/me/2fa/confirm", `{"code":"`+code(t, env, secret, 0)+`"}`)
	if conf.Code != 200 {
		t.Fatalf("confirm: %d %s", conf.Code, conf.Body)
	}
	codes := conf.json(t)["recovery_codes"].([]any)
	if len(codes) != 10 {
		t.Fatalf("recovery codes: %d", len(codes))
	}
	if r := c.do("GET", "/api/v1/me/2fa/qr.png", ""); r.Code != 409 {
		t.Errorf("qr after enabling: %d, want 409", r.Code)
	}
	login := func(extra string) response {
		return env.anon().do("POST", "/api/v1/auth/login", `{"login":"alice","password":"`+testPassword+`"`+extra+`}`)
	}
	r := login("")
	if r.Code != 401 || !strings.Contains(r.Body.String(), "totp_code") {
		t.Errorf("no code: %d %s", r.Code, r.Body)
	}
	// The confirm code's step is used: the next login needs a later step.
	env.clock.Advance(30 * time.Second)
	now := code(t, env, secret, 0)
	if r := login(`,"totp_code":"` + now + `"`); r.Code != 200 {
		t.Fatalf("login with code: %d %s", r.Code, r.Body)
	}
	if r := login(`,"totp_code":"` + now + `"`); r.Code != 401 || !strings.Contains(r.Body.String(), "already used") {
		t.Errorf("reused code: %d %s", r.Code, r.Body)
	}
	rc := codes[0].(string)
	if r := login(`,"recovery_code":"` + rc + `"`); r.Code != 200 {
		t.Fatalf("recovery code: %d %s", r.Code, r.Body)
	}
	if r := login(`,"recovery_code":"` + rc + `"`); r.Code != 401 {
		t.Errorf("recovery code twice: %d", r.Code)
	}
	env.clock.Advance(30 * time.Second)
	if r := c.do("DELETE", "/api/v1/me/2fa", `{"password":"`+testPassword+`","code":""}`); r.Code != 400 {
		t.Errorf("disable without code: %d", r.Code)
	}
	if r := c.do("DELETE", "/api/v1/me/2fa", `{"password":"wrong password here","code":"`+code(t, env, secret, 0)+`"}`); r.Code != 403 {
		t.Errorf("disable with wrong password: %d", r.Code)
	}
	if r := c.do("DELETE", "/api/v1/me/2fa", `{"password":"`+testPassword+`","code":"`+code(t, env, secret, 0)+`"}`); r.Code != 204 {
		t.Fatalf("disable: %d %s", r.Code, r.Body)
	}
	if r := login(""); r.Code != 200 {
		t.Errorf("login after disabling: %d", r.Code)
	}
}

func TestRequireAdmin2FA(t *testing.T) {
	opts := authOptionsForTest()
	opts.RequireAdmin2FA = true
	env := newAuthEnv(t, opts, Options{})
	adm := env.signup(t, "admin")
	if r := adm.do("GET", "/api/v1/admin/users", ""); r.Code != 403 || !strings.Contains(r.Body.String(), "two-factor") {
		t.Fatalf("admin without 2fa: %d %s", r.Code, r.Body)
	}
	secret := adm.do("POST", "/api/v1/me/2fa", "").json(t)["secret"].(string)
	adm.do("POST", "/api/v1/me/2fa/confirm", `{"code":"`+code(t, env, secret, 0)+`"}`)
	if r := adm.do("GET", "/api/v1/admin/users", ""); r.Code != 200 {
		t.Errorf("admin with 2fa: %d %s", r.Code, r.Body)
	}
}

func TestPasswordChangeAndRoleChangeEndSessions(t *testing.T) {
	env := newAuthEnv(t, authOptionsForTest(), Options{})
	adm := env.signup(t, "admin")
	a1 := env.signup(t, "alice")
	a2 := env.login(t, "alice")
	if r := a1.do("POST", "/api/v1/me/password", `{"current_password":"wrong password here","new_password":"velvet lantern orbit meadow"}`); r.Code != 403 {
		t.Errorf("wrong current password: %d", r.Code)
	}
	if r := a1.do("POST", "/api/v1/me/password", `{"current_password":"`+testPassword+`","new_password":"password1"}`); r.Code != 400 {
		t.Errorf("weak new password: %d", r.Code)
	}
	if r := a1.do("POST", "/api/v1/me/password", `{"current_password":"`+testPassword+`","new_password":"velvet lantern orbit meadow"}`); r.Code != 200 {
		t.Fatalf("change: %d %s", r.Code, r.Body)
	}
	if r := a1.do("GET", "/api/v1/me", ""); r.Code != 200 {
		t.Errorf("the changing session ended: %d", r.Code)
	}
	if r := a2.do("GET", "/api/v1/me", ""); r.Code != 401 {
		t.Errorf("other session survived a password change: %d", r.Code)
	}
	if r := adm.do("PATCH", "/api/v1/admin/users/"+a1.userID, `{"role":"support"}`); r.Code != 200 {
		t.Fatalf("role change: %d %s", r.Code, r.Body)
	}
	if r := a1.do("GET", "/api/v1/me", ""); r.Code != 401 {
		t.Errorf("session survived a role change: %d", r.Code)
	}
	if r := adm.do("PATCH", "/api/v1/admin/users/"+adm.userID, `{"role":"user"}`); r.Code != 409 {
		t.Errorf("demoting the last admin: %d", r.Code)
	}
	// Reset link: one time, then the old sessions are gone.
	a3 := env.anon()
	a3.take(t, a3.do("POST", "/api/v1/auth/login", `{"login":"alice","password":"velvet lantern orbit meadow"}`))
	link := adm.do("POST", "/api/v1/admin/users/"+a1.userID+"/reset-link", "").json(t)
	tok := link["token"].(string)
	if !strings.HasPrefix(link["path"].(string), "/reset?token=") {
		t.Errorf("path: %v", link)
	}
	reset := fmt.Sprintf(`{"token":%q,"password":"amber quartz river candle"}`, tok)
	if r := env.anon().do("POST", "/api/v1/auth/reset", reset); r.Code != 200 {
		t.Fatalf("reset: %d %s", r.Code, r.Body)
	}
	if r := env.anon().do("POST", "/api/v1/auth/reset", reset); r.Code != 400 {
		t.Errorf("reset token reused: %d", r.Code)
	}
	if r := a3.do("GET", "/api/v1/me", ""); r.Code != 401 {
		t.Errorf("session survived a reset: %d", r.Code)
	}
}

func TestAccessGrantIsShownToThePerson(t *testing.T) {
	env := newAuthEnv(t, authOptionsForTest(), Options{})
	adm := env.signup(t, "admin")
	alice := env.signup(t, "alice")
	profile := "/api/v1/admin/users/" + alice.userID + "/profile"
	if r := adm.do("GET", profile, ""); r.Code != 403 || !strings.Contains(r.Body.String(), "reason") {
		t.Fatalf("profile without a reason: %d %s", r.Code, r.Body)
	}
	if r := adm.do("POST", "/api/v1/admin/users/"+alice.userID+"/access", `{"reason":"short"}`); r.Code != 400 {
		t.Errorf("short reason: %d", r.Code)
	}
	reason := "Ticket 17: she asked why her images vanished"
	if r := adm.do("POST", "/api/v1/admin/users/"+alice.userID+"/access", `{"reason":"`+reason+`"}`); r.Code != 201 {
		t.Fatalf("grant: %d %s", r.Code, r.Body)
	}
	r := adm.do("GET", profile, "")
	if r.Code != 200 || r.json(t)["email"] != "alice@example.com" {
		t.Fatalf("profile with grant: %d %s", r.Code, r.Body)
	}
	log := alice.do("GET", "/api/v1/me/access-log", "").json(t)["access_log"].([]any)
	if len(log) != 1 || log[0].(map[string]any)["reason"] != reason || log[0].(map[string]any)["admin_id"] != adm.userID {
		t.Errorf("access log: %v", log)
	}
	env.clock.Advance(auth.AccessGrantTTL + time.Second)
	if r := adm.do("GET", profile, ""); r.Code != 403 && r.Code != 401 {
		t.Errorf("profile after the grant expired: %d", r.Code)
	}
	entries, _ := env.auth.Audit(t.Context(), 0, alice.userID, 100)
	found := false
	for _, e := range entries {
		found = found || (e.Action == app.AuditAdminAccess && e.ActorID == adm.userID)
		if strings.Contains(e.Detail, "Ticket") || strings.Contains(e.Detail, "alice") {
			t.Errorf("audit entry holds personal data: %+v", e)
		}
	}
	if !found {
		t.Error("no admin.access audit entry")
	}
	if n, err := env.db.VerifyAudit(t.Context()); err != nil || n == 0 {
		t.Errorf("audit chain: %d, %v", n, err)
	}
}

func TestSessionsListAndRevoke(t *testing.T) {
	env := newAuthEnv(t, authOptionsForTest(), Options{})
	a := env.signup(t, "alice")
	b := env.login(t, "alice")
	c := env.login(t, "alice")
	list := a.do("GET", "/api/v1/me/sessions", "").json(t)["sessions"].([]any)
	if len(list) != 3 {
		t.Fatalf("sessions: %d", len(list))
	}
	m := list[0].(map[string]any)
	if m["device"] != "Firefox on Linux" || m["approximate_place"] != "192.0.2.0/24" {
		t.Errorf("session row: %v", m)
	}
	if r := a.do("DELETE", "/api/v1/me/sessions/"+sessionIDOf(t, b), ""); r.Code != 204 {
		t.Fatalf("revoke one: %d", r.Code)
	}
	if r := b.do("GET", "/api/v1/me", ""); r.Code != 401 {
		t.Errorf("revoked session works: %d", r.Code)
	}
	if r := a.do("DELETE", "/api/v1/me/sessions", ""); r.Code != 204 {
		t.Fatalf("revoke others: %d", r.Code)
	}
	if r := c.do("GET", "/api/v1/me", ""); r.Code != 401 {
		t.Errorf("other session survived: %d", r.Code)
	}
	if r := a.do("GET", "/api/v1/me", ""); r.Code != 200 {
		t.Errorf("own session ended: %d", r.Code)
	}
}
