package auth

import (
	"strings"
	"testing"
)

func TestCheckPasswordStrength(t *testing.T) {
	tests := []struct {
		name   string
		pw     string
		inputs []string
		want   string // "" for accepted, else the reason
	}{
		{"four random words", "staple orbit cactus violin", nil, ""},
		{"long random", "vT9#qL2!mZ8x", nil, ""},
		{"exactly ten characters", "k7f#Qp2vLx", nil, ""},
		{"ten accented letters", "éàüöçñßøåæ", nil, ""},
		{"common word inside a longer passphrase", "my dragon eats purple socks", nil, ""},
		{"long repeated unit is fine", "orbitcactusvioletorbitcactusviolet", nil, ""},
		{"last character repeats the first", "k7f#Qp2vLk", nil, ""},

		{"nine characters", "k7f#Qp2vL", nil, reasonTooShort},
		{"empty", "", nil, reasonTooShort},
		// NFC folds e + U+0301 into é: 9 runes after normalization.
		{"short after NFC", "cafe\u0301cafe\u0301x", nil, reasonTooShort},
		{"too long", strings.Repeat("long words ", 100), nil, "Use at most 1024 bytes; a few unrelated words are plenty."},

		{"one character", "aaaaaaaaaaaa", nil, reasonOneChar},
		{"one digit", "0000000000", nil, reasonOneChar},
		{"one character mixed case", "AaAaAaAaAa", nil, reasonOneChar},

		{"digits", "1234567890", nil, reasonSequence},
		{"digits wrapping", "7890123456", nil, reasonSequence},
		{"alphabet", "abcdefghij", nil, reasonSequence},
		{"alphabet upper", "ABCDEFGHIJKL", nil, reasonSequence},
		{"digits descending", "9876543210", nil, reasonSequence},
		{"greek alphabet", "αβγδεζηθικ", nil, reasonSequence},
		{"keyboard row", "qwertyuiop", nil, reasonSequence},
		{"keyboard rows joined", "qwertyuiopasdf", nil, reasonSequence},
		{"keyboard row reversed", "poiuytrewq", nil, reasonSequence},
		{"keyboard column", "1qaz2wsx3edc", nil, reasonSequence},
		{"shifted digits", "!@#$%^&*()", nil, reasonSequence},

		{"repeated pair", "abababababab", nil, reasonRepeated},
		{"repeated word", "passpasspass", nil, reasonRepeated},
		{"repeated with a partial tail", "xyzxyzxyzx", nil, reasonRepeated},

		{"common and long", "password1234", nil, reasonCommon},
		{"common exact", "correcthorsebatterystaple", nil, reasonCommon},
		{"common upper case", "CORRECTHORSEBATTERYSTAPLE", nil, reasonCommon},
		{"common with digits", "iloveyou2024", nil, reasonCommon},
		{"common with symbols", "sunshine!!!!", nil, reasonCommon},
		{"common with digits before", "2024football", nil, reasonCommon},
		{"common with year and bang", "Password2024!", nil, reasonCommon},
		{"leet", "P@ssw0rd2024", nil, reasonCommon},
		{"leet with l", "b1ue1234567", nil, reasonCommon},
		{"leet at start", "@dmin123456", nil, reasonCommon},
		{"short common word with digits", "god1234567", nil, reasonCommon},

		{"contains username", "xx-alice_w-2024", []string{"alice_w"}, reasonPersonal},
		{"contains username any case", "Hello ALICE_W there", []string{"alice_w"}, reasonPersonal},
		{"contains email", "mail alice@example.com", []string{"alice@example.com"}, reasonPersonal},
		{"contains email local part", "zebra-jsmith-violin", []string{"j", "JSmith@example.com"}, reasonPersonal},
		{"contains email local part before tag", "zebra-jsmith-violin", []string{"jsmith+zimage@example.com"}, reasonPersonal},
		{"short inputs are ignored", "staple orbit cactus violin", []string{"or", "a@b.co", ""}, ""},
		{"unrelated inputs", "staple orbit cactus violin", []string{"alice_w", "alice@example.com"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckPasswordStrength(tt.pw, tt.inputs...)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("CheckPasswordStrength(%q) = %v, want nil", tt.pw, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("CheckPasswordStrength(%q) = nil, want %q", tt.pw, tt.want)
			}
			if got := fieldReason(t, err, "password"); got != tt.want {
				t.Errorf("reason = %q,\nwant     %q", got, tt.want)
			}
		})
	}
}

func TestCommonPasswordsLoaded(t *testing.T) {
	if n := len(commonPasswords); n < 300 {
		t.Errorf("%d common passwords loaded, want at least 300", n)
	}
	for pw := range commonPasswords {
		if pw != strings.ToLower(pw) || strings.TrimSpace(pw) != pw || strings.HasPrefix(pw, "#") {
			t.Errorf("list entry %q must be lowercase and trimmed, and comments must not load", pw)
		}
	}
}
