package auth

import (
	"bytes"
	"image"
	"image/png"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"
)

// rfcSecret is RFC 6238's SHA-1 test seed "12345678901234567890" in base32.
const rfcSecret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"

func TestValidateTOTPRFC6238Vectors(t *testing.T) {
	// RFC 6238 Appendix B gives 8-digit codes; the 6-digit code is the
	// last six digits of the same truncated value.
	tests := []struct {
		unix int64
		code string
	}{
		{59, "287082"},
		{1111111109, "081804"},
		{1111111111, "050471"},
		{1234567890, "005924"},
		{2000000000, "279037"},
		{20000000000, "353130"},
	}
	for _, tt := range tests {
		t.Run(tt.code, func(t *testing.T) {
			step, ok := ValidateTOTP(rfcSecret, tt.code, time.Unix(tt.unix, 0), 0)
			if !ok || step != tt.unix/30 {
				t.Errorf("ValidateTOTP = %d, %v; want %d, true", step, ok, tt.unix/30)
			}
		})
	}
}

func TestValidateTOTPSkewAndReuse(t *testing.T) {
	now := time.Date(2026, 11, 28, 12, 0, 10, 0, time.UTC)
	current := now.Unix() / 30
	codeAt := func(offset int) string {
		t.Helper()
		code, err := totp.GenerateCode(rfcSecret, now.Add(time.Duration(offset)*30*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		return code
	}
	tests := []struct {
		name     string
		code     string
		lastUsed int64
		wantStep int64
		wantOK   bool
	}{
		{"current step", codeAt(0), 0, current, true},
		{"one step behind", codeAt(-1), 0, current - 1, true},
		{"one step ahead", codeAt(1), 0, current + 1, true},
		{"two steps behind", codeAt(-2), 0, 0, false},
		{"two steps ahead", codeAt(2), 0, 0, false},
		{"with a space", codeAt(0)[:3] + " " + codeAt(0)[3:], 0, current, true},
		{"same step again", codeAt(0), current, 0, false},
		{"earlier step after a later one", codeAt(-1), current, 0, false},
		{"step behind after two behind", codeAt(-1), current - 2, current - 1, true},
		{"next step after current", codeAt(1), current, current + 1, true},
		{"any step after a future one", codeAt(0), current + 1, 0, false},
		{"five digits", codeAt(0)[:5], 0, 0, false},
		{"seven digits", codeAt(0) + "0", 0, 0, false},
		{"letters", "abcdef", 0, 0, false},
		{"empty", "", 0, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			step, ok := ValidateTOTP(rfcSecret, tt.code, now, tt.lastUsed)
			if step != tt.wantStep || ok != tt.wantOK {
				t.Errorf("ValidateTOTP(%q, last %d) = %d, %v; want %d, %v", tt.code, tt.lastUsed, step, ok, tt.wantStep, tt.wantOK)
			}
		})
	}
	if _, ok := ValidateTOTP("not base32 at all!", codeAt(0), now, 0); ok {
		t.Error("a malformed secret accepted a code")
	}
}

func TestNewTOTPSecret(t *testing.T) {
	secret, raw, err := NewTOTPSecret("Z Image", "alice@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^[A-Z2-7]{32}$`).MatchString(secret) {
		t.Errorf("secret %q is not 160 bits of unpadded base32", secret)
	}
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	checks := []struct{ name, got, want string }{
		{"scheme", u.Scheme, "otpauth"},
		{"type", u.Host, "totp"},
		{"label", u.Path, "/Z Image:alice@example.com"},
		{"issuer", q.Get("issuer"), "Z Image"},
		{"secret", q.Get("secret"), secret},
		{"digits", q.Get("digits"), "6"},
		{"period", q.Get("period"), "30"},
		{"algorithm", q.Get("algorithm"), "SHA1"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q (url %s)", c.name, c.got, c.want, raw)
		}
	}
	// The secret must work with our own validator.
	now := time.Now()
	code, _ := totp.GenerateCode(secret, now)
	if _, ok := ValidateTOTP(secret, code, now, 0); !ok {
		t.Error("a code made from the new secret does not validate")
	}
	other, _, _ := NewTOTPSecret("Z Image", "alice@example.com")
	if other == secret {
		t.Error("two secrets are equal")
	}
}

func TestNewTOTPSecretRefuses(t *testing.T) {
	tests := []struct{ name, issuer, account string }{
		{"no issuer", "", "alice"},
		{"blank issuer", "  ", "alice"},
		{"no account", "Z Image", ""},
		{"colon in issuer", "Z:Image", "alice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, _, err := NewTOTPSecret(tt.issuer, tt.account); err == nil {
				t.Error("err = nil, want an error")
			}
		})
	}
}

func TestTOTPQRCodePNG(t *testing.T) {
	_, raw, err := NewTOTPSecret("Z Image", "alice")
	if err != nil {
		t.Fatal(err)
	}
	b, err := TOTPQRCodePNG(raw)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("not a PNG: %v", err)
	}
	if got := img.Bounds(); got != image.Rect(0, 0, 256, 256) {
		t.Errorf("bounds = %v, want 256×256", got)
	}
	dark, light := 0, 0
	for y := 0; y < 256; y++ {
		for x := 0; x < 256; x++ {
			if r, _, _, _ := img.At(x, y).RGBA(); r < 0x8000 {
				dark++
			} else {
				light++
			}
		}
	}
	if dark < 256*256/5 || light < 256*256/5 {
		t.Errorf("dark %d, light %d pixels: does not look like a QR code", dark, light)
	}

	for _, bad := range []string{"", "https://example.com/", "otpauth://totp/" + strings.Repeat("x", 5000)} {
		if _, err := TOTPQRCodePNG(bad); err == nil {
			t.Errorf("TOTPQRCodePNG(%.30q…) err = nil, want an error", bad)
		}
	}
}

func TestRecoveryCodes(t *testing.T) {
	codes, hashes := NewRecoveryCodes(DefaultRecoveryCodes)
	if len(codes) != 10 || len(hashes) != 10 {
		t.Fatalf("got %d codes and %d hashes, want 10 of each", len(codes), len(hashes))
	}
	format := regexp.MustCompile(`^[0-9a-hjkmnp-tv-z]{4}-[0-9a-hjkmnp-tv-z]{4}-[0-9a-hjkmnp-tv-z]{4}$`)
	seen := map[string]bool{}
	for i, c := range codes {
		if !format.MatchString(c) {
			t.Errorf("code %q does not match %s", c, format)
		}
		if seen[c] {
			t.Errorf("code %q made twice", c)
		}
		seen[c] = true
		if i2, ok := MatchRecoveryCode(c, hashes); !ok || i2 != i {
			t.Errorf("MatchRecoveryCode(code %d) = %d, %v; want %d, true", i, i2, ok, i)
		}
	}

	c := codes[3]
	plain := strings.ReplaceAll(c, "-", "")
	tests := []struct {
		name, code string
		want       int
	}{
		{"upper case", strings.ToUpper(c), 3},
		{"no dashes", plain, 3},
		{"spaces", plain[:4] + " " + plain[4:8] + " " + plain[8:], 3},
		{"surrounding space", "  " + c + "\n", 3},
		{"one character off", c[:13] + string(nextRecoveryChar(c[13])), -1},
		{"too short", c[:13], -1},
		{"too long", c + "a", -1},
		{"character outside the alphabet", c[:13] + "!", -1},
		{"empty", "", -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			i, ok := MatchRecoveryCode(tt.code, hashes)
			if i != tt.want || ok != (tt.want >= 0) {
				t.Errorf("MatchRecoveryCode(%q) = %d, %v; want %d", tt.code, i, ok, tt.want)
			}
		})
	}

	t.Run("single use", func(t *testing.T) {
		stored := append([][]byte(nil), hashes...)
		i, ok := MatchRecoveryCode(codes[5], stored)
		if !ok {
			t.Fatal("first use refused")
		}
		stored[i] = nil // what the store does in the login transaction
		if _, ok := MatchRecoveryCode(codes[5], stored); ok {
			t.Error("a used code matched again")
		}
		if _, ok := MatchRecoveryCode(codes[6], stored); !ok {
			t.Error("another code stopped working")
		}
	})

	t.Run("look-alike letters", func(t *testing.T) {
		stored := [][]byte{hashRecoveryCode("0011abcd2345")}
		for _, typed := range []string{"0011-abcd-2345", "OO11-ABCD-2345", "0oIL abcd 2345", "oOli-ABCD-2345"} {
			if _, ok := MatchRecoveryCode(typed, stored); !ok {
				t.Errorf("%q does not match 0011-abcd-2345", typed)
			}
		}
	})

	if codes, hashes := NewRecoveryCodes(0); codes != nil || hashes != nil {
		t.Error("NewRecoveryCodes(0) made codes")
	}
}

func nextRecoveryChar(c byte) byte {
	i := strings.IndexByte(recoveryAlphabet, c)
	return recoveryAlphabet[(i+1)%len(recoveryAlphabet)]
}
