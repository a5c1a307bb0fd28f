package queue_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"zimage/app"
	"zimage/app/backend"
	"zimage/app/backend/backendfake"
	"zimage/app/queue"
)

func TestSubmitSucceedsWithEventsInOrder(t *testing.T) {
	e := newEnv(t, []backend.Backend{builtin(t, "cpu", 5*time.Millisecond)}, nil, queue.Options{}, true)
	events, stop := e.q.Subscribe("alice")
	defer stop()

	p := params("a red fox in the snow")
	p.Steps, p.Count = 4, 2
	g, pos, err := e.q.Submit(context.Background(), "alice", p)
	if err != nil {
		t.Fatal(err)
	}
	if pos != 1 {
		t.Errorf("position = %d, want 1", pos)
	}
	seen := waitEvent(t, events, final(g.ID))

	var seq strings.Builder
	for _, ev := range seen {
		seq.WriteString(ev.Type[:2] + " ")
	}
	// qu=queued st=started pr=progress or preview su=succeeded
	if !regexp.MustCompile(`^(qu )+st (pr )+su $`).MatchString(seq.String()) {
		t.Errorf("event order = %q", seq.String())
	}
	var lastProgress queue.Event
	for _, ev := range seen {
		if ev.Type == queue.EventProgress {
			lastProgress = ev
		}
	}
	if lastProgress.Step != 4 || lastProgress.Steps != 4 {
		t.Errorf("last progress = %d/%d, want the final step 4/4", lastProgress.Step, lastProgress.Steps)
	}
	done := seen[len(seen)-1]
	if done.Type != queue.EventSucceeded || len(done.ImageIDs) != 2 {
		t.Fatalf("final event = %+v, want succeeded with 2 images", done)
	}
	for _, id := range done.ImageIDs {
		if w, h := decodePNG(t, filepath.Join(e.dir, id+".png")); w != 64 || h != 64 {
			t.Errorf("image %s is %d×%d, want 64×64", id, w, h)
		}
	}

	got, err := e.q.Get(context.Background(), "alice", g.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != app.GenerationSucceeded || got.Prompt != p.Prompt || got.Attempts != 1 || got.AssignedBackend != "cpu" || got.FinishedAt.IsZero() {
		t.Errorf("Get = %+v", got)
	}

	// At rest the prompt is sealed: its words are not in the database file.
	raw, err := sql.Open("sqlite", filepath.Join(e.dir, "zimage.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	var sealed []byte
	if err := raw.QueryRow(`SELECT prompt FROM generations WHERE id = ?`, g.ID).Scan(&sealed); err != nil {
		t.Fatal(err)
	}
	if len(sealed) == 0 || bytes.Contains(sealed, []byte("fox")) {
		t.Errorf("stored prompt is not sealed: %q", sealed)
	}
}

func TestRandomSeedIsChosenAndStored(t *testing.T) {
	e := newEnv(t, []backend.Backend{builtin(t, "cpu", 0)}, nil, queue.Options{}, false)
	p := params("seed me")
	p.Seed = app.RandomSeed
	g, _ := e.submit(t, "alice", p)
	got, err := e.q.Get(context.Background(), "alice", g.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Seed < 0 || got.Seed > app.MaxSeed || got.Seed != g.Seed {
		t.Errorf("seed = %d (returned %d), want a stored value in 0..2^53-1", got.Seed, g.Seed)
	}
}

func TestFairnessNewcomerGoesNext(t *testing.T) {
	rec := &recorder{Backend: builtin(t, "cpu", 40*time.Millisecond)}
	p := params("busy")
	p.Steps = 1
	e := newEnv(t, []backend.Backend{rec}, nil, queue.Options{MaxQueuedPerUser: 100}, true)
	var alice []string
	for range 50 {
		g, _ := e.submit(t, "alice", p)
		alice = append(alice, g.ID)
	}
	eventually(t, "alice's first job started", func() bool { return len(rec.started()) > 0 })

	bobJob, pos := e.submit(t, "bob", p)
	before := rec.started()
	if pos != 1 {
		t.Errorf("bob's position = %d, want 1", pos)
	}
	eventually(t, "bob's job started", func() bool { return len(rec.started()) > len(before) })
	after := rec.started()
	if got := after[len(before)]; got != bobJob.ID {
		t.Errorf("after alice's job %s the next to start was %s, want bob's %s", before[len(before)-1], got, bobJob.ID)
	}
	// Alice's own jobs keep their order.
	for i, id := range after {
		if id != bobJob.ID && id != alice[i-boolInt(i > len(before))] {
			t.Errorf("start %d = %s, want alice's job %d", i, id, i)
		}
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func TestQueuedCapPerUser(t *testing.T) {
	e := newEnv(t, []backend.Backend{builtin(t, "cpu", 0)}, nil, queue.Options{MaxQueuedPerUser: 3}, false)
	for range 3 {
		e.submit(t, "alice", params("one of three"))
	}
	_, _, err := e.q.Submit(context.Background(), "alice", params("the fourth"))
	if app.ErrorCode(err) != app.ECONFLICT || !strings.Contains(app.ErrorMessage(err), "3 waiting") {
		t.Errorf("fourth submit: %v, want ECONFLICT saying 3 images are waiting", err)
	}
	if _, _, err := e.q.Submit(context.Background(), "bob", params("someone else")); err != nil {
		t.Errorf("bob's submit: %v; alice's cap must not apply to him", err)
	}
}

func TestRunningCapPerUser(t *testing.T) {
	e := newEnv(t, []backend.Backend{builtin(t, "cpu", 50*time.Millisecond)}, map[string]int{"cpu": 2},
		queue.Options{MaxRunningPerUser: 1}, true)
	events, stop := e.q.Subscribe("bob")
	defer stop()
	aliceEvents, stopAlice := e.q.Subscribe("alice")
	defer stopAlice()
	p := params("slow")
	p.Steps = 20
	first, _ := e.submit(t, "alice", p)
	second, _ := e.submit(t, "alice", p)
	bobs, _ := e.submit(t, "bob", p)
	// Two slots are free, but alice may run one job at a time: the second
	// slot must go to bob even though alice's second job was queued first.
	// (Which of the two starts first is the scheduler's business.)
	waitEvent(t, events, is(queue.EventStarted, bobs.ID))
	waitEvent(t, aliceEvents, is(queue.EventStarted, first.ID))
	for _, c := range []struct {
		id, want string
	}{{first.ID, app.GenerationRunning}, {second.ID, app.GenerationQueued}} {
		g, err := e.q.Get(context.Background(), "alice", c.id)
		if err != nil {
			t.Fatal(err)
		}
		if g.Status != c.want {
			t.Errorf("alice's job %s is %s, want %s", c.id, g.Status, c.want)
		}
	}
	if s := e.q.Stats(); s.Running != 2 || s.Queued != 1 {
		t.Errorf("stats = %+v, want 2 running and 1 queued", s)
	}
	if pos := e.q.Position("alice", second.ID); pos != 1 {
		t.Errorf("alice's second job position = %d, want 1", pos)
	}
}

func TestCancelQueuedAndRunning(t *testing.T) {
	e := newEnv(t, []backend.Backend{builtin(t, "cpu", 100*time.Millisecond)}, nil, queue.Options{}, true)
	events, stop := e.q.Subscribe("alice")
	defer stop()
	p := params("long")
	p.Steps = 50
	running, _ := e.submit(t, "alice", p)
	queued, _ := e.submit(t, "alice", p)
	waitEvent(t, events, is(queue.EventProgress, running.ID))

	for _, c := range []struct {
		name string
		id   string
	}{{"queued", queued.ID}, {"running", running.ID}} {
		t.Run(c.name, func(t *testing.T) {
			g, err := e.q.Cancel(context.Background(), "alice", c.id)
			if err != nil {
				t.Fatal(err)
			}
			if g.Status != app.GenerationCanceled || g.FinishedAt.IsZero() {
				t.Errorf("after cancel: status %s, finished %v", g.Status, g.FinishedAt)
			}
			waitEvent(t, events, is(queue.EventCanceled, c.id))
			if pos := e.q.Position("alice", c.id); pos != 0 {
				t.Errorf("position after cancel = %d, want 0", pos)
			}
			if _, err := e.q.Cancel(context.Background(), "alice", c.id); app.ErrorCode(err) != app.ECONFLICT {
				t.Errorf("second cancel: %v, want ECONFLICT", err)
			}
		})
	}
	// The backend let go of the canceled job: its slot is free and nothing
	// was stored.
	eventually(t, "slot released", func() bool { return e.busy() == 0 })
	if n := e.sink.stored(); n != 0 {
		t.Errorf("sink stored %d results for canceled jobs", n)
	}
	// The queue still works afterwards.
	p.Steps = 1
	next, _ := e.submit(t, "alice", p)
	if ev := waitEvent(t, events, final(next.ID)); ev[len(ev)-1].Type != queue.EventSucceeded {
		t.Errorf("next job ended %s", ev[len(ev)-1].Type)
	}
}

func TestJobTimeout(t *testing.T) {
	e := newEnv(t, []backend.Backend{builtin(t, "cpu", 100*time.Millisecond)}, nil, queue.Options{JobTimeout: 250 * time.Millisecond}, true)
	events, stop := e.q.Subscribe("alice")
	defer stop()
	p := params("too slow")
	p.Steps = 100
	g, _ := e.submit(t, "alice", p)
	last := waitEvent(t, events, final(g.ID))
	ev := last[len(last)-1]
	if ev.Type != queue.EventFailed || ev.Reason != queue.ReasonJobTimeout || !strings.Contains(ev.Message, "queue.job_timeout") {
		t.Errorf("final event = %+v, want failed: timeout naming queue.job_timeout", ev)
	}
	got, _ := e.q.Get(context.Background(), "alice", g.ID)
	if got.Status != app.GenerationFailed || got.ErrorReason != queue.ReasonJobTimeout || got.Attempts != 1 {
		t.Errorf("stored: %s %s attempts %d; a timeout must not be retried", got.Status, got.ErrorReason, got.Attempts)
	}
	eventually(t, "slot released", func() bool { return e.busy() == 0 })
}

func a1111(t *testing.T, name string, fake *backendfake.A1111) backend.Backend {
	t.Helper()
	b, err := backend.NewA1111(backend.Options{Name: name, Kind: backend.KindA1111, URL: fake.URL})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func comfyui(t *testing.T, name string, fake *backendfake.ComfyUI) backend.Backend {
	t.Helper()
	b, err := backend.NewComfyUI(backend.Options{Name: name, Kind: backend.KindComfyUI, URL: fake.URL})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// wantSentence checks that a message shown to people has no doubled
// punctuation where two sentences were joined.
func wantSentence(t *testing.T, msg string) {
	t.Helper()
	for _, bad := range []string{"?.", "..", ".;", ".)"} {
		if strings.Contains(msg, bad) {
			t.Errorf("message has %q: %s", bad, msg)
		}
	}
}

func TestRetryOnceOnAnotherBackend(t *testing.T) {
	dying := backendfake.NewA1111(t, backendfake.A1111Config{StepDelay: 10 * time.Millisecond, Fail: backendfake.A1111Die, FailAtStep: 2})
	e := newEnv(t, []backend.Backend{a1111(t, "gpu", dying), builtin(t, "cpu", 0)}, nil, queue.Options{}, true)
	events, stop := e.q.Subscribe("alice")
	defer stop()
	g, _ := e.submit(t, "alice", params("survive a crash"))
	seen := waitEvent(t, events, final(g.ID))
	if last := seen[len(seen)-1]; last.Type != queue.EventSucceeded {
		t.Fatalf("ended with %+v, want succeeded on the other backend", last)
	}
	retried := false
	for _, ev := range seen {
		retried = retried || (ev.Type == queue.EventQueued && ev.Reason == backend.ReasonUnavailable)
	}
	if !retried {
		t.Errorf("no re-queued event with reason unavailable in %v", types(seen))
	}
	got, _ := e.q.Get(context.Background(), "alice", g.ID)
	if got.Attempts != 2 || got.AssignedBackend != "cpu" {
		t.Errorf("attempts %d on %q, want 2 on cpu", got.Attempts, got.AssignedBackend)
	}
	st := e.pool.Status()
	if st[0].Healthy || st[0].DownSince.IsZero() || st[0].LastError == "" {
		t.Errorf("gpu status = %+v, want down with a last error", st[0])
	}
}

func TestRetryThenFailWhenBothDie(t *testing.T) {
	cfg := backendfake.A1111Config{StepDelay: 10 * time.Millisecond, Fail: backendfake.A1111Die, FailAtStep: 2}
	one, two := backendfake.NewA1111(t, cfg), backendfake.NewA1111(t, cfg)
	e := newEnv(t, []backend.Backend{a1111(t, "gpu1", one), a1111(t, "gpu2", two)}, nil, queue.Options{}, true)
	events, stop := e.q.Subscribe("alice")
	defer stop()
	g, _ := e.submit(t, "alice", params("doomed"))
	seen := waitEvent(t, events, final(g.ID))
	last := seen[len(seen)-1]
	if last.Type != queue.EventFailed || last.Reason != backend.ReasonUnavailable || !strings.Contains(last.Message, "gpu") {
		t.Errorf("ended with %+v, want failed: unavailable with the backend's message", last)
	}
	got, _ := e.q.Get(context.Background(), "alice", g.ID)
	if got.Attempts != 2 || got.ErrorMessage != last.Message {
		t.Errorf("attempts %d, message %q", got.Attempts, got.ErrorMessage)
	}
	t.Logf("message shown: %s", last.Message)
}

func TestWaitForBackendExpires(t *testing.T) {
	for _, kind := range []string{backend.KindA1111, backend.KindComfyUI} {
		t.Run(kind, func(t *testing.T) { testWaitForBackendExpires(t, kind) })
	}
}

func testWaitForBackendExpires(t *testing.T, kind string) {
	var b backend.Backend
	if kind == backend.KindComfyUI {
		fake := backendfake.NewComfyUI(t, backendfake.ComfyUIConfig{})
		fake.Kill()
		b = comfyui(t, "gpu", fake)
	} else {
		fake := backendfake.NewA1111(t, backendfake.A1111Config{})
		fake.Kill()
		b = a1111(t, "gpu", fake)
	}
	e := newEnv(t, []backend.Backend{b}, nil, queue.Options{WaitForBackend: 300 * time.Millisecond}, true)
	events, stop := e.q.Subscribe("alice")
	defer stop()
	g, _ := e.submit(t, "alice", params("nobody home"))
	seen := waitEvent(t, events, final(g.ID))
	waiting := false
	for _, ev := range seen {
		waiting = waiting || (ev.Type == queue.EventQueued && ev.Reason == queue.ReasonNoBackend && strings.Contains(ev.Message, "Waiting for a backend"))
		wantSentence(t, ev.Message)
	}
	if !waiting {
		t.Errorf("no 'waiting for a backend' event in %v", types(seen))
	}
	last := seen[len(seen)-1]
	for _, want := range []string{"No backend is available", "backend gpu down since", "last error", "queue.wait_for_backend"} {
		if !strings.Contains(last.Message, want) {
			t.Errorf("message %q lacks %q", last.Message, want)
		}
	}
	if last.Type != queue.EventFailed || last.Reason != queue.ReasonNoBackend {
		t.Errorf("ended with %s/%s, want failed/no_backend", last.Type, last.Reason)
	}
	t.Logf("message shown: %s", last.Message)
}

func TestIsolationBetweenUsers(t *testing.T) {
	e := newEnv(t, []backend.Backend{builtin(t, "cpu", 0)}, nil, queue.Options{}, false)
	g, _ := e.submit(t, "alice", params("mine"))
	ctx := context.Background()
	if _, err := e.q.Get(ctx, "bob", g.ID); app.ErrorCode(err) != app.ENOTFOUND {
		t.Errorf("bob Get alice's job: %v, want ENOTFOUND", err)
	}
	if _, err := e.q.Cancel(ctx, "bob", g.ID); app.ErrorCode(err) != app.ENOTFOUND {
		t.Errorf("bob Cancel alice's job: %v, want ENOTFOUND", err)
	}
	if pos := e.q.Position("bob", g.ID); pos != 0 {
		t.Errorf("bob sees a position %d for alice's job", pos)
	}
	if list, err := e.q.List(ctx, "bob", "", 50); err != nil || len(list) != 0 {
		t.Errorf("bob's list = %v, %v; want empty", list, err)
	}
	got, err := e.q.Get(ctx, "alice", g.ID)
	if err != nil || got.Status != app.GenerationQueued {
		t.Errorf("alice's job after bob's attempts: %+v, %v", got, err)
	}
}

func TestSubmitRefusals(t *testing.T) {
	e := newEnv(t, []backend.Backend{builtin(t, "cpu", 0)}, nil, queue.Options{}, false)
	tests := []struct {
		name   string
		change func(*app.GenerationParams)
		field  string
	}{
		{"bad size", func(p *app.GenerationParams) { p.Width = 100 }, "width"},
		{"unknown backend", func(p *app.GenerationParams) { p.Backend = "gpu9" }, "backend"},
		{"model not served", func(p *app.GenerationParams) { p.Model = "sdxl" }, "model"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := params("x")
			tt.change(&p)
			_, _, err := e.q.Submit(context.Background(), "alice", p)
			var ae *app.Error
			if app.ErrorCode(err) != app.EINVALID || !asAppError(err, &ae) || ae.Fields[tt.field] == "" {
				t.Errorf("Submit: %v, want EINVALID on field %s", err, tt.field)
			}
		})
	}
}

func asAppError(err error, target **app.Error) bool {
	e, ok := err.(*app.Error)
	*target = e
	return ok
}

func TestListNewestFirstWithPaging(t *testing.T) {
	e := newEnv(t, []backend.Backend{builtin(t, "cpu", 0)}, nil, queue.Options{}, false)
	var ids []string
	for i := range 5 {
		g, _ := e.submit(t, "alice", params("job "+string(rune('a'+i))))
		ids = append(ids, g.ID)
	}
	first, err := e.q.List(context.Background(), "alice", "", 3)
	if err != nil || len(first) != 3 || first[0].ID != ids[4] || first[0].Prompt != "job e" {
		t.Fatalf("first page = %v, %v", first, err)
	}
	second, err := e.q.List(context.Background(), "alice", first[2].ID, 3)
	if err != nil || len(second) != 2 || second[0].ID != ids[1] || second[1].ID != ids[0] {
		t.Fatalf("second page = %v, %v", second, err)
	}
}

// TestCancelOnServerThatFinishesTheImage: sd-server cannot stop an image
// once asked, so a cancel says the next image waits for it, and the next
// job starts only when the server is really free.
func TestCancelOnServerThatFinishesTheImage(t *testing.T) {
	fake := backendfake.NewOpenAI(t, backendfake.OpenAIConfig{Flavour: backendfake.OpenAISDCpp, StepDelay: 20 * time.Millisecond})
	b, err := backend.NewOpenAI(backend.Options{Name: "sdcpp", Kind: backend.KindOpenAI, URL: fake.URL})
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, []backend.Backend{b}, nil, queue.Options{MaxRunningPerUser: 2}, true)
	events, stop := e.q.Subscribe("alice")
	defer stop()
	p := params("long")
	p.Steps = 20
	first, _ := e.submit(t, "alice", p)
	waitEvent(t, events, is(queue.EventStarted, first.ID))
	eventually(t, "the server is busy", fake.Busy)
	g, err := e.q.Cancel(context.Background(), "alice", first.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(g.ErrorMessage, "the server will finish the current image before the next one starts") {
		t.Errorf("cancel message = %q", g.ErrorMessage)
	}
	p.Steps = 1
	next, _ := e.submit(t, "alice", p)
	waitEvent(t, events, is(queue.EventStarted, next.ID))
	eventually(t, "the next request reaches the server", func() bool { return len(fake.Generations()) == 2 })
	if fake.MaxConcurrent() > 1 {
		t.Error("the next job was sent while the server was still making the canceled image")
	}
	waitEvent(t, events, final(next.ID))
}

func fakeFreeWhenSecondArrived(f *backendfake.OpenAI) bool {
	return f.MaxConcurrent() <= 1
}

// TestSubmitChecksSamplerAndScheduler: a sampler the backend does not list
// is refused at submit, naming those it has; one it lists is stored with
// the generation and reaches the server.
func TestSubmitChecksSamplerAndScheduler(t *testing.T) {
	fake := backendfake.NewOpenAI(t, backendfake.OpenAIConfig{Flavour: backendfake.OpenAISDCpp})
	b, err := backend.NewOpenAI(backend.Options{Name: "sdcpp", Kind: backend.KindOpenAI, URL: fake.URL})
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, []backend.Backend{b}, nil, queue.Options{}, true)
	p := params("fox")
	p.Sampler = "Euler a"
	_, _, err = e.q.Submit(context.Background(), "alice", p)
	var ae *app.Error
	if !errors.As(err, &ae) || ae.Code != app.EINVALID || !strings.Contains(ae.Fields["sampler"], "euler, euler_a") {
		t.Fatalf("unknown sampler: %v", err)
	}
	p.Sampler, p.Scheduler = "euler_a", "karras"
	events, stop := e.q.Subscribe("alice")
	defer stop()
	g, _ := e.submit(t, "alice", p)
	waitEvent(t, events, final(g.ID))
	got, err := e.q.Get(context.Background(), "alice", g.ID)
	if err != nil || got.Sampler != "euler_a" || got.Scheduler != "karras" {
		t.Errorf("stored sampler %q scheduler %q (%v)", got.Sampler, got.Scheduler, err)
	}
	if r := fake.Generations(); len(r) != 1 || r[0].Sampler != "euler_a" || r[0].Scheduler != "karras" {
		t.Errorf("server used %+v", r)
	}
}
