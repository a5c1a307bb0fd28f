package auth

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"zimage/app"
	"zimage/app/sqlite"
	"zimage/app/vault"
)

func newTestService(t *testing.T) (*Service, *sqlite.DB) {
	t.Helper()
	dir := t.TempDir()
	db, err := sqlite.Open(context.Background(), filepath.Join(dir, "zimage.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	v, err := vault.Open(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })
	cheap := NewHasher(Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}, 8)
	return New(db, v, Options{Hasher: cheap}), db
}

func TestConcurrentFirstSignupsMakeOneAdmin(t *testing.T) {
	s, _ := newTestService(t)
	names := []string{"anna", "bert", "cleo", "dirk", "emma", "finn"}
	var wg sync.WaitGroup
	roles := make([]string, len(names))
	for i, n := range names {
		wg.Go(func() {
			u, err := s.SignUp(t.Context(), SignUpInput{Email: n + "@example.com", Username: n, Password: "correct horse battery staple", AgeConfirmed: true})
			if err != nil {
				t.Error(err)
				return
			}
			roles[i] = u.Role
		})
	}
	wg.Wait()
	admins := 0
	for _, r := range roles {
		if r == app.RoleAdmin {
			admins++
		}
	}
	if admins != 1 {
		t.Errorf("roles %v: %d admins, want exactly 1", roles, admins)
	}
}

func TestPersonalDataIsSealedAtRest(t *testing.T) {
	s, db := newTestService(t)
	ctx := t.Context()
	u, err := s.SignUp(ctx, SignUpInput{Email: "hidden.person@example.com", Username: "hiddenperson", DisplayName: "Secret Display Name",
		Password: "correct horse battery staple", AgeConfirmed: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.GrantAccess(ctx, u.ID, u.ID, "A reason that mentions Secret Display Name"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.StartTOTP(ctx, u.ID); err != nil {
		t.Fatal(err)
	}
	got, err := s.Profile(ctx, u.ID)
	if err != nil || got.Email != "hidden.person@example.com" || got.DisplayName != "Secret Display Name" {
		t.Fatalf("profile = %+v, %v", got, err)
	}
	db.Close() // checkpoint the WAL into the file
	var all []byte
	for _, suffix := range []string{"", "-wal"} {
		b, _ := os.ReadFile(db.Path + suffix)
		all = append(all, b...)
	}
	for _, secret := range []string{"hidden.person@example.com", "Secret Display Name"} {
		if bytes.Contains(all, []byte(secret)) {
			t.Errorf("%q is in the database file in plaintext", secret)
		}
	}
}

func TestDisabledUserCannotAuthenticate(t *testing.T) {
	s, _ := newTestService(t)
	ctx := t.Context()
	adm, _ := s.SignUp(ctx, SignUpInput{Email: "a@example.com", Username: "admin", Password: "correct horse battery staple", AgeConfirmed: true})
	u, _ := s.SignUp(ctx, SignUpInput{Email: "u@example.com", Username: "user", Password: "correct horse battery staple", AgeConfirmed: true})
	res, err := s.Login(ctx, LoginInput{Login: "user", Password: "correct horse battery staple"})
	if err != nil {
		t.Fatal(err)
	}
	p := &Principal{User: res.User}
	_, key, err := s.CreateAPIKey(ctx, p, "script", []string{app.ScopeRead})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetDisabled(ctx, adm.ID, u.ID, true); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate(ctx, res.Token); app.ErrorCode(err) != app.EUNAUTHORIZED {
		t.Errorf("session of a disabled user: %v", err)
	}
	if _, err := s.AuthenticateAPIKey(ctx, key); app.ErrorCode(err) != app.EUNAUTHORIZED {
		t.Errorf("key of a disabled user: %v", err)
	}
	_, err = s.Login(ctx, LoginInput{Login: "user", Password: "correct horse battery staple"})
	if app.ErrorCode(err) != app.EUNAUTHORIZED || !bytes.Contains([]byte(app.ErrorMessage(err)), []byte("disabled")) {
		t.Errorf("login of a disabled user: %v", err)
	}
}

// TestAccountWithoutKeyCannotAuthenticate is the second lock behind a
// restore: an account whose data key is gone from the keyring (deleted
// after the backup the row came from) is refused at sign-in, by session
// and by API key, even while its row still says it is live.
func TestAccountWithoutKeyCannotAuthenticate(t *testing.T) {
	s, _ := newTestService(t)
	ctx := t.Context()
	const pw = "correct horse battery staple"
	s.SignUp(ctx, SignUpInput{Email: "a@example.com", Username: "admin", Password: pw, AgeConfirmed: true})
	u, err := s.SignUp(ctx, SignUpInput{Email: "gone@example.com", Username: "gone", Password: pw, AgeConfirmed: true})
	if err != nil {
		t.Fatal(err)
	}
	res, err := s.Login(ctx, LoginInput{Login: "gone", Password: pw})
	if err != nil {
		t.Fatal(err)
	}
	_, key, err := s.CreateAPIKey(ctx, &Principal{User: res.User}, "script", []string{app.ScopeRead})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.v.Shred(u.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate(ctx, res.Token); app.ErrorCode(err) != app.EUNAUTHORIZED {
		t.Errorf("session of an account without its key: %v, want unauthorized", err)
	}
	if _, err := s.AuthenticateAPIKey(ctx, key); app.ErrorCode(err) != app.EUNAUTHORIZED {
		t.Errorf("API key of an account without its key: %v, want unauthorized", err)
	}
	_, err = s.Login(ctx, LoginInput{Login: "gone", Password: pw})
	_, wrong := s.Login(ctx, LoginInput{Login: "admin", Password: "not the password at all"})
	if err == nil || app.ErrorMessage(err) != app.ErrorMessage(wrong) {
		t.Errorf("login of an account without its key: %v; want the wrong-password answer %q", err, app.ErrorMessage(wrong))
	}
	if _, err := s.Login(ctx, LoginInput{Login: "admin", Password: pw}); err != nil {
		t.Errorf("the other account: %v", err)
	}
}
