package auth

import (
	"context"
	"encoding/hex"
	"errors"
	"time"

	"zimage/app"
	"zimage/app/sqlite"
)

// Mail kinds of the account flows (sections of embed/mail/en.toml).
const (
	MailPasswordReset = "password_reset"
	MailVerifyEmail   = "verify_email"
	MailEmailChanged  = "email_changed"
)

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
