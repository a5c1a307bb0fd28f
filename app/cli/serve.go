package cli

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/robfig/cron/v3"

	"zimage/app"
	"zimage/app/auth"
	"zimage/app/certs"
	"zimage/app/config"
	"zimage/app/privacy"
	"zimage/app/sqlite"
	"zimage/app/vault"
	"zimage/app/web"
)

func runServe(ctx context.Context, env Env, args []string) error {
	fs := newFlags(env, "serve", "serve [--config FILE]\n\nRuns Z Image until SIGINT or SIGTERM. With no config it listens on http://127.0.0.1:8080\nwith data in ./data and the builtin CPU renderer.")
	cfgPath := configFlag(fs, env)
	if err := parse(fs, args); err != nil {
		return err
	}
	cfg, err := config.Load(*cfgPath, env.Environ)
	if err != nil {
		return err
	}
	log := newLogger(env, cfg.Server)
	return serve(ctx, cfg, env.Environ, log, nil)
}

func newLogger(env Env, s config.Server) *slog.Logger {
	var level slog.Level
	level.UnmarshalText([]byte(s.LogLevel))
	opts := &slog.HandlerOptions{Level: level}
	if s.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(env.Stderr, opts))
	}
	return slog.New(slog.NewTextHandler(env.Stderr, opts))
}

// listeners are bound before anything is created on disk, so a port in use
// stops the start with nothing half-made.
type listeners struct {
	plain, https, http net.Listener
}

func (l *listeners) close() {
	for _, ln := range []net.Listener{l.plain, l.https, l.http} {
		if ln != nil {
			ln.Close()
		}
	}
}

func listen(key, addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		hint := "choose another address"
		switch {
		case errors.Is(err, syscall.EADDRINUSE):
			hint = "another program is using it: stop that program or choose another port"
		case errors.Is(err, syscall.EACCES):
			hint = "ports below 1024 need root or CAP_NET_BIND_SERVICE (see the systemd unit in the README)"
		case strings.Contains(err.Error(), "cannot assign requested address"):
			hint = "this machine has no such address"
		}
		return nil, &app.Error{Code: app.EINVALID, Message: fmt.Sprintf("cannot listen on %s = %q: %s (%v)", key, addr, hint, err)}
	}
	return ln, nil
}

func openListeners(cfg config.Config) (*listeners, error) {
	l := &listeners{}
	var err error
	if l.plain, err = listen("server.listen", cfg.Server.Listen); err != nil {
		return nil, err
	}
	if cfg.TLS.Mode != "off" {
		if l.https, err = listen("tls.listen", cfg.TLS.Listen); err != nil {
			l.close()
			return nil, err
		}
		if cfg.TLS.HTTPListen != "" {
			if l.http, err = listen("tls.http_listen", cfg.TLS.HTTPListen); err != nil {
				l.close()
				return nil, err
			}
		}
	}
	return l, nil
}

// prepareDataDir creates the data folder (0700) and proves it writable.
func prepareDataDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return &app.Error{Code: app.EINVALID, Message: fmt.Sprintf("cannot create server.data_dir %s (%v): create it and give zimage's user ownership, or choose another folder", dir, unwrapPathErr(err))}
	}
	probe, err := os.CreateTemp(dir, ".write-test-*")
	if err != nil {
		return &app.Error{Code: app.EINVALID, Message: fmt.Sprintf("server.data_dir %s is not writable (%v): give zimage's user ownership (chown) or choose another folder", dir, unwrapPathErr(err))}
	}
	probe.Close()
	return os.Remove(probe.Name())
}

func unwrapPathErr(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

func certOptions(cfg config.Config) certs.Options {
	opts := certs.Options{
		Mode: cfg.TLS.Mode, Domains: cfg.TLS.Domains, Email: cfg.TLS.Email, CAURL: cfg.TLS.CAURL,
		CARootFile: cfg.TLS.CARoot, CertFile: cfg.TLS.CertFile, KeyFile: cfg.TLS.KeyFile,
		StorageDir:        filepath.Join(cfg.Server.DataDir, "certmagic"),
		ChallengeHTTPPort: cfg.TLS.ChallengeHTTPPort, ChallengeALPNPort: cfg.TLS.ChallengeALPNPort,
	}
	// Left at 0, certmagic would bind :80 and :443 itself for challenges.
	// Pointing it at zimage's own listeners makes it find them in use and
	// leave the answers to them (the redirect handler and the TLS config).
	httpHost, httpPort := hostPort(cfg.TLS.HTTPListen)
	_, tlsPort := hostPort(cfg.TLS.Listen)
	opts.ListenHost = httpHost
	if opts.ChallengeHTTPPort == 0 {
		opts.ChallengeHTTPPort = httpPort
	}
	if opts.ChallengeALPNPort == 0 {
		opts.ChallengeALPNPort = tlsPort
	}
	return opts
}

func hostPort(addr string) (string, int) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0
	}
	n, _ := strconv.Atoi(port)
	return host, n
}

// certPollInterval is how often files-mode certificates are checked for
// changes; tests shorten it.
var certPollInterval = 10 * time.Second

// serve runs the server until ctx ends. ready, if not nil, is called once
// the listeners accept connections (tests use it).
func serve(ctx context.Context, cfg config.Config, env []string, log *slog.Logger, ready func(addrs map[string]string)) error {
	// Everything that can be checked without touching disk comes first.
	if cfg.TLS.Mode != "off" {
		if err := certs.Check(certOptions(cfg)); err != nil {
			return err
		}
	}
	ls, err := openListeners(cfg)
	if err != nil {
		return err
	}
	defer ls.close()
	if err := prepareDataDir(cfg.Server.DataDir); err != nil {
		return err
	}
	release, err := lockDataDir(cfg.Server.DataDir, "only one server may use a data folder; stop the other one or choose another server.data_dir")
	if err != nil {
		return err
	}
	defer release()
	if !cfg.Provenance.Marks {
		log.Warn("provenance.marks = false: new images are stored without the machine-readable marks that say they are AI-generated; this may breach Article 50(2) of the EU AI Act where it applies")
	}
	keys, err := vault.Open(cfg.Server.DataDir, lookupEnv(env, "ZIMAGE_MASTER_KEY"), vault.WithLogger(log))
	if err != nil {
		return err
	}
	defer keys.Close()
	db, err := sqlite.Open(ctx, filepath.Join(cfg.Server.DataDir, "zimage.db"))
	if err != nil {
		return err
	}
	defer db.Close()

	if n, err := db.SealMissingUsernames(ctx, keys); err != nil {
		return err
	} else if n > 0 {
		log.Info("sealed copies of usernames made for backups", "count", n)
	}
	if n, err := db.SealPlaintextKeyNames(ctx, keys); err != nil {
		return err
	} else if n > 0 {
		log.Info("API key names from before schema 11 sealed", "count", n)
	}
	outbox, stopMail, err := startMail(ctx, cfg, db, keys, log)
	if err != nil {
		return err
	}
	defer stopMail()
	authOpts := authOptions(cfg, log)
	authOpts.Mail = outbox
	accounts := auth.New(db, keys, authOpts)
	// Significant policy changes queue a notice to everyone in the outbox.
	policies := privacy.NewPolicies(db, log, privacy.MailNotifier{DB: db, Vault: keys, Log: log})
	if err := syncPolicy(ctx, cfg, policies, log); err != nil {
		return err
	}
	pipe, err := startPipeline(ctx, cfg, db, keys, log)
	if err != nil {
		return err
	}
	defer pipe.stop()
	controls := privacy.NewControls(privacy.ControlsDeps{DB: db, Vault: keys, Hasher: accounts.Options().Hasher, Jobs: pipe.queue, Media: pipe.media, ExportsDir: exportsDir(cfg), Log: log})
	rights, stopRights := startRights(ctx, cfg, db, keys, accounts, pipe.media, policies, log)
	defer stopRights()
	srv, err := web.New(log, web.Deps{DB: db, Auth: accounts, Policies: policies, Queue: pipe.queue, Media: pipe.media,
		Support: rights.support, Exports: rights.exports, Requests: rights.requests, Usage: rights.usage,
		Rights: controls}, web.Options{
		BaseURL:         cfg.Server.BaseURL,
		Version:         Version(),
		MaxBodyBytes:    cfg.Server.MaxBodyBytes,
		BodyTimeout:     cfg.Server.BodyTimeout.D(),
		BodyMinRate:     cfg.Server.BodyMinRate,
		APIRatePerKey:   cfg.Server.APIRatePerKey,
		APIRatePerAddr:  cfg.Server.APIRatePerAddress,
		MetricsEnabled:  cfg.Metrics.Enabled,
		MetricsToken:    cfg.Metrics.Token,
		HSTSMaxAge:      cfg.TLS.HSTSMaxAge.D(),
		TrustedProxies:  cfg.Server.TrustedProxies,
		ImagesRetention: privacy.HumanWindow(cfg.Retention.Images.D()),
		Limits:          generationLimits(cfg),
		Signing:         pipe.signing,
		DefaultSteps:    cfg.Generation.DefaultSteps,
		OpenAIAliases:   cfg.OpenAI.Aliases,
		OpenAIURLExpiry: cfg.OpenAI.URLExpiry.D(),
	})
	if err != nil {
		return err
	}
	pipe.registerMetrics(srv.Registry())

	jobs := cron.New(cron.WithLocation(time.UTC), cron.WithChain(cron.Recover(cronLogger{log}), cron.SkipIfStillRunning(cronLogger{log})))
	runner, err := newRetentionRunner(cfg, db, log, retentionDeps{Keys: keys, Images: pipe.media, Accounts: controls})
	if err != nil {
		return err
	}
	if err := runner.Schedule(ctx, jobs, cfg.Retention.Schedule); err != nil {
		return err
	}
	// A schedule cron cannot parse would leave sessions never cleaned up,
	// silently: refuse to start instead.
	if _, err := jobs.AddFunc(cfg.Retention.Schedule, func() {
		n, err := db.DeleteExpiredSessions(context.Background(), time.Now().Add(-cfg.Auth.SessionIdle.D()))
		if err != nil {
			log.Error("retention: expired sessions", "err", err)
		} else if n > 0 {
			log.Info("retention: expired sessions removed", "count", n)
		}
	}); err != nil {
		return fmt.Errorf("retention.schedule %q: %w", cfg.Retention.Schedule, err)
	}
	jobs.Start()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var servers []*http.Server
	var wg sync.WaitGroup
	errc := make(chan error, 3)
	start := func(name string, ln net.Listener, h http.Handler, tlsCfg *tls.Config) {
		hs := &http.Server{
			Handler:           h,
			ReadHeaderTimeout: cfg.Server.ReadHeaderTimeout.D(),
			IdleTimeout:       2 * time.Minute,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
			BaseContext:       func(net.Listener) context.Context { return ctx },
		}
		if tlsCfg != nil {
			hs.TLSConfig = tlsCfg
			ln = tls.NewListener(ln, tlsCfg)
		}
		servers = append(servers, hs)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("%s listener: %w", name, err)
			}
		}()
	}

	addrs := map[string]string{"http": ls.plain.Addr().String()}
	if cfg.TLS.Mode == "off" {
		start("http", ls.plain, srv.Handler(), nil)
		log.Warn("TLS is off: serving plain HTTP; use this on localhost or behind a reverse proxy that terminates TLS", "listen", ls.plain.Addr().String())
	} else {
		mgr, err := certs.New(certOptions(cfg), log)
		if err != nil {
			return err
		}
		defer mgr.Stop()
		// The plain listener keeps serving health and metrics only: secure
		// cookies and HSTS make no sense on it.
		start("http", ls.plain, opsOnly(srv.Handler()), nil)
		start("https", ls.https, srv.Handler(), mgr.TLSConfig())
		addrs["https"] = ls.https.Addr().String()
		if ls.http != nil {
			start("redirect", ls.http, mgr.HTTPHandler(redirectToHTTPS(ls.https.Addr().String())), nil)
			addrs["redirect"] = ls.http.Addr().String()
		}
		if cfg.TLS.Mode == "files" {
			go mgr.Watch(ctx, certPollInterval)
			go reloadOnHUP(ctx, mgr, log)
		} else if err := mgr.Start(ctx); err != nil {
			return err
		}
		log.Info("serving HTTPS (TLS 1.3 only)", "listen", ls.https.Addr().String(), "mode", cfg.TLS.Mode, "domains", cfg.TLS.Domains)
	}
	log.Info("zimage started", "version", Version(), "listen", ls.plain.Addr().String(), "data_dir", cfg.Server.DataDir)
	if ready != nil {
		ready(addrs)
	}

	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	log.Info("shutting down: draining requests", "timeout", cfg.Server.ShutdownTimeout.String())
	sdCtx, sdCancel := context.WithTimeout(context.Background(), cfg.Server.ShutdownTimeout.D())
	defer sdCancel()
	for _, hs := range servers {
		if e := hs.Shutdown(sdCtx); e != nil {
			log.Warn("shutdown did not finish in time", "err", e)
		}
	}
	wg.Wait()
	select {
	case <-jobs.Stop().Done():
	case <-sdCtx.Done():
		log.Warn("a background job was still running at shutdown")
	}
	log.Info("stopped")
	return err
}

func opsOnly(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/healthz", "/readyz", "/metrics":
			h.ServeHTTP(w, r)
		default:
			http.Error(w, "This plain-HTTP listener serves only /healthz, /readyz and /metrics while TLS is on; use the HTTPS address.", http.StatusNotFound)
		}
	})
}

func redirectToHTTPS(httpsAddr string) http.Handler {
	_, port, _ := net.SplitHostPort(httpsAddr)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := r.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		if port != "443" {
			host = net.JoinHostPort(host, port)
		}
		http.Redirect(w, r, "https://"+host+r.URL.RequestURI(), http.StatusPermanentRedirect)
	})
}

func reloadOnHUP(ctx context.Context, mgr *certs.Manager, log *slog.Logger) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			if err := mgr.Reload(); err != nil {
				log.Error("SIGHUP: certificate reload failed; still serving the previous one", "err", err)
			} else {
				log.Info("SIGHUP: certificate reloaded")
			}
		}
	}
}

// cronLogger adapts slog to cron's logger interface.
type cronLogger struct{ log *slog.Logger }

func (l cronLogger) Info(msg string, kv ...any) { l.log.Debug("cron: "+msg, kv...) }
func (l cronLogger) Error(err error, msg string, kv ...any) {
	l.log.Error("cron: "+msg, append(kv, "err", err)...)
}

// authOptions maps the [auth] config to the account service's options.
func authOptions(cfg config.Config, log *slog.Logger) auth.Options {
	return auth.Options{
		Signup:           cfg.Auth.Signup,
		RequireAdmin2FA:  cfg.Auth.RequireAdmin2FA,
		SessionIdle:      cfg.Auth.SessionIdle.D(),
		SessionAbsolute:  cfg.Auth.SessionAbsolute.D(),
		MinAge:           cfg.Auth.MinAge,
		MaxLoginFailures: cfg.Auth.MaxLoginFailures,
		Log:              log,
	}
}
