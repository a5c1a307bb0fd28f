package auth

import (
	"context"
	"encoding/base32"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"zimage/app"
	"zimage/app/sqlite"
)

// checkOwnPassword checks a signed-in person's password, throttled like a
// login so a stolen session cannot be used to guess it.
func (s *Service) checkOwnPassword(ctx context.Context, rec *sqlite.UserRecord, pw, field string) error {
	now := s.now()
	key := userKey(rec.ID)
	if wait, ok := s.accounts.Check(key, now); !ok {
		return retryAfter(wait)
	}
	ok, _, err := s.hasher.Check(rec.PasswordHash, pw)
	if err != nil {
		return app.Wrap(err, "stored password hash for a user is unreadable")
	}
	if !ok {
		if s.accounts.Fail(key, now) {
			if err := s.db.AppendAudit(ctx, app.AuditEntry{ActorID: rec.ID, SubjectID: rec.ID, Action: app.AuditLockout, Detail: detail("scope", "password_check")}); err != nil {
				return err
			}
		}
		return &app.Error{Code: app.EFORBIDDEN, Message: "Your current password is wrong.", Fields: map[string]string{field: "wrong password"}}
	}
	s.accounts.Succeed(key)
	return nil
}

// ChangePassword sets a new password after checking the current one, and
// ends every other session of the user: whoever else was signed in with the
// old password is signed out. With revokeKeys, every API key is revoked too
// (the person is asked, since scripts break; the form's default is yes).
// The counts say what ended.
func (s *Service) ChangePassword(ctx context.Context, p *Principal, current, next string, revokeKeys bool) (sqlite.Revoked, error) {
	var revoked sqlite.Revoked
	rec, err := s.db.UserByID(ctx, p.User.ID)
	if err != nil {
		return revoked, err
	}
	if current == "" {
		return revoked, app.FieldErrors{"current_password": "Enter your current password."}.Err()
	}
	if err := s.checkOwnPassword(ctx, rec, current, "current_password"); err != nil {
		return revoked, err
	}
	prof, err := s.Profile(ctx, rec.ID)
	if err != nil {
		return revoked, err
	}
	if err := CheckPasswordStrength(next, rec.Username, prof.Email); err != nil {
		return revoked, app.FieldErrors{"new_password": fieldMessage(err, "password")}.Err()
	}
	hash, err := s.hasher.Hash(next)
	if err != nil {
		return revoked, err
	}
	keep := ""
	if p.Session != nil {
		keep = p.Session.ID
	}
	notice, err := s.securityNotice(rec.ID, prof.Email, "password")
	if err != nil {
		return revoked, err
	}
	err = s.db.UpdateUser(ctx, rec.ID, sqlite.UserChange{
		PasswordHash: &hash, RevokeSessions: true, KeepSessionID: keep,
		RevokeAPIKeys: revokeKeys, Revoked: &revoked, Mail: notice,
		Audit: []app.AuditEntry{{ActorID: rec.ID, SubjectID: rec.ID, Action: app.AuditPasswordChange,
			Detail: detail("api_keys_revoked", strconv.FormatBool(revokeKeys))}},
	})
	if err == nil && notice != nil {
		s.opts.Mail.Queued()
	}
	return revoked, err
}

// ListSessions returns the user's sessions, most recent first.
func (s *Service) ListSessions(ctx context.Context, userID string) ([]*app.Session, error) {
	rows, err := s.db.ListSessions(ctx, userID)
	if err != nil {
		return nil, err
	}
	return openRows(rows, s.v)
}

// openRows opens the sealed fields of each row (sessions, API keys).
func openRows[T any, R interface {
	Opened(sqlite.Unsealer) (*T, error)
}](rows []R, v sqlite.Unsealer) ([]*T, error) {
	out := make([]*T, len(rows))
	for i, r := range rows {
		var err error
		if out[i], err = r.Opened(v); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// RevokeSession ends one of the user's sessions; another user's session id
// is ENOTFOUND.
func (s *Service) RevokeSession(ctx context.Context, userID, sessionID string) error {
	return s.db.DeleteSession(ctx, userID, sessionID,
		app.AuditEntry{ActorID: userID, SubjectID: userID, Action: app.AuditSessionsRevoke, Detail: detail("session", sessionID)})
}

// RevokeOtherSessions ends all the user's sessions but keepID.
func (s *Service) RevokeOtherSessions(ctx context.Context, userID, keepID string) error {
	return s.db.UpdateUser(ctx, userID, sqlite.UserChange{RevokeSessions: true, KeepSessionID: keepID,
		Audit: []app.AuditEntry{{ActorID: userID, SubjectID: userID, Action: app.AuditSessionsRevoke, Detail: detail("which", "others")}}})
}

// TOTPEnrollment is what a person needs to add Z Image to an authenticator
// app: the secret to type in, or the otpauth URL the QR code encodes.
type TOTPEnrollment struct {
	Secret string
	URL    string
}

// StartTOTP makes a new pending TOTP secret for the user. It takes effect
// only after ConfirmTOTP. ECONFLICT if 2FA is already on.
func (s *Service) StartTOTP(ctx context.Context, userID string) (*TOTPEnrollment, error) {
	rec, err := s.db.UserByID(ctx, userID)
	if err != nil {
		return nil, err
	}
	if rec.TOTPEnabled {
		return nil, app.Errorf(app.ECONFLICT, "Two-factor authentication is already on. To move it to a new device, turn it off first (with your password and a code), then set it up again.")
	}
	secret, url, err := NewTOTPSecret(s.opts.Issuer, rec.Username)
	if err != nil {
		return nil, err
	}
	sealed, err := s.v.Seal(userID, totpAAD(userID), []byte(secret))
	if err != nil {
		return nil, fmt.Errorf("auth: seal totp secret: %w", err)
	}
	if err := s.db.UpdateUser(ctx, userID, sqlite.UserChange{SealedTOTPSecret: &sealed}); err != nil {
		return nil, err
	}
	return &TOTPEnrollment{Secret: secret, URL: url}, nil
}

// pendingTOTP returns the user's record and pending (not yet confirmed)
// secret, or ECONFLICT.
func (s *Service) pendingTOTP(ctx context.Context, userID string) (*sqlite.UserRecord, string, error) {
	rec, err := s.db.UserByID(ctx, userID)
	if err != nil {
		return nil, "", err
	}
	if rec.TOTPEnabled {
		return nil, "", app.Errorf(app.ECONFLICT, "Two-factor authentication is already on; its QR code is not shown again.")
	}
	secret, err := s.openTOTPSecret(rec)
	return rec, secret, err
}

// TOTPQRCode renders the pending secret's QR code as a PNG. It is not
// available once 2FA is on: showing the secret again would let anyone with
// a session copy the second factor.
func (s *Service) TOTPQRCode(ctx context.Context, userID string) ([]byte, error) {
	rec, secret, err := s.pendingTOTP(ctx, userID)
	if err != nil {
		return nil, err
	}
	url, err := totpURL(s.opts.Issuer, rec.Username, secret)
	if err != nil {
		return nil, err
	}
	return TOTPQRCodePNG(url)
}

// ConfirmTOTP turns 2FA on once the person proves their app makes the
// right codes, and returns DefaultRecoveryCodes recovery codes, shown once.
func (s *Service) ConfirmTOTP(ctx context.Context, userID, code string) ([]string, error) {
	rec, secret, err := s.pendingTOTP(ctx, userID)
	if err != nil {
		return nil, err
	}
	step, ok := ValidateTOTP(secret, code, s.now(), rec.TOTPLastStep)
	if !ok {
		return nil, &app.Error{Code: app.EINVALID, Message: "The code does not match. Check that your device's clock is right and enter the code your app shows now.",
			Fields: map[string]string{"code": "does not match"}}
	}
	codes, hashes := NewRecoveryCodes(DefaultRecoveryCodes)
	on := true
	notice, err := s.securityNoticeFor(ctx, userID, "two-factor authentication")
	if err != nil {
		return nil, err
	}
	err = s.db.UpdateUser(ctx, userID, sqlite.UserChange{
		TOTPEnabled: &on, TOTPLastStep: &step, RecoveryHashes: hashes, SetRecovery: true, Mail: notice,
		Audit: []app.AuditEntry{{ActorID: userID, SubjectID: userID, Action: app.AuditTOTPEnable}},
	})
	if err != nil {
		return nil, err
	}
	if notice != nil {
		s.opts.Mail.Queued()
	}
	return codes, nil
}

// DisableTOTP turns 2FA off. It needs the password and a current code (or
// a recovery code): a session alone must not be able to remove the second
// factor.
func (s *Service) DisableTOTP(ctx context.Context, userID, password, code string) error {
	rec, err := s.db.UserByID(ctx, userID)
	if err != nil {
		return err
	}
	if !rec.TOTPEnabled {
		return app.Errorf(app.ECONFLICT, "Two-factor authentication is already off.")
	}
	fe := app.FieldErrors{}
	if password == "" {
		fe.Add("password", "Enter your password.")
	}
	if strings.TrimSpace(code) == "" {
		fe.Add("code", "Enter a code from your authenticator app, or a recovery code.")
	}
	if err := fe.Err(); err != nil {
		return err
	}
	if err := s.checkOwnPassword(ctx, rec, password, "password"); err != nil {
		return err
	}
	c := sqlite.UserChange{}
	if step, err := s.checkTOTP(rec, code, s.now()); err == nil {
		c.TOTPLastStep = &step
	} else if h, rerr := s.matchRecovery(ctx, userID, code); rerr == nil {
		c.UseRecoveryHash = h
	} else {
		return &app.Error{Code: app.EFORBIDDEN, Message: "The code is wrong or was already used. Enter the code your authenticator app shows now, or an unused recovery code.",
			Fields: map[string]string{"code": "wrong or already used"}}
	}
	off, none := false, []byte{}
	c.TOTPEnabled, c.SealedTOTPSecret, c.SetRecovery = &off, &none, true
	c.Audit = []app.AuditEntry{{ActorID: userID, SubjectID: userID, Action: app.AuditTOTPDisable}}
	if c.Mail, err = s.securityNoticeFor(ctx, userID, "two-factor authentication"); err != nil {
		return err
	}
	if err := s.db.UpdateUser(ctx, userID, c); err != nil {
		return err
	}
	if c.Mail != nil {
		s.opts.Mail.Queued()
	}
	return nil
}

const maxAPIKeyNameRunes = 100

// CreateAPIKey makes a key for the principal's user and returns it with
// the token, which is shown once and never stored. The admin scope is for
// admins only.
func (s *Service) CreateAPIKey(ctx context.Context, p *Principal, name string, scopes []string) (*app.APIKey, string, error) {
	fe := app.FieldErrors{}
	name = strings.TrimSpace(name)
	switch n := utf8.RuneCountInString(name); {
	case n == 0:
		fe.Add("name", "Give the key a name, such as the script or machine that will use it.")
	case n > maxAPIKeyNameRunes:
		fe.Add("name", fmt.Sprintf("Use at most %d characters for the key's name.", maxAPIKeyNameRunes))
	case app.CheckText("key name", name, app.OneLine) != "":
		fe.Add("name", app.CheckText("key name", name, app.OneLine))
	}
	var clean []string
	for _, sc := range scopes {
		sc = strings.ToLower(strings.TrimSpace(sc))
		switch {
		case !slices.Contains(app.AllScopes, sc):
			fe.Add("scopes", fmt.Sprintf("Unknown scope %q: use generate, read or admin.", sc))
		case sc == app.ScopeAdmin && p.User.Role != app.RoleAdmin:
			fe.Add("scopes", "Only admins can create keys with the admin scope.")
		case !slices.Contains(clean, sc):
			clean = append(clean, sc)
		}
	}
	if len(scopes) == 0 {
		fe.Add("scopes", "Choose at least one scope: generate, read or admin.")
	}
	if err := fe.Err(); err != nil {
		return nil, "", err
	}
	slices.SortFunc(clean, func(a, b string) int { return slices.Index(app.AllScopes, a) - slices.Index(app.AllScopes, b) })
	token, hash := NewToken(APIKeyPrefix)
	k := &app.APIKey{ID: s.newID(), UserID: p.User.ID, Name: name, Prefix: TokenDisplayID(token), Scopes: clean}
	sealedName, err := s.v.Seal(k.UserID, sqlite.APIKeyNameAAD(k.ID), []byte(name))
	if err != nil {
		return nil, "", fmt.Errorf("auth: seal api key name: %w", err)
	}
	err = s.db.CreateAPIKey(ctx, k, sealedName, hash, app.AuditEntry{ActorID: p.User.ID, SubjectID: p.User.ID, Action: app.AuditAPIKeyCreate,
		Detail: detail("key", k.ID, "scopes", strings.Join(clean, ","))})
	if err != nil {
		return nil, "", err
	}
	return k, token, nil
}

// ListAPIKeys returns the user's keys, revoked ones included.
func (s *Service) ListAPIKeys(ctx context.Context, userID string) ([]*app.APIKey, error) {
	rows, err := s.db.ListAPIKeys(ctx, userID)
	if err != nil {
		return nil, err
	}
	return openRows(rows, s.v)
}

// RevokeAPIKey revokes one of the user's keys; anyone else's is ENOTFOUND.
func (s *Service) RevokeAPIKey(ctx context.Context, userID, keyID string) error {
	return s.db.RevokeAPIKey(ctx, userID, keyID, app.AuditEntry{ActorID: userID, SubjectID: userID, Action: app.AuditAPIKeyRevoke, Detail: detail("key", keyID)})
}

// totpURL rebuilds the otpauth URL of a stored secret, in exactly the
// format NewTOTPSecret gives.
func totpURL(issuer, account, secret string) (string, error) {
	raw, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(secret)
	if err != nil {
		return "", fmt.Errorf("auth: stored totp secret: %w", err)
	}
	key, err := totp.Generate(totp.GenerateOpts{Issuer: issuer, AccountName: account, Period: totpPeriod,
		Secret: raw, Digits: totpDigits, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		return "", fmt.Errorf("auth: totp url: %w", err)
	}
	return key.URL(), nil
}
