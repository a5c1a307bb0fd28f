package backend

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"zimage/app"
	"zimage/app/backend/backendfake"
)

func newTestPool(t *testing.T, bs []Backend, slots map[string]int) *Pool {
	t.Helper()
	p, err := NewPool(bs, slots, PoolOptions{MinBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond, CheckEvery: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	p.Start(t.Context())
	return p
}

func mustBuiltin(t *testing.T, name string) Backend {
	t.Helper()
	b, err := NewBuiltin(Options{Name: name, Kind: KindBuiltin})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestPoolSlotsAndModels(t *testing.T) {
	p := newTestPool(t, []Backend{mustBuiltin(t, "a"), mustBuiltin(t, "b")}, map[string]int{"a": 2})
	tests := []struct {
		name                    string
		backend, model, exclude string
		want                    string // backend acquired, "" for none
	}{
		{"most free slots first", "", "", "", "a"},
		{"a tie goes to config order", "", BuiltinModel, "", "a"},
		{"then the other", "", "", "", "b"},
		{"all busy", "", "", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, ok := p.Acquire(tt.backend, tt.model, tt.exclude)
			if got := name(b, ok); got != tt.want {
				t.Errorf("Acquire = %q, want %q", got, tt.want)
			}
		})
	}
	p.Release("b")
	if b, ok := p.Acquire("", "", "b"); ok {
		t.Errorf("Acquire excluding b got %s; a is full", b.Name())
	}
	if _, ok := p.Acquire("", "sdxl", ""); ok {
		t.Error("Acquire of a model nobody serves succeeded")
	}
	if b, ok := p.Acquire("b", "", ""); !ok || b.Name() != "b" {
		t.Errorf("Acquire of backend b = %v", name(b, ok))
	}
	st := p.Status()
	if st[0].Busy != 2 || st[0].Slots != 2 || st[1].Busy != 1 || !st[0].Healthy || st[0].Models[0] != BuiltinModel {
		t.Errorf("status = %+v", st)
	}
}

func name(b Backend, ok bool) string {
	if !ok {
		return ""
	}
	return b.Name()
}

func TestPoolHealthDownAndBack(t *testing.T) {
	fake := backendfake.NewA1111(t, backendfake.A1111Config{Fail: backendfake.A1111NoAPI})
	gpu, err := NewA1111(Options{Name: "gpu", Kind: KindA1111, URL: fake.URL})
	if err != nil {
		t.Fatal(err)
	}
	p := newTestPool(t, []Backend{gpu}, nil)
	st := p.Status()[0]
	if st.Healthy || st.DownSince.IsZero() || st.LastError == "" {
		t.Fatalf("server without --api: status %+v, want down with an error", st)
	}
	if why, _ := p.Waiting("", "", ""); !strings.Contains(why, "backend gpu down since") || !strings.Contains(why, strings.TrimSuffix(st.LastError, ".")) {
		t.Errorf("Waiting = %q", why)
	}
	if _, ok := p.Acquire("", "", ""); ok {
		t.Error("Acquire on a down backend succeeded")
	}

	fake.Set(func(c *backendfake.A1111Config) { c.Fail = backendfake.A1111OK })
	select {
	case <-p.Changed():
	case <-time.After(5 * time.Second):
	}
	waitFor(t, func() bool { return p.Status()[0].Healthy })
	if _, ok := p.Acquire("", p.Status()[0].Models[0], ""); !ok {
		t.Error("Acquire after recovery failed")
	}
	p.Release("gpu")

	// A job that finds the backend gone marks it down at once.
	p.MarkDown("gpu", &Error{Backend: "gpu", Reason: ReasonUnavailable, Message: "refused the connection"})
	if st := p.Status()[0]; st.Healthy || st.LastError != "refused the connection" {
		t.Errorf("after MarkDown: %+v", st)
	}
	// …and the next health check (after MinBackoff) brings it back.
	waitFor(t, func() bool { return p.Status()[0].Healthy })
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatal("condition not met within 5s")
}

// downBackend fails every health check, counting them.
type downBackend struct {
	Backend
	checks int
}

func (d *downBackend) Health(context.Context) error {
	d.checks++
	return errors.New("connection refused")
}

func TestPoolBackoffDoublesUpToMax(t *testing.T) {
	d := &downBackend{Backend: mustBuiltin(t, "gpu")}
	p, err := NewPool([]Backend{d}, nil, PoolOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var got []time.Duration
	for range 9 {
		p.check(context.Background(), p.members[0])
		got = append(got, p.members[0].backoff)
	}
	want := []time.Duration{1, 2, 4, 8, 16, 32, 60, 60, 60}
	for i := range want {
		if got[i] != want[i]*time.Second {
			t.Fatalf("backoffs = %v, want %v seconds", got, want)
		}
	}
}

func TestPoolCheckRequest(t *testing.T) {
	p := newTestPool(t, []Backend{mustBuiltin(t, "cpu")}, nil)
	tests := []struct {
		name, backend, model, field string
	}{
		{"any backend, default model", "", "", ""},
		{"named backend and its model", "cpu", BuiltinModel, ""},
		{"unknown backend", "gpu", "", "backend"},
		{"model nobody serves", "", "sdxl", "model"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := p.CheckRequest(tt.backend, tt.model)
			var e *app.Error
			if tt.field == "" && err != nil {
				t.Errorf("CheckRequest: %v", err)
			} else if tt.field != "" && (!errors.As(err, &e) || e.Fields[tt.field] == "") {
				t.Errorf("CheckRequest: %v, want EINVALID on %s", err, tt.field)
			}
		})
	}
}

func TestNewPoolRefusesDuplicateNames(t *testing.T) {
	if _, err := NewPool([]Backend{mustBuiltin(t, "x"), mustBuiltin(t, "x")}, nil, PoolOptions{}); app.ErrorCode(err) != app.EINVALID {
		t.Errorf("NewPool with two x: %v", err)
	}
}

// The pool's status says what a server that answers really has: its
// models, the files it lacks, and no "not checked yet" once it was checked.
func TestPoolStatusShowsWhatTheServerHas(t *testing.T) {
	fake := backendfake.NewComfyUI(t, backendfake.ComfyUIConfig{VAEs: []string{}})
	c, err := NewComfyUI(Options{Name: "gpu0", Kind: KindComfyUI, URL: fake.URL})
	if err != nil {
		t.Fatal(err)
	}
	p := newTestPool(t, []Backend{c, mustBuiltin(t, "cpu")}, nil)
	st := p.Status()
	if !st[0].Healthy || st[0].State() != "missing files" || strings.Join(st[0].Missing, ",") != "ae.safetensors (VAE, in models/vae)" {
		t.Errorf("ComfyUI without its VAE: %+v (%s)", st[0], st[0].State())
	}
	for _, s := range st {
		if s.LastError == notCheckedYet {
			t.Errorf("%s is %s but its last error is %q", s.Name, s.State(), s.LastError)
		}
	}
	if st[1].State() != "healthy" {
		t.Errorf("builtin: %s", st[1].State())
	}
}
