// Package queue runs generations: a durable, fair job queue in SQLite that
// hands each job to a backend slot from the pool, streams its progress to
// its owner, stores its images through a Sink, and survives crashes.
//
// Fairness is per-user round robin: whenever a slot frees, the next job
// comes from the user served longest ago (a newcomer first), so one person
// with fifty jobs queued delays another's single job by at most one job per
// slot.
package queue

import (
	"context"
	"crypto/rand"
	"errors"
	"log/slog"
	"math/big"
	"sync"
	"time"

	"github.com/oklog/ulid/v2"

	"zimage/app"
	"zimage/app/backend"
	"zimage/app/sqlite"
)

// Sealer seals what a person typed; *vault.Vault is one.
type Sealer interface {
	Seal(userID string, aad, plaintext []byte) ([]byte, error)
	Open(userID string, aad, sealed []byte) ([]byte, error)
}

// Sink stores a finished job's images and returns their ids; app/media
// implements it.
type Sink interface {
	Store(ctx context.Context, g app.Generation, res backend.Result) (imageIDs []string, err error)
}

// maxAttempts is how many times one job may be started: a retry on another
// backend, or a restart after a crash, but never a third time, so a job that
// kills its backend cannot go round forever.
const maxAttempts = 2

// Queue-specific error reasons (the others are backend.Reason…).
const (
	ReasonInterrupted = "interrupted" // the server stopped while the job ran, twice
	ReasonNoBackend   = "no_backend"  // no backend came up within wait_for_backend
	ReasonJobTimeout  = "timeout"     // the job ran past job_timeout
	ReasonStorage     = "storage"     // the images could not be saved
)

// interruptedMessage is what a job that was running when Z Image stopped,
// on its second attempt, ends with.
const interruptedMessage = "Z Image restarted while this image was being made, twice, so it was stopped. Try again; if it keeps happening, the administrator should check Z Image's own log for crashes or restarts."

// Options configure a Queue; app/cli fills them from [queue] and
// [generation]. Zero values take the config defaults.
type Options struct {
	MaxQueuedPerUser  int
	MaxRunningPerUser int
	JobTimeout        time.Duration
	WaitForBackend    time.Duration
	Limits            app.GenerationLimits
	// StopTimeout bounds how long Stop waits for running jobs to end (10s).
	StopTimeout time.Duration
	Logger      *slog.Logger
}

func (o *Options) defaults() {
	if o.MaxQueuedPerUser <= 0 {
		o.MaxQueuedPerUser = 20
	}
	if o.MaxRunningPerUser <= 0 {
		o.MaxRunningPerUser = 1
	}
	if o.JobTimeout <= 0 {
		o.JobTimeout = 10 * time.Minute
	}
	if o.WaitForBackend <= 0 {
		o.WaitForBackend = 5 * time.Minute
	}
	if o.Limits == (app.GenerationLimits{}) {
		o.Limits = app.DefaultGenerationLimits()
	}
	if o.StopTimeout <= 0 {
		o.StopTimeout = 10 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// Queue is the generation service. Create it with New, call Start once, and
// Stop at shutdown.
type Queue struct {
	db     *sqlite.DB
	pool   *backend.Pool
	sealer Sealer
	sink   Sink
	opts   Options
	hub    *Hub
	log    *slog.Logger

	mu  sync.Mutex
	idx *index

	wake    chan struct{}
	ctx     context.Context // ends at Stop; parent of every job's context
	stop    context.CancelFunc
	running sync.WaitGroup // job goroutines
	loop    sync.WaitGroup // the scheduler
}

// New returns a queue over db's generations table. Nothing runs until Start.
func New(db *sqlite.DB, pool *backend.Pool, sealer Sealer, sink Sink, opts Options) *Queue {
	opts.defaults()
	ctx, stop := context.WithCancel(context.Background())
	return &Queue{db: db, pool: pool, sealer: sealer, sink: sink, opts: opts, hub: NewHub(), log: opts.Logger,
		idx: newIndex(), wake: make(chan struct{}, 1), ctx: ctx, stop: stop}
}

// Start recovers what a previous process left running, rebuilds the
// in-memory index from the database, and starts scheduling. The pool should
// be started first, so jobs do not wait for its first health check.
func (q *Queue) Start(ctx context.Context) error {
	// The process that stopped is Z Image itself (a crash, a kill or a
	// deploy), not the model server: the message must not send the
	// administrator to the wrong log.
	recovered, err := q.db.RecoverGenerations(ctx, maxAttempts, interruptedMessage)
	if err != nil {
		return err
	}
	for _, r := range recovered {
		q.log.Warn("queue: recovered a generation left running", "generation", r.ID, "status", r.Status)
		if r.Status == app.GenerationFailed {
			q.hub.Publish(r.UserID, Event{Type: EventFailed, GenerationID: r.ID, Reason: ReasonInterrupted, Message: interruptedMessage})
			q.abandon(ctx, r.ID)
		}
	}
	queued, err := q.db.QueuedGenerations(ctx)
	if err != nil {
		return err
	}
	now := q.db.Now()
	q.mu.Lock()
	for _, g := range queued {
		if q.idx.jobs[g.ID] == nil {
			q.idx.push(&job{id: g.ID, userID: g.UserID, backend: g.Backend, model: g.Model, enqueuedAt: now}, false)
		}
	}
	q.mu.Unlock()
	for _, r := range recovered {
		if r.Status == app.GenerationQueued {
			q.publishQueued(r.UserID, r.ID, "", "Re-queued after a restart.")
		}
	}
	q.loop.Add(1)
	go q.schedule()
	return nil
}

// Stop stops scheduling, cancels running jobs and waits (up to
// StopTimeout) for them to end. Jobs stopped this way go back to the queue
// without losing an attempt: a clean shutdown is not their fault.
func (q *Queue) Stop() {
	q.stop()
	q.loop.Wait()
	done := make(chan struct{})
	go func() { q.running.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(q.opts.StopTimeout):
		q.log.Warn("queue: jobs still running at shutdown; they will be re-queued at the next start")
	}
}

// Subscribe returns userID's live events and a function to stop them.
func (q *Queue) Subscribe(userID string) (<-chan Event, func()) { return q.hub.Subscribe(userID) }

// Pool returns the backend pool, for the admin status page.
func (q *Queue) Pool() *backend.Pool { return q.pool }

func (q *Queue) nudge() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

func promptAAD(id string) []byte         { return []byte("generations/" + id + "/prompt") }
func negativePromptAAD(id string) []byte { return []byte("generations/" + id + "/negative_prompt") }

// Submit validates p, stores it sealed as a queued generation of userID and
// returns it with its queue position (1 = next to start). It refuses with
// EINVALID for bad parameters or a backend/model this server lacks, and
// ECONFLICT when userID already has max_queued_per_user jobs waiting. A
// seed of -1 is replaced by a random one, stored so the image can be remade.
func (q *Queue) Submit(ctx context.Context, userID string, p app.GenerationParams) (app.Generation, int, error) {
	if err := p.Validate(q.opts.Limits); err != nil {
		return app.Generation{}, 0, err
	}
	if err := q.pool.CheckRequest(p.Backend, p.Model); err != nil {
		return app.Generation{}, 0, err
	}
	if _, err := q.pool.CheckParams(ctx, p.Backend, p.Model, paramCheck(p)); err != nil {
		return app.Generation{}, 0, err
	}
	if p.Seed == app.RandomSeed {
		n, err := rand.Int(rand.Reader, big.NewInt(app.MaxSeed+1))
		if err != nil {
			return app.Generation{}, 0, app.Wrap(err, "Could not choose a random seed.")
		}
		p.Seed = n.Int64()
	}
	now := q.db.Now()
	id := ulid.MustNew(ulid.Timestamp(now), ulid.DefaultEntropy()).String()
	rec := sqlite.GenerationRecord{Generation: app.Generation{ID: id, UserID: userID, GenerationParams: p}}
	var err error
	if rec.SealedPrompt, err = q.sealer.Seal(userID, promptAAD(id), []byte(p.Prompt)); err != nil {
		return app.Generation{}, 0, app.Wrap(err, "Could not encrypt the prompt.")
	}
	if rec.SealedNegativePrompt, err = q.sealer.Seal(userID, negativePromptAAD(id), []byte(p.NegativePrompt)); err != nil {
		return app.Generation{}, 0, app.Wrap(err, "Could not encrypt the negative prompt.")
	}
	if err := q.db.CreateGeneration(ctx, &rec, q.opts.MaxQueuedPerUser); err != nil {
		return app.Generation{}, 0, err
	}
	q.mu.Lock()
	j := &job{id: id, userID: userID, backend: p.Backend, model: p.Model, enqueuedAt: now}
	q.idx.push(j, false)
	pos := q.idx.position(j)
	// Published under the lock, so "queued" always comes before "started".
	q.hub.Publish(userID, Event{Type: EventQueued, GenerationID: id, Position: pos})
	q.mu.Unlock()
	q.nudge()
	return rec.Generation, pos, nil
}

// NotApplied lists, by API name, the parameters of p that a backend which
// could take it would not apply (a negative prompt on a Z-Image-Turbo
// graph that zeroes it, guidance on LocalAI), so people are told before
// the job runs. The job is still accepted; its images record only what was
// applied.
func (q *Queue) NotApplied(ctx context.Context, p app.GenerationParams) []string {
	list, _ := q.pool.CheckParams(ctx, p.Backend, p.Model, paramCheck(p))
	return list
}

func paramCheck(p app.GenerationParams) backend.ParamCheck {
	return backend.ParamCheck{NegativePrompt: p.NegativePrompt != "", Guidance: p.Guidance, Sampler: p.Sampler, Scheduler: p.Scheduler}
}

// Get returns userID's generation id with its prompts opened, or ENOTFOUND
// (also for someone else's generation).
func (q *Queue) Get(ctx context.Context, userID, id string) (app.Generation, error) {
	r, err := q.db.Generation(ctx, userID, id)
	if err != nil {
		return app.Generation{}, err
	}
	return q.open(r)
}

// List returns userID's generations newest first: at most limit (1…100),
// after the generation before ("" for the first page).
func (q *Queue) List(ctx context.Context, userID, before string, limit int) ([]app.Generation, error) {
	recs, err := q.db.Generations(ctx, userID, before, min(max(limit, 1), 100))
	if err != nil {
		return nil, err
	}
	out := make([]app.Generation, 0, len(recs))
	for _, r := range recs {
		g, err := q.open(r)
		if err != nil {
			return nil, err
		}
		out = append(out, g)
	}
	return out, nil
}

func (q *Queue) open(r sqlite.GenerationRecord) (app.Generation, error) {
	g := r.Generation
	p, err := q.sealer.Open(g.UserID, promptAAD(g.ID), r.SealedPrompt)
	if err != nil {
		return app.Generation{}, openErr(err, g.ID)
	}
	n, err := q.sealer.Open(g.UserID, negativePromptAAD(g.ID), r.SealedNegativePrompt)
	if err != nil {
		return app.Generation{}, openErr(err, g.ID)
	}
	g.Prompt, g.NegativePrompt = string(p), string(n)
	return g, nil
}

func openErr(err error, id string) error {
	var e *app.Error
	if errors.As(err, &e) {
		return err // e.g. the account's key was destroyed: its own message says so
	}
	return app.Wrap(err, "Could not decrypt the prompt of generation %s.", id)
}

// Position returns the queue position of userID's generation id (1 = next
// to start), or 0 when it is not waiting.
func (q *Queue) Position(userID, id string) int {
	q.mu.Lock()
	defer q.mu.Unlock()
	j := q.idx.jobs[id]
	if j == nil || j.userID != userID {
		return 0
	}
	return q.idx.position(j)
}

// Cancel stops userID's generation id, queued or running, and returns it.
// The row is final at once; a running job's backend is told to stop, and
// its slot frees when the backend has let go. ENOTFOUND for someone else's
// generation; ECONFLICT when it has already ended.
func (q *Queue) Cancel(ctx context.Context, userID, id string) (app.Generation, error) {
	g, err := q.Get(ctx, userID, id)
	if err != nil {
		return g, err
	}
	if g.Final() {
		return g, app.Errorf(app.ECONFLICT, "This generation has already %s; there is nothing to cancel.", g.Status)
	}
	msg := "Canceled at your request."
	q.mu.Lock()
	if j := q.idx.jobs[id]; j != nil && j.userID == userID && j.running && finishesOnCancel(j.on) {
		// The slot stays busy until the server is done, so jobs behind it
		// wait: say why, rather than let the wait look like a hang.
		msg += " " + j.on.Name() + " cannot stop an image it has started: the server will finish the current image before the next one starts."
	}
	q.mu.Unlock()
	changed, err := q.db.FinishGeneration(ctx, userID, id, app.GenerationCanceled, backend.ReasonCanceled, msg)
	if err != nil {
		return g, err
	}
	q.mu.Lock()
	if j := q.idx.jobs[id]; j != nil && j.userID == userID {
		j.canceled = true
		if j.running {
			if j.cancel != nil {
				j.cancel()
			}
		} else {
			q.idx.remove(j)
		}
	}
	q.mu.Unlock()
	if !changed {
		// It ended on its own between our read and our write.
		return q.Get(ctx, userID, id)
	}
	q.hub.Publish(userID, Event{Type: EventCanceled, GenerationID: id, Reason: backend.ReasonCanceled, Message: msg})
	q.nudge()
	return q.Get(ctx, userID, id)
}

// finishesOnCancel reports whether b's server goes on with a job after it
// was canceled.
func finishesOnCancel(b backend.Backend) bool {
	fc, ok := b.(backend.FinishesOnCancel)
	return ok && fc.FinishesOnCancel()
}

// Stats is the queue at a glance, for admins and metrics.
type Stats struct {
	Queued, Running, Users int
}

// Stats counts what is in memory now.
func (q *Queue) Stats() Stats {
	q.mu.Lock()
	defer q.mu.Unlock()
	s := Stats{Queued: q.idx.queued(), Users: len(q.idx.users)}
	for _, u := range q.idx.users {
		s.Running += u.running
	}
	return s
}

func (q *Queue) publishQueued(userID, id, reason, message string) {
	q.mu.Lock()
	pos := 0
	if j := q.idx.jobs[id]; j != nil {
		pos = q.idx.position(j)
	}
	q.hub.Publish(userID, Event{Type: EventQueued, GenerationID: id, Position: pos, Reason: reason, Message: message})
	q.mu.Unlock()
}
