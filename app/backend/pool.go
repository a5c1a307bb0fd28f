package backend

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"zimage/app"
)

// PoolOptions tune health checking; zero values take the defaults.
type PoolOptions struct {
	// CheckEvery is the health-check period of a healthy backend (15s).
	CheckEvery time.Duration
	// MinBackoff and MaxBackoff bound the wait between checks of a backend
	// that is down: it doubles from MinBackoff (1s) up to MaxBackoff (60s),
	// so a dead server is not hammered and a restarted one is found soon.
	MinBackoff, MaxBackoff time.Duration
	// CheckTimeout bounds one health check (5s).
	CheckTimeout time.Duration
	Now          func() time.Time
}

func (o *PoolOptions) defaults() {
	if o.CheckEvery <= 0 {
		o.CheckEvery = 15 * time.Second
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = time.Second
	}
	if o.MaxBackoff < o.MinBackoff {
		o.MaxBackoff = max(60*time.Second, o.MinBackoff)
	}
	if o.CheckTimeout <= 0 {
		o.CheckTimeout = 5 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// BackendStatus is one backend as admins see it.
type BackendStatus struct {
	Name, Kind string
	Healthy    bool
	Busy       int // jobs running on it now
	Slots      int
	DownSince  time.Time // zero while healthy
	LastError  string    // the latest failure, kept after recovery for context
	Models     []string  // as last reported; empty until the first good check
	NextCheck  time.Time
}

// Pool spreads jobs over the configured backends: each job goes to a
// healthy backend with a free slot that serves its model. It is safe for
// concurrent use.
type Pool struct {
	opts    PoolOptions
	members []*member
	changed chan struct{}

	mu sync.Mutex // guards every member's mutable fields
}

type member struct {
	b     Backend
	slots int
	kick  chan struct{} // wakes the health loop early

	busy      int
	healthy   bool
	downSince time.Time
	lastErr   string
	models    []string
	backoff   time.Duration
	nextCheck time.Time
}

// NewPool returns a pool over backends; slots maps a backend's name to how
// many jobs it may run at once (missing or < 1 means 1). Backends start as
// down ("not checked yet") until Start's first check.
func NewPool(backends []Backend, slots map[string]int, opts PoolOptions) (*Pool, error) {
	opts.defaults()
	if len(backends) == 0 {
		return nil, app.Errorf(app.EINVALID, "No backend is configured: add a [[backends]] table (kind = \"builtin\" works without a GPU).")
	}
	p := &Pool{opts: opts, changed: make(chan struct{}, 1)}
	now := opts.Now()
	for _, b := range backends {
		if slices.ContainsFunc(p.members, func(m *member) bool { return m.b.Name() == b.Name() }) {
			return nil, app.Errorf(app.EINVALID, "Two backends are named %q: give each [[backends]] table its own name.", b.Name())
		}
		p.members = append(p.members, &member{b: b, slots: max(slots[b.Name()], 1), kick: make(chan struct{}, 1),
			downSince: now, lastErr: "not checked yet"})
	}
	return p, nil
}

// Start checks every backend once, waiting for the answers (each bounded
// by CheckTimeout), then keeps checking in the background until ctx ends.
func (p *Pool) Start(ctx context.Context) {
	var wg sync.WaitGroup
	for _, m := range p.members {
		wg.Go(func() { p.check(ctx, m) })
	}
	wg.Wait()
	for _, m := range p.members {
		go p.healthLoop(ctx, m)
	}
}

func (p *Pool) healthLoop(ctx context.Context, m *member) {
	for {
		p.mu.Lock()
		wait := m.nextCheck.Sub(p.opts.Now())
		p.mu.Unlock()
		t := time.NewTimer(max(wait, 0))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-m.kick:
			t.Stop()
			continue
		case <-t.C:
		}
		p.check(ctx, m)
	}
}

// check asks one backend for its health and models and records the answer.
func (p *Pool) check(ctx context.Context, m *member) {
	ctx, cancel := context.WithTimeout(ctx, p.opts.CheckTimeout)
	defer cancel()
	err := m.b.Health(ctx)
	var models []string
	if err == nil {
		models, err = m.b.Models(ctx)
	}
	if ctx.Err() != nil && errors.Is(err, context.Canceled) {
		return // shutting down: not the backend's fault
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.opts.Now()
	wasHealthy := m.healthy
	if err != nil {
		p.markDownLocked(m, err, now)
		m.backoff = min(max(2*m.backoff, p.opts.MinBackoff), p.opts.MaxBackoff)
		m.nextCheck = now.Add(m.backoff)
		return
	}
	m.healthy, m.downSince, m.backoff = true, time.Time{}, 0
	// Non-nil marks the models as known, even when there are none.
	m.models = append([]string{}, models...)
	m.nextCheck = now.Add(p.opts.CheckEvery)
	if !wasHealthy {
		p.notify()
	}
}

func (p *Pool) markDownLocked(m *member, err error, now time.Time) {
	if m.healthy {
		m.downSince = now
		m.backoff = 0
		p.notify()
	}
	m.healthy = false
	m.lastErr = describe(err)
}

// describe returns the person-facing text of a backend failure.
func describe(err error) string {
	var e *Error
	if errors.As(err, &e) && e.Message != "" {
		return e.Message
	}
	return err.Error()
}

// MarkDown records that a job found name unreachable, so no further job is
// sent there until a health check succeeds; the first check comes after
// MinBackoff.
func (p *Pool) MarkDown(name string, err error) {
	m := p.member(name)
	if m == nil {
		return
	}
	p.mu.Lock()
	now := p.opts.Now()
	p.markDownLocked(m, err, now)
	m.backoff = p.opts.MinBackoff
	m.nextCheck = now.Add(m.backoff)
	p.mu.Unlock()
	select {
	case m.kick <- struct{}{}:
	default:
	}
}

func (p *Pool) member(name string) *member {
	for _, m := range p.members {
		if m.b.Name() == name {
			return m
		}
	}
	return nil
}

// Changed signals (without blocking the pool, coalescing repeats) that a
// slot was freed or a backend's health changed, so a waiting job may now be
// placed. The queue is its one reader.
func (p *Pool) Changed() <-chan struct{} { return p.changed }

func (p *Pool) notify() {
	select {
	case p.changed <- struct{}{}:
	default:
	}
}

// candidate reports whether m may take a job for backend and model at all,
// healthy or not. A backend whose models are not known yet (never checked
// successfully) might serve any model.
func (m *member) candidate(backend, model string) bool {
	if backend != "" && m.b.Name() != backend {
		return false
	}
	return model == "" || m.models == nil || slices.Contains(m.models, model)
}

// Acquire takes a slot on a healthy backend that serves model (any backend
// when backend is "", else only that one), preferring the one with the most
// free slots, and skipping exclude. It returns false when none is free now.
// Every successful Acquire must be followed by one Release.
func (p *Pool) Acquire(backend, model, exclude string) (Backend, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var best *member
	for _, m := range p.members {
		if !m.healthy || m.busy >= m.slots || m.b.Name() == exclude || !m.candidate(backend, model) || m.models == nil {
			continue
		}
		if best == nil || m.slots-m.busy > best.slots-best.busy {
			best = m
		}
	}
	if best == nil {
		return nil, false
	}
	best.busy++
	return best.b, true
}

// Release gives back a slot taken by Acquire.
func (p *Pool) Release(name string) {
	m := p.member(name)
	if m == nil {
		return
	}
	p.mu.Lock()
	m.busy = max(m.busy-1, 0)
	p.mu.Unlock()
	p.notify()
}

// HasOther reports whether some backend other than exclude could ever take
// a job for backend and model; the queue retries elsewhere only then.
func (p *Pool) HasOther(backend, model, exclude string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, m := range p.members {
		if m.b.Name() != exclude && m.candidate(backend, model) {
			return true
		}
	}
	return false
}

// Waiting explains why a job for backend and model cannot be placed on a
// healthy backend other than exclude. It returns "" when some healthy backend serves it (the
// job merely waits for a free slot). Otherwise since is the latest moment a
// candidate was known healthy, from which the queue's wait_for_backend
// runs, and why names each candidate, since when it is down and its last
// error.
func (p *Pool) Waiting(backend, model, exclude string) (why string, since time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var parts []string
	for _, m := range p.members {
		if !m.candidate(backend, model) || m.b.Name() == exclude {
			continue
		}
		if m.healthy && m.models != nil {
			return "", time.Time{}
		}
		if m.downSince.After(since) {
			since = m.downSince
		}
		parts = append(parts, fmt.Sprintf("backend %s down since %s: last error: %s",
			m.b.Name(), m.downSince.UTC().Format(time.RFC3339), m.lastErr))
	}
	if len(parts) == 0 {
		return "no configured backend serves this request", since
	}
	return strings.Join(parts, "; "), since
}

// CheckRequest tells a person at submit time that backend or model cannot
// be served by this installation at all, rather than letting the job wait.
// A model is only refused when every candidate backend has reported its
// models and none has it.
func (p *Pool) CheckRequest(backend, model string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	var names, models []string
	found, unknown := false, false
	for _, m := range p.members {
		names = append(names, m.b.Name())
		if backend != "" && m.b.Name() != backend {
			continue
		}
		found = true
		if m.models == nil {
			unknown = true
		}
		models = append(models, m.models...)
	}
	if !found {
		msg := fmt.Sprintf("There is no backend %q. Choose one of %s, or leave it empty to use any.", backend, strings.Join(names, ", "))
		return &app.Error{Code: app.EINVALID, Message: msg, Fields: map[string]string{"backend": msg}}
	}
	if model == "" || unknown || slices.Contains(models, model) {
		return nil
	}
	slices.Sort(models)
	msg := fmt.Sprintf("No backend serves the model %q. Choose one of: %s, or leave it empty for the default.", model, strings.Join(slices.Compact(models), ", "))
	return &app.Error{Code: app.EINVALID, Message: msg, Fields: map[string]string{"model": msg}}
}

// Status returns every backend's state, in config order.
func (p *Pool) Status() []BackendStatus {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]BackendStatus, 0, len(p.members))
	for _, m := range p.members {
		out = append(out, BackendStatus{Name: m.b.Name(), Kind: m.b.Kind(), Healthy: m.healthy, Busy: m.busy,
			Slots: m.slots, DownSince: m.downSince, LastError: m.lastErr, Models: slices.Clone(m.models), NextCheck: m.nextCheck})
	}
	return out
}

// Backend returns the configured backend called name, or nil.
func (p *Pool) Backend(name string) Backend {
	if m := p.member(name); m != nil {
		return m.b
	}
	return nil
}
