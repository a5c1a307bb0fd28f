package auth

import (
	"net/netip"
	"testing"

	"zimage/app"
)

// TestLoginThrottleKeysByAccountAndAddress checks the documented rule:
// failures count per account whichever name was typed, and per address
// whichever account was tried.
func TestLoginThrottleKeysByAccountAndAddress(t *testing.T) {
	const pw = "correct horse battery staple"
	tests := []struct {
		name string
		// failures are logins tried from failIP, each with a wrong password;
		failures []string
		failIP   string
		// then login from ip must be refused with 429 (rate_limited).
		login, ip string
	}{
		{name: "username then email", failures: []string{"bob", "bob", "bob", "bob", "bob"}, failIP: "192.0.2.1", login: "bob@example.test", ip: "198.51.100.7"},
		{name: "email then username", failures: []string{"bob@example.test", "BOB@example.test", "bob@example.test", "Bob@Example.test", "bob@example.test"}, failIP: "192.0.2.1", login: "bob", ip: "198.51.100.7"},
		{name: "mixed spellings", failures: []string{"bob", "bob@example.test", "BOB", "bob@EXAMPLE.test", "Bob"}, failIP: "192.0.2.1", login: "bob", ip: "198.51.100.7"},
		{name: "one address, many logins", failures: func() []string {
			var l []string
			for i := range 20 {
				l = append(l, "nobody"+string(rune('a'+i)))
			}
			return l
		}(), failIP: "203.0.113.9", login: "bob", ip: "203.0.113.9"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := newTestService(t)
			ctx := t.Context()
			if _, err := s.SignUp(ctx, SignUpInput{Email: "bob@example.test", Username: "bob", Password: pw, AgeConfirmed: true}); err != nil {
				t.Fatal(err)
			}
			for i, l := range tt.failures {
				_, err := s.Login(ctx, LoginInput{Login: l, Password: "wrong password here", IP: netip.MustParseAddr(tt.failIP)})
				if app.ErrorCode(err) != app.EUNAUTHORIZED {
					t.Fatalf("failure %d (%q): %v, want a wrong-login error", i+1, l, err)
				}
			}
			_, err := s.Login(ctx, LoginInput{Login: tt.login, Password: pw, IP: netip.MustParseAddr(tt.ip)})
			if app.ErrorCode(err) != app.ERATELIMITED {
				t.Errorf("login %q from %s after the failures: %v, want %s", tt.login, tt.ip, err, app.ERATELIMITED)
			}
		})
	}
}
