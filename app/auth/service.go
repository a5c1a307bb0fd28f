package auth

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/oklog/ulid/v2"

	"zimage/app"
	"zimage/app/mail"
	"zimage/app/sqlite"
	"zimage/app/vault"
)

// Options are the account rules, mapped from the [auth] config by the
// caller.
type Options struct {
	// Signup is the configured sign-up mode (app.SignupOpen, …); an admin
	// may override it at run time (SetSignupMode).
	Signup          string
	RequireAdmin2FA bool
	SessionIdle     time.Duration
	SessionAbsolute time.Duration
	// MinAge is the age a person must affirm at sign-up (13 or more).
	MinAge int
	// MaxLoginFailures is how many failed logins an account gets before
	// each further attempt must wait, with doubling delays.
	MaxLoginFailures int
	// Issuer names the service in authenticator apps.
	Issuer string
	// Hasher hashes passwords; nil means DefaultParams. Tests pass cheap
	// parameters to keep hundreds of sign-ups fast.
	Hasher *Hasher
	Log    *slog.Logger
	// Mail puts account mail (reset links, address confirmations) in the
	// outbox; nil: mail is off, and those flows say what to do instead.
	Mail *mail.Outbox
}

// Lifetimes of things the service hands out.
const (
	AccessGrantTTL = time.Hour
	ResetTokenTTL  = time.Hour
	InviteTTL      = 7 * 24 * time.Hour
	// touchEvery bounds writes for last-seen and last-used times: once a
	// minute is precise enough for a person, and spares the single writer.
	touchEvery = time.Minute
	// InviteTokenPrefix and ResetTokenPrefix mark one-time tokens.
	InviteTokenPrefix = "zin_"
	ResetTokenPrefix  = "zir_"
	signupSettingKey  = "auth.signup"
)

// Service is the account service: sign-up, login, sessions, 2FA, API keys,
// roles, admin access grants and the audit log. Its methods are safe for
// concurrent use. Every error a person may see is an *app.Error.
type Service struct {
	db       *sqlite.DB
	v        *vault.Vault
	opts     Options
	hasher   *Hasher
	accounts *Throttle
	ips      *Throttle
	// resets counts reset-link requests per address and per account.
	resets *Throttle
	log    *slog.Logger

	dummyOnce sync.Once
	dummyHash string
}

// New returns the service. Zero options take the config defaults.
func New(db *sqlite.DB, v *vault.Vault, opts Options) *Service {
	if opts.Signup == "" {
		opts.Signup = app.SignupOpen
	}
	if opts.SessionIdle <= 0 {
		opts.SessionIdle = 7 * 24 * time.Hour
	}
	if opts.SessionAbsolute <= 0 {
		opts.SessionAbsolute = 30 * 24 * time.Hour
	}
	if opts.MinAge < 13 {
		opts.MinAge = 13
	}
	if opts.MaxLoginFailures <= 0 {
		opts.MaxLoginFailures = DefaultAccountThrottle.FreeFailures
	}
	if opts.Issuer == "" {
		opts.Issuer = "Z Image"
	}
	if opts.Hasher == nil {
		opts.Hasher = defaultHasher
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	acct := DefaultAccountThrottle
	acct.FreeFailures = opts.MaxLoginFailures
	return &Service{
		db: db, v: v, opts: opts, hasher: opts.Hasher, log: opts.Log,
		accounts: NewThrottle(acct), ips: NewThrottle(DefaultIPThrottle), resets: NewThrottle(ResetRequestThrottle),
	}
}

// Options returns the options in force (defaults filled in).
func (s *Service) Options() Options { return s.opts }

func (s *Service) now() time.Time { return s.db.Now() }

func (s *Service) newID() string {
	return ulid.MustNew(ulid.Timestamp(s.now()), rand.Reader).String()
}

// detail encodes non-personal audit facts as JSON.
func detail(kv ...string) string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	b, _ := json.Marshal(m) // a map of strings always encodes
	return string(b)
}

func emailAAD(id string) []byte       { return []byte("users/" + id + "/email") }
func displayNameAAD(id string) []byte { return []byte("users/" + id + "/display_name") }
func totpAAD(id string) []byte        { return []byte("users/" + id + "/totp") }

// Principal is who a request acts as: a user through a session (Session and
// Token set) or through an API key (APIKey set).
type Principal struct {
	User    *app.User
	Session *app.Session
	// Token is the raw session token, the secret CSRF tokens derive from.
	Token  string
	APIKey *app.APIKey
}

// errUnauthorized is the one message for every failed credential check, so
// it never tells whether an account exists.
var errWrongLogin = &app.Error{Code: app.EUNAUTHORIZED, Message: "The login or password is wrong. Check both and try again; after several failures you will have to wait before trying again."}

func errSessionEnded() error {
	return app.Errorf(app.EUNAUTHORIZED, "Your session has ended or is not valid. Sign in again.")
}

func retryAfter(d time.Duration) error {
	secs := int(math.Ceil(d.Seconds()))
	return &app.Error{Code: app.ERATELIMITED, RetryAfterSeconds: secs,
		Message: fmt.Sprintf("Too many failed sign-in attempts. Wait %d seconds, then try again.", secs)}
}

// fieldMessage pulls the message for field out of a validation error.
func fieldMessage(err error, field string) string {
	var ae *app.Error
	if errors.As(err, &ae) {
		if m := ae.Fields[field]; m != "" {
			return m
		}
		return ae.Message
	}
	return err.Error()
}

// SignUpInput is a new account's data.
type SignUpInput struct {
	Email, Username, Password string
	DisplayName               string
	AgeConfirmed              bool
	Invite                    string
	// ByAdmin is set when an admin (API or CLI) creates the account: the
	// sign-up mode does not apply and Role is used.
	ByAdmin bool
	ActorID string
	Role    string
}

const maxDisplayNameRunes = 100

// checkDisplayName returns what is wrong with a (trimmed) display name, or
// "".
func checkDisplayName(name string) string {
	if len([]rune(name)) > maxDisplayNameRunes {
		return fmt.Sprintf("Use at most %d characters for your display name.", maxDisplayNameRunes)
	}
	return app.CheckText("display name", name, app.OneLine)
}

// SignUp creates an account. Open sign-up makes the first account an admin.
// Errors: EFORBIDDEN when sign-up is closed or needs an invite, EINVALID
// with per-field messages, ECONFLICT for a taken username or email.
func (s *Service) SignUp(ctx context.Context, in SignUpInput) (*app.User, error) {
	var inviteHash []byte
	if !in.ByAdmin {
		mode, err := s.SignupMode(ctx)
		if err != nil {
			return nil, err
		}
		switch {
		case in.Invite != "":
			if TokenPrefix(in.Invite) != InviteTokenPrefix {
				return nil, &app.Error{Code: app.EINVALID, Message: "This invite is invalid, expired or already used. Ask an administrator for a new invite link.",
					Fields: map[string]string{"invite": "invalid, expired or already used"}}
			}
			inviteHash = HashToken(in.Invite)
		case mode == app.SignupInvite:
			return nil, app.Errorf(app.EFORBIDDEN, "Sign-up on this server needs an invite. Ask an administrator for an invite link.")
		case mode == app.SignupClosed:
			return nil, app.Errorf(app.EFORBIDDEN, "Sign-up on this server is closed. Ask an administrator to create your account.")
		}
	}
	fe := app.FieldErrors{}
	email, err := NormalizeEmail(in.Email)
	if err != nil {
		fe.Add("email", fieldMessage(err, "email"))
	}
	username, err := NormalizeUsername(in.Username)
	if err != nil {
		fe.Add("username", fieldMessage(err, "username"))
	}
	if err := CheckPasswordStrength(in.Password, in.Username, username, email); err != nil {
		fe.Add("password", fieldMessage(err, "password"))
	}
	if !in.AgeConfirmed {
		fe.Add("age_confirmed", fmt.Sprintf("Z Image is for people aged %d or older. Confirm that you are to create an account.", s.opts.MinAge))
	}
	display := strings.TrimSpace(in.DisplayName)
	if msg := checkDisplayName(display); msg != "" {
		fe.Add("display_name", msg)
	}
	role := app.RoleUser
	if in.ByAdmin && in.Role != "" {
		if !app.ValidRole(in.Role) {
			fe.Add("role", "Role must be user, support or admin.")
		}
		role = in.Role
	}
	if err := fe.Err(); err != nil {
		return nil, err
	}
	emailIndex := s.v.BlindIndex("email", email)
	// Early checks give a fast answer without hashing; the UNIQUE
	// constraints decide races.
	if _, err := s.db.UserByUsername(ctx, username); err == nil {
		return nil, &app.Error{Code: app.ECONFLICT, Message: "This username is taken. Please choose another.", Fields: map[string]string{"username": "This username is taken. Please choose another."}}
	}
	if _, err := s.db.UserByEmailIndex(ctx, emailIndex); err == nil {
		msg := "An account with this email address already exists. Sign in instead, or ask an administrator for a password reset link."
		return nil, &app.Error{Code: app.ECONFLICT, Message: msg, Fields: map[string]string{"email": msg}}
	}
	hash, err := s.hasher.Hash(in.Password)
	if err != nil {
		return nil, err
	}
	id := s.newID()
	if err := s.v.EnsureUserKey(id); err != nil {
		return nil, fmt.Errorf("auth: sign up: %w", err)
	}
	rec := &sqlite.UserRecord{EmailIndex: emailIndex, PasswordHash: hash}
	rec.ID, rec.Username, rec.Role = id, username, role
	if rec.SealedEmail, err = s.v.Seal(id, emailAAD(id), []byte(email)); err != nil {
		return nil, fmt.Errorf("auth: sign up: %w", err)
	}
	if rec.SealedUsername, err = s.v.Seal(id, sqlite.UsernameAAD(id), []byte(username)); err != nil {
		return nil, fmt.Errorf("auth: sign up: %w", err)
	}
	if display != "" {
		if rec.SealedDisplayName, err = s.v.Seal(id, displayNameAAD(id), []byte(display)); err != nil {
			return nil, fmt.Errorf("auth: sign up: %w", err)
		}
	}
	via := "signup"
	if in.ByAdmin {
		via = "admin"
	} else if inviteHash != nil {
		via = "invite"
	}
	nu := sqlite.NewUser{
		Record: rec, InviteHash: inviteHash, FirstIsAdmin: !in.ByAdmin,
		Audit: []app.AuditEntry{{ActorID: in.ActorID, Action: app.AuditSignup, Detail: detail("via", via, "role", role)}},
	}
	if s.MailEnabled() {
		if nu.Verify, nu.Mail, err = s.verifyMail(id, email, nil); err != nil {
			return nil, err
		}
	}
	err = s.db.CreateUser(ctx, nu)
	if err != nil {
		// The key was made for an id that never came to be: destroy it.
		if serr := s.v.Shred(id); serr != nil {
			s.log.Warn("auth: could not shred the key of a failed sign-up", "err", serr)
		}
		return nil, err
	}
	if rec.Role != role {
		// First account: the audit entry above says "user"; record the
		// promotion as the role change it is.
		if err := s.db.AppendAudit(ctx, app.AuditEntry{SubjectID: id, Action: app.AuditRoleChange, Detail: detail("from", role, "to", rec.Role, "why", "first_account")}); err != nil {
			return nil, err
		}
	}
	if nu.Mail != nil {
		s.opts.Mail.Queued()
	}
	u := rec.User
	u.Email, u.DisplayName = email, display
	return &u, nil
}

// LoginInput is a sign-in attempt.
type LoginInput struct {
	Login        string // username or email
	Password     string
	TOTPCode     string
	RecoveryCode string
	IP           netip.Addr
	UserAgent    string
	// ReplaceToken is the session token the browser already holds, if any:
	// it is ended, so a token planted before login (session fixation) is
	// worthless after it.
	ReplaceToken string
}

// LoginResult is a new session; Token goes in the cookie and is never
// stored.
// ErrSecondFactorRequired is in the chain of Login's error when the
// password was right but the account uses 2FA and no code was given: the
// caller asks for the code. Test it with errors.Is; the "totp_code" field
// beside it is for API clients, not a signal to branch on.
var ErrSecondFactorRequired = errors.New("auth: a second factor (TOTP or recovery code) is required")

type LoginResult struct {
	User    *app.User
	Session *app.Session
	Token   string
}

// Login checks credentials and starts a session. Errors: EINVALID for
// empty fields; ERATELIMITED (with RetryAfterSeconds) while throttled;
// EUNAUTHORIZED with the same message for an unknown login and a wrong
// password; EUNAUTHORIZED with Fields["totp_code"] when 2FA is on and no code
// was given (wrapping ErrSecondFactorRequired), or the code was wrong or
// used before.
func (s *Service) Login(ctx context.Context, in LoginInput) (*LoginResult, error) {
	fe := app.FieldErrors{}
	if strings.TrimSpace(in.Login) == "" {
		fe.Add("login", "Enter your username or email address.")
	}
	if in.Password == "" {
		fe.Add("password", "Enter your password.")
	}
	if len(in.Login) > MaxEmailBytes+10 {
		fe.Add("login", "This is longer than any username or email address; check what you typed.")
	}
	if err := fe.Err(); err != nil {
		return nil, err
	}
	now := s.now()
	var rec *sqlite.UserRecord
	var err error
	login := strings.TrimSpace(in.Login)
	if strings.Contains(login, "@") {
		if email, nerr := NormalizeEmail(login); nerr == nil {
			login = email
			rec, err = s.db.UserByEmailIndex(ctx, s.v.BlindIndex("email", email))
		}
	} else if name, nerr := NormalizeUsername(login); nerr == nil {
		login = name
		rec, err = s.db.UserByUsername(ctx, name)
	}
	if err != nil && app.ErrorCode(err) != app.ENOTFOUND {
		return nil, err
	}
	// The account count is keyed by the account, not by what was typed:
	// its username and its email are two spellings of one target, and
	// must share one count. A login that names no account is counted by
	// its text, so unknown logins are slowed down the same way.
	acctKey := AccountKey(strings.ToLower(login))
	if rec != nil && rec.DeletedAt.IsZero() {
		acctKey = userKey(rec.ID)
	}
	ipKey := IPKey(in.IP)
	if wait, ok := s.ips.Check(ipKey, now); !ok {
		return nil, retryAfter(wait)
	}
	if wait, ok := s.accounts.Check(acctKey, now); !ok {
		return nil, retryAfter(wait)
	}
	if rec == nil || !rec.DeletedAt.IsZero() || !s.v.HasKey(rec.ID) {
		s.dummyCheck(in.Password)
		return nil, s.loginFailed(ctx, now, acctKey, ipKey, "", "unknown_account", errWrongLogin)
	}
	ok, rehash, err := s.hasher.Check(rec.PasswordHash, in.Password)
	if err != nil {
		return nil, app.Wrap(err, "stored password hash for a user is unreadable")
	}
	if !ok {
		return nil, s.loginFailed(ctx, now, acctKey, ipKey, rec.ID, "password", errWrongLogin)
	}
	if !rec.DisabledAt.IsZero() {
		// Told only to someone who knows the password.
		return nil, app.Errorf(app.EUNAUTHORIZED, "This account is disabled. Contact the administrator of this server.")
	}
	ns := sqlite.NewSession{}
	method := "password"
	if rec.TOTPEnabled {
		switch {
		case in.TOTPCode != "":
			step, err := s.checkTOTP(rec, in.TOTPCode, now)
			if err != nil {
				return nil, s.loginFailed(ctx, now, acctKey, ipKey, rec.ID, "totp", err)
			}
			ns.TOTPLastStep, method = &step, "totp"
		case in.RecoveryCode != "":
			h, err := s.matchRecovery(ctx, rec.ID, in.RecoveryCode)
			if err != nil {
				return nil, s.loginFailed(ctx, now, acctKey, ipKey, rec.ID, "recovery_code", err)
			}
			ns.UseRecovery, method = h, "recovery_code"
		default:
			return nil, &app.Error{Code: app.EUNAUTHORIZED, Message: "This account uses two-factor authentication: enter the 6-digit code from your authenticator app, or one of your recovery codes.",
				Fields: map[string]string{"totp_code": "required"}, Err: ErrSecondFactorRequired}
		}
	}
	if rehash {
		if ns.PasswordHash, err = s.hasher.Hash(in.Password); err != nil {
			return nil, err
		}
	}
	token, tokenHash := NewToken(SessionTokenPrefix)
	sess := &app.Session{ID: s.newID(), UserID: rec.ID, ExpiresAt: now.Add(s.opts.SessionAbsolute),
		Device: DeviceSummary(in.UserAgent), Place: ApproxPlace(in.IP)}
	ns.Session, ns.TokenHash = sess, tokenHash
	if err := s.sealSessionLabels(&ns); err != nil {
		return nil, err
	}
	if in.ReplaceToken != "" {
		ns.ReplaceHash = HashToken(in.ReplaceToken)
	}
	ns.Audit = []app.AuditEntry{{ActorID: rec.ID, SubjectID: rec.ID, Action: app.AuditLoginSuccess, Detail: detail("method", method, "session", sess.ID)}}
	if method == "recovery_code" {
		ns.Audit = append(ns.Audit, app.AuditEntry{ActorID: rec.ID, SubjectID: rec.ID, Action: app.AuditRecoveryCodeUsed})
	}
	if err := s.db.CreateSession(ctx, ns); err != nil {
		if app.ErrorCode(err) == app.EUNAUTHORIZED { // the code lost a race with another login
			return nil, s.loginFailed(ctx, now, acctKey, ipKey, rec.ID, method, err)
		}
		return nil, err
	}
	s.accounts.Succeed(acctKey)
	u := rec.User
	return &LoginResult{User: &u, Session: sess, Token: token}, nil
}

// sealSessionLabels seals the session's device and place for the
// database: they say which browser someone uses, and from roughly where.
func (s *Service) sealSessionLabels(ns *sqlite.NewSession) error {
	sess := ns.Session
	var err error
	if ns.SealedDevice, err = s.v.Seal(sess.UserID, sqlite.SessionDeviceAAD(sess.ID), []byte(sess.Device)); err != nil {
		return fmt.Errorf("auth: seal session device: %w", err)
	}
	if ns.SealedPlace, err = s.v.Seal(sess.UserID, sqlite.SessionPlaceAAD(sess.ID), []byte(sess.Place)); err != nil {
		return fmt.Errorf("auth: seal session place: %w", err)
	}
	return nil
}

// dummyCheck spends as long as a real password check, so an unknown login
// cannot be told apart by timing.
func (s *Service) dummyCheck(pw string) {
	s.dummyOnce.Do(func() { s.dummyHash, _ = s.hasher.Hash("zimage timing equalizer password") })
	s.hasher.Check(s.dummyHash, pw)
}

// loginFailed counts the failure against the account and the address,
// records it (without the login text) and returns err.
func (s *Service) loginFailed(ctx context.Context, now time.Time, acctKey, ipKey, userID, reason string, err error) error {
	entries := []app.AuditEntry{{SubjectID: userID, Action: app.AuditLoginFailure, Detail: detail("reason", reason)}}
	if s.accounts.Fail(acctKey, now) {
		entries = append(entries, app.AuditEntry{SubjectID: userID, Action: app.AuditLockout, Detail: detail("scope", "account")})
	}
	if s.ips.Fail(ipKey, now) {
		entries = append(entries, app.AuditEntry{SubjectID: userID, Action: app.AuditLockout, Detail: detail("scope", "address")})
	}
	if aerr := s.db.AppendAudit(ctx, entries...); aerr != nil {
		return aerr
	}
	return err
}

func (s *Service) openTOTPSecret(rec *sqlite.UserRecord) (string, error) {
	if len(rec.SealedTOTPSecret) == 0 {
		return "", app.Errorf(app.ECONFLICT, "Two-factor authentication is not set up. Start with POST /api/v1/me/2fa.")
	}
	b, err := s.v.Open(rec.ID, totpAAD(rec.ID), rec.SealedTOTPSecret)
	if err != nil {
		return "", fmt.Errorf("auth: open totp secret: %w", err)
	}
	return string(b), nil
}

// checkTOTP validates code against the user's secret and last used step.
func (s *Service) checkTOTP(rec *sqlite.UserRecord, code string, now time.Time) (int64, error) {
	secret, err := s.openTOTPSecret(rec)
	if err != nil {
		return 0, err
	}
	step, ok := ValidateTOTP(secret, code, now, rec.TOTPLastStep)
	if !ok {
		return 0, &app.Error{Code: app.EUNAUTHORIZED, Message: "The code is wrong or was already used. Enter the code your authenticator app shows now (each code works once), or use a recovery code.",
			Fields: map[string]string{"totp_code": "wrong or already used"}}
	}
	return step, nil
}

func (s *Service) matchRecovery(ctx context.Context, userID, code string) ([]byte, error) {
	hashes, err := s.db.RecoveryHashes(ctx, userID)
	if err != nil {
		return nil, err
	}
	i, ok := MatchRecoveryCode(code, hashes)
	if !ok {
		return nil, &app.Error{Code: app.EUNAUTHORIZED, Message: "This recovery code is wrong or was already used. Each code works once; check it or use another.",
			Fields: map[string]string{"recovery_code": "wrong or already used"}}
	}
	return hashes[i], nil
}

// usable reports whether rec may act through a session or API key: not
// disabled nor deleted, and its data key still in the keyring. A key that
// is gone means the account was deleted, even when a restored backup
// brought its row back as live: restore marks such accounts deleted, and
// this is the second lock, should any path bring one back.
func (s *Service) usable(rec *sqlite.UserRecord) bool {
	return rec.Active() && s.v.HasKey(rec.ID)
}

// Authenticate returns the principal of a session token, or EUNAUTHORIZED
// if the token is malformed, unknown, ended, expired (idle or absolute) or
// its user may no longer sign in.
func (s *Service) Authenticate(ctx context.Context, token string) (*Principal, error) {
	if TokenPrefix(token) != SessionTokenPrefix {
		return nil, errSessionEnded()
	}
	sess, rec, err := s.db.SessionByTokenHash(ctx, HashToken(token))
	if app.ErrorCode(err) == app.ENOTFOUND {
		return nil, errSessionEnded()
	} else if err != nil {
		return nil, err
	}
	now := s.now()
	if !now.Before(sess.ExpiresAt) || !now.Before(sess.LastSeenAt.Add(s.opts.SessionIdle)) {
		if err := s.db.DeleteSession(ctx, sess.UserID, sess.ID); err != nil && app.ErrorCode(err) != app.ENOTFOUND {
			return nil, err
		}
		return nil, app.Errorf(app.EUNAUTHORIZED, "Your session expired. Sign in again.")
	}
	if !s.usable(rec) {
		return nil, errSessionEnded()
	}
	if now.Sub(sess.LastSeenAt) >= touchEvery {
		if err := s.db.TouchSession(ctx, sess.ID); err != nil {
			s.log.Warn("auth: could not record session activity", "err", err)
		}
		sess.LastSeenAt = now
	}
	u := rec.User
	return &Principal{User: &u, Session: sess, Token: token}, nil
}

// AuthenticateAPIKey returns the principal of an API key, or EUNAUTHORIZED
// if it is malformed, unknown or revoked, or its owner may no longer sign
// in.
func (s *Service) AuthenticateAPIKey(ctx context.Context, token string) (*Principal, error) {
	if TokenPrefix(token) != APIKeyPrefix {
		return nil, app.Errorf(app.EUNAUTHORIZED, "This is not a Z Image API key (they start with %s). Create one in your account settings.", APIKeyPrefix)
	}
	k, rec, err := s.db.APIKeyByTokenHash(ctx, HashToken(token))
	if app.ErrorCode(err) == app.ENOTFOUND {
		return nil, app.Errorf(app.EUNAUTHORIZED, "This API key is not valid. Check that you copied all of it, or create a new one.")
	} else if err != nil {
		return nil, err
	}
	if !k.RevokedAt.IsZero() {
		return nil, app.Errorf(app.EUNAUTHORIZED, "This API key was revoked. Create a new one in your account settings.")
	}
	if !s.v.HasKey(rec.ID) {
		// Deleted, whatever the row says (see usable).
		return nil, app.Errorf(app.EUNAUTHORIZED, "This API key is not valid. Check that you copied all of it, or create a new one.")
	}
	if !rec.Active() {
		return nil, app.Errorf(app.EUNAUTHORIZED, "The account this API key belongs to is disabled.")
	}
	if now := s.now(); now.Sub(k.LastUsedAt) >= touchEvery {
		if err := s.db.TouchAPIKey(ctx, k.ID); err != nil {
			s.log.Warn("auth: could not record api key use", "err", err)
		}
		k.LastUsedAt = now
	}
	u := rec.User
	return &Principal{User: &u, APIKey: k}, nil
}

// Logout ends the principal's session.
func (s *Service) Logout(ctx context.Context, p *Principal) error {
	if p == nil || p.Session == nil {
		return nil
	}
	err := s.db.DeleteSession(ctx, p.User.ID, p.Session.ID,
		app.AuditEntry{ActorID: p.User.ID, SubjectID: p.User.ID, Action: app.AuditLogout, Detail: detail("session", p.Session.ID)})
	if app.ErrorCode(err) == app.ENOTFOUND {
		return nil
	}
	return err
}

// Profile returns the user with email and display name opened: their
// personal data, for themselves or an admin holding an access grant.
func (s *Service) Profile(ctx context.Context, userID string) (*app.User, error) {
	rec, err := s.liveRecord(ctx, userID)
	if err != nil {
		return nil, err
	}
	u := rec.User
	email, err := s.v.Open(rec.ID, emailAAD(rec.ID), rec.SealedEmail)
	if err != nil {
		return nil, fmt.Errorf("auth: open email: %w", err)
	}
	u.Email = string(email)
	if len(rec.SealedDisplayName) > 0 {
		name, err := s.v.Open(rec.ID, displayNameAAD(rec.ID), rec.SealedDisplayName)
		if err != nil {
			return nil, fmt.Errorf("auth: open display name: %w", err)
		}
		u.DisplayName = string(name)
	}
	return &u, nil
}

// UpdateProfile sets the user's display name ("" clears it).
func (s *Service) UpdateProfile(ctx context.Context, userID, displayName string) (*app.User, error) {
	displayName = strings.TrimSpace(displayName)
	if msg := checkDisplayName(displayName); msg != "" {
		return nil, app.FieldErrors{"display_name": msg}.Err()
	}
	sealed := []byte{}
	if displayName != "" {
		var err error
		if sealed, err = s.v.Seal(userID, displayNameAAD(userID), []byte(displayName)); err != nil {
			return nil, fmt.Errorf("auth: seal display name: %w", err)
		}
	}
	if err := s.db.UpdateUser(ctx, userID, sqlite.UserChange{SealedDisplayName: &sealed}); err != nil {
		return nil, err
	}
	return s.Profile(ctx, userID)
}

// StartSession signs userID in without a password: right after sign-up,
// where the password was just chosen. Any other use would bypass the
// login checks.
func (s *Service) StartSession(ctx context.Context, userID string, ip netip.Addr, userAgent, replaceToken string) (*LoginResult, error) {
	rec, err := s.db.UserByID(ctx, userID)
	if err != nil {
		return nil, err
	}
	token, tokenHash := NewToken(SessionTokenPrefix)
	sess := &app.Session{ID: s.newID(), UserID: rec.ID, ExpiresAt: s.now().Add(s.opts.SessionAbsolute),
		Device: DeviceSummary(userAgent), Place: ApproxPlace(ip)}
	ns := sqlite.NewSession{Session: sess, TokenHash: tokenHash,
		Audit: []app.AuditEntry{{ActorID: rec.ID, SubjectID: rec.ID, Action: app.AuditLoginSuccess, Detail: detail("method", "signup", "session", sess.ID)}}}
	if err := s.sealSessionLabels(&ns); err != nil {
		return nil, err
	}
	if replaceToken != "" {
		ns.ReplaceHash = HashToken(replaceToken)
	}
	if err := s.db.CreateSession(ctx, ns); err != nil {
		return nil, err
	}
	u := rec.User
	return &LoginResult{User: &u, Session: sess, Token: token}, nil
}
