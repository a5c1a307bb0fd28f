package auth

import (
	"encoding/base64"
	"testing"
)

func TestCSRF(t *testing.T) {
	session, _ := NewToken(SessionTokenPrefix)
	other, _ := NewToken(SessionTokenPrefix)
	secret := []byte(session)
	token := CSRFToken(secret)
	if token == "" {
		t.Fatal("CSRFToken = \"\"")
	}
	if again := CSRFToken(secret); again == token {
		t.Error("two tokens for one session are equal; the mask is not fresh (BREACH)")
	} else if !CheckCSRF(secret, again) {
		t.Error("the second token for the session does not check")
	}

	raw, _ := base64.RawURLEncoding.DecodeString(token)
	flipped := append([]byte(nil), raw...)
	flipped[40] ^= 1
	tests := []struct {
		name   string
		secret []byte
		token  string
		want   bool
	}{
		{"own session", secret, token, true},
		{"other session", []byte(other), token, false},
		{"no session", nil, token, false},
		{"empty token", secret, "", false},
		{"flipped bit", secret, base64.RawURLEncoding.EncodeToString(flipped), false},
		{"truncated", secret, token[:len(token)-2], false},
		{"not base64", secret, "!" + token[1:], false},
		{"session token itself", secret, session, false},
		{"unmasked mac", secret, base64.RawURLEncoding.EncodeToString(csrfMAC(secret)), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := CheckCSRF(tt.secret, tt.token); got != tt.want {
				t.Errorf("CheckCSRF = %v, want %v", got, tt.want)
			}
		})
	}
	if got := CSRFToken(nil); got != "" {
		t.Errorf("CSRFToken(nil) = %q, want \"\"", got)
	}
}
