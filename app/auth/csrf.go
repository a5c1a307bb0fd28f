package auth

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
)

// CSRF tokens are derived from the session's own secret rather than stored:
// the token is HMAC-SHA256(sessionSecret, label). We chose this over a
// random per-session token (which needs a column and a write at login) and
// over HMAC(session id, per-install key) (which needs one more key to keep,
// back up and rotate). It is just as unforgeable: making it needs the
// session secret, which lives in an HttpOnly cookie another site can send
// but never read. The HMAC is one-way, so a token leaked from a page does
// not give away the session. Logging out ends the session and with it its
// tokens.
//
// Each call to CSRFToken masks the value with a fresh random pad (token =
// pad ‖ pad⊕mac), so the token differs on every page. That defeats BREACH,
// which recovers a secret repeated in compressed HTTPS responses byte by
// byte.
const csrfLabel = "zimage csrf v1"

var csrfEncoding = base64.RawURLEncoding

// CSRFToken returns a token for forms and the X-CSRF-Token header of the
// session whose secret is sessionSecret: the raw session token from the
// cookie, never the session's id, which is not secret. For forms shown
// before login, use a random value kept in a short-lived cookie. It
// returns "" for an empty secret, which CheckCSRF never accepts.
func CSRFToken(sessionSecret []byte) string {
	if len(sessionSecret) == 0 {
		return ""
	}
	mac := csrfMAC(sessionSecret)
	buf := make([]byte, 2*len(mac))
	pad, masked := buf[:len(mac)], buf[len(mac):]
	rand.Read(pad) // never returns an error since Go 1.24
	for i := range mac {
		masked[i] = pad[i] ^ mac[i]
	}
	return csrfEncoding.EncodeToString(buf)
}

// CheckCSRF reports, in constant time, whether token was made by CSRFToken
// for sessionSecret.
func CheckCSRF(sessionSecret []byte, token string) bool {
	if len(sessionSecret) == 0 {
		return false
	}
	buf, err := csrfEncoding.DecodeString(token)
	if err != nil || len(buf) != 2*sha256.Size {
		return false
	}
	pad, masked := buf[:sha256.Size], buf[sha256.Size:]
	got := make([]byte, sha256.Size)
	for i := range got {
		got[i] = pad[i] ^ masked[i]
	}
	return hmac.Equal(got, csrfMAC(sessionSecret))
}

func csrfMAC(sessionSecret []byte) []byte {
	m := hmac.New(sha256.New, sessionSecret)
	m.Write([]byte(csrfLabel))
	return m.Sum(nil)
}
