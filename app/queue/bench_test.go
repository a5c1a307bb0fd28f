package queue_test

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"zimage/app"
	"zimage/app/backend"
	"zimage/app/backend/backendfake"
	"zimage/app/queue"
)

// BenchmarkQueueThroughput measures the queue's own cost per job: submit,
// seal, schedule, run on a zero-time builtin backend (64×64, one step),
// store through a file sink, mark succeeded, publish events.
// The file sink's cost (one file create per image) is the test machine's
// disk, so the memory sink shows the queue's own cost.
func BenchmarkQueueThroughput(b *testing.B) {
	b.Run("sink=files", func(b *testing.B) { benchThroughput(b, nil) })
	b.Run("sink=memory", func(b *testing.B) { benchThroughput(b, &memorySink{images: map[string][]byte{}}) })
}

// memorySink keeps images in a map: a real Sink, minus the disk.
type memorySink struct {
	mu     sync.Mutex
	images map[string][]byte
}

func (s *memorySink) Store(ctx context.Context, g app.Generation, res backend.Result) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ids []string
	for i, im := range res.Images {
		id := fmt.Sprintf("%s-%d", g.ID, i)
		s.images[id] = im.Data
		ids = append(ids, id)
	}
	return ids, nil
}

func benchThroughput(b *testing.B, sink queue.Sink) {
	e := newEnv(b, []backend.Backend{builtin(b, "cpu", 0)}, map[string]int{"cpu": 2},
		queue.Options{MaxQueuedPerUser: 10000, MaxRunningPerUser: 2}, sink == nil)
	if sink != nil {
		e.q = queue.New(e.db, e.pool, e.vault, sink, queue.Options{MaxQueuedPerUser: 10000, MaxRunningPerUser: 2})
		e.start(b)
	}
	p := params("throughput")
	p.Steps = 1
	var streams []<-chan queue.Event
	for _, u := range users {
		ch, stop := e.q.Subscribe(u)
		defer stop()
		streams = append(streams, ch)
	}
	done := make(chan struct{})
	go func() {
		n := 0
		for n < b.N {
			select {
			case ev := <-streams[0]:
				n += finished(ev)
			case ev := <-streams[1]:
				n += finished(ev)
			case ev := <-streams[2]:
				n += finished(ev)
			}
		}
		close(done)
	}()
	b.ResetTimer()
	for i := range b.N {
		if _, _, err := e.q.Submit(context.Background(), users[i%len(users)], p); err != nil {
			b.Fatal(err)
		}
	}
	<-done
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "jobs/s")
}

func finished(ev queue.Event) int {
	if ev.Type == queue.EventSucceeded || ev.Type == queue.EventFailed {
		return 1
	}
	return 0
}

// BenchmarkQueueMemory1000 measures the heap the queue holds for 1,000
// queued jobs (50 users × 20), by rebuilding its index from the database
// at Start while the only backend is down, so nothing leaves the queue.
// ns/op is the rebuild time.
func BenchmarkQueueMemory1000(b *testing.B) {
	fake, err := backendfake.StartA1111(backendfake.A1111Config{})
	if err != nil {
		b.Fatal(err)
	}
	fake.Kill()
	gpu, err := backend.NewA1111(backend.Options{Name: "gpu", Kind: backend.KindA1111, URL: fake.URL})
	if err != nil {
		b.Fatal(err)
	}
	opts := queue.Options{MaxQueuedPerUser: 20, WaitForBackend: time.Hour}
	e := newEnv(b, []backend.Backend{gpu}, nil, opts, false)
	for u := range 50 {
		user := fmt.Sprint("user", u)
		if err := e.vault.EnsureUserKey(user); err != nil {
			b.Fatal(err)
		}
		for range 20 {
			e.submit(b, user, params("a prompt of an ordinary length, about as long as people write them"))
		}
	}
	var total uint64
	var ms runtime.MemStats
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		q := queue.New(e.db, e.pool, e.vault, e.sink, opts)
		runtime.GC()
		runtime.ReadMemStats(&ms)
		before := ms.HeapAlloc
		b.StartTimer()
		if err := q.Start(context.Background()); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if s := q.Stats(); s.Queued != 1000 {
			b.Fatalf("queued = %d, want 1000", s.Queued)
		}
		runtime.GC()
		runtime.ReadMemStats(&ms)
		total += ms.HeapAlloc - min(before, ms.HeapAlloc)
		runtime.KeepAlive(q)
		q.Stop()
		b.StartTimer()
	}
	b.ReportMetric(float64(total)/float64(b.N), "heap-B/1000-queued")
}

// BenchmarkFairness measures how long user B's single job waits while user
// A has 50 queued, on one slot of a backend that takes 10 ms a job: in jobs
// started before B's (after B submitted), and in milliseconds. First come,
// first served would make it 49 jobs ≈ 490 ms.
func BenchmarkFairness(b *testing.B) {
	p := params("fair")
	p.Steps = 1
	var jobsAhead, waitMS float64
	for range b.N {
		rec := &recorder{Backend: builtin(b, "cpu", 10*time.Millisecond)}
		e := newEnv(b, []backend.Backend{rec}, nil, queue.Options{MaxQueuedPerUser: 100}, true)
		bob, stop := e.q.Subscribe("bob")
		for range 50 {
			e.submit(b, "alice", p)
		}
		eventually(b, "alice's first job started", func() bool { return len(rec.started()) > 0 })
		submitted := time.Now()
		startedBefore := len(rec.started())
		g, _ := e.submit(b, "bob", p)
		waitEvent(b, bob, is(queue.EventStarted, g.ID))
		waitMS += float64(time.Since(submitted).Microseconds()) / 1000
		order := rec.started()
		for i := startedBefore; i < len(order) && order[i] != g.ID; i++ {
			jobsAhead++
		}
		stop()
		e.q.Stop()
	}
	b.ReportMetric(jobsAhead/float64(b.N), "jobs-before-B")
	b.ReportMetric(waitMS/float64(b.N), "ms-wait-of-B")
}

// BenchmarkPreviewRate: one ComfyUI job of 40 steps at 50 ms a step, a
// preview with each (20 a second from the server). It reports the previews
// and steps the person receives a second: previews are capped at 4/s.
func BenchmarkPreviewRate(b *testing.B) {
	fake := backendfake.NewComfyUI(b, backendfake.ComfyUIConfig{StepDelay: 50 * time.Millisecond, Previews: true})
	comfy, err := backend.NewComfyUI(backend.Options{Name: "gpu0", Kind: backend.KindComfyUI, URL: fake.URL, Timeout: time.Minute})
	if err != nil {
		b.Fatal(err)
	}
	e := newEnv(b, []backend.Backend{comfy}, nil, queue.Options{}, true)
	events, stop := e.q.Subscribe("alice")
	defer stop()
	var previews, steps int
	var running time.Duration
	for b.Loop() {
		p := params("a lighthouse")
		p.Steps = 40
		g, _ := e.submit(b, "alice", p)
		var started time.Time
		for ev := range events {
			switch ev.Type {
			case queue.EventStarted:
				started = time.Now()
			case queue.EventPreview:
				previews++
			case queue.EventProgress:
				steps++
			}
			if final(g.ID)(ev) {
				break
			}
		}
		running += time.Since(started)
	}
	b.ReportMetric(float64(previews)/running.Seconds(), "previews/s")
	b.ReportMetric(float64(steps)/running.Seconds(), "progress/s")
}
