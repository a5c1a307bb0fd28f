package auth

import (
	"fmt"
	"net/mail"
	"strings"
	"unicode"

	"golang.org/x/text/unicode/norm"

	"zimage/app"
)

// Email length limits from RFC 5321 (a path is at most 256 octets including
// the angle brackets, a local part at most 64) and RFC 1035 (labels).
const (
	MaxEmailBytes       = 254
	maxEmailLocalBytes  = 64
	maxDomainLabelBytes = 63
)

// NormalizeEmail returns the canonical form of an email address, the one
// stored and compared, or an *app.Error with code EINVALID and
// Fields{"email": reason}.
//
// The address is trimmed, NFC-normalized and lowercased entirely. RFC 5321
// lets a server treat the local part as case-sensitive, but the providers
// people use do not, and an address must be unique in any case: "Ann@x.com"
// and "ann@x.com" are one person, and treating them as two would let a
// second account be made for the same mailbox. What is left must be a bare
// address net/mail accepts (no display name, comments, quotes or angle
// brackets) of at most 254 bytes, with exactly one @, a local part of at
// most 64 bytes, and a domain name with a dot (no IP literal, no single
// label such as "localhost", which cannot receive mail from the internet).
func NormalizeEmail(s string) (string, error) {
	addr, reason := normalizeEmail(s)
	if reason != "" {
		return "", app.FieldErrors{"email": reason}.Err()
	}
	return addr, nil
}

const (
	emailExample   = "name@example.com"
	justTheAddress = "Please enter just the address, like " + emailExample + ", without a name, comment, quotes or angle brackets."
)

func normalizeEmail(s string) (string, string) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", "Please enter your email address."
	}
	if len(s) > MaxEmailBytes {
		return "", fmt.Sprintf("An email address can have at most %d characters. Please check yours, or use a shorter one.", MaxEmailBytes)
	}
	// Checked before spaces: "Ann <ann@x.com>" has a space, but what the
	// person needs to hear is to leave the name out.
	if strings.ContainsAny(s, `<>"()`) {
		return "", justTheAddress
	}
	for _, r := range s {
		if unicode.IsSpace(r) || unicode.In(r, unicode.Cc, unicode.Cf) || r == '\uFFFD' {
			return "", "Your email address contains a space or an invisible character. Please type it again."
		}
	}
	s = strings.ToLower(norm.NFC.String(s))
	if n := strings.Count(s, "@"); n != 1 {
		return "", "An email address has exactly one @, as in " + emailExample + ". Please check yours."
	}
	parsed, err := mail.ParseAddress(s)
	if err != nil {
		return "", "This doesn't look like an email address. Please check it; it should look like " + emailExample + "."
	}
	if parsed.Name != "" || parsed.Address != s {
		return "", justTheAddress
	}
	local, domain, _ := strings.Cut(s, "@")
	if len(local) > maxEmailLocalBytes {
		return "", fmt.Sprintf("The part before the @ can have at most %d characters. Please check your address.", maxEmailLocalBytes)
	}
	if reason := checkEmailDomain(domain); reason != "" {
		return "", reason
	}
	return s, ""
}

func checkEmailDomain(domain string) string {
	const bad = "The part after the @ must be a domain name such as example.com. Please check your address."
	if strings.HasPrefix(domain, "[") || !strings.Contains(domain, ".") {
		return bad
	}
	labels := strings.Split(domain, ".")
	for _, l := range labels {
		if l == "" || len(l) > maxDomainLabelBytes || strings.HasPrefix(l, "-") || strings.HasSuffix(l, "-") {
			return bad
		}
		for _, r := range l {
			if !(r == '-' || unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsMark(r)) {
				return bad
			}
		}
	}
	// An all-digit top-level label means an IP address, not a domain.
	if strings.Trim(labels[len(labels)-1], "0123456789") == "" {
		return bad
	}
	return ""
}
