package sqlite

import (
	"context"
	"testing"
	"time"

	"zimage/app"
)

// TestAPIKeyLookupSeesEveryChange: a key and its owner are cached between
// requests, and each change that must refuse the key or change what it may
// do is seen by the very next lookup, not after the cache's lifetime.
func TestAPIKeyLookupSeesEveryChange(t *testing.T) {
	role, disabled := app.RoleAdmin, true
	tests := []struct {
		name   string
		change func(ctx context.Context, db *DB, userID, keyID string) error
		// check returns what is wrong with the lookup after the change.
		check func(k *app.APIKey, u *UserRecord, err error) string
	}{
		{"revoke", func(ctx context.Context, db *DB, userID, keyID string) error {
			return db.RevokeAPIKey(ctx, userID, keyID)
		}, func(k *app.APIKey, _ *UserRecord, err error) string {
			if err != nil || k.RevokedAt.IsZero() {
				return "the key is not shown revoked"
			}
			return ""
		}},
		{"role change", func(ctx context.Context, db *DB, userID, _ string) error {
			return db.UpdateUser(ctx, userID, UserChange{Role: &role})
		}, func(_ *app.APIKey, u *UserRecord, err error) string {
			if err != nil || u.Role != app.RoleAdmin {
				return "the owner's old role is shown"
			}
			return ""
		}},
		{"disable", func(ctx context.Context, db *DB, userID, _ string) error {
			return db.UpdateUser(ctx, userID, UserChange{Disabled: &disabled})
		}, func(_ *app.APIKey, u *UserRecord, err error) string {
			if err != nil || u.Active() {
				return "the owner is shown active"
			}
			return ""
		}},
		{"account deletion", func(ctx context.Context, db *DB, userID, _ string) error {
			return db.MarkUserDeleted(ctx, userID)
		}, func(_ *app.APIKey, u *UserRecord, err error) string {
			// Deletion removes the keys; a key still found must at least
			// show its owner deleted.
			if app.ErrorCode(err) != app.ENOTFOUND && (err != nil || u.Active()) {
				return "the key is found with its owner active"
			}
			return ""
		}},
		{"purge", func(ctx context.Context, db *DB, userID, _ string) error {
			if err := db.MarkUserDeleted(ctx, userID); err != nil {
				return err
			}
			_, err := db.PurgeUser(ctx, userID)
			return err
		}, func(_ *app.APIKey, _ *UserRecord, err error) string {
			if app.ErrorCode(err) != app.ENOTFOUND {
				return "the purged owner's key is still found"
			}
			return ""
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			db := MustOpen(t)
			now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
			db.Now = func() time.Time { return now } // the clock stands still: only the change may end the cache
			rec := &UserRecord{User: app.User{ID: "01HUSER0000000000000000001", Username: "keyholder", Role: app.RoleUser},
				EmailIndex: []byte("idx"), SealedEmail: []byte("sealed"), PasswordHash: "x"}
			if err := db.CreateUser(ctx, NewUser{Record: rec}); err != nil {
				t.Fatal(err)
			}
			k := &app.APIKey{ID: "key1", UserID: rec.ID, Name: "script", Prefix: "zik_abcdefgh", Scopes: []string{app.ScopeRead}}
			hash := []byte("0123456789abcdef0123456789abcdef")
			if err := db.CreateAPIKey(ctx, k, []byte("sealed-name"), hash); err != nil {
				t.Fatal(err)
			}
			for range 2 { // the second lookup is served from the cache
				if got, u, err := db.APIKeyByTokenHash(ctx, hash); err != nil || got.ID != k.ID || u.ID != rec.ID || !got.RevokedAt.IsZero() || !u.Active() {
					t.Fatalf("lookup before the change: %+v %+v %v", got, u, err)
				}
			}
			if err := tt.change(ctx, db, rec.ID, k.ID); err != nil {
				t.Fatal(err)
			}
			got, u, err := db.APIKeyByTokenHash(ctx, hash)
			if problem := tt.check(got, u, err); problem != "" {
				t.Errorf("right after the %s: %s (err %v)", tt.name, problem, err)
			}
		})
	}
}

// TestAPIKeyTouchKeepsCachedLastUse: a touched key is not shown as
// unused, or every request would touch it again.
func TestAPIKeyTouchKeepsCachedLastUse(t *testing.T) {
	ctx := context.Background()
	db := MustOpen(t)
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	db.Now = func() time.Time { return now }
	rec := &UserRecord{User: app.User{ID: "01HUSER0000000000000000001", Username: "keyholder", Role: app.RoleUser},
		EmailIndex: []byte("idx"), SealedEmail: []byte("sealed"), PasswordHash: "x"}
	if err := db.CreateUser(ctx, NewUser{Record: rec}); err != nil {
		t.Fatal(err)
	}
	hash := []byte("0123456789abcdef0123456789abcdef")
	if err := db.CreateAPIKey(ctx, &app.APIKey{ID: "key1", UserID: rec.ID, Name: "script", Prefix: "zik_abcdefgh"}, []byte("sealed-name"), hash); err != nil {
		t.Fatal(err)
	}
	if _, _, err := db.APIKeyByTokenHash(ctx, hash); err != nil {
		t.Fatal(err)
	}
	if err := db.TouchAPIKey(ctx, "key1"); err != nil {
		t.Fatal(err)
	}
	k, _, err := db.APIKeyByTokenHash(ctx, hash)
	if err != nil || !k.LastUsedAt.Equal(now) {
		t.Errorf("last use after a touch: %v (err %v), want %v", k.LastUsedAt, err, now)
	}
}
