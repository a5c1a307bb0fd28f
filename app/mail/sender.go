package mail

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	gomail "github.com/wneessen/go-mail"

	"zimage/app/sqlite"
)

// Config is the SMTP relay and the retry rules, mapped from [mail].
type Config struct {
	Host     string
	Port     int
	TLS      string // "starttls", "implicit" or "none"
	Auth     string // "plain" or "login"
	Username string
	Password string
	From     string
	// RootCAs verifies the relay's certificate; nil: the system's roots.
	RootCAs   *x509.CertPool
	MaxTries  int
	RetryBase time.Duration
	RetryMax  time.Duration
	Poll      time.Duration
	Timeout   time.Duration
	// HELO is the name the sender greets the relay with; empty: the base
	// URL's host (some relays refuse a machine's bare hostname).
	HELO string
}

// Enabled says whether mail is configured at all.
func (c Config) Enabled() bool { return c.Host != "" }

// batch is how many due messages one round sends over one connection.
const batch = 50

// Sender sends the outbox. Run it once per process.
type Sender struct {
	db    *sqlite.DB
	vault Sealer
	tmpl  *Templates
	cfg   Config
	log   *slog.Logger
	wake  chan struct{}
}

// NewSender returns a sender; zero retry settings take the config
// defaults.
func NewSender(db *sqlite.DB, v Sealer, t *Templates, cfg Config, log *slog.Logger) *Sender {
	if cfg.MaxTries <= 0 {
		cfg.MaxTries = 8
	}
	if cfg.RetryBase <= 0 {
		cfg.RetryBase = time.Minute
	}
	if cfg.RetryMax <= 0 {
		cfg.RetryMax = 6 * time.Hour
	}
	if cfg.Poll <= 0 {
		cfg.Poll = 5 * time.Second
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	if cfg.HELO == "" {
		cfg.HELO = strings.SplitN(MessageID("x", t.Site().BaseURL), "@", 2)[1]
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Sender{db: db, vault: v, tmpl: t, cfg: cfg, log: log, wake: make(chan struct{}, 1)}
}

// Wake asks the sender to look for due mail now; it never blocks.
func (s *Sender) Wake() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Run sends due mail until ctx ends, every Poll or when woken.
func (s *Sender) Run(ctx context.Context) {
	t := time.NewTicker(s.cfg.Poll)
	defer t.Stop()
	for {
		for {
			n, err := s.SendDue(ctx)
			if err != nil {
				s.log.Error("mail: sending failed", "err", err)
			}
			if err != nil || n.Tried < batch {
				break
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-s.wake:
		}
	}
}

// Round counts what one SendDue did.
type Round struct{ Tried, Sent, Retrying, Dead int }

// SendDue sends up to one batch of due messages over one connection and
// records each outcome. It returns an error only when the outbox itself
// cannot be read or written; a relay that is down makes every message wait
// for its next try.
func (s *Sender) SendDue(ctx context.Context) (Round, error) {
	var r Round
	due, err := s.db.DueMail(ctx, batch)
	if err != nil || len(due) == 0 {
		return r, err
	}
	r.Tried = len(due)
	msgs := make([]*gomail.Msg, len(due))
	for i, m := range due {
		msg, err := s.build(m)
		if err != nil {
			// Nothing a retry can fix: the key is gone or the row broken.
			if err := s.fail(ctx, m, err, true, &r); err != nil {
				return r, err
			}
			continue
		}
		msgs[i] = msg
	}
	client, err := s.client()
	if err != nil {
		return r, err
	}
	dctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	dialErr := client.DialWithContext(dctx)
	cancel()
	if dialErr == nil {
		defer client.Close()
	}
	for i, m := range due {
		if msgs[i] == nil {
			continue
		}
		err := dialErr
		if err == nil {
			err = client.Send(msgs[i])
		}
		if err == nil {
			// A crash right here sends this message again at the next
			// start, with the same Message-ID.
			if err := s.db.MarkMailSent(ctx, m.ID); err != nil {
				return r, err
			}
			r.Sent++
			continue
		}
		if err := s.fail(ctx, m, err, permanent(err), &r); err != nil {
			return r, err
		}
	}
	s.log.Info("mail: round", "tried", r.Tried, "sent", r.Sent, "retrying", r.Retrying, "dead", r.Dead)
	return r, nil
}

// permanent says whether the relay refused for good (a 5xx answer): such
// a message is dead-lettered at once. Anything else (4xx, a cut
// connection, a relay that is down) is worth another try.
func permanent(err error) bool {
	var se *gomail.SendError
	if errors.As(err, &se) {
		code := se.ErrorCode()
		return code >= 500 && code < 600
	}
	return false
}

func (s *Sender) fail(ctx context.Context, m *sqlite.Mail, cause error, dead bool, r *Round) error {
	tries := m.Tries + 1
	if tries >= s.cfg.MaxTries {
		dead = true
	}
	next := s.db.Now().Add(Backoff(s.cfg.RetryBase, s.cfg.RetryMax, tries))
	reason := cause.Error()
	if len(reason) > 300 {
		reason = reason[:300]
	}
	if dead {
		r.Dead++
		s.log.Warn("mail: dead-lettered; an admin can retry it", "id", m.ID, "kind", m.Kind, "tries", tries, "err", reason)
	} else {
		r.Retrying++
		s.log.Info("mail: will retry", "id", m.ID, "kind", m.Kind, "tries", tries, "at", next, "err", reason)
	}
	return s.db.MarkMailFailed(ctx, m.ID, reason, next, dead)
}

// Backoff is the wait after the given number of failed tries: base, then
// doubling, at most max.
func Backoff(base, max time.Duration, tries int) time.Duration {
	d := base
	for i := 1; i < tries; i++ {
		d *= 2
		if d >= max || d <= 0 {
			return max
		}
	}
	return min(d, max)
}

func (s *Sender) build(m *sqlite.Mail) (*gomail.Msg, error) {
	to, fields, err := openPayload(s.vault, m)
	if err != nil {
		return nil, err
	}
	rendered, err := s.tmpl.Render(m.Kind, fields)
	if err != nil {
		return nil, err
	}
	msg := gomail.NewMsg()
	if err := msg.From(s.cfg.From); err != nil {
		return nil, fmt.Errorf("sender address: %w", err)
	}
	if err := msg.To(to); err != nil {
		return nil, fmt.Errorf("recipient address refused: %w", err)
	}
	msg.Subject(rendered.Subject)
	msg.SetMessageIDWithValue(MessageID(m.ID, s.tmpl.Site().BaseURL))
	msg.SetDateWithValue(m.CreatedAt)
	msg.SetGenHeader("Auto-Submitted", "auto-generated")
	msg.SetBodyString(gomail.TypeTextPlain, rendered.Text)
	msg.AddAlternativeString(gomail.TypeTextHTML, rendered.HTML)
	return msg, nil
}

func (s *Sender) client() (*gomail.Client, error) {
	c := s.cfg
	opts := []gomail.Option{gomail.WithPort(c.Port), gomail.WithTimeout(c.Timeout), gomail.WithHELO(c.HELO),
		gomail.WithTLSConfig(&tls.Config{ServerName: c.Host, RootCAs: c.RootCAs, MinVersion: tls.VersionTLS12})}
	switch c.TLS {
	case "implicit":
		opts = append(opts, gomail.WithSSL())
	case "none":
		opts = append(opts, gomail.WithTLSPolicy(gomail.NoTLS))
	default:
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSMandatory))
	}
	if c.Username != "" {
		auth := map[[2]bool]gomail.SMTPAuthType{
			{false, true}: gomail.SMTPAuthPlain, {true, true}: gomail.SMTPAuthLogin,
			{false, false}: gomail.SMTPAuthPlainNoEnc, {true, false}: gomail.SMTPAuthLoginNoEnc,
		}[[2]bool{c.Auth == "login", c.TLS != "none"}]
		opts = append(opts, gomail.WithSMTPAuth(auth), gomail.WithUsername(c.Username), gomail.WithPassword(c.Password))
	}
	client, err := gomail.NewClient(c.Host, opts...)
	if err != nil {
		return nil, fmt.Errorf("mail: client: %w", err)
	}
	return client, nil
}
