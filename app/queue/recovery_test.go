package queue_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"zimage/app"
	"zimage/app/backend"
	"zimage/app/backend/backendfake"
	"zimage/app/queue"
	"zimage/app/sqlite"
	"zimage/app/vault"
)

func TestRecoveryAfterRestart(t *testing.T) {
	tests := []struct {
		name       string
		startsDone int // how many times the job had started before the "crash"
		wantEvent  string
		wantStatus string
		wantReason string
	}{
		{"first attempt is re-queued", 1, queue.EventSucceeded, app.GenerationSucceeded, ""},
		{"second attempt fails as interrupted", 2, queue.EventFailed, app.GenerationFailed, queue.ReasonInterrupted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cpu := builtin(t, "cpu", 0)
			e := newEnv(t, []backend.Backend{cpu}, nil, queue.Options{}, false)
			g, _ := e.submit(t, "alice", params("interrupted"))
			ctx := context.Background()
			for i := range tt.startsDone {
				if i > 0 {
					if _, err := e.db.RequeueGeneration(ctx, g.ID, false); err != nil {
						t.Fatal(err)
					}
				}
				if _, err := e.db.StartGeneration(ctx, g.ID, "cpu"); err != nil {
					t.Fatal(err)
				}
			}
			// The process "dies": the row stays running in the file.
			if err := e.db.Close(); err != nil {
				t.Fatal(err)
			}
			e.openDB(t)
			e.q = queue.New(e.db, e.pool, e.vault, e.sink, queue.Options{})
			events, stop := e.q.Subscribe("alice")
			defer stop()
			e.start(t)
			seen := waitEvent(t, events, final(g.ID))
			last := seen[len(seen)-1]
			if last.Type != tt.wantEvent || last.Reason != tt.wantReason {
				t.Errorf("final event %s/%s, want %s/%s", last.Type, last.Reason, tt.wantEvent, tt.wantReason)
			}
			// Z Image restarted, not the model server: the message says so
			// and sends no one to the backend's log.
			if tt.wantReason == queue.ReasonInterrupted && (!strings.Contains(last.Message, "Z Image restarted") || strings.Contains(last.Message, "backend")) {
				t.Errorf("interrupted message %q should say Z Image restarted, not blame the backend", last.Message)
			}
			got, err := e.q.Get(ctx, "alice", g.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got.Status != tt.wantStatus || got.ErrorReason != tt.wantReason {
				t.Errorf("after restart: %s/%s, want %s/%s", got.Status, got.ErrorReason, tt.wantStatus, tt.wantReason)
			}
		})
	}
}

const helperEnv = "ZIMAGE_QUEUE_HELPER_DIR"

// helperComfyEnv, when set, points the helper's one backend at this
// ComfyUI instead of the builtin renderer.
const helperComfyEnv = "ZIMAGE_QUEUE_HELPER_COMFYUI"

// TestHelperQueueProcess is not a test: TestKill9DuringJob runs the test
// binary again with helperEnv set, so that this runs as a real server
// process it can kill. It starts a queue on the folder's database (which
// recovers what an earlier child left), submits a slow job when asked,
// prints "STARTED <id> <attempts>" once a job reports progress, and waits
// to be killed.
func TestHelperQueueProcess(t *testing.T) {
	dir := os.Getenv(helperEnv)
	if dir == "" {
		t.Skip("helper process for TestKill9DuringJob")
	}
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(dir, "zimage.db"))
	if err != nil {
		fatalHelper(err)
	}
	v, err := vault.Open(filepath.Join(dir, "keys"), "")
	if err != nil {
		fatalHelper(err)
	}
	if err := v.EnsureUserKey("alice"); err != nil {
		fatalHelper(err)
	}
	b := builtin(t, "cpu", 200*time.Millisecond)
	if u := os.Getenv(helperComfyEnv); u != "" {
		if b, err = backend.NewComfyUI(backend.Options{Name: "gpu0", Kind: backend.KindComfyUI, URL: u, Timeout: time.Minute}); err != nil {
			fatalHelper(err)
		}
	}
	pool, err := backend.NewPool([]backend.Backend{b}, nil, backend.PoolOptions{})
	if err != nil {
		fatalHelper(err)
	}
	pool.Start(ctx)
	q := queue.New(db, pool, v, &fileSink{dir: dir}, queue.Options{})
	events, _ := q.Subscribe("alice")
	if err := q.Start(ctx); err != nil {
		fatalHelper(err)
	}
	if os.Getenv("ZIMAGE_QUEUE_HELPER_SUBMIT") != "" {
		p := params("killed mid-job")
		p.Steps = 100 // 20 s at 200 ms a step: killed long before the end
		if _, _, err := q.Submit(ctx, "alice", p); err != nil {
			fatalHelper(err)
		}
	}
	for e := range events {
		if e.Type == queue.EventProgress {
			g, err := q.Get(ctx, "alice", e.GenerationID)
			if err != nil {
				fatalHelper(err)
			}
			fmt.Printf("STARTED %s %d\n", g.ID, g.Attempts)
			break
		}
	}
	select {} // until SIGKILL
}

func fatalHelper(err error) {
	fmt.Println("ERROR", err)
	os.Exit(3)
}

// runAndKill starts the helper on dir, waits for it to report a running
// job, kills it with SIGKILL and returns the job id and attempt count.
func runAndKill(t *testing.T, dir string, submit bool) (id string, attempts int) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperQueueProcess$")
	cmd.Env = append(os.Environ(), helperEnv+"="+dir)
	if submit {
		cmd.Env = append(cmd.Env, "ZIMAGE_QUEUE_HELPER_SUBMIT=1")
	}
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string)
	go func() {
		s := bufio.NewScanner(out)
		for s.Scan() {
			lines <- s.Text()
		}
		close(lines)
	}()
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGKILL)
		_ = cmd.Wait()
	}()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatal("helper exited without reporting a running job")
			}
			if _, err := fmt.Sscanf(line, "STARTED %s %d", &id, &attempts); err == nil {
				if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
					t.Fatal(err)
				}
				err := cmd.Wait()
				if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
					t.Fatalf("helper did not die of SIGKILL: %v", err)
				}
				return id, attempts
			}
			if strings.HasPrefix(line, "ERROR") {
				t.Fatal("helper: " + line)
			}
		case <-timeout:
			t.Fatal("helper reported no running job within 30s")
		}
	}
}

func TestKill9DuringJob(t *testing.T) {
	if testing.Short() {
		t.Skip("runs child processes")
	}
	dir := t.TempDir()
	id, attempts := runAndKill(t, dir, true)
	if attempts != 1 {
		t.Fatalf("first run: attempts %d, want 1", attempts)
	}

	// The killed process left the row running; a new one re-queues it and
	// runs it again (and is killed again, mid-job).
	db, err := sqlite.Open(context.Background(), filepath.Join(dir, "zimage.db"))
	if err != nil {
		t.Fatal(err)
	}
	r, err := db.Generation(context.Background(), "alice", id)
	db.Close()
	if err != nil || r.Status != app.GenerationRunning {
		t.Fatalf("after kill -9: %v, %v; want the row left running", r.Status, err)
	}
	id2, attempts := runAndKill(t, dir, false)
	if id2 != id || attempts != 2 {
		t.Fatalf("second run started %s attempt %d, want %s attempt 2", id2, attempts, id)
	}

	// Killed during its second attempt: the next start fails it as
	// interrupted instead of trying forever. Never stuck running.
	e := &env{dir: dir, sink: &fileSink{dir: dir}}
	e.openDB(t)
	v, err := vault.Open(filepath.Join(dir, "keys"), "")
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	e.pool = newPool(t, []backend.Backend{builtin(t, "cpu", 0)}, nil)
	e.q = queue.New(e.db, e.pool, v, e.sink, queue.Options{})
	events, stop := e.q.Subscribe("alice")
	defer stop()
	e.start(t)
	seen := waitEvent(t, events, final(id))
	if last := seen[len(seen)-1]; last.Type != queue.EventFailed || last.Reason != queue.ReasonInterrupted {
		t.Errorf("final event %+v, want failed: interrupted", last)
	}
	g, err := e.q.Get(context.Background(), "alice", id)
	if err != nil || g.Status != app.GenerationFailed || g.ErrorReason != queue.ReasonInterrupted || g.ErrorMessage == "" {
		t.Errorf("after recovery: %+v, %v", g, err)
	}
}

// TestKill9ReattachesComfyUIPrompt: Z Image is killed while ComfyUI makes
// its image. After the restart it takes that prompt over instead of
// submitting it again: ComfyUI runs it once, and the image lands.
func TestKill9ReattachesComfyUIPrompt(t *testing.T) {
	if testing.Short() {
		t.Skip("runs child processes")
	}
	fake := backendfake.NewComfyUI(t, backendfake.ComfyUIConfig{StepDelay: 20 * time.Millisecond})
	t.Setenv(helperComfyEnv, fake.URL)
	dir := t.TempDir()
	id, _ := runAndKill(t, dir, true) // killed at its first step of 100

	e := &env{dir: dir, sink: &fileSink{dir: dir}}
	e.openDB(t)
	v, err := vault.Open(filepath.Join(dir, "keys"), "")
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	comfy, err := backend.NewComfyUI(backend.Options{Name: "gpu0", Kind: backend.KindComfyUI, URL: fake.URL, Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	e.pool = newPool(t, []backend.Backend{comfy}, nil)
	e.q = queue.New(e.db, e.pool, v, e.sink, queue.Options{})
	events, stop := e.q.Subscribe("alice")
	defer stop()
	e.start(t)
	seen := waitEvent(t, events, final(id))
	if last := seen[len(seen)-1]; last.Type != queue.EventSucceeded || len(last.ImageIDs) != 1 {
		t.Fatalf("final event %+v, want succeeded with one image", last)
	}
	if _, err := os.Stat(filepath.Join(dir, last(seen).ImageIDs[0]+".png")); err != nil {
		t.Errorf("the image did not land: %v", err)
	}
	if n := fake.Requests()["POST /prompt"]; n != 1 {
		t.Errorf("ComfyUI ran %d prompts for one job killed once, want 1", n)
	}
	if got := fake.Interrupts(); len(got) != 0 {
		t.Errorf("interrupts %q, want none", got)
	}
}

func last(es []queue.Event) queue.Event { return es[len(es)-1] }

// dyingTransport plays a process killed mid-job: once dead, none of its
// requests leave the machine, so nothing is stopped on the server.
type dyingTransport struct{ dead atomic.Bool }

func (d *dyingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if d.dead.Load() {
		return nil, errors.New("the process is dead")
	}
	return http.DefaultTransport.RoundTrip(r)
}

// TestRestartStopsAPromptItWillNotResume: a prompt a killed process left
// on ComfyUI is stopped there when the job will not take it over: the job
// fails as interrupted (killed during its second attempt), or runs on
// another backend this time.
func TestRestartStopsAPromptItWillNotResume(t *testing.T) {
	tests := []struct {
		name      string
		starts    int    // attempts before the kill
		requested string // the job's backend
		wantEvent string
	}{
		{"failed as interrupted", 2, "", queue.EventFailed},
		{"runs on another backend", 1, "gpu1", queue.EventSucceeded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hung := backendfake.NewComfyUI(t, backendfake.ComfyUIConfig{Fail: backendfake.ComfyHang})
			other := backendfake.NewComfyUI(t, backendfake.ComfyUIConfig{})
			comfy := func(name, url string, client *http.Client) backend.Backend {
				b, err := backend.NewComfyUI(backend.Options{Name: name, Kind: backend.KindComfyUI, URL: url, Timeout: time.Minute, HTTPClient: client})
				if err != nil {
					t.Fatal(err)
				}
				return b
			}
			e := newEnv(t, []backend.Backend{comfy("gpu0", hung.URL, nil), comfy("gpu1", other.URL, nil)}, nil, queue.Options{}, false)
			p := params("killed")
			p.Backend = tt.requested
			g, _ := e.submit(t, "alice", p)
			ctx := context.Background()
			for i := range tt.starts {
				if i > 0 {
					if _, err := e.db.RequeueGeneration(ctx, g.ID, false); err != nil {
						t.Fatal(err)
					}
				}
				if _, err := e.db.StartGeneration(ctx, g.ID, "gpu0"); err != nil {
					t.Fatal(err)
				}
			}
			// The dead process's last attempt: its prompt runs (and hangs) on gpu0.
			dying := &dyingTransport{}
			var token string
			req := backend.Request{JobID: g.ID, Prompt: "killed", Width: 64, Height: 64, Steps: 2, Seed: 42, Count: 1,
				Submitted: func(tok string) { token = tok }}
			jobCtx, cancel := context.WithCancel(ctx)
			defer cancel()
			_, _ = comfy("gpu0", hung.URL, &http.Client{Transport: dying}).Generate(jobCtx, req, func(backend.Progress) {
				dying.dead.Store(true)
				cancel()
			})
			f := strings.Fields(token)
			if len(f) != 2 || hung.Status(f[1]) != "running" {
				t.Fatalf("token %q: want a prompt running on the server", token)
			}
			if err := e.db.SetGenerationBackendJob(ctx, g.ID, "gpu0\t"+token); err != nil {
				t.Fatal(err)
			}
			if err := e.db.Close(); err != nil {
				t.Fatal(err)
			}

			e.openDB(t)
			e.q = queue.New(e.db, e.pool, e.vault, e.sink, queue.Options{})
			events, stop := e.q.Subscribe("alice")
			defer stop()
			e.start(t)
			if last := last(waitEvent(t, events, final(g.ID))); last.Type != tt.wantEvent {
				t.Fatalf("final event %+v, want %s", last, tt.wantEvent)
			}
			eventually(t, "the prompt stopped on gpu0", func() bool { return hung.Status(f[1]) != "running" })
			if got := hung.Interrupts(); !slices.Contains(got, f[1]) {
				t.Errorf("interrupts %q, want one for %s", got, f[1])
			}
		})
	}
}
