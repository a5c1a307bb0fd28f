package sqlite

import (
	"context"
	"strings"
	"testing"

	"zimage/app"
)

func TestConsentLedgerRefusesRewrites(t *testing.T) {
	db := MustOpen(t)
	ctx := context.Background()
	rec := &UserRecord{User: app.User{ID: "01HUSER0000000000000000001", Username: "ledger", Role: app.RoleUser},
		EmailIndex: []byte("idx"), SealedEmail: []byte("sealed"), PasswordHash: "x"}
	if err := db.CreateUser(ctx, NewUser{Record: rec}); err != nil {
		t.Fatal(err)
	}
	if err := db.AppendConsent(ctx, &ConsentRecord{UserID: rec.ID, Purpose: "training", Granted: true, Method: "api"}); err != nil {
		t.Fatal(err)
	}
	for _, stmt := range []string{`UPDATE consents SET granted = 0`, `DELETE FROM consents`} {
		if _, err := db.w.ExecContext(ctx, stmt); err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Errorf("%s: %v, want refused as append-only", stmt, err)
		}
	}
	// A purge keeps the ledger (pseudonymous proof) and removes the rest.
	if err := db.MarkUserDeleted(ctx, rec.ID); err != nil {
		t.Fatal(err)
	}
	if err := db.AppendConsent(ctx, &ConsentRecord{UserID: rec.ID, Purpose: "training", Granted: false, Method: "api"}); app.ErrorCode(err) != app.ENOTFOUND {
		t.Errorf("consent for a deleted account: %v, want not found", err)
	}
	removed, err := db.PurgeUser(ctx, rec.ID)
	if err != nil || removed["users"] != 1 {
		t.Fatalf("purge: %v %v", removed, err)
	}
	if got, _ := db.Consents(ctx, rec.ID); len(got) != 1 {
		t.Errorf("ledger after purge: %d entries, want 1", len(got))
	}
	if _, err := db.PurgeUser(ctx, rec.ID); err != nil {
		t.Errorf("second purge: %v, want a no-op", err)
	}
}
