package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"testing"

	"zimage/app"
)

// tamper runs raw SQL on the database file, as someone with access to the
// disk could: triggers are dropped first, since they would be too.
func tamper(t *testing.T, db *DB, stmts ...string) {
	t.Helper()
	raw, err := sql.Open("sqlite", "file:"+escapePath(db.Path))
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	for _, s := range append([]string{`DROP TRIGGER IF EXISTS audit_log_no_update`, `DROP TRIGGER IF EXISTS audit_log_no_delete`}, stmts...) {
		if _, err := raw.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

func seedAudit(t *testing.T, db *DB, n int) {
	t.Helper()
	for i := range n {
		e := app.AuditEntry{ActorID: "01ACTOR", SubjectID: "01SUBJECT", Action: app.AuditLoginSuccess, Detail: `{"n":"` + string(rune('a'+i)) + `"}`}
		if err := db.AppendAudit(context.Background(), e); err != nil {
			t.Fatal(err)
		}
	}
}

func TestVerifyAuditDetectsTampering(t *testing.T) {
	tests := []struct {
		name    string
		stmts   []string
		wantSeq int64 // 0: intact
	}{
		{"intact", nil, 0},
		{"edited action", []string{`UPDATE audit_log SET action = 'logout' WHERE seq = 3`}, 3},
		{"edited detail", []string{`UPDATE audit_log SET detail = '{}' WHERE seq = 2`}, 2},
		{"edited time", []string{`UPDATE audit_log SET at = at + 1 WHERE seq = 4`}, 4},
		{"deleted middle", []string{`DELETE FROM audit_log WHERE seq = 3`}, 3},
		{"deleted first", []string{`DELETE FROM audit_log WHERE seq = 1`}, 1},
		{"deleted newest", []string{`DELETE FROM audit_log WHERE seq = 5`}, 5},
		{"deleted middle and renumbered", []string{`DELETE FROM audit_log WHERE seq = 3`, `UPDATE audit_log SET seq = seq - 1 WHERE seq > 3`}, 3},
		{"rehashed edit", []string{`UPDATE audit_log SET action = 'logout', hash = randomblob(32) WHERE seq = 2`}, 2},
		{"all deleted", []string{`DELETE FROM audit_log`}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := MustOpen(t)
			seedAudit(t, db, 5)
			tamper(t, db, tt.stmts...)
			n, err := db.VerifyAudit(context.Background())
			if tt.wantSeq == 0 {
				if err != nil || n != 5 {
					t.Fatalf("VerifyAudit = %d, %v; want 5, nil", n, err)
				}
				return
			}
			var broken *AuditBrokenError
			if !errors.As(err, &broken) {
				t.Fatalf("VerifyAudit = %d, %v; want an AuditBrokenError", n, err)
			}
			if broken.Seq != tt.wantSeq {
				t.Errorf("broken at %d (%s), want %d", broken.Seq, broken.Reason, tt.wantSeq)
			}
		})
	}
}

func TestAuditLogIsAppendOnly(t *testing.T) {
	db := MustOpen(t)
	seedAudit(t, db, 2)
	for _, q := range []string{`UPDATE audit_log SET action = 'x'`, `DELETE FROM audit_log`} {
		_, err := db.w.Exec(q)
		if err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Errorf("%s: err = %v, want the append-only refusal", q, err)
		}
	}
}

func TestAuditAppendRollsBackWithItsChange(t *testing.T) {
	db := MustOpen(t)
	ctx := context.Background()
	// An audit entry for a change that fails must not survive it.
	err := db.UpdateUser(ctx, "no-such-user", UserChange{Audit: []app.AuditEntry{{Action: app.AuditRoleChange}}})
	if app.ErrorCode(err) != app.ENOTFOUND {
		t.Fatalf("err = %v, want not found", err)
	}
	entries, err := db.AuditEntries(ctx, AuditFilter{})
	if err != nil || len(entries) != 0 {
		t.Fatalf("entries = %v, %v; want none", entries, err)
	}
}

func TestAuditNewestFirstPaging(t *testing.T) {
	ctx := context.Background()
	db := MustOpen(t)
	for i := 0; i < 5; i++ {
		if err := db.AppendAudit(ctx, app.AuditEntry{Action: "test.step"}); err != nil {
			t.Fatal(err)
		}
	}
	page, err := db.AuditEntries(ctx, AuditFilter{NewestFirst: true, Limit: 2})
	if err != nil || len(page) != 2 || page[0].Seq != 5 || page[1].Seq != 4 {
		t.Fatalf("newest page: %v, %v", page, err)
	}
	page, err = db.AuditEntries(ctx, AuditFilter{NewestFirst: true, BeforeSeq: 4, Limit: 10})
	if err != nil || len(page) != 3 || page[0].Seq != 3 || page[2].Seq != 1 {
		t.Fatalf("older page: %v, %v", page, err)
	}
}
