package mail_test

import (
	"context"
	"sort"
	"testing"
	"time"

	"zimage/app/mail"
	"zimage/app/mail/mailpittest"
)

// BenchmarkSendToMailpit measures outbox throughput to a real relay on
// loopback (STARTTLS with PLAIN, a private CA): b.N messages are queued,
// then sent in rounds of one connection each. It reports messages/s and
// the delay from queueing to being marked sent, p50 and p99.
func BenchmarkSendToMailpit(b *testing.B) {
	mp := mailpittest.Start(b, "starttls")
	w := newWorld(b)
	w.db.Now = func() time.Time { return time.Now().UTC() }
	w.clock = nil
	s := mail.NewSender(w.db, w.keys, w.tmpl, mail.Config{
		Host: "127.0.0.1", Port: mp.SMTPPort, TLS: "starttls", Auth: "plain", Username: "zimage", Password: "x",
		From: "images@example.test", RootCAs: mp.Roots, MaxTries: 3, Timeout: 30 * time.Second,
	}, nil)
	ctx := context.Background()
	queued := map[string]time.Time{}
	out := mail.Outbox{Vault: w.keys}
	for i := 0; i < b.N; i++ {
		m, err := out.New(w.userID, "password_reset", w.email, map[string]any{"link": "/reset?token=zir_bench", "ttl": "1 hour"})
		if err != nil {
			b.Fatal(err)
		}
		if err := w.db.EnqueueMail(ctx, m); err != nil {
			b.Fatal(err)
		}
		queued[m.ID] = time.Now()
	}
	b.ResetTimer()
	start := time.Now()
	var delays []float64
	sent := 0
	for sent < b.N {
		due, _ := w.db.DueMail(ctx, 50)
		r, err := s.SendDue(ctx)
		if err != nil || r.Sent != r.Tried {
			b.Fatalf("round %+v: %v", r, err)
		}
		now := time.Now()
		for _, m := range due {
			delays = append(delays, float64(now.Sub(queued[m.ID]).Milliseconds()))
		}
		sent += r.Sent
	}
	elapsed := time.Since(start)
	b.StopTimer()
	sort.Float64s(delays)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
	b.ReportMetric(delays[len(delays)/2], "p50-ms")
	b.ReportMetric(delays[len(delays)*99/100], "p99-ms")
}
