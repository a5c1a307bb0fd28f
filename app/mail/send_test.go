package mail_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"zimage/app/mail"
	"zimage/app/mail/mailpittest"
)

func TestSendsThroughMailpit(t *testing.T) {
	tests := []struct {
		name, tls, auth string
	}{
		{name: "STARTTLS with PLAIN", tls: "starttls", auth: "plain"},
		{name: "implicit TLS with LOGIN", tls: "implicit", auth: "login"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			mp := mailpittest.Start(t, tc.tls)
			w := newWorld(t)
			s := mail.NewSender(w.db, w.keys, w.tmpl, mail.Config{
				Host: "127.0.0.1", Port: mp.SMTPPort, TLS: tc.tls, Auth: tc.auth, Username: "zimage", Password: "relay secret",
				From: "Z Image <images@example.test>", RootCAs: mp.Roots, MaxTries: 3, Timeout: 10 * time.Second,
			}, nil)
			m := w.enqueue(t)
			ctx := context.Background()
			r, err := s.SendDue(ctx)
			if err != nil || r.Sent != 1 {
				t.Fatalf("round: %+v, %v; want one sent", r, err)
			}
			got := mp.Messages(t)
			if len(got) != 1 {
				t.Fatalf("mailpit holds %d messages, want 1", len(got))
			}
			msg := got[0]
			link := "https://images.example.test/reset?token=zir_test"
			checks := []struct {
				what string
				ok   bool
			}{
				{"recipient", len(msg.To) == 1 && msg.To[0].Address == w.email},
				{"subject", msg.Subject == "Reset your Z Image password"},
				{"Message-ID from the row id", msg.MessageID == mail.MessageID(m.ID, "https://images.example.test")},
				{"Auto-Submitted header", len(msg.Headers["Auto-Submitted"]) == 1},
				{"text part has the link", strings.Contains(msg.Text, link)},
				{"HTML part links it", strings.Contains(msg.HTML, `href="`+link+`"`)},
				{"text part has the contact", strings.Contains(msg.Text, "privacy@example.test")},
			}
			for _, c := range checks {
				if !c.ok {
					t.Errorf("%s wrong in %+v", c.what, msg)
				}
			}
			// Sent: only the kind and date are left, and the count.
			if rest := w.mailByID(t, m.ID); rest != nil {
				t.Errorf("message still pending after it was sent: %+v", rest)
			}
			sum, err := w.db.MailSummary(ctx)
			if err != nil || sum.SentByKind["password_reset"] != 1 || sum.Pending != 0 {
				t.Errorf("summary %+v, %v; want one reset sent, nothing pending", sum, err)
			}
		})
	}
}
