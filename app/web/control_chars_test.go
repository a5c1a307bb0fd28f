package web

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestFreeTextRefusesControlCharacters sends control, bidi-override and
// zero-width characters to every JSON route that takes free text: each is
// refused with a 400 naming the field, while line breaks stay allowed
// where they belong.
func TestFreeTextRefusesControlCharacters(t *testing.T) {
	env := newAuthEnv(t, authOptionsForTest(), Options{})
	alice := env.signup(t, "alice")
	script, _ := alice.apiKey(t, "generate", "read")
	body := func(kv ...any) string {
		m := map[string]any{}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		b, _ := json.Marshal(m)
		return string(b)
	}
	tests := []struct {
		name, method, path, body string
		as                       *client
		field                    string // "" means accepted
	}{
		{name: "signup display name with NUL", method: "POST", path: "/api/v1/auth/signup", as: env.anon(), field: "display_name",
			body: body("email", "x@example.com", "username", "xavier", "password", testPassword, "age_confirmed", true, "display_name", "Xavier\x00")},
		{name: "display name with ESC", method: "PATCH", path: "/api/v1/me", as: alice, field: "display_name", body: body("display_name", "\x1b[31mAlice")},
		{name: "display name with RLO", method: "PATCH", path: "/api/v1/me", as: alice, field: "display_name", body: body("display_name", "Alice \u202enimda")},
		{name: "display name with a line break", method: "PATCH", path: "/api/v1/me", as: alice, field: "display_name", body: body("display_name", "Alice\nAdmin")},
		{name: "display name in Arabic", method: "PATCH", path: "/api/v1/me", as: alice, body: body("display_name", "مريم")},
		{name: "prompt with BEL", method: "POST", path: "/api/v1/generations", as: script, field: "prompt", body: body("steps", 4, "prompt", "a cat\a")},
		{name: "prompt with ESC", method: "POST", path: "/api/v1/generations", as: script, field: "prompt", body: body("steps", 4, "prompt", "a cat\x1b]0;x\a")},
		{name: "prompt with RLO", method: "POST", path: "/api/v1/generations", as: script, field: "prompt", body: body("steps", 4, "prompt", "a cat \u202etac")},
		{name: "prompt with zero-width space", method: "POST", path: "/api/v1/generations", as: script, field: "prompt", body: body("steps", 4, "prompt", "a c\u200bat")},
		{name: "negative prompt with LRI", method: "POST", path: "/api/v1/generations", as: script, field: "negative_prompt", body: body("steps", 4, "prompt", "a cat", "negative_prompt", "\u2066blur")},
		{name: "prompt over lines", method: "POST", path: "/api/v1/generations", as: script, body: body("steps", 4, "prompt", "a cat\non a mat\r\n\twith a hat")},
		{name: "OpenAI prompt with ESC", method: "POST", path: "/v1/images/generations", as: script, field: "prompt", body: body("prompt", "a cat\x1b")},
		{name: "key name with ESC", method: "POST", path: "/api/v1/me/api-keys", as: alice, field: "name", body: body("name", "laptop\x1b", "scopes", []string{"read"})},
		{name: "ticket subject with RLO", method: "POST", path: "/api/v1/tickets", as: alice, field: "subject", body: body("subject", "help \u202e", "body", "text")},
		{name: "ticket subject with a line break", method: "POST", path: "/api/v1/tickets", as: alice, field: "subject", body: body("subject", "help\nme", "body", "text")},
		{name: "ticket message with NUL", method: "POST", path: "/api/v1/tickets", as: alice, field: "body", body: body("subject", "help", "body", "text\x00")},
		{name: "ticket message over lines", method: "POST", path: "/api/v1/tickets", as: alice, body: body("subject", "help", "body", "line one\nline two")},
		{name: "request details with ESC", method: "POST", path: "/api/v1/me/requests", as: alice, field: "details", body: body("kind", "rectify", "details", "fix\x1b")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.as.do(tt.method, tt.path, tt.body)
			if tt.field == "" {
				if r.Code >= 400 {
					t.Errorf("%s %s: %d %s, want it accepted", tt.method, tt.path, r.Code, r.Body)
				}
				return
			}
			var e apiError
			json.Unmarshal(r.Body.Bytes(), &e)
			msg := e.Error.Fields[tt.field]
			if isOpenAI(tt.path) { // OpenAI's shape: the field is the param
				var oe openAIErrorBody
				json.Unmarshal(r.Body.Bytes(), &oe)
				if oe.Error.Param != nil && *oe.Error.Param == tt.field {
					msg = oe.Error.Message
				}
			}
			if r.Code != 400 || !strings.Contains(msg, "U+") && !strings.Contains(msg, "one line") {
				t.Errorf("%s %s: %d %s, want 400 with a message for %q naming the character", tt.method, tt.path, r.Code, r.Body, tt.field)
			}
		})
	}
}
