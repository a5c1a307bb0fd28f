package auth

import (
	"testing"
	"unicode/utf8"
)

// The fuzz targets hold the promise that bad input gives an error, never a
// panic, and that normal forms are stable. Their seeds run with go test;
// go test -fuzz=FuzzX explores further.

func FuzzNormalizeUsername(f *testing.F) {
	for _, s := range []string{"alice", "ＡＬＩＣＥ", "раypal", "a\u200db", "Straße", "a\u0301\u0302", "ǅemal", "İstanbul", "\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := NormalizeUsername(s)
		if err != nil {
			return
		}
		if n := utf8.RuneCountInString(got); n < MinUsernameRunes || n > MaxUsernameRunes {
			t.Fatalf("NormalizeUsername(%q) = %q with %d characters", s, got, n)
		}
		if again, err := NormalizeUsername(got); err != nil || again != got {
			t.Fatalf("not stable: %q → %q → %q, %v", s, got, again, err)
		}
	})
}

func FuzzNormalizeEmail(f *testing.F) {
	for _, s := range []string{"a@b.co", "A <a@b.co>", "a@[1.2.3.4]", `"a"@b.co`, "a@b@c.d", "Jürgen@Bücher.de"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := NormalizeEmail(s)
		if err != nil {
			return
		}
		if len(got) > MaxEmailBytes {
			t.Fatalf("NormalizeEmail(%q) = %q, longer than %d", s, got, MaxEmailBytes)
		}
		if again, err := NormalizeEmail(got); err != nil || again != got {
			t.Fatalf("not stable: %q → %q → %q, %v", s, got, again, err)
		}
	})
}

func FuzzCheckPassword(f *testing.F) {
	h := NewHasher(cheapParams, 1)
	good, _ := h.Hash("a fine long password")
	for _, s := range []string{good, "", "$argon2id$v=19$m=64,t=1,p=1$$", "$argon2id$v=19$m=4294967295,t=4294967295,p=255$AAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAA"} {
		f.Add(s, "a fine long password")
	}
	f.Fuzz(func(t *testing.T, encoded, pw string) {
		ok, _, err := h.Check(encoded, pw)
		if ok && err != nil {
			t.Fatalf("ok with error %v", err)
		}
		_ = CheckPasswordStrength(pw, encoded)
		_, _ = ValidateTOTP(encoded, pw, t0, 0)
		_, _ = MatchRecoveryCode(pw, [][]byte{HashToken(encoded)})
		_ = TokenPrefix(pw)
		_ = CheckCSRF([]byte(encoded), pw)
	})
}
