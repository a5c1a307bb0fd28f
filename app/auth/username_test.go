package auth

import (
	"strings"
	"testing"
)

func TestNormalizeUsername(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"plain", "alice", "alice"},
		{"trimmed and lowercased", "  Alice  ", "alice"},
		{"separators inside", "Jean.Luc-92_x", "jean.luc-92_x"},
		{"fullwidth folds to ASCII", "ＡＬＩＣＥ", "alice"},
		{"fullwidth digits", "bob１２３", "bob123"},
		{"mathematical bold folds", "𝐚𝐥𝐢𝐜𝐞", "alice"},
		{"ligature folds", "ﬁle_maker", "file_maker"},
		{"sharp s case-folds to ss", "Straße", "strasse"},
		{"composed accent", "José", "josé"},
		{"decomposed accent composes", "Jose\u0301", "josé"},
		{"Cyrillic", "Владимир", "владимир"},
		{"Greek", "Ελένη", "ελένη"},
		{"Greek final sigma folds", "ΟΔΥΣΣΕΥΣ", "οδυσσευσ"},
		{"Japanese Han and Katakana", "山田タロウ", "山田タロウ"},
		{"Japanese with Latin", "yamada太郎", "yamada太郎"},
		{"Korean", "김철수", "김철수"},
		{"Devanagari with marks", "नमस्ते", "नमस्ते"},
		{"three characters", "abc", "abc"},
		{"thirty-two characters", strings.Repeat("a", 32), strings.Repeat("a", 32)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := NormalizeUsername(tt.in)
			if err != nil {
				t.Fatalf("NormalizeUsername(%q) error: %v", tt.in, err)
			}
			if got != tt.want {
				t.Errorf("NormalizeUsername(%q) = %q, want %q", tt.in, got, tt.want)
			}
			// Normal forms are fixed points: storing and re-checking agree.
			if again, err := NormalizeUsername(got); err != nil || again != got {
				t.Errorf("NormalizeUsername(%q) = %q, %v; want it unchanged", got, again, err)
			}
		})
	}
}

func TestNormalizeUsernameRefuses(t *testing.T) {
	tests := []struct {
		name, in string
		want     string // a piece of the reason
	}{
		{"empty", "", "choose a username"},
		{"blank", "   ", "choose a username"},
		{"two characters", "ab", "at least 3"},
		{"two after folding", "ＡＢ", "at least 3"},
		{"thirty-three characters", strings.Repeat("a", 33), "at most 32"},
		{"huge input", strings.Repeat("a", 10000), "at most 32"},
		{"Cyrillic р and а in a Latin name", "раypal", "Cyrillic and Latin"},
		{"one Cyrillic а", "pаypal", "Latin and Cyrillic"},
		{"Greek alpha in a Latin name", "αlice", "Greek and Latin"},
		{"Cyrillic with Han", "иван山", "Cyrillic and Han"},
		{"all Cyrillic look-alikes", "рау", "only Cyrillic letters that look like Latin"},
		{"all Greek look-alikes", "νικο", "only Greek letters that look like Latin"},
		{"zero-width joiner", "ali\u200dce", "invisible"},
		{"zero-width non-joiner", "ali\u200cce", "invisible"},
		{"zero-width space", "ali\u200bce", "invisible"},
		{"soft hyphen", "ali\u00adce", "invisible"},
		{"right-to-left override", "ali\u202ece", "invisible"},
		{"variation selector", "alice\ufe0f", "invisible"},
		{"Hangul filler", "\u3164alice", "invisible"},
		{"inner space", "al ice", "invisible"},
		{"no-break space", "al\u00a0ice", "invisible"},
		{"tab", "al\tice", "invisible"},
		{"not UTF-8", "ali\xffce", "not text"},
		{"leading separator", "_alice", "start or end"},
		{"trailing dot", "alice.", "start or end"},
		{"double dot", "al..ice", "in a row"},
		{"mixed separators in a row", "al._ice", "in a row"},
		{"at sign", "alice@home", `"@"`},
		{"emoji", "al👍ice", "not allowed"},
		{"slash", "a/b/c", `"/"`},
		{"leading mark", "\u0301alice", "isn't on a letter"},
		{"mark after a digit", "abc1\u0301", "isn't on a letter"},
		{"stacked marks", "za\u0301\u0302\u0303\u0304\u0305lgo", "too many"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := NormalizeUsername(tt.in)
			if err == nil {
				t.Fatalf("NormalizeUsername(%q) = %q, want an error", tt.in, got)
			}
			if got != "" {
				t.Errorf("returned %q with the error, want \"\"", got)
			}
			if reason := fieldReason(t, err, "username"); !strings.Contains(reason, tt.want) {
				t.Errorf("reason = %q, want it to contain %q", reason, tt.want)
			}
		})
	}
}

// Look-alike names must normalize to the same string, or to an error, so
// the store's unique index catches them.
func TestNormalizeUsernameCollisions(t *testing.T) {
	variants := []string{"Alice", "ALICE", "ａｌｉｃｅ", "𝐀𝐥𝐢𝐜𝐞", " alice "}
	for _, v := range variants {
		got, err := NormalizeUsername(v)
		if err != nil || got != "alice" {
			t.Errorf("NormalizeUsername(%q) = %q, %v; want \"alice\"", v, got, err)
		}
	}
	for _, v := range []string{"аlice", "alicе", "al\u200bice", "ali\u0441e"} {
		if got, err := NormalizeUsername(v); err == nil {
			t.Errorf("look-alike %q accepted as %q", v, got)
		}
	}
}
