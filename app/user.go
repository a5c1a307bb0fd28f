package app

import (
	"slices"
	"time"
)

// Roles. A person has exactly one; support reads and answers support
// tickets and nothing else, admin runs the appliance.
const (
	RoleUser    = "user"
	RoleSupport = "support"
	RoleAdmin   = "admin"
)

// ValidRole reports whether r is one of the roles above.
func ValidRole(r string) bool { return r == RoleUser || r == RoleSupport || r == RoleAdmin }

// API key scopes. A key does only what its scopes allow, and never more than
// its owner's role: the admin scope is given to admins' keys only.
const (
	ScopeGenerate = "generate"
	ScopeRead     = "read"
	ScopeAdmin    = "admin"
)

// AllScopes lists the scopes in the order they are shown.
var AllScopes = []string{ScopeGenerate, ScopeRead, ScopeAdmin}

// Sign-up modes: anyone may sign up, only with an invite, or only by an
// admin (CLI or admin API).
const (
	SignupOpen   = "open"
	SignupInvite = "invite"
	SignupClosed = "closed"
)

// User is an account. Email and DisplayName are plaintext only in memory:
// the store keeps them sealed with the user's own key and finds accounts by
// a blind index of the normalized email. No birth date is ever kept, only
// when the person affirmed being old enough.
type User struct {
	ID          string // ULID
	Username    string // normalized; the public handle
	Email       string // normalized
	DisplayName string
	Role        string
	TOTPEnabled bool
	CreatedAt   time.Time
	// AgeConfirmedAt is when the person affirmed the minimum age.
	AgeConfirmedAt time.Time
	// PasswordChangedAt is when the password was last set.
	PasswordChangedAt time.Time
	// DisabledAt and DeletedAt are zero while the account is usable.
	DisabledAt time.Time
	DeletedAt  time.Time
}

// Active reports whether the user may sign in and use the API.
func (u *User) Active() bool { return u.DisabledAt.IsZero() && u.DeletedAt.IsZero() }

// Session is a signed-in browser. Only the hash of its token is stored.
type Session struct {
	ID         string
	UserID     string
	CreatedAt  time.Time
	LastSeenAt time.Time
	// ExpiresAt is the absolute end; idle expiry is LastSeenAt plus the
	// configured idle time.
	ExpiresAt time.Time
	// Device is a short summary of the User-Agent ("Firefox on Linux").
	Device string
	// Place is the client address truncated to its network (IPv4 /24,
	// IPv6 /48): an approximate place without a GeoIP database.
	Place string
}

// APIKey is a named, scoped credential for scripts. Only the hash of the
// key is stored; Prefix is its visible start ("zik_k3v9x2ab").
type APIKey struct {
	ID         string
	UserID     string
	Name       string
	Prefix     string
	Scopes     []string
	CreatedAt  time.Time
	LastUsedAt time.Time // zero if never used
	RevokedAt  time.Time // zero while valid
}

// HasScope reports whether the key carries scope.
func (k *APIKey) HasScope(scope string) bool { return slices.Contains(k.Scopes, scope) }

// AuditEntry is one link of the hash-chained audit log. It holds ids and
// action names only, never personal data: once an account is purged its
// random id points at nobody.
type AuditEntry struct {
	Seq       int64
	At        time.Time
	ActorID   string // who did it; "" for the system or an unknown caller
	SubjectID string // whose account it concerns; "" if none
	Action    string
	// Detail is a JSON object of non-personal facts (ids, counts, reasons
	// codes); "" or "{}" when there are none.
	Detail   string
	PrevHash []byte
	Hash     []byte
}

// Audit actions. They are stable names: reports and tests match on them.
const (
	AuditSignup           = "signup"
	AuditLoginSuccess     = "login.success"
	AuditLoginFailure     = "login.failure"
	AuditLockout          = "login.lockout"
	AuditLogout           = "logout"
	AuditPasswordChange   = "password.change"
	AuditPasswordReset    = "password.reset"
	AuditResetLinkCreate  = "password.reset_link"
	AuditResetMail        = "password.reset_mail"
	AuditEmailVerifyMail  = "email.verify_mail"
	AuditEmailVerified    = "email.verified"
	AuditEmailChange      = "email.change"
	AuditMailRetry        = "mail.retry"
	AuditTOTPEnable       = "2fa.enable"
	AuditTOTPDisable      = "2fa.disable"
	AuditRecoveryCodeUsed = "2fa.recovery_code_used"
	AuditAPIKeyCreate     = "api_key.create"
	AuditAPIKeyRevoke     = "api_key.revoke"
	AuditRoleChange       = "role.change"
	AuditUserDisable      = "user.disable"
	AuditUserEnable       = "user.enable"
	AuditAdminAccess      = "admin.access"
	AuditInviteCreate     = "invite.create"
	AuditSignupMode       = "settings.signup"
	AuditSessionsRevoke   = "sessions.revoke"
)

// AccessGrant records an admin opening a person's content: why, and until
// when the grant lets them. The person sees it in their access history.
type AccessGrant struct {
	ID        string
	UserID    string // whose content
	AdminID   string
	Reason    string // plaintext only in memory; sealed with the person's key
	CreatedAt time.Time
	ExpiresAt time.Time
}
