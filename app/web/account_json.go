package web

import (
	"time"

	"zimage/app"
)

// JSON shapes of the account API. Times are RFC 3339 in UTC; a time that
// has not happened (never used, not disabled) is omitted.

type userJSON struct {
	ID             string     `json:"id"`
	Username       string     `json:"username"`
	Email          string     `json:"email,omitempty"`
	DisplayName    string     `json:"display_name,omitempty"`
	Role           string     `json:"role"`
	TOTPEnabled    bool       `json:"totp_enabled"`
	CreatedAt      time.Time  `json:"created_at"`
	AgeConfirmedAt time.Time  `json:"age_confirmed_at"`
	DisabledAt     *time.Time `json:"disabled_at,omitempty"`
	// DeletedAt is set on a deleted account waiting for its purge (admin
	// lists only: nothing else answers for it).
	DeletedAt *time.Time `json:"deleted_at,omitempty"`
}

func toUserJSON(u *app.User) userJSON {
	return userJSON{ID: u.ID, Username: u.Username, Email: u.Email, DisplayName: u.DisplayName, Role: u.Role,
		TOTPEnabled: u.TOTPEnabled, CreatedAt: u.CreatedAt, AgeConfirmedAt: u.AgeConfirmedAt, DisabledAt: optTime(u.DisabledAt),
		DeletedAt: optTime(u.DeletedAt)}
}

func optTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

type sessionJSON struct {
	ID         string    `json:"id"`
	Current    bool      `json:"current"`
	Device     string    `json:"device"`
	Place      string    `json:"approximate_place"`
	CreatedAt  time.Time `json:"created_at"`
	LastSeenAt time.Time `json:"last_seen_at"`
	ExpiresAt  time.Time `json:"expires_at"`
}

type apiKeyJSON struct {
	ID         string     `json:"id"`
	Name       string     `json:"name"`
	Prefix     string     `json:"prefix"`
	Scopes     []string   `json:"scopes"`
	CreatedAt  time.Time  `json:"created_at"`
	LastUsedAt *time.Time `json:"last_used_at,omitempty"`
	RevokedAt  *time.Time `json:"revoked_at,omitempty"`
	// Key is the secret itself, present only in the response that creates it.
	Key string `json:"key,omitempty"`
}

func toAPIKeyJSON(k *app.APIKey) apiKeyJSON {
	return apiKeyJSON{ID: k.ID, Name: k.Name, Prefix: k.Prefix, Scopes: k.Scopes, CreatedAt: k.CreatedAt,
		LastUsedAt: optTime(k.LastUsedAt), RevokedAt: optTime(k.RevokedAt)}
}

type accessGrantJSON struct {
	ID        string    `json:"id"`
	AdminID   string    `json:"admin_id"`
	Reason    string    `json:"reason"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
}

type auditJSON struct {
	Seq       int64     `json:"seq"`
	At        time.Time `json:"at"`
	ActorID   string    `json:"actor_id,omitempty"`
	SubjectID string    `json:"subject_id,omitempty"`
	Action    string    `json:"action"`
	Detail    any       `json:"detail"`
}

// sessionResponse answers sign-up and login: who is signed in, and the
// CSRF token their state-changing requests must carry.
type sessionResponse struct {
	User      userJSON `json:"user"`
	CSRFToken string   `json:"csrf_token"`
}
