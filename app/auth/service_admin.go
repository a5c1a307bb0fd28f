package auth

import (
	"context"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"zimage/app"
	"zimage/app/sqlite"
)

// SignupMode returns the sign-up mode in force: an admin's choice if one
// was made, else the configured one.
func (s *Service) SignupMode(ctx context.Context) (string, error) {
	v, err := s.db.Setting(ctx, signupSettingKey)
	switch {
	case err == nil:
		return v, nil
	case app.ErrorCode(err) == app.ENOTFOUND:
		return s.opts.Signup, nil
	}
	return "", err
}

// SetSignupMode changes the sign-up mode at run time; it overrides the
// config until changed again.
func (s *Service) SetSignupMode(ctx context.Context, actorID, mode string) error {
	if mode != app.SignupOpen && mode != app.SignupInvite && mode != app.SignupClosed {
		return app.FieldErrors{"mode": "Use open, invite or closed."}.Err()
	}
	return s.db.SetSettingAudited(ctx, signupSettingKey, mode,
		app.AuditEntry{ActorID: actorID, Action: app.AuditSignupMode, Detail: detail("mode", mode)})
}

// ListUsers returns a page of accounts without their personal data (email
// and display name stay sealed: reading them is an access that needs a
// reason, see GrantAccess).
func (s *Service) ListUsers(ctx context.Context, afterID string, limit int) ([]*app.User, error) {
	if limit <= 0 || limit > 500 {
		limit = 100
	}
	recs, err := s.db.ListUsers(ctx, afterID, limit)
	if err != nil {
		return nil, err
	}
	out := make([]*app.User, len(recs))
	for i, r := range recs {
		u := r.User
		out[i] = &u
	}
	return out, nil
}

// User returns an account without its personal data, or ENOTFOUND (for a
// deleted account too, saying so).
func (s *Service) User(ctx context.Context, id string) (*app.User, error) {
	rec, err := s.liveRecord(ctx, id)
	if err != nil {
		return nil, err
	}
	u := rec.User
	return &u, nil
}

// UserByLogin finds an account by username or email, without personal data.
func (s *Service) UserByLogin(ctx context.Context, login string) (*app.User, error) {
	var rec *sqlite.UserRecord
	var err error
	if strings.Contains(login, "@") {
		email, nerr := NormalizeEmail(login)
		if nerr != nil {
			return nil, nerr
		}
		rec, err = s.db.UserByEmailIndex(ctx, s.v.BlindIndex("email", email))
	} else {
		name, nerr := NormalizeUsername(login)
		if nerr != nil {
			return nil, nerr
		}
		rec, err = s.db.UserByUsername(ctx, name)
	}
	if err != nil {
		return nil, err
	}
	u := rec.User
	return &u, nil
}

// liveRecord returns account userID unless it is deleted. Between its
// deletion and its purge a deleted account is gone for every action at
// once: its key is destroyed, so nothing sealed can be read, and nothing
// may be done to it (no reset link, role or access grant). ENOTFOUND says
// so, with the date, for the admin who still sees it listed.
func (s *Service) liveRecord(ctx context.Context, userID string) (*sqlite.UserRecord, error) {
	rec, err := s.db.UserByID(ctx, userID)
	if err != nil {
		return nil, err
	}
	if !rec.DeletedAt.IsZero() {
		return nil, app.Errorf(app.ENOTFOUND, "This account was deleted on %s: its data can no longer be read, and the next retention run purges it.", rec.DeletedAt.UTC().Format("2006-01-02 15:04 UTC"))
	}
	return rec, nil
}

// lastAdminGuard refuses to take away the last working admin.
func (s *Service) lastAdminGuard(ctx context.Context, rec *sqlite.UserRecord) error {
	if rec.Role != app.RoleAdmin || !rec.Active() {
		return nil
	}
	n, err := s.db.CountActiveAdmins(ctx)
	if err != nil {
		return err
	}
	if n <= 1 {
		return app.Errorf(app.ECONFLICT, "This is the last admin account. Make another account admin first, or nobody could run this server.")
	}
	return nil
}

// SetRole changes a user's role and ends all their sessions: a privilege
// change gets fresh session tokens at the next login.
func (s *Service) SetRole(ctx context.Context, actorID, userID, role string) error {
	if !app.ValidRole(role) {
		return app.FieldErrors{"role": "Role must be user, support or admin."}.Err()
	}
	rec, err := s.liveRecord(ctx, userID)
	if err != nil {
		return err
	}
	if rec.Role == role {
		return nil
	}
	if role != app.RoleAdmin {
		if err := s.lastAdminGuard(ctx, rec); err != nil {
			return err
		}
	}
	return s.db.UpdateUser(ctx, userID, sqlite.UserChange{Role: &role, RevokeSessions: true,
		Audit: []app.AuditEntry{{ActorID: actorID, SubjectID: userID, Action: app.AuditRoleChange, Detail: detail("from", rec.Role, "to", role)}}})
}

// SetDisabled disables (ending all sessions) or re-enables an account.
func (s *Service) SetDisabled(ctx context.Context, actorID, userID string, disabled bool) error {
	rec, err := s.liveRecord(ctx, userID)
	if err != nil {
		return err
	}
	if disabled && actorID == userID {
		return app.Errorf(app.ECONFLICT, "You can't disable your own account. Ask another admin.")
	}
	if disabled {
		if err := s.lastAdminGuard(ctx, rec); err != nil {
			return err
		}
	}
	action := app.AuditUserEnable
	if disabled {
		action = app.AuditUserDisable
	}
	return s.db.UpdateUser(ctx, userID, sqlite.UserChange{Disabled: &disabled, RevokeSessions: disabled,
		Audit: []app.AuditEntry{{ActorID: actorID, SubjectID: userID, Action: action}}})
}

// Reason bounds for admin access: long enough to say something, short
// enough to read in the person's history.
const (
	MinAccessReasonRunes = 10
	MaxAccessReasonRunes = 500
)

// GrantAccess records that adminID opens userID's personal content, and
// why. The grant lasts AccessGrantTTL; the person sees it in their access
// history; the audit log keeps its id (not the reason, which may itself
// mention personal data).
func (s *Service) GrantAccess(ctx context.Context, adminID, userID, reason string) (*app.AccessGrant, error) {
	reason = strings.TrimSpace(reason)
	if n := utf8.RuneCountInString(reason); n < MinAccessReasonRunes || n > MaxAccessReasonRunes {
		return nil, app.FieldErrors{"reason": fmt.Sprintf("Say why you need to open this person's data, in %d to %d characters (for example the support ticket you are answering). They will see it.", MinAccessReasonRunes, MaxAccessReasonRunes)}.Err()
	}
	if msg := app.CheckText("reason", reason, app.OneLine); msg != "" {
		return nil, app.FieldErrors{"reason": msg}.Err()
	}
	if _, err := s.liveRecord(ctx, userID); err != nil {
		return nil, err
	}
	g := &sqlite.AccessGrantRecord{}
	g.ID, g.UserID, g.AdminID, g.Reason = s.newID(), userID, adminID, reason
	var err error
	if g.SealedReason, err = s.v.Seal(userID, []byte("access_grants/"+g.ID+"/reason"), []byte(reason)); err != nil {
		return nil, fmt.Errorf("auth: seal access reason: %w", err)
	}
	err = s.db.CreateAccessGrant(ctx, g, AccessGrantTTL,
		app.AuditEntry{ActorID: adminID, SubjectID: userID, Action: app.AuditAdminAccess, Detail: detail("grant", g.ID)})
	if err != nil {
		return nil, err
	}
	out := g.AccessGrant
	return &out, nil
}

// CheckAccessGrant returns nil if adminID holds a live grant to userID's
// content, else EFORBIDDEN saying how to get one.
func (s *Service) CheckAccessGrant(ctx context.Context, adminID, userID string) error {
	_, err := s.db.ActiveAccessGrant(ctx, adminID, userID)
	if app.ErrorCode(err) == app.ENOTFOUND {
		return app.Errorf(app.EFORBIDDEN, "Opening this person's data needs a reason. Send it first with POST /api/v1/admin/users/%s/access {\"reason\": \"…\"}; the grant lasts one hour and the person will see it.", userID)
	}
	return err
}

// AccessLog returns the person's access history: every admin access to
// their content, with the reason given, newest first.
func (s *Service) AccessLog(ctx context.Context, userID string) ([]*app.AccessGrant, error) {
	recs, err := s.db.AccessGrants(ctx, userID)
	if err != nil {
		return nil, err
	}
	out := make([]*app.AccessGrant, len(recs))
	for i, r := range recs {
		reason, err := s.v.Open(userID, []byte("access_grants/"+r.ID+"/reason"), r.SealedReason)
		if err != nil {
			return nil, fmt.Errorf("auth: open access reason: %w", err)
		}
		g := r.AccessGrant
		g.Reason = string(reason)
		out[i] = &g
	}
	return out, nil
}

// CreateResetLink issues a one-time password reset token for userID, valid
// ResetTokenTTL, for an admin to pass on while there is no mail.
func (s *Service) CreateResetLink(ctx context.Context, adminID, userID string) (token string, expires time.Time, err error) {
	if _, err := s.liveRecord(ctx, userID); err != nil {
		return "", time.Time{}, err
	}
	token, hash := NewToken(ResetTokenPrefix)
	expires, err = s.db.CreateOneTimeToken(ctx, sqlite.TokenReset, hash, userID, adminID, ResetTokenTTL,
		app.AuditEntry{ActorID: adminID, SubjectID: userID, Action: app.AuditResetLinkCreate})
	if err != nil {
		return "", time.Time{}, err
	}
	return token, expires, nil
}

// ResetPassword sets a new password with a reset token. A reset link is
// account recovery: whoever else held the account may still hold its
// sessions and keys, so every session ends and every API key is revoked.
// The counts say what ended, for the person to be told.
func (s *Service) ResetPassword(ctx context.Context, token, password string) (sqlite.Revoked, error) {
	var revoked sqlite.Revoked
	if TokenPrefix(token) != ResetTokenPrefix {
		return revoked, &app.Error{Code: app.EINVALID, Message: "This reset link is invalid, expired or already used. Ask an administrator for a new one.",
			Fields: map[string]string{"token": "invalid, expired or already used"}}
	}
	hash := HashToken(token)
	userID, err := s.db.ResetTokenUser(ctx, hash)
	if err != nil {
		return revoked, err
	}
	prof, err := s.Profile(ctx, userID)
	if err != nil {
		return revoked, err
	}
	if err := CheckPasswordStrength(password, prof.Username, prof.Email); err != nil {
		return revoked, err
	}
	pwHash, err := s.hasher.Hash(password)
	if err != nil {
		return revoked, err
	}
	notice, err := s.securityNotice(userID, prof.Email, "password")
	if err != nil {
		return revoked, err
	}
	err = s.db.UpdateUser(ctx, userID, sqlite.UserChange{PasswordHash: &pwHash, UseResetHash: hash,
		RevokeSessions: true, RevokeAPIKeys: true, Revoked: &revoked, Mail: notice,
		Audit: []app.AuditEntry{{ActorID: userID, SubjectID: userID, Action: app.AuditPasswordReset}}})
	if err == nil && notice != nil {
		s.opts.Mail.Queued()
	}
	return revoked, err
}

// CreateInvite issues a one-time invite token valid InviteTTL.
func (s *Service) CreateInvite(ctx context.Context, adminID string) (token string, expires time.Time, err error) {
	token, hash := NewToken(InviteTokenPrefix)
	expires, err = s.db.CreateOneTimeToken(ctx, sqlite.TokenInvite, hash, "", adminID, InviteTTL,
		app.AuditEntry{ActorID: adminID, Action: app.AuditInviteCreate})
	if err != nil {
		return "", time.Time{}, err
	}
	return token, expires, nil
}

// Audit returns audit entries after afterSeq (all subjects when subjectID
// is "").
func (s *Service) Audit(ctx context.Context, afterSeq int64, subjectID string, limit int) ([]*app.AuditEntry, error) {
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	return s.db.AuditEntries(ctx, sqlite.AuditFilter{AfterSeq: afterSeq, SubjectID: subjectID, Limit: limit})
}

// AuditNewest returns up to limit entries older than beforeSeq (0: the
// newest), newest first, for people reading the log.
func (s *Service) AuditNewest(ctx context.Context, beforeSeq int64, limit int) ([]*app.AuditEntry, error) {
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	return s.db.AuditEntries(ctx, sqlite.AuditFilter{NewestFirst: true, BeforeSeq: beforeSeq, Limit: limit})
}

// GeneratePassword returns a random password for accounts an admin
// creates without one: 16 characters in four groups (80 bits), easy to
// read out and type, to be shown once and changed by the person.
func GeneratePassword() string {
	codes, _ := NewRecoveryCodes(2)
	return codes[0] + "-" + codes[1][:4]
}
