// Package certs provides the TLS configuration for the HTTPS listener: ACME
// certificates through certmagic ("auto") or the admin's own files
// ("files"). Every configuration it returns accepts TLS 1.3 only.
package certs

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"sync/atomic"
	"time"

	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"

	"zimage/app"
)

// Options mirror the [tls] config section.
type Options struct {
	Mode              string // "auto" or "files"
	Domains           []string
	Email             string
	CAURL             string
	CARootFile        string
	CertFile, KeyFile string
	StorageDir        string // auto: where certmagic keeps accounts and certificates
	ChallengeHTTPPort int
	ChallengeALPNPort int
	// ListenHost, when set, is the address certmagic binds for challenges
	// it answers on its own ports (tests bind loopback only).
	ListenHost string
}

// Manager hands out certificates to the TLS listener.
type Manager struct {
	opts   Options
	log    *slog.Logger
	magic  *certmagic.Config
	cache  *certmagic.Cache
	issuer *certmagic.ACMEIssuer
	// files mode: the current pair and the files' modification times.
	current         atomic.Pointer[tls.Certificate]
	certMod, keyMod time.Time
}

// New prepares a Manager. For "files" it loads the pair now, so a missing
// or mismatched file stops the start; for "auto" it sets up the ACME issuer
// (Start obtains the certificates).
func New(opts Options, log *slog.Logger) (*Manager, error) {
	m := &Manager{opts: opts, log: log}
	switch opts.Mode {
	case "files":
		if err := m.Reload(); err != nil {
			return nil, err
		}
	case "auto":
		if err := m.setupACME(); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("certs: mode %q has no certificates", opts.Mode)
	}
	return m, nil
}

// Check validates files-mode certificate settings without starting
// anything; doctor and the start use it before creating anything on disk.
func Check(opts Options) error {
	if opts.Mode != "files" {
		if opts.CARootFile != "" {
			if _, err := loadPool(opts.CARootFile); err != nil {
				return err
			}
		}
		return nil
	}
	_, err := loadPair(opts.CertFile, opts.KeyFile)
	return err
}

func loadPair(certFile, keyFile string) (*tls.Certificate, error) {
	for _, f := range []struct{ key, path string }{{"tls.cert_file", certFile}, {"tls.key_file", keyFile}} {
		if _, err := os.Stat(f.path); err != nil {
			return nil, &app.Error{Code: app.EINVALID, Message: fmt.Sprintf("%s %s cannot be read (%v): check the path and that zimage's user may read it", f.key, f.path, unwrapPath(err))}
		}
	}
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, &app.Error{Code: app.EINVALID, Message: fmt.Sprintf("tls.cert_file %s and tls.key_file %s are not a usable pair (%v): check that the key belongs to the certificate and both are PEM", certFile, keyFile, err)}
	}
	if leaf, err := x509.ParseCertificate(pair.Certificate[0]); err == nil {
		pair.Leaf = leaf
	}
	return &pair, nil
}

func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

func loadPool(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, &app.Error{Code: app.EINVALID, Message: fmt.Sprintf("tls.ca_root %s cannot be read (%v)", path, unwrapPath(err))}
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, &app.Error{Code: app.EINVALID, Message: fmt.Sprintf("tls.ca_root %s holds no PEM certificate", path)}
	}
	return pool, nil
}

// Reload re-reads the certificate files (files mode). A bad pair keeps the
// old one in service and returns the error.
func (m *Manager) Reload() error {
	pair, err := loadPair(m.opts.CertFile, m.opts.KeyFile)
	if err != nil {
		return err
	}
	m.current.Store(pair)
	m.certMod, m.keyMod = modTime(m.opts.CertFile), modTime(m.opts.KeyFile)
	return nil
}

func modTime(path string) time.Time {
	fi, err := os.Stat(path)
	if err != nil {
		return time.Time{}
	}
	return fi.ModTime()
}

// Watch reloads files-mode certificates when they change on disk (polled:
// renewals by certbot and friends replace files, which inotify on the old
// inode would miss) until ctx ends.
func (m *Manager) Watch(ctx context.Context, every time.Duration) {
	if m.opts.Mode != "files" {
		return
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if modTime(m.opts.CertFile).Equal(m.certMod) && modTime(m.opts.KeyFile).Equal(m.keyMod) {
				continue
			}
			if err := m.Reload(); err != nil {
				m.log.Error("certificate files changed but cannot be loaded; still serving the previous certificate", "err", err)
			} else {
				m.log.Info("certificate reloaded", "cert_file", m.opts.CertFile)
			}
		}
	}
}

func (m *Manager) setupACME() error {
	var roots *x509.CertPool
	if m.opts.CARootFile != "" {
		pool, err := loadPool(m.opts.CARootFile)
		if err != nil {
			return err
		}
		roots = pool
	}
	logger := zap.NewNop()
	var magic *certmagic.Config
	cache := certmagic.NewCache(certmagic.CacheOptions{
		GetConfigForCert: func(certmagic.Certificate) (*certmagic.Config, error) { return magic, nil },
		Logger:           logger,
	})
	magic = certmagic.New(cache, certmagic.Config{
		Storage: &certmagic.FileStorage{Path: m.opts.StorageDir},
		Logger:  logger,
	})
	ca := m.opts.CAURL
	if ca == "" {
		ca = certmagic.LetsEncryptProductionCA
	}
	m.issuer = certmagic.NewACMEIssuer(magic, certmagic.ACMEIssuer{
		CA:             ca,
		Email:          m.opts.Email,
		Agreed:         true,
		TrustedRoots:   roots,
		ListenHost:     m.opts.ListenHost,
		AltHTTPPort:    m.opts.ChallengeHTTPPort,
		AltTLSALPNPort: m.opts.ChallengeALPNPort,
		Logger:         logger,
	})
	magic.Issuers = []certmagic.Issuer{m.issuer}
	m.magic, m.cache = magic, cache
	return nil
}

// Start obtains (or loads from storage) the certificates and keeps them
// renewed until ctx ends. It returns once every domain has a certificate.
func (m *Manager) Start(ctx context.Context) error {
	if m.magic == nil {
		return nil
	}
	if err := m.magic.ManageSync(ctx, m.opts.Domains); err != nil {
		return &app.Error{Code: app.EUNAVAILABLE, Message: fmt.Sprintf("could not get a certificate for %v from %s: check that the names point at this machine and that the CA can reach tls.http_listen (HTTP-01) or tls.listen (TLS-ALPN-01) from outside (%v)", m.opts.Domains, m.issuer.CA, err), Err: err}
	}
	return nil
}

// Stop ends certificate maintenance (renewals) for auto mode.
func (m *Manager) Stop() {
	if m.cache != nil {
		m.cache.Stop()
	}
}

// TLSConfig returns the listener's configuration: TLS 1.3 only, h2 first.
func (m *Manager) TLSConfig() *tls.Config {
	var cfg *tls.Config
	if m.magic != nil {
		cfg = m.magic.TLSConfig()
		// certmagic lists acme-tls/1 for TLS-ALPN-01; keep it, after h2 and
		// http/1.1 so browsers negotiate HTTP.
		cfg.NextProtos = append([]string{"h2", "http/1.1"}, cfg.NextProtos...)
	} else {
		cfg = &tls.Config{
			GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return m.current.Load(), nil },
			NextProtos:     []string{"h2", "http/1.1"},
		}
	}
	cfg.MinVersion = tls.VersionTLS13
	cfg.MaxVersion = tls.VersionTLS13
	return cfg
}

// HTTPHandler wraps next (the plain-HTTP handler, usually a redirect) so
// ACME HTTP-01 challenges are answered first.
func (m *Manager) HTTPHandler(next http.Handler) http.Handler {
	if m.issuer == nil {
		return next
	}
	return m.issuer.HTTPChallengeHandler(next)
}
