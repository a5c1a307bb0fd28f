package media

import (
	"bytes"
	"context"
	"image"
	"image/color"
	"image/png"
	"io"
	"math"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"zimage/app/backend"
	"zimage/app/sqlite"
	"zimage/app/vault"
)

// testEnv is a real store: SQLite file, vault and media folder in one
// temporary directory, with a clock the test moves.
type testEnv struct {
	dir   string
	db    *sqlite.DB
	vault *vault.Vault
	store *Store
	opts  Options

	mu  sync.Mutex
	now time.Time
}

func newTestEnv(tb testing.TB, o Options) *testEnv {
	tb.Helper()
	dir := tb.TempDir()
	db, err := sqlite.Open(context.Background(), filepath.Join(dir, "zimage.db"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	v, err := vault.Open(dir, "")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { v.Close() })
	for _, u := range []string{"alice", "bob"} {
		if err := v.EnsureUserKey(u); err != nil {
			tb.Fatal(err)
		}
	}
	e := &testEnv{dir: dir, db: db, vault: v, opts: o, now: time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)}
	db.Now = e.clock
	e.store = e.reopen(tb)
	return e
}

func (e *testEnv) clock() time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.now
}

func (e *testEnv) advance(d time.Duration) {
	e.mu.Lock()
	e.now = e.now.Add(d)
	e.mu.Unlock()
}

// reopen makes a new Store over the same folder and database, as a
// restart would.
func (e *testEnv) reopen(tb testing.TB) *Store {
	tb.Helper()
	s, err := New(e.dir, e.db, e.vault, e.opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(s.Stop)
	e.store = s
	return s
}

// testPNG draws a photo-like picture (smooth gradients, a few shapes and
// fine noise, like a generated image) so encoded sizes are realistic.
func testPNG(tb testing.TB, w, h int, seed uint64) []byte {
	tb.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	rng := rand.New(rand.NewPCG(seed, 7))
	cx, cy := rng.Float64()*float64(w), rng.Float64()*float64(h)
	for y := range h {
		for x := range w {
			fx, fy := float64(x)/float64(w), float64(y)/float64(h)
			d := math.Hypot(float64(x)-cx, float64(y)-cy) / float64(max(w, h))
			n := rng.IntN(9) - 4
			r := 120 + 90*math.Sin(6*fx+float64(seed)) + 30*math.Cos(20*d)
			g := 100 + 80*math.Cos(5*fy+2*fx) + 20*math.Sin(30*d)
			b := 140 + 60*math.Sin(9*d+fy)
			img.SetRGBA(x, y, color.RGBA{clamp(r + float64(n)), clamp(g + float64(n)), clamp(b - float64(n)), 255})
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

func clamp(v float64) uint8 { return uint8(max(0, min(255, v))) }

func testGeneration(id, user, prompt string) GenerationInfo {
	return GenerationInfo{ID: id, UserID: user, Prompt: prompt, NegativePrompt: "blurry, lowres", Steps: 8, Guidance: 1,
		Backend: "builtin", Model: "z-image-turbo", Seed: 1000, Count: 1, QueuedAt: time.Date(2026, 5, 1, 9, 59, 0, 0, time.UTC)}
}

func testResult(pngs ...[]byte) backend.Result {
	res := backend.Result{Model: "z-image-turbo", Submitted: time.Date(2026, 5, 1, 9, 59, 30, 0, time.UTC), Finished: time.Date(2026, 5, 1, 9, 59, 40, 0, time.UTC)}
	for i, p := range pngs {
		res.Images = append(res.Images, backend.Image{Data: p, ContentType: "image/png", Seed: 1000 + int64(i)})
	}
	return res
}

func (e *testEnv) save(tb testing.TB, gen, user, prompt string, opts SaveOptions, pngs ...[]byte) []string {
	tb.Helper()
	g := testGeneration(gen, user, prompt)
	g.Count = len(pngs)
	ids, err := e.store.Save(context.Background(), g, testResult(pngs...), opts)
	if err != nil {
		tb.Fatal(err)
	}
	return ids
}

func readAll(tb testing.TB, rc io.ReadCloser) []byte {
	tb.Helper()
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// waitDerivatives polls until the worker has made both derivatives; the
// deadline only keeps a broken worker from hanging the test.
func (e *testEnv) waitDerivatives(tb testing.TB, user, id string) {
	tb.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		img, err := e.store.Get(context.Background(), user, id)
		if err != nil {
			tb.Fatal(err)
		}
		if img.HasWebP && img.HasThumb {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	tb.Fatalf("derivatives of %s not made within a minute", id)
}
