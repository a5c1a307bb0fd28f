package auth

import (
	"strings"
	"testing"
)

func TestNormalizeEmail(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"plain", "alice@example.com", "alice@example.com"},
		{"trimmed", "  alice@example.com\n", "alice@example.com"},
		{"domain lowercased", "alice@Example.COM", "alice@example.com"},
		{"local part lowercased", "Alice.Smith@example.com", "alice.smith@example.com"},
		{"plus tag kept", "alice+zimage@example.com", "alice+zimage@example.com"},
		{"subdomain", "a@mail.example.co.uk", "a@mail.example.co.uk"},
		{"hyphenated domain", "a@my-host.example", "a@my-host.example"},
		{"international", "Jürgen@Bücher.de", "jürgen@bücher.de"},
		{"decomposed composes", "ju\u0308rgen@example.de", "jürgen@example.de"},
		{"local part of 64", strings.Repeat("a", 64) + "@example.com", strings.Repeat("a", 64) + "@example.com"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := NormalizeEmail(tt.in)
			if err != nil {
				t.Fatalf("NormalizeEmail(%q) error: %v", tt.in, err)
			}
			if got != tt.want {
				t.Errorf("NormalizeEmail(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestNormalizeEmailRefuses(t *testing.T) {
	longDomain := strings.Repeat("d", 60) + "." + strings.Repeat("e", 60) + "." + strings.Repeat("f", 60) + "." + strings.Repeat("g", 60) + ".com"
	tests := []struct {
		name, in, want string
	}{
		{"empty", "", "enter your email"},
		{"no at", "alice.example.com", "exactly one @"},
		{"two ats", "alice@home@example.com", "exactly one @"},
		{"display name", "Alice <alice@example.com>", "just the address"},
		{"angle brackets", "<alice@example.com>", "just the address"},
		{"comment", "alice@example.com (Alice)", "just the address"},
		{"quoted local part", `"alice"@example.com`, "just the address"},
		{"space inside", "ali ce@example.com", "space or an invisible"},
		{"zero-width space", "alice\u200b@example.com", "space or an invisible"},
		{"control character", "alice\x00@example.com", "space or an invisible"},
		{"no dot in domain", "alice@localhost", "domain name"},
		{"IP literal", "alice@[192.168.0.1]", "domain name"},
		{"IP address", "alice@192.168.0.1", "domain name"},
		{"domain starts with dot", "alice@.example.com", "look like an email"},
		{"double dot in domain", "alice@example..com", "look like an email"},
		{"trailing dot", "alice@example.com.", "look like an email"},
		{"label starts with hyphen", "alice@-example.com", "domain name"},
		{"label ends with hyphen", "alice@example-.com", "domain name"},
		{"underscore in domain", "alice@ex_ample.com", "domain name"},
		{"label of 64", "a@" + strings.Repeat("x", 64) + ".com", "domain name"},
		{"local part of 65", strings.Repeat("a", 65) + "@example.com", "at most 64"},
		{"255 bytes", "a@" + longDomain + strings.Repeat("h", 255-len("a@"+longDomain)), "at most 254"},
		{"double dot in local part", "al..ice@example.com", "look like an email"},
		{"empty local part", "@example.com", "look like an email"},
		{"empty domain", "alice@", "look like an email"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := NormalizeEmail(tt.in)
			if err == nil {
				t.Fatalf("NormalizeEmail(%q) = %q, want an error", tt.in, got)
			}
			if reason := fieldReason(t, err, "email"); !strings.Contains(reason, tt.want) {
				t.Errorf("reason = %q, want it to contain %q", reason, tt.want)
			}
		})
	}
}

func TestNormalizeEmailCaseUnique(t *testing.T) {
	a, _ := NormalizeEmail("Ann@Example.com")
	b, _ := NormalizeEmail("ann@example.COM")
	if a == "" || a != b {
		t.Errorf("%q and %q differ; one mailbox must have one normal form", a, b)
	}
}
