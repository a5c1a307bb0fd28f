package app

import (
	"strings"
	"testing"
)

func TestCheckText(t *testing.T) {
	tests := []struct {
		name string
		s    string
		kind TextKind
		// want is a part of the message, or "" when the text is accepted.
		want string
	}{
		{name: "plain", s: "Ada Lovelace", kind: OneLine},
		{name: "accents and scripts", s: "Zoë Ørsted · 山田 · مريم", kind: OneLine},
		{name: "emoji with joiners", s: "family 👨\u200d👩\u200d👧", kind: OneLine},
		{name: "persian with ZWNJ", s: "می\u200cخواهم", kind: MultiLine},
		{name: "prompt with lines and tabs", s: "a cat\non a mat\r\n\twith a hat", kind: MultiLine},
		{name: "prompt with RLM", s: "שלום \u200f(test)", kind: MultiLine},
		{name: "NUL", s: "Bob\x00", kind: OneLine, want: "control character (U+0000, character 4)"},
		{name: "ESC in a name", s: "\x1b[31mred", kind: OneLine, want: "control character (U+001B"},
		{name: "BEL in a prompt", s: "a cat\a", kind: MultiLine, want: "U+0007"},
		{name: "DEL", s: "a\x7f", kind: MultiLine, want: "U+007F"},
		{name: "C1", s: "a\u0085b", kind: MultiLine, want: "U+0085"},
		{name: "newline in a name", s: "Bob\nAdmin", kind: OneLine, want: "must fit on one line"},
		{name: "tab in a name", s: "Bob\tX", kind: OneLine, want: "must fit on one line"},
		{name: "RLO in a prompt", s: "a cat \u202egnp.exe", kind: MultiLine, want: "text-direction control character (U+202E"},
		{name: "LRE in a name", s: "\u202aBob", kind: OneLine, want: "U+202A"},
		{name: "isolate in a name", s: "Bob\u2067x\u2069", kind: OneLine, want: "U+2067"},
		{name: "RLM in a name", s: "Bob\u200f", kind: OneLine, want: "U+200F"},
		{name: "zero-width space", s: "a\u200bcat", kind: MultiLine, want: "invisible formatting character (U+200B"},
		{name: "word joiner", s: "a\u2060cat", kind: MultiLine, want: "U+2060"},
		{name: "BOM", s: "\ufeffcat", kind: MultiLine, want: "U+FEFF"},
		{name: "tag characters", s: "cat\U000E0041", kind: MultiLine, want: "U+E0041"},
		{name: "line separator", s: "a\u2028b", kind: MultiLine, want: "U+2028"},
		{name: "invalid UTF-8", s: "a\xffb", kind: MultiLine, want: "not text"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := CheckText("display name", tt.s, tt.kind)
			if tt.want == "" {
				if got != "" {
					t.Errorf("CheckText(%q) = %q, want it accepted", tt.s, got)
				}
				return
			}
			if !strings.Contains(got, tt.want) || !strings.HasPrefix(got, "The display name ") {
				t.Errorf("CheckText(%q) = %q, want a message about the display name containing %q", tt.s, got, tt.want)
			}
		})
	}
}

func TestVisibleText(t *testing.T) {
	tests := []struct{ name, s, want string }{
		{name: "clean text is unchanged", s: "a cat\non a mat · مريم 👨\u200d👩", want: "a cat\non a mat · مريم 👨\u200d👩"},
		{name: "override replaced", s: "photo \u202egnp.exe", want: "photo \ufffdgnp.exe"},
		{name: "escape and NUL replaced", s: "\x1b[31mred\x00", want: "\ufffd[31mred\ufffd"},
		{name: "zero-width space replaced", s: "a\u200bb", want: "a\ufffdb"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := VisibleText(tt.s); got != tt.want {
				t.Errorf("VisibleText(%q) = %q, want %q", tt.s, got, tt.want)
			}
		})
	}
}
