package auth

import (
	"fmt"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"

	"zimage/app"
)

// Username length limits, in characters after normalization.
const (
	MinUsernameRunes = 3
	MaxUsernameRunes = 32
	// Input longer than this is refused before any normalization work.
	maxUsernameInputBytes = 256
	// Marks stacked on one letter beyond this are decoration ("Zalgo
	// text"), not writing.
	maxStackedMarks = 3
)

// NormalizeUsername returns the canonical form of a username, the one that
// is stored, compared and shown, or an *app.Error with code EINVALID and
// Fields{"username": reason}. Two names that look alike must not both be
// registrable, and one person's name must look the same everywhere, so:
//
//   - Surrounding spaces are trimmed. Invisible and formatting characters
//     (zero-width space, zero-width joiner and non-joiner, soft hyphen,
//     direction marks, variation selectors, control characters, inner
//     spaces) are refused rather than removed, so nobody is surprised by
//     what was stored.
//   - The name is NFKC-normalized and case-folded (NFKC_Casefold): "ＡＬＩＣＥ"
//     (fullwidth), "Alice" and "alice" are the same name, "alice".
//   - It has 3 to 32 characters: letters and digits of any script, and the
//     separators _ - . which may not start or end the name or follow one
//     another. Combining marks are allowed on a letter (as Devanagari or
//     Thai need), at most 3 in a row.
//   - Letters come from one script, or from a combination used to write
//     one language (Latin with Han, Hiragana and Katakana; Latin with Han
//     and Hangul; Latin with Han and Bopomofo), as Unicode UTS #39 "highly
//     restrictive" allows. Latin mixed with Cyrillic or Greek is refused:
//     "раypal" with a Cyrillic "р" and "а" would pass for "paypal".
//   - A name written only in Cyrillic or Greek letters that look like
//     Latin ones ("рау" for "pay") is refused too, since it would pass
//     for a Latin name.
func NormalizeUsername(s string) (string, error) {
	name, reason := normalizeUsername(s)
	if reason != "" {
		return "", app.FieldErrors{"username": reason}.Err()
	}
	return name, nil
}

var caseFolder = cases.Fold()

func normalizeUsername(s string) (string, string) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", "Please choose a username."
	}
	if len(s) > maxUsernameInputBytes {
		return "", fmt.Sprintf("Use at most %d characters for your username.", MaxUsernameRunes)
	}
	if !utf8.ValidString(s) {
		return "", "Your username contains bytes that are not text. Please type it again."
	}
	for _, r := range s {
		if isInvisible(r) {
			return "", fmt.Sprintf("Your username contains an invisible or formatting character (%U, such as a space, zero-width space or joiner). Please type it again without it.", r)
		}
	}
	// Case folding can produce text that is no longer in NFKC, hence the
	// second pass (the definition of NFKC_Casefold in Unicode §3.13).
	name := norm.NFKC.String(caseFolder.String(norm.NFKC.String(s)))
	n := utf8.RuneCountInString(name)
	if n < MinUsernameRunes {
		return "", fmt.Sprintf("Use at least %d characters for your username.", MinUsernameRunes)
	}
	if n > MaxUsernameRunes {
		return "", fmt.Sprintf("Use at most %d characters for your username.", MaxUsernameRunes)
	}
	if reason := checkUsernameRunes(name); reason != "" {
		return "", reason
	}
	if reason := checkUsernameScripts(name); reason != "" {
		return "", reason
	}
	return name, ""
}

// isInvisible reports characters that display as nothing or change how
// their neighbours display: they let two different names look the same.
func isInvisible(r rune) bool {
	return unicode.In(r, unicode.Cc, unicode.Cf, unicode.Co, unicode.Cs, unicode.Zs, unicode.Zl, unicode.Zp,
		unicode.Variation_Selector, unicode.Other_Default_Ignorable_Code_Point) ||
		r == utf8.RuneError
}

func isUsernameSeparator(r rune) bool { return r == '_' || r == '-' || r == '.' }

func checkUsernameRunes(name string) string {
	var prev rune
	marks := 0
	for i, r := range name {
		switch {
		case isUsernameSeparator(r):
			if i == 0 || i+1 == len(name) {
				return "Your username can't start or end with _, - or . — please put letters or digits there."
			}
			if isUsernameSeparator(prev) {
				return "Your username can't have two of _, - and . in a row; please keep just one."
			}
			marks = 0
		case unicode.IsLetter(r) || unicode.IsDigit(r):
			marks = 0
		case unicode.IsMark(r):
			if i == 0 || !(unicode.IsLetter(prev) || unicode.IsMark(prev)) {
				return "Your username has an accent or mark that isn't on a letter. Please type it again."
			}
			if marks++; marks > maxStackedMarks {
				return "Your username stacks too many accents or marks on one letter. Please use at most three."
			}
		default:
			return fmt.Sprintf("Use only letters, digits and the separators _ - . in your username; %q is not allowed.", string(r))
		}
		prev = r
	}
	return ""
}

// Scripts that may share a name, per UTS #39's "highly restrictive" level;
// a name's scripts must all fit in one of these sets.
var allowedScriptSets = [][]string{
	{"Latin", "Han", "Hiragana", "Katakana"},
	{"Latin", "Han", "Hangul"},
	{"Latin", "Han", "Bopomofo"},
}

// Checked first because nearly every name is in one of them; the rest of
// unicode.Scripts is searched only for the others.
var frequentScripts = []string{"Latin", "Common", "Inherited", "Cyrillic", "Greek", "Han", "Hiragana", "Katakana", "Hangul", "Arabic"}

func scriptOf(r rune) string {
	for _, name := range frequentScripts {
		if unicode.Is(unicode.Scripts[name], r) {
			return name
		}
	}
	for name, table := range unicode.Scripts {
		if unicode.Is(table, r) {
			return name
		}
	}
	return "Unknown"
}

// latinLookalikes are lowercase Cyrillic and Greek letters that, in
// common fonts, cannot be told from a Latin letter.
var latinLookalikes = map[rune]bool{
	// Cyrillic а е о р с у х і ј ѕ ԁ һ ԛ ԝ ӏ ү
	'а': true, 'е': true, 'о': true, 'р': true, 'с': true, 'у': true, 'х': true, 'і': true,
	'ј': true, 'ѕ': true, 'ԁ': true, 'һ': true, 'ԛ': true, 'ԝ': true, 'ӏ': true, 'ү': true,
	// Greek ο ν ι κ ρ υ α χ γ
	'ο': true, 'ν': true, 'ι': true, 'κ': true, 'ρ': true, 'υ': true, 'α': true, 'χ': true, 'γ': true,
}

func checkUsernameScripts(name string) string {
	seen := map[string]bool{}
	var order []string
	allLookalike := true
	for _, r := range name {
		sc := scriptOf(r)
		if sc == "Common" || sc == "Inherited" {
			continue // digits, separators, combining marks
		}
		if !seen[sc] {
			seen[sc] = true
			order = append(order, sc)
		}
		if unicode.IsLetter(r) && !latinLookalikes[r] {
			allLookalike = false
		}
	}
	if len(order) > 1 && !fitsAllowedSet(order) {
		return fmt.Sprintf("Your username mixes letters from different scripts (%s), which lets one name imitate another. Please use letters from one script.", strings.Join(order, " and "))
	}
	if len(order) == 1 && (order[0] == "Cyrillic" || order[0] == "Greek") && allLookalike {
		return fmt.Sprintf("Your username uses only %s letters that look like Latin ones, so it could pass for another name. Please write it in Latin letters, or include letters that only %s has.", order[0], order[0])
	}
	return ""
}

func fitsAllowedSet(scripts []string) bool {
next:
	for _, set := range allowedScriptSets {
		for _, sc := range scripts {
			if !slices.Contains(set, sc) {
				continue next
			}
		}
		return true
	}
	return false
}
