package auth

import (
	_ "embed"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"

	"zimage/app"
)

// MinPasswordRunes is the shortest password accepted, in characters after
// NFC normalization. Length is what resists guessing; NIST SP 800-63B asks
// for at least 8 and we ask a little more instead of composition rules,
// which people meet with "Password1!".
const MinPasswordRunes = 10

//go:embed common_passwords.txt
var commonPasswordsText string

var commonPasswords = func() map[string]struct{} {
	m := make(map[string]struct{})
	for line := range strings.Lines(commonPasswordsText) {
		line = strings.TrimSpace(line)
		if line != "" && !strings.HasPrefix(line, "#") {
			m[norm.NFC.String(line)] = struct{}{}
		}
	}
	return m
}()

// Person-facing reasons; each says what to do instead.
const (
	reasonTooShort   = "Use at least 10 characters. A few unrelated words make a long password that is still easy to remember."
	reasonOneChar    = "Don't repeat a single character. A few unrelated words make a strong password."
	reasonSequence   = "Avoid sequences such as 1234567890, abcdefghij or qwertyuiop: they are among the first guesses. Try a few unrelated words instead."
	reasonRepeated   = "Avoid repeating a short pattern such as abcabcabc: it is guessed almost as fast as the pattern. Try a few unrelated words instead."
	reasonCommon     = "This is one of the most common passwords, and adding digits or symbols to it does not help: it is guessed first. Please choose something unrelated, such as a few random words."
	reasonPersonal   = "Don't use your username or email address in your password: it is the first thing an attacker tries. Please choose something unrelated."
	minPersonalRunes = 3 // shorter user inputs would match by chance
)

// CheckPasswordStrength returns nil if pw may be used as a new password, or
// an *app.Error with code EINVALID and Fields{"password": reason}, the reason
// telling the person what to do. userInputs are values the person chose
// themselves, such as the username and email address; the password may not
// contain them (for an email, neither the address nor its local part).
//
// Rules, in order: at most MaxPasswordBytes bytes; at least MinPasswordRunes
// characters after NFC normalization; not one character repeated; not a
// run of the alphabet, the digits or a keyboard row (either direction); not
// a short pattern repeated; not a common password, even with digits or
// symbols added before or after or with look-alike swaps such as @ for a;
// not containing a user input. Letter case is ignored by all rules but the
// length ones.
func CheckPasswordStrength(pw string, userInputs ...string) error {
	if reason := passwordWeakness(pw, userInputs); reason != "" {
		return app.FieldErrors{"password": reason}.Err()
	}
	return nil
}

func passwordWeakness(pw string, userInputs []string) string {
	if len(pw) > MaxPasswordBytes {
		return fmt.Sprintf("Use at most %d bytes; a few unrelated words are plenty.", MaxPasswordBytes)
	}
	pw = norm.NFC.String(pw)
	if utf8.RuneCountInString(pw) < MinPasswordRunes {
		return reasonTooShort
	}
	lower := strings.ToLower(pw)
	runes := []rune(lower)
	p := period(runes)
	switch {
	case p == 1:
		return reasonOneChar
	case isSequence(runes, lower):
		return reasonSequence
	case p < MinPasswordRunes && p <= len(runes)/2: // two or more copies of a unit that would itself be too short
		return reasonRepeated
	case isCommon(lower):
		return reasonCommon
	case containsUserInput(lower, userInputs):
		return reasonPersonal
	}
	return ""
}

// period returns the length of the shortest unit that, repeated, spells r
// (the last repetition may be cut short), or len(r) if there is none.
func period(r []rune) int {
next:
	for p := 1; p < len(r); p++ {
		for i := p; i < len(r); i++ {
			if r[i] != r[i-p] {
				continue next
			}
		}
		return p
	}
	return len(r)
}

// keyboardRuns are typed in a row; each is doubled so runs that wrap
// around ("7890123456") are found too.
var keyboardRuns = func() []string {
	rows := []string{
		"1234567890", "qwertyuiop", "asdfghjkl", "zxcvbnm",
		"qwertyuiopasdfghjklzxcvbnm", "azertyuiop", "qwertzuiop", "qsdfghjklm", "wxcvbn",
		"1qaz2wsx3edc4rfv5tgb6yhn7ujm8ik9ol0p", "!@#$%^&*()", "`1234567890-=",
	}
	var runs []string
	for _, r := range rows {
		runs = append(runs, r+r, reverse(r+r))
	}
	return runs
}()

func reverse(s string) string {
	r := []rune(s)
	for i, j := 0, len(r)-1; i < j; i, j = i+1, j-1 {
		r[i], r[j] = r[j], r[i]
	}
	return string(r)
}

// isSequence reports whether r steps through consecutive code points in one
// direction (abcdefghij, 9876543210, and the same in any script) or is
// part of a keyboard run.
func isSequence(r []rune, s string) bool {
	step := r[1] - r[0]
	if step == 1 || step == -1 {
		consecutive := true
		for i := 2; i < len(r); i++ {
			if r[i]-r[i-1] != step {
				consecutive = false
				break
			}
		}
		if consecutive {
			return true
		}
	}
	for _, run := range keyboardRuns {
		if strings.Contains(run, s) {
			return true
		}
	}
	return false
}

// Look-alike swaps people make to "strengthen" a word; guessers undo them
// first. A digit can stand for two letters, hence two tables.
var (
	unleetSymbols = strings.NewReplacer("@", "a", "$", "s", "!", "i", "+", "t", "€", "e")
	unleetDigitsI = strings.NewReplacer("0", "o", "1", "i", "3", "e", "4", "a", "5", "s", "7", "t", "8", "b", "9", "g")
	unleetDigitsL = strings.NewReplacer("0", "o", "1", "l", "3", "e", "4", "a", "5", "s", "7", "t", "8", "b", "9", "g")
)

// isCommon reports whether lower, once look-alike symbols are swapped
// back and digits and symbols around it are dropped, is a common password.
func isCommon(lower string) bool {
	for _, s := range []string{lower, unleetSymbols.Replace(lower)} {
		stem := trimAffixes(s)
		for _, c := range []string{s, stem, unleetDigitsI.Replace(stem), unleetDigitsL.Replace(stem)} {
			if _, ok := commonPasswords[c]; ok {
				return true
			}
		}
	}
	return false
}

// trimAffixes drops digits, punctuation, symbols and spaces at both ends:
// "password2024!" is "password" with a suffix.
func trimAffixes(s string) string {
	return strings.TrimFunc(s, func(r rune) bool {
		return unicode.IsDigit(r) || unicode.IsPunct(r) || unicode.IsSymbol(r) || unicode.IsSpace(r)
	})
}

func containsUserInput(lower string, inputs []string) bool {
	for _, in := range inputs {
		in = strings.ToLower(norm.NFC.String(strings.TrimSpace(in)))
		candidates := []string{in}
		if local, _, ok := strings.Cut(in, "@"); ok {
			candidates = append(candidates, local)
			// A +tag is the person's own decoration, the rest is the name.
			if name, _, ok := strings.Cut(local, "+"); ok {
				candidates = append(candidates, name)
			}
		}
		for _, c := range candidates {
			if utf8.RuneCountInString(c) >= minPersonalRunes && strings.Contains(lower, c) {
				return true
			}
		}
	}
	return false
}
