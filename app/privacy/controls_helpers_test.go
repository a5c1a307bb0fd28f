package privacy

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"zimage/app"
	"zimage/app/auth"
	"zimage/app/backend"
	"zimage/app/media"
	"zimage/app/queue"
	"zimage/app/sqlite"
	"zimage/app/vault"
)

// cheapHasher keeps argon2id at toy cost: tests make many accounts.
var cheapHasher = auth.NewHasher(auth.Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}, 4)

const testPassword = "correct horse battery staple"

type fixedClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fixedClock) Now() time.Time          { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *fixedClock) Advance(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }

// world is a real server data folder: database, keyring and master key,
// media folder, and a generation pipeline on the builtin renderer.
type world struct {
	dir      string
	db       *sqlite.DB
	keys     *vault.Vault
	accounts *auth.Service
	media    *media.Store
	queue    *queue.Queue
	ctl      *Controls
	clock    *fixedClock
}

func newWorld(t testing.TB) *world {
	t.Helper()
	dir := t.TempDir()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(dir, "zimage.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	clock := &fixedClock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	db.Now = clock.Now
	keys, err := vault.Open(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { keys.Close() })
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
	q := queue.New(db, pool, keys, media.Sink{Media: m}, queue.Options{})
	runCtx, cancel := context.WithCancel(ctx)
	pool.Start(runCtx)
	m.Start(runCtx)
	if err := q.Start(runCtx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Stop(); m.Stop(); cancel() })
	w := &world{dir: dir, db: db, keys: keys, media: m, queue: q, clock: clock,
		accounts: auth.New(db, keys, auth.Options{Signup: app.SignupOpen, Hasher: cheapHasher})}
	w.ctl = NewControls(ControlsDeps{DB: db, Vault: keys, Hasher: cheapHasher, Jobs: q, Media: m})
	return w
}

func (w *world) signup(t testing.TB, email, username string) *app.User {
	t.Helper()
	u, err := w.accounts.SignUp(context.Background(), auth.SignUpInput{Email: email, Username: username, Password: testPassword, AgeConfirmed: true})
	if err != nil {
		t.Fatalf("sign up %s: %v", username, err)
	}
	return u
}

// generate makes one small image for userID with prompt and waits for it.
func (w *world) generate(t *testing.T, userID, prompt string) (genID, imageID string) {
	t.Helper()
	ctx := context.Background()
	g, _, err := w.queue.Submit(ctx, userID, app.GenerationParams{Prompt: prompt, NegativePrompt: "blurry " + prompt, Width: 64, Height: 64, Steps: 1, Count: 1, Seed: 7})
	if err != nil {
		t.Fatalf("submit: %v", err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		got, err := w.queue.Get(ctx, userID, g.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Final() {
			if got.Status != app.GenerationSucceeded {
				t.Fatalf("generation ended %s: %s", got.Status, got.ErrorMessage)
			}
			ids, err := w.db.ImageIDsForGeneration(ctx, userID, g.ID)
			if err != nil || len(ids) != 1 {
				t.Fatalf("images of generation: %v %v", ids, err)
			}
			w.waitDerivatives(t, userID, ids[0])
			return g.ID, ids[0]
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("generation did not finish within 20 s")
	return "", ""
}

// waitDerivatives waits until the WebP and thumbnail exist, so no file is
// written behind the test's back later.
func (w *world) waitDerivatives(t *testing.T, userID, imageID string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		img, err := w.media.Get(context.Background(), userID, imageID)
		if err != nil {
			t.Fatal(err)
		}
		if img.HasWebP && img.HasThumb {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("derivatives not made within 20 s")
}
