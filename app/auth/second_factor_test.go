package auth

import (
	"errors"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"zimage/app"
)

// TestLoginSaysSecondFactorRequired: after the right password, an account
// with 2FA and no code answers with ErrSecondFactorRequired (callers test
// it with errors.Is, not by reading a field's text), and still tells API
// clients which field to send.
func TestLoginSaysSecondFactorRequired(t *testing.T) {
	s, db := newTestService(t)
	ctx := t.Context()
	const pw = "correct horse battery staple"
	u, err := s.SignUp(ctx, SignUpInput{Email: "two@example.com", Username: "twofactor", Password: pw, AgeConfirmed: true})
	if err != nil {
		t.Fatal(err)
	}
	enr, err := s.StartTOTP(ctx, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	code, err := totp.GenerateCode(enr.Secret, db.Now().Add(-30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.ConfirmTOTP(ctx, u.ID, code); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		password string
		want     bool
	}{
		{"right password, no code", pw, true},
		{"wrong password, no code", "not the password at all", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.Login(ctx, LoginInput{Login: "twofactor", Password: tt.password})
			if got := errors.Is(err, ErrSecondFactorRequired); got != tt.want {
				t.Errorf("errors.Is(%v, ErrSecondFactorRequired) = %v, want %v", err, got, tt.want)
			}
			if app.ErrorCode(err) != app.EUNAUTHORIZED {
				t.Errorf("code of %v, want %s", err, app.EUNAUTHORIZED)
			}
			var ae *app.Error
			if tt.want && (!errors.As(err, &ae) || ae.Fields["totp_code"] == "") {
				t.Errorf("%v does not name the totp_code field for API clients", err)
			}
		})
	}
}
