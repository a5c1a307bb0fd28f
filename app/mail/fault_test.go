package mail_test

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"zimage/app/mail"
)

// faultServer is a real SMTP server on loopback whose answer to each DATA
// is scripted: "421", "550", "cut" (the message arrives whole, then the
// connection drops before the reply) or "ok".
type faultServer struct {
	mu       sync.Mutex
	script   []string
	received []string // raw messages, whatever the answer
	addr     *net.TCPAddr
}

func startFaultServer(t *testing.T, script ...string) *faultServer {
	t.Helper()
	fs := &faultServer{script: script}
	s := smtp.NewServer(fs)
	s.Domain = "fault.test"
	s.ReadTimeout, s.WriteTimeout = 10*time.Second, 10*time.Second
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fs.addr = ln.Addr().(*net.TCPAddr)
	go s.Serve(ln)
	t.Cleanup(func() { s.Close() })
	return fs
}

func (fs *faultServer) NewSession(c *smtp.Conn) (smtp.Session, error) {
	return &faultSession{fs: fs, c: c}, nil
}

func (fs *faultServer) messages() []string {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return append([]string(nil), fs.received...)
}

type faultSession struct {
	fs *faultServer
	c  *smtp.Conn
}

func (s *faultSession) Mail(string, *smtp.MailOptions) error { return nil }
func (s *faultSession) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (s *faultSession) Reset()                               {}
func (s *faultSession) Logout() error                        { return nil }
func (s *faultSession) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.fs.mu.Lock()
	s.fs.received = append(s.fs.received, string(raw))
	step := "ok"
	if len(s.fs.script) > 0 {
		step, s.fs.script = s.fs.script[0], s.fs.script[1:]
	}
	s.fs.mu.Unlock()
	switch step {
	case "421":
		return &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try again later"}
	case "550":
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such mailbox"}
	case "cut":
		s.c.Conn().Close()
		return errors.New("cut")
	}
	return nil
}

func faultSender(w *world, fs *faultServer, maxTries int) *mail.Sender {
	return mail.NewSender(w.db, w.keys, w.tmpl, mail.Config{
		Host: "127.0.0.1", Port: fs.addr.Port, TLS: "none", From: "Z Image <images@example.test>",
		MaxTries: maxTries, RetryBase: time.Minute, RetryMax: time.Hour, Timeout: 10 * time.Second,
	}, nil)
}

func messageID(raw string) string {
	for _, line := range strings.Split(raw, "\r\n") {
		if v, ok := strings.CutPrefix(line, "Message-Id: "); ok {
			return v
		}
		if v, ok := strings.CutPrefix(line, "Message-ID: "); ok {
			return v
		}
	}
	return ""
}

func TestSenderFaults(t *testing.T) {
	tests := []struct {
		name      string
		script    []string
		maxTries  int
		rounds    int // SendDue calls, a retry wait apart
		wantState string
		wantTries int
		wantSent  int // copies the server accepted or received whole
		wantError string
	}{
		{name: "temporary failure waits and retries", script: []string{"421"}, maxTries: 5, rounds: 1, wantState: "retrying", wantTries: 1, wantSent: 1, wantError: "421"},
		{name: "temporary failure then success", script: []string{"421", "ok"}, maxTries: 5, rounds: 2, wantState: "sent", wantSent: 2},
		{name: "refusal dead-letters at once", script: []string{"550"}, maxTries: 5, rounds: 2, wantState: "dead", wantTries: 1, wantSent: 1, wantError: "550"},
		{name: "temporary failures up to max tries dead-letter", script: []string{"421", "421"}, maxTries: 2, rounds: 3, wantState: "dead", wantTries: 2, wantSent: 2},
		{name: "cut mid-DATA is retried", script: []string{"cut", "ok"}, maxTries: 5, rounds: 2, wantState: "sent", wantSent: 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t)
			fs := startFaultServer(t, tc.script...)
			s := faultSender(w, fs, tc.maxTries)
			m := w.enqueue(t)
			for i := 0; i < tc.rounds; i++ {
				if _, err := s.SendDue(context.Background()); err != nil {
					t.Fatal(err)
				}
				// Not due again before the wait: a round now tries nothing.
				if r, err := s.SendDue(context.Background()); err != nil || r.Tried != 0 {
					t.Fatalf("round right after a try: tried %d, err %v; want nothing due", r.Tried, err)
				}
				w.clock.Advance(time.Hour)
			}
			got := w.mailByID(t, m.ID)
			state := "sent"
			if got != nil {
				state = got.State()
			}
			if state != tc.wantState {
				t.Fatalf("state %q, want %q", state, tc.wantState)
			}
			if got != nil && (got.Tries != tc.wantTries || !strings.Contains(got.LastError, tc.wantError)) {
				t.Errorf("tries %d, last error %q; want %d tries and an error with %q", got.Tries, got.LastError, tc.wantTries, tc.wantError)
			}
			copies := fs.messages()
			if len(copies) != tc.wantSent {
				t.Fatalf("server received %d copies, want %d", len(copies), tc.wantSent)
			}
			want := "<" + mail.MessageID(m.ID, "https://images.example.test") + ">"
			for i, c := range copies {
				if id := messageID(c); id != want {
					t.Errorf("copy %d has Message-ID %q, want %q (the same at every try)", i, id, want)
				}
			}
		})
	}
}

func TestDeadLetterRetriedByAdmin(t *testing.T) {
	w := newWorld(t)
	fs := startFaultServer(t, "550", "ok")
	s := faultSender(w, fs, 5)
	m := w.enqueue(t)
	ctx := context.Background()
	if _, err := s.SendDue(ctx); err != nil {
		t.Fatal(err)
	}
	sum, err := w.db.MailSummary(ctx)
	if err != nil || sum.Dead != 1 {
		t.Fatalf("summary %+v, err %v; want one dead letter", sum, err)
	}
	if err := w.db.RetryMail(ctx, m.ID, auditRetry(m.ID)); err != nil {
		t.Fatal(err)
	}
	if err := w.db.RetryMail(ctx, m.ID, auditRetry(m.ID)); err == nil {
		t.Fatal("retrying a message that is no longer dead-lettered succeeded")
	}
	if r, err := s.SendDue(ctx); err != nil || r.Sent != 1 {
		t.Fatalf("round after retry: %+v, %v; want it sent", r, err)
	}
	sum, _ = w.db.MailSummary(ctx)
	if sum.Dead != 0 || sum.SentByKind["password_reset"] != 1 {
		t.Fatalf("summary %+v; want no dead letter and one reset sent", sum)
	}
}

func TestRelayDownRetriesWithoutLoss(t *testing.T) {
	w := newWorld(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close() // nothing listens: the relay is down
	s := mail.NewSender(w.db, w.keys, w.tmpl, mail.Config{Host: "127.0.0.1", Port: port, TLS: "none", From: "images@example.test",
		MaxTries: 3, RetryBase: time.Minute, RetryMax: time.Hour, Timeout: 5 * time.Second}, nil)
	m := w.enqueue(t)
	r, err := s.SendDue(context.Background())
	if err != nil || r.Retrying != 1 {
		t.Fatalf("round with the relay down: %+v, %v; want the message waiting for a retry", r, err)
	}
	if got := w.mailByID(t, m.ID); got == nil || got.State() != "retrying" || got.LastError == "" {
		t.Fatalf("message after the relay was down: %+v", got)
	}
}

func TestBackoff(t *testing.T) {
	tests := []struct {
		tries int
		want  time.Duration
	}{{1, time.Minute}, {2, 2 * time.Minute}, {3, 4 * time.Minute}, {7, time.Hour}, {100, time.Hour}}
	for _, tc := range tests {
		if got := mail.Backoff(time.Minute, time.Hour, tc.tries); got != tc.want {
			t.Errorf("Backoff after %d tries = %s, want %s", tc.tries, got, tc.want)
		}
	}
}
