package backend

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
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
	// RecheckEvery is the least time between two checks that a waiting
	// job asks for (Recheck), per backend (1s): a restarted server is found
	// within about that, however far its backoff had grown.
	RecheckEvery time.Duration
	Now          func() time.Time
	// Logger gets one line when a backend goes down or comes back.
	Logger *slog.Logger
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
	if o.RecheckEvery <= 0 {
		o.RecheckEvery = time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
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
	// Missing lists files the server's jobs need that it does not have
	// (ComfyUI's text encoder or VAE), each with where it belongs.
	Missing []string
	// Stalled is set while the backend is degraded: a job on it stopped
	// reporting progress (says since when and at which step).
	Stalled   string
	NextCheck time.Time
}

// State sums the status up in a word or two for admins: "healthy",
// "down", "no models", "missing files" or "stalled".
func (s BackendStatus) State() string {
	switch {
	case !s.Healthy:
		return "down"
	case s.Stalled != "":
		return "stalled"
	case len(s.Models) == 0:
		return "no models"
	case len(s.Missing) > 0:
		return "missing files"
	}
	return "healthy"
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
	missing   []string
	stalled   string // why the backend is degraded, "" while it is not
	backoff   time.Duration
	nextCheck time.Time
	// lastCheck is when the latest check began, for Recheck's rate limit.
	lastCheck time.Time
}

// notCheckedYet is the last error of a backend before its first check; it
// is no error of the backend's, so a good check clears it.
const notCheckedYet = "not checked yet"

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
			downSince: now, lastErr: notCheckedYet})
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

// Inspection is what one check of a backend found.
type Inspection struct {
	Models  []string // what the server really has; empty when it lists none
	Missing []string // files its jobs need that it lacks (FileChecker)
}

// FileChecker is implemented by backends whose jobs need files besides the
// model (ComfyUI: the text encoder and VAE its workflow loads).
// MissingFiles names each file the server lacks, with its kind and folder.
type FileChecker interface {
	MissingFiles(ctx context.Context) ([]string, error)
}

// Inspect checks b as the pool and `zimage doctor` do: it answers (Health),
// what models it has, and what files it lacks. A server that answers but
// has no models is up: err is nil and Models is empty.
func Inspect(ctx context.Context, b Backend) (Inspection, error) {
	if err := b.Health(ctx); err != nil {
		return Inspection{}, err
	}
	models, err := b.Models(ctx)
	if err != nil {
		return Inspection{}, err
	}
	in := Inspection{Models: append([]string{}, models...)}
	if fc, ok := b.(FileChecker); ok {
		if in.Missing, err = fc.MissingFiles(ctx); err != nil {
			return Inspection{}, err
		}
	}
	return in, nil
}

// check asks one backend for its health and models and records the answer.
func (p *Pool) check(ctx context.Context, m *member) {
	p.mu.Lock()
	m.lastCheck = p.opts.Now()
	p.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, p.opts.CheckTimeout)
	defer cancel()
	in, err := Inspect(ctx, m.b)
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
	if !wasHealthy {
		if m.lastErr == notCheckedYet {
			m.lastErr = ""
			p.opts.Logger.Info("backend: up", "backend", m.b.Name(), "kind", m.b.Kind(), "models", len(in.Models), "missing", in.Missing)
		} else {
			p.opts.Logger.Info("backend: back up", "backend", m.b.Name(), "kind", m.b.Kind(),
				"down_for", now.Sub(m.downSince).Round(time.Millisecond).String(), "last_error", m.lastErr)
		}
	}
	m.healthy, m.downSince, m.backoff = true, time.Time{}, 0
	// Non-nil marks the models as known, even when there are none.
	m.models = in.Models
	m.missing = in.Missing
	m.nextCheck = now.Add(p.opts.CheckEvery)
	if !wasHealthy {
		p.notify()
	}
}

func (p *Pool) markDownLocked(m *member, err error, now time.Time) {
	was := m.lastErr
	m.lastErr = describe(err)
	if m.healthy || was == notCheckedYet {
		p.opts.Logger.Warn("backend: down", "backend", m.b.Name(), "kind", m.b.Kind(), "last_error", m.lastErr)
	}
	if m.healthy {
		m.downSince = now
		m.backoff = 0
		p.notify()
	}
	m.healthy = false
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
// successfully) might serve any model; one that lists none serves none,
// not even its default.
func (m *member) candidate(backend, model string) bool {
	if backend != "" && m.b.Name() != backend {
		return false
	}
	if m.models == nil {
		return true
	}
	if model == "" {
		return len(m.models) > 0
	}
	return slices.Contains(m.models, model)
}

// Acquire takes a slot on a healthy backend that serves model (any backend
// when backend is "", else only that one), preferring one that is not
// stalled, then the one with the most free slots, and skipping exclude. It
// returns false when none is free now. Every successful Acquire must be
// followed by one Release.
func (p *Pool) Acquire(backend, model, exclude string) (Backend, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var best *member
	for _, m := range p.members {
		if !m.healthy || m.busy >= m.slots || m.b.Name() == exclude || !m.candidate(backend, model) || m.models == nil {
			continue
		}
		if best == nil || m.betterThan(best) {
			best = m
		}
	}
	if best == nil {
		return nil, false
	}
	best.busy++
	return best.b, true
}

// betterThan orders Acquire's choice: a backend that is not stalled, then
// the most free slots.
func (m *member) betterThan(o *member) bool {
	if (m.stalled == "") != (o.stalled == "") {
		return m.stalled == ""
	}
	return m.slots-m.busy > o.slots-o.busy
}

// Free reports whether a backend other than exclude could take a job for
// backend and model right now: healthy, serving the model, not stalled, with
// a free slot. A stalled job moves only then.
func (p *Pool) Free(backend, model, exclude string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, m := range p.members {
		if m.healthy && m.models != nil && m.stalled == "" && m.busy < m.slots && m.b.Name() != exclude && m.candidate(backend, model) {
			return true
		}
	}
	return false
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
		// The last error is a sentence of its own; its full stop would
		// double up with the separator.
		parts = append(parts, fmt.Sprintf("backend %s down since %s (last error: %s)",
			m.b.Name(), m.downSince.UTC().Format(time.RFC3339), strings.TrimSuffix(m.lastErr, ".")))
	}
	if len(parts) == 0 {
		return "no configured backend serves this request", since
	}
	return strings.Join(parts, "; "), since
}

// Recheck asks for a fresh health check of every candidate for backend and
// model that is down, at most once per RecheckEvery each: a job waiting for
// a backend must not wait out a backoff grown to a minute once the server
// answers again.
func (p *Pool) Recheck(backend, model string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.opts.Now()
	for _, m := range p.members {
		// A tenth of slack: the queue asks once per RecheckEvery, and a check
		// that began a hair after the last ask must not skip the next one.
		if m.healthy || !m.candidate(backend, model) || now.Sub(m.lastCheck) < p.opts.RecheckEvery*9/10 || !m.nextCheck.After(now) {
			continue
		}
		m.nextCheck = now
		select {
		case m.kick <- struct{}{}:
		default:
		}
	}
}

// Unservable returns a model_missing *Error when no backend can ever serve
// a job for backend and model as things stand: every backend it may go to
// answers and has listed its models, and none has the one wanted (or, for
// the default, none has any). It returns nil while some such backend is
// down or unchecked (it may come back with the model), so only a job that
// would otherwise wait for nothing fails at once.
func (p *Pool) Unservable(backend, model string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	var parts []string
	for _, m := range p.members {
		if backend != "" && m.b.Name() != backend {
			continue
		}
		if !m.healthy || m.candidate(backend, model) {
			return nil
		}
		switch {
		case len(m.models) == 0:
			parts = append(parts, fmt.Sprintf("backend %s answers but lists no models", m.b.Name()))
		default:
			parts = append(parts, fmt.Sprintf("backend %s has only %s", m.b.Name(), strings.Join(m.models, ", ")))
		}
	}
	if len(parts) == 0 {
		return nil
	}
	want := "a model"
	if model != "" {
		want = fmt.Sprintf("the model %q", model)
	}
	return &Error{Backend: backend, Reason: ReasonModelMissing, Message: fmt.Sprintf(
		"No backend has %s: %s. Choose one of the models listed, or ask the administrator to install a Z-Image-Turbo model there (or set model in its [[backends]] table if the server cannot list its models).",
		want, strings.Join(parts, "; "))}
}

// Stalled marks name as degraded because a job on it stopped reporting
// progress (why says since when); Acquire then prefers other backends and
// admins see it. Unstalled clears it, when the backend reports again.
func (p *Pool) Stalled(name, why string) {
	if m := p.member(name); m != nil {
		p.mu.Lock()
		if m.stalled == "" {
			p.opts.Logger.Warn("backend: stalled", "backend", name, "kind", m.b.Kind(), "why", why)
		}
		m.stalled = why
		p.mu.Unlock()
	}
}

// Unstalled ends the degraded state Stalled set.
func (p *Pool) Unstalled(name string) {
	if m := p.member(name); m != nil {
		p.mu.Lock()
		if m.stalled != "" {
			p.opts.Logger.Info("backend: reporting again", "backend", name, "kind", m.b.Kind(), "was", m.stalled)
		}
		m.stalled = ""
		p.mu.Unlock()
	}
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
			Slots: m.slots, DownSince: m.downSince, LastError: m.lastErr, Models: slices.Clone(m.models),
			Missing: slices.Clone(m.missing), Stalled: m.stalled, NextCheck: m.nextCheck})
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
