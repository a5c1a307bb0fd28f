package web

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"zimage/app/auth"
	"zimage/app/backend"
	"zimage/app/media"
	"zimage/app/privacy"
	"zimage/app/queue"
	"zimage/app/sqlite"
	"zimage/app/vault"
)

// testHasher keeps argon2id but at toy cost: tests sign up hundreds of
// accounts, and the real parameters are measured by the benchmarks.
var testHasher = auth.NewHasher(auth.Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}, 4)

// testClock is an adjustable clock for the store.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

type authEnv struct {
	s     *Server
	db    *sqlite.DB
	auth  *auth.Service
	clock *testClock
	queue *queue.Queue
	media *media.Store
	// Privacy controls and what tests of them inspect.
	keys     *vault.Vault
	rights   *privacy.Controls
	policies *privacy.Policies
	dir      string
	rs       rightsServices
}

// newPipeline starts the real generation pipeline on the builtin renderer:
// pool, queue and media store over the test's database and keyring.
func newPipeline(t testing.TB, dir string, db *sqlite.DB, keys *vault.Vault) (*queue.Queue, *media.Store) {
	t.Helper()
	b, err := backend.NewBuiltin(backend.Options{Name: "builtin", Kind: backend.KindBuiltin, Slots: 1, Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	pool, err := backend.NewPool([]backend.Backend{b}, map[string]int{"builtin": 1}, backend.PoolOptions{})
	if err != nil {
		t.Fatal(err)
	}
	m, err := media.New(dir, db, keys, media.Options{ImagesRetention: 90 * 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	q := queue.New(db, pool, keys, media.Sink{Media: m, Options: media.PersonPreferences(db)}, queue.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	pool.Start(ctx)
	m.Start(ctx)
	if err := q.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Stop(); m.Stop(); cancel() })
	return q, m
}

// newAuthEnv builds a real server over a real database and keyring in a
// temporary folder, with an adjustable clock.
func newAuthEnv(t testing.TB, opts auth.Options, wopts Options) *authEnv {
	t.Helper()
	dir := t.TempDir()
	db, err := sqlite.Open(context.Background(), filepath.Join(dir, "zimage.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	clock := &testClock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	db.Now = clock.Now
	keys, err := vault.Open(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { keys.Close() })
	if opts.Hasher == nil {
		opts.Hasher = testHasher
	}
	svc := auth.New(db, keys, opts)
	if wopts.MaxBodyBytes == 0 {
		wopts.MaxBodyBytes = 1 << 20
	}
	q, m := newPipeline(t, dir, db, keys)
	// Privacy controls (erasure, holds, consents) and policy versions run
	// over the same database, keyring and pipeline.
	rights := privacy.NewControls(privacy.ControlsDeps{DB: db, Vault: keys, Hasher: testHasher, Jobs: q, Media: m})
	policies := privacy.NewPolicies(db, nil, nil)
	// Exports (worker running), data requests, tickets and usage events.
	rs := newRightsServices(t, dir, db, keys, svc, m, policies)
	s, err := New(slog.New(slog.NewTextHandler(io.Discard, nil)), Deps{DB: db, Auth: svc, Queue: q, Media: m, Rights: rights, Policies: policies,
		Support: rs.support, Exports: rs.exports, Requests: rs.requests, Usage: rs.usage}, wopts)
	if err != nil {
		t.Fatal(err)
	}
	return &authEnv{s: s, db: db, auth: svc, clock: clock, queue: q, media: m, keys: keys, rights: rights, policies: policies, dir: dir, rs: rs}
}

// client is one caller: a browser (cookie + CSRF token) or a script
// (bearer key), from one address.
type client struct {
	env    *authEnv
	cookie string
	csrf   string
	bearer string
	ip     string
	userID string
}

func (e *authEnv) anon() *client { return &client{env: e, ip: "192.0.2.10"} }

type response struct {
	*httptest.ResponseRecorder
}

func (r response) json(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body.Bytes(), &m); err != nil {
		t.Fatalf("response is not a JSON object: %s", r.Body)
	}
	return m
}

func (r response) errCode(t testing.TB) string {
	t.Helper()
	var e apiError
	json.Unmarshal(r.Body.Bytes(), &e)
	return e.Error.Code
}

// do sends a request as the client; a JSON body gets the content type.
func (c *client) do(method, path, body string, hdr ...string) response {
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if strings.HasPrefix(path, "/api/v1/events") {
		// The event stream never ends by itself: hang up after a moment,
		// as a closed tab would.
		ctx, cancel := context.WithTimeout(req.Context(), 200*time.Millisecond)
		defer cancel()
		req = req.WithContext(ctx)
	}
	req.RemoteAddr = c.ip + ":40000"
	req.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64; rv:130.0) Gecko/20100101 Firefox/130.0")
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.cookie != "" {
		req.AddCookie(&http.Cookie{Name: SessionCookie, Value: c.cookie})
	}
	if c.csrf != "" {
		req.Header.Set("X-CSRF-Token", c.csrf)
	}
	if c.bearer != "" {
		req.Header.Set("Authorization", "Bearer "+c.bearer)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i+1] == "" {
			req.Header.Del(hdr[i])
		} else {
			req.Header.Set(hdr[i], hdr[i+1])
		}
	}
	rec := httptest.NewRecorder()
	c.env.s.Handler().ServeHTTP(rec, req)
	return response{rec}
}

// take keeps the session cookie and CSRF token of a sign-up or login
// response.
func (c *client) take(t testing.TB, r response) {
	t.Helper()
	for _, ck := range r.Result().Cookies() {
		if ck.Name == SessionCookie {
			c.cookie = ck.Value
		}
	}
	m := r.json(t)
	if tok, ok := m["csrf_token"].(string); ok {
		c.csrf = tok
	}
	if u, ok := m["user"].(map[string]any); ok {
		c.userID, _ = u["id"].(string)
	}
}

const testPassword = "correct horse battery staple"

func signupBody(email, username string) string {
	b, _ := json.Marshal(map[string]any{"email": email, "username": username, "password": testPassword, "age_confirmed": true})
	return string(b)
}

// signup creates an account through the API and returns its signed-in
// browser.
func (e *authEnv) signup(t testing.TB, username string) *client {
	t.Helper()
	c := e.anon()
	r := c.do("POST", "/api/v1/auth/signup", signupBody(username+"@example.com", username))
	if r.Code != http.StatusCreated {
		t.Fatalf("signup %s: %d %s", username, r.Code, r.Body)
	}
	c.take(t, r)
	return c
}

// login signs in again as a new browser.
func (e *authEnv) login(t testing.TB, login string) *client {
	t.Helper()
	c := e.anon()
	r := c.do("POST", "/api/v1/auth/login", `{"login":"`+login+`","password":"`+testPassword+`"}`)
	if r.Code != http.StatusOK {
		t.Fatalf("login %s: %d %s", login, r.Code, r.Body)
	}
	c.take(t, r)
	return c
}

// apiKey creates a key for c with scopes and returns a script client.
func (c *client) apiKey(t testing.TB, scopes ...string) (*client, string) {
	t.Helper()
	b, _ := json.Marshal(map[string]any{"name": "test key", "scopes": scopes})
	r := c.do("POST", "/api/v1/me/api-keys", string(b))
	if r.Code != http.StatusCreated {
		t.Fatalf("create key: %d %s", r.Code, r.Body)
	}
	m := r.json(t)
	return &client{env: c.env, bearer: m["key"].(string), ip: c.ip, userID: c.userID}, m["id"].(string)
}

func authOptionsForTest() auth.Options {
	return auth.Options{Signup: "open", SessionIdle: time.Hour, SessionAbsolute: 24 * time.Hour, MaxLoginFailures: 5}
}
