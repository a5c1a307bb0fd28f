package app

import (
	"fmt"
	"unicode"
	"unicode/utf8"
)

// TextKind says where a piece of free text goes, and so which characters
// beyond printable ones it may hold.
type TextKind int

const (
	// OneLine is a name, subject or reason: shown inline, so no line
	// breaks or tabs.
	OneLine TextKind = iota
	// MultiLine is a prompt or a message: line breaks and tabs are part of
	// what the person wrote, and left-to-right/right-to-left marks help
	// mixed-direction text read correctly.
	MultiLine
)

// CheckText reports what is wrong with free text s, or "" when nothing is.
// label names the field the way the person sees it ("display name").
//
// Refused everywhere: bytes that are not UTF-8, control characters (NUL,
// BEL, ESC, DEL, the C1 range), and invisible formatting characters. The
// bidi embeddings, overrides and isolates (U+202A–U+202E, U+2066–U+2069)
// are among them: one can make a name or a prompt read differently from
// what it holds, and spill that reordering into the page around it, and
// no language needs them in a single field (the Unicode bidi algorithm
// lays out Arabic or Hebrew text without them). Zero-width spaces, word
// joiners, BOMs and tag characters hide text from a reader (and smuggle it
// to a model). Kept: zero-width (non-)joiners, which Persian and Indic
// scripts and emoji sequences need, and in MultiLine text LRM, RLM and ALM
// marks, which change no more than the direction of neighbouring
// punctuation.
func CheckText(label, s string, kind TextKind) string {
	if !utf8.ValidString(s) {
		return fmt.Sprintf("The %s contains bytes that are not text: send it as UTF-8.", label)
	}
	pos := 0
	for _, r := range s {
		pos++
		if textRuneAllowed(r, kind) {
			continue
		}
		what := "an invisible formatting character"
		switch {
		case (r == '\n' || r == '\r' || r == '\t') && kind == OneLine:
			return fmt.Sprintf("The %s must fit on one line: remove the line break or tab (character %d).", label, pos)
		case unicode.IsControl(r):
			what = "a control character"
		case isBidiControl(r):
			what = "a text-direction control character"
		}
		return fmt.Sprintf("The %s contains %s (U+%04X, character %d) that would not show on screen: remove it and try again.", label, what, r, pos)
	}
	return ""
}

func textRuneAllowed(r rune, kind TextKind) bool {
	switch r {
	case '\n', '\r', '\t':
		return kind == MultiLine
	case '\u200c', '\u200d': // zero-width non-joiner and joiner
		return true
	case '\u200e', '\u200f', '\u061c': // LRM, RLM, ALM
		return kind == MultiLine
	}
	if unicode.IsControl(r) || isBidiControl(r) {
		return false
	}
	// Cf holds the other invisible formatting characters (zero-width
	// space, word joiner, BOM, tags, invisible operators); Zl and Zp are
	// line and paragraph separators that would break a line without a
	// line break.
	return !unicode.In(r, unicode.Cf, unicode.Zl, unicode.Zp)
}

func isBidiControl(r rune) bool {
	return (r >= '\u202a' && r <= '\u202e') || (r >= '\u2066' && r <= '\u2069')
}

// VisibleText returns s with every character CheckText would refuse in
// MultiLine text replaced by U+FFFD, so text stored before the check (or
// arriving by a path that skips it) cannot reorder or hide what a page
// shows around it.
func VisibleText(s string) string {
	clean := true
	for _, r := range s {
		if r == utf8.RuneError || !textRuneAllowed(r, MultiLine) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	out := make([]rune, 0, len(s))
	for _, r := range s {
		if !textRuneAllowed(r, MultiLine) {
			r = utf8.RuneError
		}
		out = append(out, r)
	}
	return string(out)
}
