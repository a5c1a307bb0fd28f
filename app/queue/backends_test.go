package queue_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"zimage/app/backend"
	"zimage/app/backend/backendfake"
	"zimage/app/queue"
)

// A server that answers but has no model the job can use is up, and the
// job fails at once as model_missing, naming what the server has, for
// every kind alike; it does not wait out wait_for_backend.
func TestMissingModelFailsFastOnEveryKind(t *testing.T) {
	tests := []struct {
		name   string
		make   func(t *testing.T) backend.Backend
		model  string
		saying string
	}{
		{name: "a1111 with no checkpoint", make: func(t *testing.T) backend.Backend {
			return a1111(t, "gpu", backendfake.NewA1111(t, backendfake.A1111Config{Models: []string{}}))
		}, saying: "backend gpu answers but lists no models"},
		{name: "localai with no model", make: func(t *testing.T) backend.Backend {
			return openAI(t, "gpu", backendfake.NewOpenAI(t, backendfake.OpenAIConfig{Flavour: backendfake.OpenAILocalAI, Models: []string{}}))
		}, saying: "set model in its [[backends]] table"},
		{name: "openai server without a models route", make: func(t *testing.T) backend.Backend {
			return openAI(t, "gpu", backendfake.NewOpenAI(t, backendfake.OpenAIConfig{NoModelsRoute: true}))
		}, saying: "backend gpu answers but lists no models"},
		{name: "comfyui with no diffusion model", make: func(t *testing.T) backend.Backend {
			return comfyui(t, "gpu", backendfake.NewComfyUI(t, backendfake.ComfyUIConfig{Models: []string{}}))
		}, saying: "backend gpu answers but lists no models"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, []backend.Backend{tt.make(t)}, nil, queue.Options{WaitForBackend: time.Hour}, true)
			if st := e.pool.Status()[0]; !st.Healthy || st.State() != "no models" {
				t.Errorf("status %+v (%s), want up with no models", st, st.State())
			}
			events, stop := e.q.Subscribe("alice")
			defer stop()
			g, _ := e.submit(t, "alice", params("no model here"))
			seen := waitEvent(t, events, final(g.ID))
			last := seen[len(seen)-1]
			if last.Type != queue.EventFailed || last.Reason != backend.ReasonModelMissing || !strings.Contains(last.Message, tt.saying) {
				t.Errorf("ended with %s/%s %q, want failed/model_missing saying %q", last.Type, last.Reason, last.Message, tt.saying)
			}
		})
	}
}

func openAI(t *testing.T, name string, fake *backendfake.OpenAI) backend.Backend {
	t.Helper()
	b, err := backend.NewOpenAI(backend.Options{Name: name, Kind: backend.KindOpenAI, URL: fake.URL})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// newEnvWithPool is newEnv with the pool's own options (backoffs, logger),
// started.
func newEnvWithPool(tb testing.TB, bs []backend.Backend, popts backend.PoolOptions, qopts queue.Options) *env {
	tb.Helper()
	pool, err := backend.NewPool(bs, nil, popts)
	if err != nil {
		tb.Fatal(err)
	}
	pool.Start(tb.Context())
	e := newEnv(tb, []backend.Backend{builtin(tb, "unused", 0)}, nil, queue.Options{}, false)
	e.pool = pool
	e.q = queue.New(e.db, pool, e.vault, e.sink, qopts)
	e.start(tb)
	return e
}

// logBuffer collects slog's JSON lines; safe for the queue's goroutines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// lines returns every record logged so far, decoded.
func (l *logBuffer) lines(t *testing.T) []map[string]any {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(l.buf.String()), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line is not JSON: %s", line)
		}
		out = append(out, m)
	}
	return out
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// find returns the first record with msg, or nil.
func find(records []map[string]any, msg string) map[string]any {
	for _, r := range records {
		if r["msg"] == msg {
			return r
		}
	}
	return nil
}

// The log tells an administrator, one structured line each, when a job
// waits for a backend and when that wait ends, when a backend goes down
// and comes back (with its last error), and when a job fails (reason,
// backend, attempt, duration), and never holds the prompt.
func TestLogLinesForWaitsOutagesAndFailures(t *testing.T) {
	const prompt = "a secret lighthouse at dusk"
	logs := &logBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))

	fake := backendfake.NewA1111(t, backendfake.A1111Config{Fail: backendfake.A1111NoAPI})
	e := newEnvWithPool(t, []backend.Backend{a1111(t, "gpu", fake)}, backend.PoolOptions{
		MinBackoff: 20 * time.Millisecond, MaxBackoff: 100 * time.Millisecond, CheckEvery: 50 * time.Millisecond, Logger: log},
		queue.Options{WaitForBackend: time.Hour, Logger: log})
	events, stop := e.q.Subscribe("alice")
	defer stop()

	p := params(prompt)
	p.Steps = 3
	g, _ := e.submit(t, "alice", p)
	eventually(t, "wait logged", func() bool { return find(logs.lines(t), "queue: generation waits for a backend") != nil })
	// The server comes back, and fails the job with the prompt in its answer.
	fake.Set(func(c *backendfake.A1111Config) { c.Fail = backendfake.A1111OK })
	seen := waitEvent(t, events, final(g.ID))
	if last := seen[len(seen)-1]; last.Type != queue.EventSucceeded {
		t.Fatalf("ended with %+v", last)
	}
	// A second job fails on the server.
	fake.Set(func(c *backendfake.A1111Config) { c.Fail = backendfake.A1111HTTP500 })
	g2, _ := e.submit(t, "alice", p)
	waitEvent(t, events, final(g2.ID))

	eventually(t, "failure logged", func() bool { return find(logs.lines(t), "queue: generation failed") != nil })
	records := logs.lines(t)
	checks := []struct {
		msg    string
		fields map[string]any // "*" means present and not empty
	}{
		{"backend: down", map[string]any{"backend": "gpu", "kind": "a1111", "last_error": "*"}},
		{"queue: generation waits for a backend", map[string]any{"generation": g.ID, "why": "*"}},
		{"backend: back up", map[string]any{"backend": "gpu", "last_error": "*", "down_for": "*"}},
		{"queue: generation stopped waiting for a backend", map[string]any{"generation": g.ID, "waited": "*"}},
		{"queue: generation failed", map[string]any{"generation": g2.ID, "reason": backend.ReasonFailed, "backend": "gpu", "attempt": float64(1), "duration": "*"}},
	}
	for _, c := range checks {
		r := find(records, c.msg)
		if r == nil {
			t.Errorf("no %q line in the log:\n%s", c.msg, logs)
			continue
		}
		for k, want := range c.fields {
			got, ok := r[k]
			if !ok || (want == "*" && (got == "" || got == nil)) || (want != "*" && got != want) {
				t.Errorf("%q: %s = %v, want %v", c.msg, k, got, want)
			}
		}
	}
	if strings.Contains(logs.String(), "lighthouse") {
		t.Errorf("the prompt reached the log:\n%s", logs)
	}
}

// A job waiting for a backend asks for a fresh health check (at most one a
// second per backend), so it starts soon after the server answers again
// instead of at the end of a backoff that grows to a minute. The backoff
// here is an hour: without those checks the job would never start.
func TestWaitingJobStartsSoonAfterTheBackendReturns(t *testing.T) {
	fake := backendfake.NewA1111(t, backendfake.A1111Config{Fail: backendfake.A1111NoAPI})
	e := newEnvWithPool(t, []backend.Backend{a1111(t, "gpu", fake)},
		backend.PoolOptions{MinBackoff: time.Hour, MaxBackoff: time.Hour, RecheckEvery: 50 * time.Millisecond}, queue.Options{WaitForBackend: time.Hour})
	events, stop := e.q.Subscribe("alice")
	defer stop()
	g, _ := e.submit(t, "alice", params("come back"))
	// The start's check, then at least one the waiting job asked for.
	eventually(t, "a check while the job waits", func() bool { return fake.Requests()["GET /sdapi/v1/sd-models"] >= 2 })
	fake.Set(func(c *backendfake.A1111Config) { c.Fail = backendfake.A1111OK })
	seen := waitEvent(t, events, final(g.ID))
	if last := seen[len(seen)-1]; last.Type != queue.EventSucceeded {
		t.Fatalf("ended with %+v, want succeeded once the server answered again", last)
	}
}

// BenchmarkPickupAfterBackendReturns measures the time from a backend
// answering again to the first waiting job starting, with production
// health-check settings and a backoff already grown to its 60 s cap.
func BenchmarkPickupAfterBackendReturns(b *testing.B) {
	fake, err := backendfake.StartA1111(backendfake.A1111Config{})
	if err != nil {
		b.Fatal(err)
	}
	defer fake.Close()
	gpu, err := backend.NewA1111(backend.Options{Name: "gpu", Kind: backend.KindA1111, URL: fake.URL})
	if err != nil {
		b.Fatal(err)
	}
	e := newEnvWithPool(b, []backend.Backend{gpu}, backend.PoolOptions{MinBackoff: time.Minute, MaxBackoff: time.Minute}, queue.Options{WaitForBackend: time.Hour})
	pool := e.pool
	events, stop := e.q.Subscribe("alice")
	defer stop()
	var total time.Duration
	for b.Loop() {
		fake.Set(func(c *backendfake.A1111Config) { c.Fail = backendfake.A1111NoAPI })
		pool.MarkDown("gpu", &backend.Error{Backend: "gpu", Reason: backend.ReasonUnavailable, Message: "gone"})
		g, _ := e.submit(b, "alice", params("pickup"))
		time.Sleep(500 * time.Millisecond) // the job has been waiting a while
		back := time.Now()
		fake.Set(func(c *backendfake.A1111Config) { c.Fail = backendfake.A1111OK })
		waitEvent(b, events, is(queue.EventStarted, g.ID))
		total += time.Since(back)
		waitEvent(b, events, final(g.ID))
	}
	b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "ms/pickup")
}

func hangingComfyUI(t *testing.T, name string, stall time.Duration) (backend.Backend, *backendfake.ComfyUI) {
	t.Helper()
	fake := backendfake.NewComfyUI(t, backendfake.ComfyUIConfig{Fail: backendfake.ComfyHang, FailAtStep: 1, StepDelay: 5 * time.Millisecond})
	b, err := backend.NewComfyUI(backend.Options{Name: name, Kind: backend.KindComfyUI, URL: fake.URL, StallTimeout: stall})
	if err != nil {
		t.Fatal(err)
	}
	return b, fake
}

// A backend that hangs mid-job: the person hears of it when the stall
// timeout passes, the backend is marked stalled, and the job moves to a
// backend that can take it, where it succeeds.
func TestStalledJobMovesToAFreeBackend(t *testing.T) {
	gpu, fake := hangingComfyUI(t, "gpu0", 200*time.Millisecond)
	// A tie in free slots goes to config order: gpu0 takes the job first.
	e := newEnv(t, []backend.Backend{gpu, builtin(t, "cpu", 0)}, nil, queue.Options{}, true)
	events, stop := e.q.Subscribe("alice")
	defer stop()
	g, _ := e.submit(t, "alice", params("moves on"))
	seen := waitEvent(t, events, final(g.ID))
	told := false
	for _, ev := range seen {
		told = told || (ev.Reason == queue.ReasonStalled && strings.Contains(ev.Message, "gpu0 has not reported progress for"))
	}
	got, _ := e.q.Get(t.Context(), "alice", g.ID)
	if last := seen[len(seen)-1]; !told || last.Type != queue.EventSucceeded || got.AssignedBackend != "cpu" || got.Attempts != 2 {
		t.Errorf("told %v, ended %s on %q after %d attempts; want told of the stall, then succeeded on cpu (events %v)",
			told, last.Type, got.AssignedBackend, got.Attempts, types(seen))
	}
	if st := e.pool.Status()[0]; st.State() != "stalled" || !strings.Contains(st.Stalled, "gpu0 has not reported progress") {
		t.Errorf("gpu0 status %+v (%s), want stalled", st, st.State())
	}
	if len(fake.Interrupts()) != 1 {
		t.Errorf("interrupts on gpu0: %q, want the stalled prompt stopped there", fake.Interrupts())
	}
}

// With nowhere else to go, the job stays (the server may recover), the
// person is told, and when job_timeout ends it the message names the stall
// instead of advising a smaller image.
func TestStalledJobWithNowhereToGoNamesTheRealCause(t *testing.T) {
	gpu, _ := hangingComfyUI(t, "gpu0", 200*time.Millisecond)
	e := newEnv(t, []backend.Backend{gpu}, nil, queue.Options{JobTimeout: 1500 * time.Millisecond}, true)
	events, stop := e.q.Subscribe("alice")
	defer stop()
	g, _ := e.submit(t, "alice", params("stuck"))
	seen := waitEvent(t, events, final(g.ID))
	told := false
	for _, ev := range seen {
		told = told || (ev.Reason == queue.ReasonStalled && strings.Contains(ev.Message, "gpu0 has not reported progress for") && strings.Contains(ev.Message, "keeps waiting"))
	}
	last := seen[len(seen)-1]
	if !told || last.Type != queue.EventFailed || !strings.Contains(last.Message, "gpu0 has not reported progress for") ||
		strings.Contains(last.Message, "smaller size") || !strings.Contains(last.Message, "queue.job_timeout") {
		t.Errorf("told %v; ended %s %q; want the stall named as the cause", told, last.Type, last.Message)
	}
}
