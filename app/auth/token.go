package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"strings"
)

// Token prefixes say what a token is at a glance, in logs, support tickets
// and secret scanners, and let the auth middleware tell a session from an
// API key before any lookup.
const (
	SessionTokenPrefix = "zis_"
	APIKeyPrefix       = "zik_"
)

const (
	tokenBytes = 32 // 256 bits: unguessable with no rate limit at all
	// Lowercase base32 survives case-insensitive handling, has no '+', '/' or
	// '-' to break double-click selection, and needs no URL escaping.
	tokenAlphabet    = "abcdefghijklmnopqrstuvwxyz234567"
	tokenBodyLen     = (tokenBytes*8 + 4) / 5 // 52 characters
	tokenDisplayLen  = 8
	maxTokenPrefixSz = 9 // up to 8 letters and the underscore
)

var tokenEncoding = base32.NewEncoding(tokenAlphabet).WithPadding(base32.NoPadding)

// NewToken returns a new random token, prefix followed by 32 random bytes in
// lowercase base32 (e.g. "zik_" + 52 characters), and the hash to store.
// The token is shown once and never stored. prefix should be one of the
// constants above: 1–8 lowercase letters and an underscore.
func NewToken(prefix string) (token string, hash []byte) {
	b := make([]byte, tokenBytes)
	rand.Read(b) // never returns an error since Go 1.24; it crashes instead
	token = prefix + tokenEncoding.EncodeToString(b)
	return token, HashToken(token)
}

// HashToken returns the SHA-256 of the whole token, prefix included; the
// store keys sessions and API keys by it. A fast hash is right here and
// argon2 would be wrong: the token carries 256 random bits, so there is no
// dictionary to slow down, and every authenticated request pays the cost.
// Storing only the hash means a leaked database or backup holds no usable
// credential.
func HashToken(token string) []byte {
	sum := sha256.Sum256([]byte(token))
	return sum[:]
}

// CheckToken reports whether token hashes to hash, in constant time.
func CheckToken(token string, hash []byte) bool {
	return EqualHashes(HashToken(token), hash)
}

// EqualHashes compares two hashes in constant time, so a timing side
// channel cannot reveal how many leading bytes matched.
func EqualHashes(a, b []byte) bool {
	return subtle.ConstantTimeCompare(a, b) == 1
}

// TokenPrefix returns the prefix of a well-formed token ("zis_", "zik_"),
// or "" when token is not shaped like one NewToken makes. Callers can refuse
// garbage without a database lookup.
func TokenPrefix(token string) string {
	i := strings.IndexByte(token, '_')
	if i < 1 || i+1 > maxTokenPrefixSz {
		return ""
	}
	for _, c := range token[:i] {
		if c < 'a' || c > 'z' {
			return ""
		}
	}
	body := token[i+1:]
	if len(body) != tokenBodyLen {
		return ""
	}
	for j := 0; j < len(body); j++ {
		if strings.IndexByte(tokenAlphabet, body[j]) < 0 {
			return ""
		}
	}
	return token[:i+1]
}

// TokenDisplayID returns the prefix and the first 8 characters after it
// ("zik_k3v9x2ab"), which lists of API keys show so a person can tell keys
// apart and match one against a leaked value. It reveals 40 of 256 random
// bits, leaving far more than enough. It returns "" for a malformed token.
func TokenDisplayID(token string) string {
	p := TokenPrefix(token)
	if p == "" {
		return ""
	}
	return token[:len(p)+tokenDisplayLen]
}
