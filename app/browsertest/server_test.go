package browsertest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"zimage/app"
	"zimage/app/auth"
	"zimage/app/backend"
	"zimage/app/config"
	"zimage/app/media"
	"zimage/app/privacy"
	"zimage/app/queue"
	"zimage/app/sqlite"
	"zimage/app/vault"
	"zimage/app/web"
)

// server is a whole zimage wired as app/cli wires it (store, keyring,
// accounts, policy, generation pipeline, web), served over real TCP.
type server struct {
	URL string
	// Handler is the server's http.Handler, for measuring server time
	// without the network.
	Handler http.Handler
	DB      *sqlite.DB
	Auth    *auth.Service
	Queue   *queue.Queue
	Media   *media.Store
}

// serverOptions are what a test may change from the config defaults.
type serverOptions struct {
	// PerStep slows the builtin renderer down so progress is observable.
	PerStep time.Duration
	// Gate, when set, holds every job at its start (running, step 0)
	// until the test sends a value on it: nil lets the job run, an error
	// fails it with that error. The test decides which state each job is
	// in when the page loads, and how it ends.
	Gate chan error
}

// gatedBackend is a backend whose jobs each wait for a value on gate
// before they run.
type gatedBackend struct {
	backend.Backend
	gate <-chan error
}

func (g gatedBackend) Generate(ctx context.Context, req backend.Request, progress func(backend.Progress)) (backend.Result, error) {
	select {
	case err := <-g.gate:
		if err != nil {
			return backend.Result{}, err
		}
	case <-ctx.Done():
		return backend.Result{}, &backend.Error{Backend: g.Name(), Reason: backend.ReasonCanceled, Message: "was stopped before the test let the job run.", Err: ctx.Err()}
	}
	return g.Backend.Generate(ctx, req, progress)
}

// newServer starts a server over a fresh data folder in t.TempDir(). It
// uses config.Default() so the pages show what a fresh install shows.
func newServer(t testing.TB, o serverOptions) *server {
	t.Helper()
	cfg := config.Default()
	dir := t.TempDir()
	log := slog.New(slog.DiscardHandler)
	ctx := context.Background()

	keys, err := vault.Open(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { keys.Close() })
	db, err := sqlite.Open(ctx, filepath.Join(dir, "zimage.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })

	accounts := auth.New(db, keys, auth.Options{
		Signup: cfg.Auth.Signup, RequireAdmin2FA: cfg.Auth.RequireAdmin2FA,
		SessionIdle: cfg.Auth.SessionIdle.D(), SessionAbsolute: cfg.Auth.SessionAbsolute.D(),
		MinAge: cfg.Auth.MinAge, MaxLoginFailures: cfg.Auth.MaxLoginFailures, Log: log,
	})
	policies := privacy.NewPolicies(db, log, nil)
	if _, _, err := policies.Sync(ctx, privacy.PolicyValues{
		Controller: "Browser Test Operator", ContactEmail: "privacy@example.com", MinAge: cfg.Auth.MinAge,
		Images: cfg.Retention.Images.D(), DeletedAccounts: cfg.Retention.DeletedAccounts.D(),
		Usage: cfg.Retention.Usage.D(), Support: cfg.Retention.Support.D(), Exports: cfg.Retention.Exports.D(),
		KeyringBackups: cfg.Retention.KeyringBackups.D(),
	}, "", false); err != nil {
		t.Fatalf("publish the privacy policy: %v", err)
	}

	b, err := backend.NewBuiltinWithDelay(backend.Options{Name: "builtin", Kind: backend.KindBuiltin, Slots: 1, Timeout: time.Minute}, o.PerStep)
	if err != nil {
		t.Fatal(err)
	}
	if o.Gate != nil {
		b = gatedBackend{Backend: b, gate: o.Gate}
	}
	pool, err := backend.NewPool([]backend.Backend{b}, map[string]int{"builtin": 1}, backend.PoolOptions{})
	if err != nil {
		t.Fatal(err)
	}
	m, err := media.New(dir, db, keys, media.Options{ImagesRetention: cfg.Retention.Images.D(), Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	g := cfg.Generation
	limits := app.GenerationLimits{MaxSide: g.MaxSide, MaxPixels: g.MaxPixels, MaxSteps: g.MaxSteps, MaxCount: g.MaxCount, MaxPromptLength: g.MaxPromptLength}
	q := queue.New(db, pool, keys, media.Sink{Media: m}, queue.Options{
		// The benchmark queues 25 generations at once.
		MaxQueuedPerUser: 100, MaxRunningPerUser: cfg.Queue.MaxRunningPerUser,
		JobTimeout: cfg.Queue.JobTimeout.D(), WaitForBackend: cfg.Queue.WaitForBackend.D(),
		Limits: limits, Logger: log,
	})
	pctx, cancel := context.WithCancel(ctx)
	pool.Start(pctx)
	m.Start(pctx)
	if err := q.Start(pctx); err != nil {
		cancel()
		t.Fatal(err)
	}
	// The privacy rights services, so the privacy, support and request
	// pages show every section to the checks.
	controls := privacy.NewControls(privacy.ControlsDeps{DB: db, Vault: keys, Hasher: accounts.Options().Hasher, Jobs: q, Media: m, Log: log})
	exports := privacy.NewExports(db, keys, accounts, m, policies, privacy.ExportOptions{Dir: filepath.Join(dir, "exports"), Keep: cfg.Retention.Exports.D(), Log: log})
	exports.Start(pctx)
	t.Cleanup(exports.Stop)
	srv, err := web.New(log, web.Deps{DB: db, Auth: accounts, Policies: policies, Queue: q, Media: m, Rights: controls,
		Exports: exports, Requests: privacy.NewRequests(db, keys, exports, log), Support: privacy.NewSupport(db, keys, log)}, web.Options{
		Version: "browsertest", MaxBodyBytes: cfg.Server.MaxBodyBytes,
		ImagesRetention: "90 days", Limits: limits, DefaultSteps: g.DefaultSteps,
	})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	// Cleanups run last-in first-out: HTTP first (ends the event streams),
	// then the pipeline, then store and keyring.
	t.Cleanup(func() { q.Stop(); m.Stop(); cancel() })
	t.Cleanup(func() {
		hs.CloseClientConnections()
		hs.Close()
	})
	return &server{URL: hs.URL, Handler: srv.Handler(), DB: db, Auth: accounts, Queue: q, Media: m}
}

const testPassword = "correct horse battery staple"

// apiClient is a script talking JSON to the server with a cookie session,
// used where the test prepares data rather than exercises the UI.
type apiClient struct {
	base string
	hc   *http.Client
	csrf string
}

func (s *server) signupAPI(t testing.TB, username string) *apiClient {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &apiClient{base: s.URL, hc: &http.Client{Jar: jar, Timeout: 30 * time.Second}}
	var out struct {
		CSRF string `json:"csrf_token"`
	}
	c.call(t, "POST", "/api/v1/auth/signup", map[string]any{
		"email": username + "@example.com", "username": username, "password": testPassword, "age_confirmed": true,
	}, http.StatusCreated, &out)
	c.csrf = out.CSRF
	return c
}

// call sends a JSON request and decodes the answer into out (if not nil);
// any status other than want fails the test with the body.
func (c *apiClient) call(t testing.TB, method, path string, body any, want int, out any) {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, c.base+path, r)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.csrf != "" {
		req.Header.Set("X-CSRF-Token", c.csrf)
	}
	res, err := c.hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	data, _ := io.ReadAll(res.Body)
	if res.StatusCode != want {
		t.Fatalf("%s %s: status %d, want %d: %s", method, path, res.StatusCode, want, data)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			t.Fatalf("%s %s: answer is not the JSON expected (%v): %s", method, path, err, data)
		}
	}
}

// generate submits one generation through the API and waits until it
// ends; it returns the image ids.
func (c *apiClient) generate(t testing.TB, prompt string, side, steps, count int) []string {
	t.Helper()
	var g struct {
		ID string `json:"id"`
	}
	c.call(t, "POST", "/api/v1/generations", map[string]any{"prompt": prompt, "width": side, "height": side, "steps": steps, "count": count, "seed": 42}, http.StatusAccepted, &g)
	return c.wait(t, g.ID)
}

func (c *apiClient) wait(t testing.TB, id string) []string {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		var g struct {
			Status   string   `json:"status"`
			ImageIDs []string `json:"image_ids"`
			Error    *struct {
				Message string `json:"message"`
			} `json:"error"`
		}
		c.call(t, "GET", "/api/v1/generations/"+id, nil, http.StatusOK, &g)
		switch g.Status {
		case app.GenerationSucceeded:
			return g.ImageIDs
		case app.GenerationFailed, app.GenerationCanceled:
			t.Fatalf("generation %s ended %s: %+v", id, g.Status, g.Error)
		}
		if time.Now().After(deadline) {
			t.Fatalf("generation %s still %s after 60 s", id, g.Status)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// get fetches path and returns the body; non-200 fails.
func (c *apiClient) get(t testing.TB, path string) []byte {
	t.Helper()
	res, err := c.hc.Get(c.base + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: status %d (%v): %.200s", path, res.StatusCode, err, data)
	}
	return data
}

// pageExists tells whether an anonymous GET of path answers 200, so the
// tests can follow pages other engineers are still building.
func (s *server) pageExists(path string) bool {
	res, err := http.Get(s.URL + path)
	if err != nil {
		return false
	}
	res.Body.Close()
	return res.StatusCode == http.StatusOK
}

func (s *server) String() string { return fmt.Sprintf("zimage at %s", s.URL) }
