package auth

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"zimage/app"
	"zimage/app/sqlite"
)

// Mail kinds of the account flows (sections of embed/mail/en.toml).
const (
	MailPasswordReset = "password_reset"
	MailVerifyEmail   = "verify_email"
	MailEmailChanged  = "email_changed"
	MailSecurity      = "security_change"
)

// securityNoticeFor is securityNotice for an account whose address is not
// at hand.
func (s *Service) securityNoticeFor(ctx context.Context, userID, change string) (*sqlite.Mail, error) {
	if !s.MailEnabled() {
		return nil, nil
	}
	prof, err := s.Profile(ctx, userID)
	if err != nil {
		return nil, err
	}
	return s.securityNotice(userID, prof.Email, change)
}

// securityNotice returns a notice to the person that change (as the mail
// says it: "password", …) happened, or nil when mail is off.
func (s *Service) securityNotice(userID, address, change string) (*sqlite.Mail, error) {
	if !s.MailEnabled() || address == "" {
		return nil, nil
	}
	return s.opts.Mail.New(userID, MailSecurity, address, map[string]any{"change": change, "link": "/settings/security"})
}

// ResetRequestThrottle bounds reset-link requests, per address and per
// account: three in a row are someone who did not find the mail; after that
// one more a minute, then every 2, 4 … minutes, up to one an hour. It stops
// a flood of mail at one inbox without telling anyone which addresses have
// accounts: unknown addresses are counted the same.
var ResetRequestThrottle = ThrottleConfig{
	FreeFailures: 3, BaseDelay: time.Minute, MaxDelay: time.Hour,
	Window: time.Hour, MaxEntries: 100_000,
}

// MailEnabled says whether this server sends mail.
func (s *Service) MailEnabled() bool { return s.opts.Mail != nil }

// errMailOff is what a flow that needs mail answers when mail is off.
func errMailOff(instead string) error {
	return app.Errorf(app.EUNAVAILABLE, "This server does not send email. %s", instead)
}

// RequestPasswordReset mails a reset link to the account with this address,
// if there is one that can sign in. The answer is the same whether or not
// there is (nil, or the same throttle error for the address), so it cannot
// be used to learn who has an account. With mail off it says to ask an
// administrator.
func (s *Service) RequestPasswordReset(ctx context.Context, email string) error {
	if !s.MailEnabled() {
		return errMailOff("Ask an administrator of this server for a password reset link.")
	}
	addr, err := NormalizeEmail(email)
	if err != nil {
		return app.FieldErrors{"email": fieldMessage(err, "email")}.Err()
	}
	now := s.now()
	index := s.v.BlindIndex("email", addr)
	addrKey := "reset:address:" + hex.EncodeToString(index)
	if wait, ok := s.resets.Check(addrKey, now); !ok {
		return retryAfter(wait)
	}
	s.resets.Fail(addrKey, now) // every request counts, answered or not
	rec, err := s.db.UserByEmailIndex(ctx, index)
	var ae *app.Error
	if errors.As(err, &ae) && ae.Code == app.ENOTFOUND {
		return nil
	} else if err != nil {
		return err
	}
	if !s.usable(rec) {
		return nil
	}
	// The account's own count catches floods spread over spellings of the
	// address; it is silent, since the answer must not differ from an
	// unknown address's.
	acctKey := "reset:account:" + rec.ID
	if _, ok := s.resets.Check(acctKey, now); !ok {
		return nil
	}
	s.resets.Fail(acctKey, now)
	token, hash := NewToken(ResetTokenPrefix)
	m, err := s.opts.Mail.New(rec.ID, MailPasswordReset, addr, map[string]any{
		"link": "/reset?token=" + token, "ttl": "1 hour"})
	if err != nil {
		return err
	}
	_, err = s.db.CreateMailedToken(ctx, sqlite.OneTimeToken{Kind: sqlite.TokenReset, Hash: hash, UserID: rec.ID, CreatedBy: rec.ID, TTL: ResetTokenTTL}, m,
		app.AuditEntry{ActorID: rec.ID, SubjectID: rec.ID, Action: app.AuditResetMail})
	if err != nil {
		return err
	}
	s.opts.Mail.Queued()
	return nil
}

// VerifyTokenTTL is how long an address confirmation link works;
// VerifyTokenPrefix marks its tokens.
const (
	VerifyTokenTTL    = 48 * time.Hour
	VerifyTokenPrefix = "zie_"
)

// verifyMail returns a token confirming address for userID and the message
// carrying its link. sealedNew is the address sealed for the token when it
// confirms a change (nil: the account's current address).
func (s *Service) verifyMail(userID, address string, change []byte) (*sqlite.OneTimeToken, *sqlite.Mail, error) {
	token, hash := NewToken(VerifyTokenPrefix)
	t := &sqlite.OneTimeToken{Kind: sqlite.TokenVerify, Hash: hash, UserID: userID, CreatedBy: userID, TTL: VerifyTokenTTL}
	if change != nil {
		sealed, err := s.v.Seal(userID, sqlite.VerifyEmailAAD(hash), change)
		if err != nil {
			return nil, nil, fmt.Errorf("auth: seal new address: %w", err)
		}
		t.SealedEmail = sealed
	}
	m, err := s.opts.Mail.New(userID, MailVerifyEmail, address, map[string]any{
		"link": "/verify-email?token=" + token, "ttl": "48 hours"})
	if err != nil {
		return nil, nil, err
	}
	return t, m, nil
}

// VerifyEmail confirms an address with the token from its mail. A token
// for a new address moves the account to it, and the old address is told.
func (s *Service) VerifyEmail(ctx context.Context, token string) error {
	hash := HashToken(token) // a token of another kind matches no verify row
	userID, sealedNew, err := s.db.VerifyToken(ctx, hash)
	if err != nil {
		return err
	}
	c := sqlite.EmailConfirmation{Hash: hash, UserID: userID,
		Audit: app.AuditEntry{ActorID: userID, SubjectID: userID, Action: app.AuditEmailVerified}}
	if sealedNew != nil {
		newAddr, err := s.v.Open(userID, sqlite.VerifyEmailAAD(hash), sealedNew)
		if err != nil {
			return fmt.Errorf("auth: open new address: %w", err)
		}
		old, err := s.Profile(ctx, userID)
		if err != nil {
			return err
		}
		c.NewIndex = s.v.BlindIndex("email", string(newAddr))
		if c.NewSealedEmail, err = s.v.Seal(userID, emailAAD(userID), newAddr); err != nil {
			return fmt.Errorf("auth: seal address: %w", err)
		}
		if s.MailEnabled() {
			if c.Notice, err = s.opts.Mail.New(userID, MailEmailChanged, old.Email, nil); err != nil {
				return err
			}
		}
		c.Audit.Action = app.AuditEmailChange
	}
	if err := s.db.ConfirmEmail(ctx, c); err != nil {
		return err
	}
	if c.Notice != nil {
		s.opts.Mail.Queued()
	}
	return nil
}

// RequestEmailChange starts moving the signed-in person's account to a new
// address: after their password, a confirmation link goes to the new
// address, and the account moves only when it is followed. Errors: EINVALID
// for a malformed address, EFORBIDDEN for a wrong password, ECONFLICT when
// another account uses the address, EUNAVAILABLE when mail is off.
func (s *Service) RequestEmailChange(ctx context.Context, p *Principal, password, email string) error {
	if !s.MailEnabled() {
		return errMailOff("Ask an administrator of this server to change your address.")
	}
	rec, err := s.db.UserByID(ctx, p.User.ID)
	if err != nil {
		return err
	}
	addr, err := NormalizeEmail(email)
	if err != nil {
		return app.FieldErrors{"email": fieldMessage(err, "email")}.Err()
	}
	if err := s.checkOwnPassword(ctx, rec, password, "password"); err != nil {
		return err
	}
	if other, err := s.db.UserByEmailIndex(ctx, s.v.BlindIndex("email", addr)); err == nil {
		msg := "An account already uses this address. Choose another one."
		if other.ID == rec.ID {
			msg = "This is already your address."
		}
		return &app.Error{Code: app.ECONFLICT, Message: msg, Fields: map[string]string{"email": msg}}
	}
	t, m, err := s.verifyMail(rec.ID, addr, []byte(addr))
	if err != nil {
		return err
	}
	if _, err := s.db.CreateMailedToken(ctx, *t, m, app.AuditEntry{ActorID: rec.ID, SubjectID: rec.ID, Action: app.AuditEmailVerifyMail, Detail: detail("why", "change")}); err != nil {
		return err
	}
	s.opts.Mail.Queued()
	return nil
}

// MailOutbox is what admins see of the outbox: counts by state, sent
// counts by kind, and the dead letters (kind, tries, the relay's answer;
// never the address or text, which stay sealed with each person's key).
type MailOutbox struct {
	Enabled bool
	Summary sqlite.MailSummary
	Dead    []*sqlite.Mail
}

// Outbox returns the admin view of the outbox.
func (s *Service) Outbox(ctx context.Context) (*MailOutbox, error) {
	sum, err := s.db.MailSummary(ctx)
	if err != nil {
		return nil, err
	}
	dead, err := s.db.DeadMail(ctx, 100)
	if err != nil {
		return nil, err
	}
	return &MailOutbox{Enabled: s.MailEnabled(), Summary: sum, Dead: dead}, nil
}

// RetryMail gives a dead letter a fresh round of tries. Errors: ENOTFOUND
// when id is not a dead letter.
func (s *Service) RetryMail(ctx context.Context, adminID, id string) error {
	if err := s.db.RetryMail(ctx, id, app.AuditEntry{ActorID: adminID, Action: app.AuditMailRetry, Detail: detail("id", id)}); err != nil {
		return err
	}
	s.opts.Mail.Queued()
	return nil
}
