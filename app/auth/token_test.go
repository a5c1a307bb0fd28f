package auth

import (
	"crypto/sha256"
	"regexp"
	"strings"
	"testing"
)

func TestNewToken(t *testing.T) {
	for _, prefix := range []string{SessionTokenPrefix, APIKeyPrefix} {
		t.Run(prefix, func(t *testing.T) {
			token, hash := NewToken(prefix)
			if re := regexp.MustCompile(`^` + prefix + `[a-z2-7]{52}$`); !re.MatchString(token) {
				t.Errorf("token %q does not match %s", token, re)
			}
			if sum := sha256.Sum256([]byte(token)); string(hash) != string(sum[:]) {
				t.Errorf("hash = %x, want SHA-256 of the whole token %x", hash, sum)
			}
			if got := TokenPrefix(token); got != prefix {
				t.Errorf("TokenPrefix = %q, want %q", got, prefix)
			}
			if got, want := TokenDisplayID(token), token[:len(prefix)+8]; got != want {
				t.Errorf("TokenDisplayID = %q, want %q", got, want)
			}
			if !CheckToken(token, hash) {
				t.Error("CheckToken(token, its hash) = false")
			}
		})
	}
}

func TestNewTokenUnique(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		token, _ := NewToken(APIKeyPrefix)
		if seen[token] {
			t.Fatalf("token %q made twice", token)
		}
		seen[token] = true
		// Display ids must tell keys apart too, or the list of keys is useless.
		if id := TokenDisplayID(token); seen[id] {
			t.Fatalf("display id %q made twice", id)
		} else {
			seen[id] = true
		}
	}
}

func TestCheckToken(t *testing.T) {
	token, hash := NewToken(SessionTokenPrefix)
	other, otherHash := NewToken(SessionTokenPrefix)
	tests := []struct {
		name  string
		token string
		hash  []byte
		want  bool
	}{
		{"match", token, hash, true},
		{"other token", other, hash, false},
		{"other hash", token, otherHash, false},
		{"other prefix", APIKeyPrefix + strings.TrimPrefix(token, SessionTokenPrefix), hash, false},
		{"upper case", strings.ToUpper(token), hash, false},
		{"truncated hash", token, hash[:16], false},
		{"nil hash", token, nil, false},
		{"empty token", "", hash, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := CheckToken(tt.token, tt.hash); got != tt.want {
				t.Errorf("CheckToken = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestTokenPrefixMalformed(t *testing.T) {
	token, _ := NewToken(APIKeyPrefix)
	body := strings.TrimPrefix(token, APIKeyPrefix)
	tests := []struct {
		name, token string
	}{
		{"empty", ""},
		{"no prefix", body},
		{"only prefix", APIKeyPrefix},
		{"underscore first", "_" + body},
		{"upper-case prefix", "ZIK_" + body},
		{"digit in prefix", "z1k_" + body},
		{"prefix too long", "zimageapi_" + body},
		{"body too short", token[:len(token)-1]},
		{"body too long", token + "a"},
		{"upper-case body", APIKeyPrefix + strings.ToUpper(body)},
		{"base32 padding", APIKeyPrefix + body[:51] + "="},
		{"character outside the alphabet", APIKeyPrefix + body[:51] + "1"},
		{"bearer scheme left on", "Bearer " + token},
		{"non-UTF-8", APIKeyPrefix + body[:51] + "\xff"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := TokenPrefix(tt.token); got != "" {
				t.Errorf("TokenPrefix(%q) = %q, want \"\"", tt.token, got)
			}
			if got := TokenDisplayID(tt.token); got != "" {
				t.Errorf("TokenDisplayID(%q) = %q, want \"\"", tt.token, got)
			}
		})
	}
}

func TestEqualHashes(t *testing.T) {
	a := HashToken("a")
	tests := []struct {
		name string
		x, y []byte
		want bool
	}{
		{"same", a, HashToken("a"), true},
		{"different", a, HashToken("b"), false},
		{"prefix", a, a[:31], false},
		{"empty vs hash", nil, a, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := EqualHashes(tt.x, tt.y); got != tt.want {
				t.Errorf("EqualHashes = %v, want %v", got, tt.want)
			}
		})
	}
}

// BenchmarkCheckToken is the per-request cost of authenticating a bearer
// token against its stored hash, next to the one database lookup it needs.
func BenchmarkCheckToken(b *testing.B) {
	token, hash := NewToken(APIKeyPrefix)
	b.ReportAllocs()
	for b.Loop() {
		if TokenPrefix(token) == "" || !CheckToken(token, hash) {
			b.Fatal("token did not check")
		}
	}
}
