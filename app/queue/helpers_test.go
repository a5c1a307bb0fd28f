package queue_test

import (
	"bytes"
	"context"
	"fmt"
	"image/png"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"zimage/app"
	"zimage/app/backend"
	"zimage/app/queue"
	"zimage/app/sqlite"
	"zimage/app/vault"
)

// fileSink is a small real Sink: it writes each image to a file, as
// app/media will (without sealing), so tests can read the bytes back.
type fileSink struct {
	dir string
	mu  sync.Mutex
	n   int
}

func (s *fileSink) Store(ctx context.Context, g app.Generation, res backend.Result) ([]string, error) {
	var ids []string
	for i, im := range res.Images {
		id := fmt.Sprintf("%s-%d", g.ID, i)
		if err := os.WriteFile(filepath.Join(s.dir, id+".png"), im.Data, 0o600); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	s.mu.Lock()
	s.n++
	s.mu.Unlock()
	return ids, nil
}

func (s *fileSink) stored() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n
}

// recorder wraps a real backend and notes the order in which jobs reach it.
type recorder struct {
	backend.Backend
	mu    sync.Mutex
	order []string
}

func (r *recorder) Generate(ctx context.Context, req backend.Request, progress func(backend.Progress)) (backend.Result, error) {
	r.mu.Lock()
	r.order = append(r.order, req.JobID)
	r.mu.Unlock()
	return r.Backend.Generate(ctx, req, progress)
}

func (r *recorder) started() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.order)
}

type env struct {
	dir   string
	db    *sqlite.DB
	vault *vault.Vault
	pool  *backend.Pool
	q     *queue.Queue
	sink  *fileSink
}

var users = []string{"alice", "bob", "carol"}

func builtin(tb testing.TB, name string, perStep time.Duration) backend.Backend {
	tb.Helper()
	b, err := backend.NewBuiltinWithDelay(backend.Options{Name: name, Kind: backend.KindBuiltin}, perStep)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// newEnv opens a fresh database and vault in a temporary folder, starts a
// pool over backends and returns a queue over them; start says whether to
// start the queue too.
func newEnv(tb testing.TB, backends []backend.Backend, slots map[string]int, opts queue.Options, start bool) *env {
	tb.Helper()
	dir := tb.TempDir()
	e := &env{dir: dir, sink: &fileSink{dir: dir}}
	e.openDB(tb)
	v, err := vault.Open(filepath.Join(dir, "keys"), "")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { v.Close() })
	for _, u := range users {
		if err := v.EnsureUserKey(u); err != nil {
			tb.Fatal(err)
		}
	}
	e.vault = v
	e.pool = newPool(tb, backends, slots)
	e.q = queue.New(e.db, e.pool, v, e.sink, opts)
	if start {
		e.start(tb)
	}
	return e
}

func (e *env) openDB(tb testing.TB) {
	tb.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(e.dir, "zimage.db"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	e.db = db
}

func (e *env) start(tb testing.TB) {
	tb.Helper()
	if err := e.q.Start(context.Background()); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(e.q.Stop)
}

func newPool(tb testing.TB, backends []backend.Backend, slots map[string]int) *backend.Pool {
	tb.Helper()
	p, err := backend.NewPool(backends, slots, backend.PoolOptions{MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond, CheckEvery: 100 * time.Millisecond, CheckTimeout: time.Second})
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	tb.Cleanup(cancel)
	p.Start(ctx)
	return p
}

func params(prompt string) app.GenerationParams {
	return app.GenerationParams{Prompt: prompt, Width: 64, Height: 64, Steps: 2, Guidance: 1, Seed: 42, Count: 1}
}

func (e *env) submit(tb testing.TB, userID string, p app.GenerationParams) (app.Generation, int) {
	tb.Helper()
	g, pos, err := e.q.Submit(context.Background(), userID, p)
	if err != nil {
		tb.Fatalf("submit: %v", err)
	}
	return g, pos
}

// waitEvent reads ch until match accepts an event, and returns every event
// read, the matching one last.
func waitEvent(tb testing.TB, ch <-chan queue.Event, match func(queue.Event) bool) []queue.Event {
	tb.Helper()
	var seen []queue.Event
	deadline := time.After(20 * time.Second)
	for {
		select {
		case e, ok := <-ch:
			if !ok {
				tb.Fatalf("event stream closed; saw %v", types(seen))
			}
			seen = append(seen, e)
			if match(e) {
				return seen
			}
		case <-deadline:
			tb.Fatalf("no matching event within 20s; saw %v", types(seen))
		}
	}
}

func final(id string) func(queue.Event) bool {
	return func(e queue.Event) bool {
		return e.GenerationID == id && (e.Type == queue.EventSucceeded || e.Type == queue.EventFailed || e.Type == queue.EventCanceled)
	}
}

func is(typ, id string) func(queue.Event) bool {
	return func(e queue.Event) bool { return e.GenerationID == id && e.Type == typ }
}

func types(es []queue.Event) []string {
	var out []string
	for _, e := range es {
		out = append(out, e.Type)
	}
	return out
}

// eventually polls cond for up to 10 s: for state that settles after an
// event, such as a slot being released.
func eventually(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if cond() {
			return
		}
	}
	tb.Fatalf("%s: still not true after 10s", what)
}

func (e *env) busy() int {
	n := 0
	for _, s := range e.pool.Status() {
		n += s.Busy
	}
	return n
}

func decodePNG(tb testing.TB, path string) (w, h int) {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	im, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		tb.Fatalf("%s: %v", path, err)
	}
	return im.Bounds().Dx(), im.Bounds().Dy()
}
