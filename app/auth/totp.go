package auth

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"image/png"
	"strings"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/hotp"
	"github.com/pquerna/otp/totp"
)

// TOTP settings are the ones every authenticator app supports (RFC 6238
// defaults, Google Authenticator's key URI format): SHA-1, 6 digits, 30 s.
// Anything else is silently ignored by some apps, which then show wrong codes.
const (
	totpPeriod     = 30
	totpDigits     = otp.DigitsSix
	totpSecretSize = 20 // bytes; RFC 4226 recommends 160 bits
	totpQRSize     = 256
)

var totpOpts = hotp.ValidateOpts{Digits: totpDigits, Algorithm: otp.AlgorithmSHA1}

// NewTOTPSecret returns a new base32 TOTP secret and its otpauth:// URL for
// enrollment (shown as a QR code, see TOTPQRCodePNG). The secret must be
// stored sealed: unlike a password hash, it is what codes are made from.
func NewTOTPSecret(issuer, account string) (secret, otpauthURL string, err error) {
	if strings.TrimSpace(issuer) == "" || strings.TrimSpace(account) == "" {
		return "", "", errors.New("auth: new totp secret: issuer and account name are both required")
	}
	// The key URI uses "issuer:account" as its label; a colon in the issuer
	// would move the split and authenticator apps would show the wrong name.
	if strings.Contains(issuer, ":") {
		return "", "", fmt.Errorf("auth: new totp secret: issuer %q must not contain a colon", issuer)
	}
	key, err := totp.Generate(totp.GenerateOpts{
		Issuer:      issuer,
		AccountName: account,
		Period:      totpPeriod,
		SecretSize:  totpSecretSize,
		Digits:      totpDigits,
		Algorithm:   otp.AlgorithmSHA1,
	})
	if err != nil {
		return "", "", fmt.Errorf("auth: new totp secret: %w", err)
	}
	return key.Secret(), key.URL(), nil
}

// TOTPQRCodePNG renders otpauthURL as a 256×256 PNG QR code. It is made on
// the server so the secret never goes to a third-party QR service and the
// page needs no script to draw it.
func TOTPQRCodePNG(otpauthURL string) ([]byte, error) {
	if !strings.HasPrefix(otpauthURL, "otpauth://") {
		return nil, errors.New("auth: totp qr code: the URL must start with otpauth://")
	}
	key, err := otp.NewKeyFromURL(otpauthURL)
	if err != nil {
		return nil, fmt.Errorf("auth: totp qr code: %w", err)
	}
	img, err := key.Image(totpQRSize, totpQRSize)
	if err != nil {
		return nil, fmt.Errorf("auth: totp qr code: %w", err)
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return nil, fmt.Errorf("auth: totp qr code: encode png: %w", err)
	}
	return buf.Bytes(), nil
}

// ValidateTOTP checks a 6-digit code against secret at time now. It
// accepts the current 30-second step and one step either side, for clock
// drift and slow typing, and returns the step that matched. Steps at or
// before lastUsedStep are refused: the caller stores the returned step and
// passes it back next time, so a code seen over a shoulder or replayed from
// a log cannot be used again. Pass 0 (or -1) for lastUsedStep when the
// account has never used a code. Spaces in code are ignored.
func ValidateTOTP(secret, code string, now time.Time, lastUsedStep int64) (step int64, ok bool) {
	code = strings.ReplaceAll(code, " ", "")
	if len(code) != totpDigits.Length() {
		return 0, false
	}
	current := now.Unix() / totpPeriod
	// Every candidate step is computed and compared, so the time taken does
	// not say which step matched or whether an earlier one did.
	for s := current - 1; s <= current+1; s++ {
		if s < 0 {
			continue
		}
		want, err := hotp.GenerateCodeCustom(secret, uint64(s), totpOpts)
		if err != nil {
			return 0, false // a malformed secret matches nothing
		}
		if subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 && s > lastUsedStep && !ok {
			step, ok = s, true
		}
	}
	return step, ok
}

// Recovery codes use Crockford's base32 alphabet: no i, l, o or u, so
// nothing is misread when copied from paper, and reading back maps the
// look-alikes (o→0, i/l→1) so a misread letter still works. 12 characters
// of 5 bits give 60 bits per code.
const (
	recoveryAlphabet  = "0123456789abcdefghjkmnpqrstvwxyz"
	recoveryCodeLen   = 12
	recoveryGroupSize = 4
	// DefaultRecoveryCodes is how many codes a person gets at a time.
	DefaultRecoveryCodes = 10
)

var recoveryNormalizer = strings.NewReplacer("-", "", " ", "", "o", "0", "i", "1", "l", "1")

// NewRecoveryCodes returns n single-use recovery codes formatted
// xxxx-xxxx-xxxx, to show once, and their hashes, to store. SHA-256 is
// enough here, unlike for passwords: each code has 60 random bits, so even
// a leaked hash list cannot be searched (2^60 guesses per code), and a slow
// hash would only slow down the person locked out of their authenticator.
func NewRecoveryCodes(n int) (codes []string, hashes [][]byte) {
	if n < 1 {
		return nil, nil
	}
	codes = make([]string, n)
	hashes = make([][]byte, n)
	buf := make([]byte, recoveryCodeLen)
	for i := range codes {
		rand.Read(buf) // never returns an error since Go 1.24
		var b strings.Builder
		for j, c := range buf {
			if j > 0 && j%recoveryGroupSize == 0 {
				b.WriteByte('-')
			}
			// 256 is a multiple of 32, so the low 5 bits are uniform.
			b.WriteByte(recoveryAlphabet[c&31])
		}
		codes[i] = b.String()
		hashes[i] = hashRecoveryCode(normalizeRecoveryCode(codes[i]))
	}
	return codes, hashes
}

// MatchRecoveryCode returns the index in hashes of the code's hash, ignoring
// case, dashes and spaces. Every hash is compared, so timing does not
// reveal the position. The caller must delete (or nil out) the matched hash
// in the same transaction that logs the person in: that is what makes a
// code single-use. Nil entries never match.
func MatchRecoveryCode(code string, hashes [][]byte) (index int, ok bool) {
	c := normalizeRecoveryCode(code)
	if len(c) != recoveryCodeLen {
		return -1, false
	}
	for i := range len(c) {
		if strings.IndexByte(recoveryAlphabet, c[i]) < 0 {
			return -1, false
		}
	}
	h := hashRecoveryCode(c)
	index = -1
	for i, want := range hashes {
		if len(want) > 0 && EqualHashes(h, want) && index < 0 {
			index = i
		}
	}
	return index, index >= 0
}

func normalizeRecoveryCode(code string) string {
	return recoveryNormalizer.Replace(strings.ToLower(strings.TrimSpace(code)))
}

func hashRecoveryCode(normalized string) []byte {
	sum := sha256.Sum256([]byte("zimage recovery code\x00" + normalized))
	return sum[:]
}
