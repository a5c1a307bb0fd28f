package privacy

import (
	"context"
	"testing"

	"zimage/app"
	"zimage/app/auth"
	"zimage/app/sqlite"
)

// After a restore, an account whose key the keyring shows destroyed is
// deleted again (its purge due now); one the keyring never knew (a keyring
// older than the account) is left alone, since a newer keyring would open
// it, and only counted; live accounts are untouched.
func TestEndKeylessAccounts(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	kept := w.signup(t, "kept@example.com", "keptperson")
	gone := w.signup(t, "gone@example.com", "goneperson")
	if _, err := w.accounts.Login(ctx, auth.LoginInput{Login: "goneperson", Password: testPassword}); err != nil {
		t.Fatal(err)
	}
	if err := w.keys.Shred(gone.ID); err != nil {
		t.Fatal(err)
	}
	// An account the keyring never saw, as with a keyring backup older
	// than the account.
	stranger := &sqlite.UserRecord{EmailIndex: []byte("stranger"), SealedEmail: []byte("sealed"), PasswordHash: "x"}
	stranger.ID, stranger.Username, stranger.Role = "01STRANGER0000000000000000", "stranger", app.RoleUser
	if err := w.db.CreateUser(ctx, sqlite.NewUser{Record: stranger}); err != nil {
		t.Fatal(err)
	}

	got, err := w.ctl.EndKeylessAccounts(ctx)
	if err != nil || got != (KeylessAccounts{Ended: 1, Unknown: 1}) {
		t.Fatalf("EndKeylessAccounts = %+v, %v; want 1 ended, 1 unknown", got, err)
	}
	for id, wantDeleted := range map[string]bool{gone.ID: true, kept.ID: false, stranger.ID: false} {
		rec, err := w.db.UserByID(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if deleted := !rec.DeletedAt.IsZero(); deleted != wantDeleted {
			t.Errorf("%s deleted = %v, want %v", rec.Username, deleted, wantDeleted)
		}
	}
	if sessions, _ := w.db.ListSessions(ctx, gone.ID); len(sessions) != 0 {
		t.Errorf("the ended account keeps %d sessions", len(sessions))
	}
	res, err := w.ctl.PurgeDeleted(ctx, w.clock.Now(), 10)
	if err != nil || res.Accounts != 1 {
		t.Errorf("purge right after: %+v, %v; want the ended account purged", res, err)
	}
	if again, _ := w.ctl.EndKeylessAccounts(ctx); again.Ended != 0 {
		t.Errorf("a second run ended %d more", again.Ended)
	}
}
