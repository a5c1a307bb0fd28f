package cli

import (
	"context"
	"crypto/x509"
	"log/slog"
	"os"
	"strings"
	"sync"

	"zimage/app"
	"zimage/app/config"
	"zimage/app/mail"
	"zimage/app/sqlite"
)

// mailSite is what mail says about the service.
func mailSite(cfg config.Config) mail.Site {
	s := mail.Site{Name: "Z Image", BaseURL: cfg.Server.BaseURL, Contact: cfg.Privacy.ContactEmail}
	if cfg.Privacy.Controller != "" {
		s.Name = cfg.Privacy.Controller
	}
	if s.Contact == "" {
		s.Contact = cfg.Mail.From
	}
	return s
}

// mailConfig maps [mail] to the sender's config, reading the password and
// CA files.
func mailConfig(cfg config.Config) (mail.Config, error) {
	m := cfg.Mail
	c := mail.Config{Host: m.Host, Port: m.Port, TLS: m.TLS, Auth: m.Auth, Username: m.Username, Password: m.Password,
		From: m.From, MaxTries: m.MaxTries, RetryBase: m.RetryBase.D(), RetryMax: m.RetryMax.D(), Poll: m.Poll.D(), Timeout: m.Timeout.D()}
	if m.PasswordFile != "" {
		b, err := os.ReadFile(m.PasswordFile)
		if err != nil {
			return c, app.Errorf(app.EINVALID, "mail.password_file: cannot read %s: %v", m.PasswordFile, err)
		}
		c.Password = strings.TrimRight(string(b), "\r\n")
	}
	if m.CAFile != "" {
		pem, err := os.ReadFile(m.CAFile)
		if err != nil {
			return c, app.Errorf(app.EINVALID, "mail.ca_file: cannot read %s: %v", m.CAFile, err)
		}
		c.RootCAs = x509.NewCertPool()
		if !c.RootCAs.AppendCertsFromPEM(pem) {
			return c, app.Errorf(app.EINVALID, "mail.ca_file: %s holds no PEM certificate", m.CAFile)
		}
	}
	return c, nil
}

// startMail parses the mail templates (a broken one fails the start) and,
// when [mail] names a relay, runs the sender until ctx ends. The outbox it
// returns is nil when mail is off: flows then say what to do instead.
func startMail(ctx context.Context, cfg config.Config, db *sqlite.DB, keys mail.Sealer, log *slog.Logger) (*mail.Outbox, func(), error) {
	tmpl, err := mail.NewTemplates(mailSite(cfg))
	if err != nil {
		return nil, nil, err
	}
	mc, err := mailConfig(cfg)
	if err != nil {
		return nil, nil, err
	}
	if !mc.Enabled() {
		log.Info("mail is off (no mail.host): nothing is sent; admins see the outbox with `zimage mail`, reset links come from admins")
		return nil, func() {}, nil
	}
	if cfg.Server.BaseURL == "" {
		return nil, nil, app.Errorf(app.EINVALID, "mail.host is set but server.base_url is empty: the links in mail need the site's public address; set server.base_url")
	}
	sender := mail.NewSender(db, keys, tmpl, mc, log)
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); sender.Run(ctx) }()
	log.Info("mail: sending through the relay", "host", mc.Host, "port", mc.Port, "tls", mc.TLS)
	return &mail.Outbox{Vault: keys, Now: db.Now, Wake: sender.Wake}, func() { cancel(); wg.Wait() }, nil
}
