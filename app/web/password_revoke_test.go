package web

import (
	"fmt"
	"net/url"
	"strings"
	"testing"
)

// TestPasswordChangeRevokesKeysWhenAsked: a password change ends the other
// sessions and, unless the person unticks the box, every API key; the
// answer says what ended.
func TestPasswordChangeRevokesKeysWhenAsked(t *testing.T) {
	const next = "velvet lantern orbit meadow"
	tests := []struct {
		name string
		// change performs the change as browser c and returns what the
		// person was told.
		change       func(t *testing.T, c *client) string
		wantKeyAlive bool
		wantTold     string
	}{
		{name: "JSON, default", change: func(t *testing.T, c *client) string {
			r := c.do("POST", "/api/v1/me/password", `{"current_password":"`+testPassword+`","new_password":"`+next+`"}`)
			if r.Code != 200 {
				t.Fatalf("change: %d %s", r.Code, r.Body)
			}
			return r.Body.String()
		}, wantTold: `"revoked":{"sessions":1,"api_keys":2}`},
		{name: "JSON, keys kept", change: func(t *testing.T, c *client) string {
			r := c.do("POST", "/api/v1/me/password", `{"current_password":"`+testPassword+`","new_password":"`+next+`","revoke_api_keys":false}`)
			if r.Code != 200 {
				t.Fatalf("change: %d %s", r.Code, r.Body)
			}
			return r.Body.String()
		}, wantKeyAlive: true, wantTold: `"revoked":{"sessions":1,"api_keys":0}`},
		{name: "form, box ticked by default", change: func(t *testing.T, c *client) string {
			page := c.do("GET", "/settings/password", "").Body.String()
			if !strings.Contains(page, `name="revoke_api_keys" value="1" checked`) {
				t.Errorf("the revoke box is not ticked by default:\n%s", page)
			}
			r := c.form("/settings/password", url.Values{"current_password": {testPassword}, "new_password": {next},
				"new_password_confirm": {next}, "revoke_api_keys": {"1"}})
			if r.Code != 303 {
				t.Fatalf("change: %d %s", r.Code, r.Body)
			}
			return c.do("GET", location(r), "").Body.String()
		}, wantTold: "Sessions signed out: 1. API keys revoked: 2."},
		{name: "form, box unticked", change: func(t *testing.T, c *client) string {
			r := c.form("/settings/password", url.Values{"current_password": {testPassword}, "new_password": {next}, "new_password_confirm": {next}})
			if r.Code != 303 {
				t.Fatalf("change: %d %s", r.Code, r.Body)
			}
			return c.do("GET", location(r), "").Body.String()
		}, wantKeyAlive: true, wantTold: "Sessions signed out: 1. API keys revoked: 0."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := newAuthEnv(t, authOptionsForTest(), Options{})
			alice := env.signup(t, "alice")
			other := env.login(t, "alice")
			script, _ := alice.apiKey(t, "read")
			alice.apiKey(t, "generate")
			told := tt.change(t, alice)
			if !strings.Contains(told, tt.wantTold) {
				t.Errorf("the person was told:\n%s\nwant it to contain %q", told, tt.wantTold)
			}
			if r := alice.do("GET", "/api/v1/me", ""); r.Code != 200 {
				t.Errorf("the changing session ended: %d", r.Code)
			}
			if r := other.do("GET", "/api/v1/me", ""); r.Code != 401 {
				t.Errorf("the other session survived: %d", r.Code)
			}
			want := 401
			if tt.wantKeyAlive {
				want = 200
			}
			if r := script.do("GET", "/api/v1/me", ""); r.Code != want {
				t.Errorf("API key after the change: %d, want %d", r.Code, want)
			}
		})
	}
}

// TestResetLinkRevokesEverything: a reset link is account recovery, so
// every session and every API key ends, and the person is told.
func TestResetLinkRevokesEverything(t *testing.T) {
	env := newAuthEnv(t, authOptionsForTest(), Options{})
	adm := env.signup(t, "admin")
	alice := env.signup(t, "alice")
	script, _ := alice.apiKey(t, "read")
	tok := adm.do("POST", "/api/v1/admin/users/"+alice.userID+"/reset-link", "").json(t)["token"].(string)
	r := env.anon().do("POST", "/api/v1/auth/reset", fmt.Sprintf(`{"token":%q,"password":"amber quartz river candle"}`, tok))
	if r.Code != 200 || !strings.Contains(r.Body.String(), `"revoked":{"sessions":1,"api_keys":1}`) {
		t.Fatalf("reset: %d %s", r.Code, r.Body)
	}
	if r := alice.do("GET", "/api/v1/me", ""); r.Code != 401 {
		t.Errorf("session survived a reset: %d", r.Code)
	}
	if r := script.do("GET", "/api/v1/me", ""); r.Code != 401 {
		t.Errorf("API key survived a reset: %d", r.Code)
	}

	// The page form tells the same in words.
	bob := env.signup(t, "bob")
	bob.apiKey(t, "read")
	tok = adm.do("POST", "/api/v1/admin/users/"+bob.userID+"/reset-link", "").json(t)["token"].(string)
	anon := env.anon()
	r = anon.form("/reset", url.Values{"token": {tok}, "password": {"amber quartz river candle"}, "password_confirm": {"amber quartz river candle"}})
	if r.Code != 303 {
		t.Fatalf("reset form: %d %s", r.Code, r.Body)
	}
	if page := anon.do("GET", location(r), "").Body.String(); !strings.Contains(page, "Sessions signed out: 1. API keys revoked: 1.") {
		t.Errorf("login page after a reset does not say what ended:\n%s", page)
	}
}
