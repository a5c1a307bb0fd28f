package mail_test

import (
	"context"
	"testing"

	"github.com/pquerna/otp/totp"

	"zimage/app/auth"
	"zimage/app/mail"
)

// With mail on, each security change queues a notice to the person, in
// the change's own transaction; with mail off, none.
func TestSecurityChangesQueueNotices(t *testing.T) {
	for _, mailOn := range []bool{true, false} {
		w := newWorld(t)
		ctx := context.Background()
		opts := auth.Options{Hasher: auth.NewHasher(auth.Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}, 4)}
		if mailOn {
			opts.Mail = &mail.Outbox{Vault: w.keys, Now: w.clock.Now}
		}
		svc := auth.New(w.db, w.keys, opts)
		u, err := svc.Profile(ctx, w.userID)
		if err != nil {
			t.Fatal(err)
		}
		enr, err := svc.StartTOTP(ctx, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		code, _ := totp.GenerateCode(enr.Secret, w.clock.Now())
		if _, err := svc.ConfirmTOTP(ctx, u.ID, code); err != nil {
			t.Fatal(err)
		}
		if _, err := svc.ChangePassword(ctx, &auth.Principal{User: u}, "a long and unusual passphrase 42", "another unusual passphrase 77", true); err != nil {
			t.Fatal(err)
		}
		pending, err := w.db.PendingMail(ctx, 10)
		if err != nil {
			t.Fatal(err)
		}
		notices := 0
		for _, m := range pending {
			if m.Kind == auth.MailSecurity {
				notices++
			}
		}
		want := 0
		if mailOn {
			want = 2
		}
		if notices != want {
			t.Errorf("mail on %v: %d security notices queued, want %d", mailOn, notices, want)
		}
	}
}
