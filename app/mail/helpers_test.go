package mail_test

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"zimage/app"
	"zimage/app/auth"
	"zimage/app/mail"
	"zimage/app/sqlite"
	"zimage/app/vault"
)

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time          { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Advance(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }

// world is a real database and vault with one account.
type world struct {
	db     *sqlite.DB
	keys   *vault.Vault
	clock  *clock
	tmpl   *mail.Templates
	userID string
	email  string
}

func newWorld(t testing.TB) *world {
	t.Helper()
	dir := t.TempDir()
	db, err := sqlite.Open(context.Background(), filepath.Join(dir, "zimage.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	c := &clock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	db.Now = c.Now
	keys, err := vault.Open(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { keys.Close() })
	svc := auth.New(db, keys, auth.Options{Hasher: auth.NewHasher(auth.Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}, 4)})
	u, err := svc.SignUp(context.Background(), auth.SignUpInput{Email: "ada@example.test", Username: "ada", Password: "a long and unusual passphrase 42", AgeConfirmed: true})
	if err != nil {
		t.Fatal(err)
	}
	tmpl, err := mail.NewTemplates(mail.Site{Name: "Z Image", BaseURL: "https://images.example.test", Contact: "privacy@example.test"})
	if err != nil {
		t.Fatal(err)
	}
	return &world{db: db, keys: keys, clock: c, tmpl: tmpl, userID: u.ID, email: u.Email}
}

// enqueue puts a password reset message for the account in the outbox.
func (w *world) enqueue(t testing.TB) *sqlite.Mail {
	t.Helper()
	m, err := mail.Outbox{Vault: w.keys, Now: w.clock.Now}.New(w.userID, "password_reset", w.email,
		map[string]any{"link": "/reset?token=zir_test", "ttl": "1 hour"})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.db.EnqueueMail(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	return m
}

func (w *world) mailByID(t *testing.T, id string) *sqlite.Mail {
	t.Helper()
	for _, list := range []func(context.Context, int) ([]*sqlite.Mail, error){w.db.PendingMail, w.db.DeadMail} {
		ms, err := list(context.Background(), 100)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range ms {
			if m.ID == id {
				return m
			}
		}
	}
	return nil
}

func auditRetry(id string) app.AuditEntry {
	return app.AuditEntry{Action: "mail.retry", Detail: `{"id":"` + id + `"}`}
}
