package backend

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"zimage/app/backend/backendfake"
)

// dyingTransport plays a Z Image process killed mid-job: once dead, no
// request of its leaves the machine, so nothing is interrupted or deleted.
type dyingTransport struct{ dead atomic.Bool }

func (d *dyingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if d.dead.Load() {
		return nil, errors.New("the process is dead")
	}
	return http.DefaultTransport.RoundTrip(r)
}

// TestComfyUIResume: after a crash, the restarted process takes over the
// prompt the dead one submitted (still running, or finished meanwhile) and
// ComfyUI runs it once; only a prompt the server no longer knows is
// submitted again.
func TestComfyUIResume(t *testing.T) {
	tests := []struct {
		name        string
		before      func(t *testing.T, fake *backendfake.ComfyUI, promptID string) // between the crash and the restart
		wantPrompts int                                                            // POST /prompt in all
	}{
		{"still running", func(*testing.T, *backendfake.ComfyUI, string) {}, 1},
		{"finished while Z Image was down", func(t *testing.T, fake *backendfake.ComfyUI, id string) {
			waitComfyStatus(t, fake, id, "success")
		}, 1},
		{"cleared by an operator", func(t *testing.T, fake *backendfake.ComfyUI, id string) {
			waitComfyStatus(t, fake, id, "success")
			resp, err := http.Post(fake.URL+"/history", "application/json", strings.NewReader(`{"clear":true}`))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
		}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := backendfake.NewComfyUI(t, backendfake.ComfyUIConfig{StepDelay: 20 * time.Millisecond})
			dying := &dyingTransport{}
			first := newComfyTest(t, fake, func(o *Options) { o.HTTPClient = &http.Client{Transport: dying} })
			var mu sync.Mutex
			var token string
			req := comfyRequest(128, 128, 1)
			req.Submitted = func(tok string) { mu.Lock(); token = tok; mu.Unlock() }
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			_, err := first.Generate(ctx, req, func(p Progress) {
				if p.Step == 2 {
					dying.dead.Store(true)
					cancel()
				}
			})
			if err == nil {
				t.Fatal("the first process finished the job; it should have died at step 2")
			}
			mu.Lock()
			resume := token
			mu.Unlock()
			f := strings.Fields(resume)
			if len(f) != 2 || fake.Status(f[1]) == "unknown" {
				t.Fatalf("token %q does not name the prompt the server has", resume)
			}
			tt.before(t, fake, f[1])

			again := newComfyTest(t, fake, nil)
			req.Resume = resume
			res, err := again.Generate(context.Background(), req, nil)
			if err != nil {
				t.Fatalf("after the restart: %v", err)
			}
			if len(res.Images) != 1 {
				t.Fatalf("%d images, want 1", len(res.Images))
			}
			decodePNG(t, res.Images[0])
			if n := fake.Requests()["POST /prompt"]; n != tt.wantPrompts {
				t.Errorf("ComfyUI got %d prompts, want %d", n, tt.wantPrompts)
			}
			if got := fake.Interrupts(); len(got) != 0 {
				t.Errorf("interrupts %q, want none", got)
			}
		})
	}
}

// TestComfyUIForgetsHistory: once Z Image has the images, the server's
// history entries (the whole graph, prompt text included) are deleted.
func TestComfyUIForgetsHistory(t *testing.T) {
	fake := backendfake.NewComfyUI(t, backendfake.ComfyUIConfig{})
	c := newComfyTest(t, fake, nil)
	var token string
	req := comfyRequest(128, 128, 2)
	req.Submitted = func(tok string) { token = tok }
	res, err := c.Generate(context.Background(), req, nil)
	if err != nil || len(res.Images) != 2 {
		t.Fatalf("Generate: %d images, %v", len(res.Images), err)
	}
	ids := strings.Fields(token)[1:]
	if len(ids) != 2 {
		t.Fatalf("token %q, want a client id and two prompt ids", token)
	}
	for _, id := range ids {
		if got := fake.Status(id); got != "unknown" || !slices.Contains(fake.HistoryDeleted(), id) {
			t.Errorf("prompt %s is %q on the server after the job, want its history entry deleted", id, got)
		}
	}
}

// TestComfyUICancelWaitingLeavesOthersRunning: before 0.3.57, /interrupt
// stops whatever runs. Cancelling a prompt still waiting in ComfyUI's queue
// must only take it out of the queue.
func TestComfyUICancelWaitingLeavesOthersRunning(t *testing.T) {
	fake := backendfake.NewComfyUI(t, backendfake.ComfyUIConfig{StepDelay: 20 * time.Millisecond, GlobalInterrupt: true})
	c := newComfyTest(t, fake, nil)
	other := comfyRequest(128, 128, 1)
	other.Steps = 10000
	var otherID atomic.Value
	other.Submitted = func(tok string) { otherID.Store(strings.Fields(tok)[1]) }
	otherCtx, stopOther := context.WithCancel(context.Background())
	otherDone := make(chan error, 1)
	go func() { _, err := c.Generate(otherCtx, other, nil); otherDone <- err }()
	defer func() { stopOther(); <-otherDone }()
	eventually(t, "the other prompt runs", func() bool {
		id, _ := otherID.Load().(string)
		return id != "" && fake.Status(id) == "running"
	})

	ctx, cancel := context.WithCancel(context.Background())
	mine := comfyRequest(128, 128, 1)
	mine.Submitted = func(tok string) {
		id := strings.Fields(tok)[1]
		go func() {
			for fake.Status(id) != "pending" {
				time.Sleep(5 * time.Millisecond)
			}
			cancel()
		}()
	}
	if _, err := c.Generate(ctx, mine, nil); Reason(err) != ReasonCanceled {
		t.Fatalf("err = %v, want canceled", err)
	}
	if got := fake.Status(otherID.Load().(string)); got != "running" {
		t.Errorf("the other prompt is %q after cancelling a waiting one, want still running", got)
	}
	if got := fake.Interrupts(); len(got) != 0 {
		t.Errorf("interrupts %q, want none for a prompt that was only waiting", got)
	}
}

func eventually(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestComfyUILeavesNoOutputFile: ComfyUI has no route to delete a file
// from output/, where SaveImage keeps every image with its prompt. The
// adapter saves through PreviewImage into temp/, which ComfyUI empties at
// every start and exit.
func TestComfyUILeavesNoOutputFile(t *testing.T) {
	fake := backendfake.NewComfyUI(t, backendfake.ComfyUIConfig{})
	c := newComfyTest(t, fake, nil)
	res, err := c.Generate(context.Background(), comfyRequest(128, 128, 2), nil)
	if err != nil || len(res.Images) != 2 {
		t.Fatalf("Generate: %d images, %v", len(res.Images), err)
	}
	files := fake.Files()
	if len(files) != 2 {
		t.Fatalf("files on the server %q, want two", files)
	}
	for _, f := range files {
		if !strings.HasPrefix(f, "temp/") {
			t.Errorf("%s is kept on the GPU host; want only files in temp/", f)
		}
	}
}
