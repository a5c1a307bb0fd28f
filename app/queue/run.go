package queue

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"zimage/app"
	"zimage/app/backend"
)

var (
	errJobTimeout = errors.New("queue: job_timeout reached")
	errStopping   = errors.New("queue: stopping")
	errStalled    = errors.New("queue: backend stalled; moving the job")
)

// ReasonStalled marks the events of a job whose backend stopped reporting
// progress.
const ReasonStalled = "stalled"

// schedule places jobs whenever something may have changed: a submit, a
// cancel, a freed slot, a backend's health. On a slower beat it does the
// upkeep that costs a pass over every queued job: failing jobs that waited
// too long for a backend, and telling owners their new positions.
func (q *Queue) schedule() {
	defer q.loop.Done()
	every := min(max(q.opts.WaitForBackend/10, 10*time.Millisecond), time.Second)
	tick := time.NewTicker(every)
	defer tick.Stop()
	var lastUpkeep time.Time
	positionsStale := false
	for {
		if q.placeJobs() > 0 {
			positionsStale = true
		}
		// Slack of a tenth: the ticker may fire a hair before a full period
		// since lastUpkeep, and skipping it would halve the upkeep's pace.
		if time.Since(lastUpkeep) >= every*9/10 {
			lastUpkeep = time.Now()
			q.expireWaiting()
			if positionsStale {
				positionsStale = false
				q.publishPositions()
			}
		}
		select {
		case <-q.ctx.Done():
			return
		case <-q.wake:
		case <-q.pool.Changed():
		case <-tick.C:
		}
	}
}

// placeJobs starts every job that can start now, one user at a time in ring
// order, and returns how many it started.
func (q *Queue) placeJobs() int {
	started := 0
	q.mu.Lock()
	defer q.mu.Unlock()
	for placed := true; placed; {
		placed = false
		for _, u := range q.idx.ring {
			if u.running >= q.opts.MaxRunningPerUser {
				continue
			}
			head := u.fifo[0]
			b, ok := q.pool.Acquire(head.backend, head.model, head.exclude)
			if !ok {
				continue
			}
			j := q.idx.take(u)
			q.waitEnded(j, b.Name())
			ctx, cancel := context.WithCancelCause(q.ctx)
			ctx, cancelTimeout := context.WithTimeoutCause(ctx, q.opts.JobTimeout, errJobTimeout)
			j.cancel = func() { cancel(context.Canceled); cancelTimeout() }
			j.move = func() { cancel(errStalled) }
			j.on = b
			started++
			q.running.Add(1)
			go q.run(ctx, j, b)
			placed = true
			break // the ring changed order: start again from its front
		}
	}
	return started
}

// expireWaiting tells owners when their job waits for a backend to come up,
// and fails jobs that waited longer than wait_for_backend.
func (q *Queue) expireWaiting() {
	var expired []*job
	var waitMsg []string
	now := q.db.Now()
	q.mu.Lock()
	type want struct{ backend, model, exclude string }
	type waiting struct {
		why     string
		since   time.Time
		missing error // set when no backend will ever serve it as things stand
	}
	known := map[want]waiting{}
	var unservable []*job
	var missing []error
	for _, u := range q.idx.ring {
		for _, j := range u.fifo {
			k := want{j.backend, j.model, j.exclude}
			w, ok := known[k]
			if !ok {
				w.why, w.since = q.pool.Waiting(j.backend, j.model, j.exclude)
				if w.why != "" {
					w.missing = q.pool.Unservable(j.backend, j.model)
					// A job waits: look at the backends it waits for now
					// rather than at the end of their backoff.
					q.pool.Recheck(j.backend, j.model)
				}
				known[k] = w
			}
			why, since := w.why, w.since
			if why == "" {
				q.waitEnded(j, "")
				continue
			}
			if w.missing != nil {
				// The servers are there and answer; none has the model.
				// Waiting would change nothing.
				unservable = append(unservable, j)
				missing = append(missing, w.missing)
				continue
			}
			if !j.waitTold {
				j.waitTold, j.waitSince = true, now
				q.log.Info("queue: generation waits for a backend", "generation", j.id, "backend", j.backend, "model", j.model, "why", why)
				q.hub.Publish(j.userID, Event{Type: EventQueued, GenerationID: j.id, Position: q.idx.position(j), Reason: ReasonNoBackend,
					Message: sentence("Waiting for a backend: " + why)})
			}
			if now.Sub(maxTime(since, j.enqueuedAt)) >= q.opts.WaitForBackend {
				expired = append(expired, j)
				waitMsg = append(waitMsg, why)
			}
		}
	}
	for _, j := range append(expired, unservable...) {
		q.idx.remove(j)
	}
	q.mu.Unlock()
	for i, j := range expired {
		q.fail(j, ReasonNoBackend, fmt.Sprintf("%s Waited %s (queue.wait_for_backend); try again later, and tell the administrator if it lasts.", sentence("No backend is available: "+waitMsg[i]), q.opts.WaitForBackend))
	}
	for i, j := range unservable {
		var be *backend.Error
		msg := missing[i].Error()
		if errors.As(missing[i], &be) {
			msg = be.Message
		}
		q.fail(j, backend.ReasonModelMissing, msg)
	}
}

// waitEnded logs the end of a job's wait for a backend, once; on is the
// backend it got ("" when one merely came up). q.mu must be held.
func (q *Queue) waitEnded(j *job, on string) {
	if !j.waitTold {
		return
	}
	j.waitTold = false
	q.log.Info("queue: generation stopped waiting for a backend", "generation", j.id, "backend", on,
		"waited", q.db.Now().Sub(j.waitSince).Round(time.Millisecond).String())
}

// sentence ends s with a full stop unless it already ends a sentence
// (backend messages may end in "?" or "."), so no message reads "running?.".
func sentence(s string) string {
	s = strings.TrimSpace(s)
	if strings.HasSuffix(s, ".") || strings.HasSuffix(s, "?") || strings.HasSuffix(s, "!") || strings.HasSuffix(s, "…") {
		return s
	}
	return s + "."
}

// redact takes what the person typed out of s, for the log.
func (j *job) redact(s string) string {
	for _, secret := range j.secrets {
		if len(secret) >= 3 {
			s = strings.ReplaceAll(s, secret, "[prompt]")
		}
	}
	return s
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// publishPositions tells each subscribed user where their waiting jobs
// stand now that jobs ahead of them started.
func (q *Queue) publishPositions() {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, u := range q.idx.ring {
		if !q.hub.Subscribed(u.userID) {
			continue
		}
		for _, j := range u.fifo {
			q.hub.Publish(u.userID, Event{Type: EventQueued, GenerationID: j.id, Position: q.idx.position(j)})
		}
	}
}

// fail ends a job that is not running (or has stopped) with reason, and
// logs it in one line: reason, backend, attempt and duration, and the
// message with anything the person typed taken out.
func (q *Queue) fail(j *job, reason, message string) {
	since := j.startedAt
	if since.IsZero() {
		since = j.enqueuedAt
	}
	q.log.Warn("queue: generation failed", "generation", j.id, "reason", reason, "backend", j.ranOn, "attempt", j.attempt,
		"duration", q.db.Now().Sub(since).Round(time.Millisecond).String(), "message", j.redact(message))
	ok, err := q.db.FinishGeneration(context.Background(), j.userID, j.id, app.GenerationFailed, reason, message)
	if err != nil {
		q.log.Error("queue: record failure", "generation", j.id, "err", err)
		return
	}
	if ok {
		q.hub.Publish(j.userID, Event{Type: EventFailed, GenerationID: j.id, Reason: reason, Message: message})
	}
}

// run makes one job on backend b, which Acquire reserved for it.
func (q *Queue) run(ctx context.Context, j *job, b backend.Backend) {
	defer q.running.Done()
	released := false
	release := func() {
		if !released {
			released = true
			q.pool.Release(b.Name())
		}
	}
	requeued := false
	defer func() {
		release()
		j.cancel()
		q.mu.Lock()
		q.idx.finish(j)
		if requeued && !j.canceled {
			j.running = false
			q.idx.push(j, true)
		}
		q.mu.Unlock()
		q.nudge()
	}()

	rec, err := q.db.StartGeneration(context.WithoutCancel(ctx), j.id, b.Name())
	if err != nil {
		if app.ErrorCode(err) != app.ECONFLICT { // ECONFLICT: canceled before it started
			q.log.Error("queue: start generation", "generation", j.id, "err", err)
		}
		return
	}
	j.ranOn, j.attempt, j.startedAt = b.Name(), rec.Attempts, q.db.Now()
	g, err := q.open(rec)
	if err != nil {
		q.fail(j, backend.ReasonFailed, app.ErrorMessage(err))
		return
	}
	j.secrets = []string{g.Prompt, g.NegativePrompt}
	defer func() { j.secrets = nil }()
	q.hub.Publish(j.userID, Event{Type: EventStarted, GenerationID: j.id, Message: "Started on backend " + b.Name() + "."})

	req := backend.Request{JobID: g.ID, Prompt: g.Prompt, NegativePrompt: g.NegativePrompt, Width: g.Width, Height: g.Height,
		Steps: g.Steps, Guidance: g.Guidance, Seed: g.Seed, Count: g.Count, Model: g.Model, Sampler: g.Sampler, Scheduler: g.Scheduler}
	q.resumable(ctx, j.id, b.Name(), &req)
	gate := progressGate{now: time.Now}
	reported := false // the backend reported progress in this job
	res, err := b.Generate(ctx, req, func(p backend.Progress) {
		if p.Stalled > 0 {
			q.stalled(j, b, rec.Attempts, p)
			return
		}
		if p.Step > 0 && (j.stall != "" || !reported) {
			// A real step (not the "starting" report adapters make before
			// the server does anything): whatever stall the pool remembers
			// for this backend is over.
			j.stall, reported = "", true
			q.pool.Unstalled(b.Name())
		}
		for _, e := range gate.events(p) {
			e.GenerationID = j.id
			q.hub.Publish(j.userID, e)
		}
	})
	release() // the backend is free for the next job while we store the images

	if j.isCanceled(q) {
		return // Cancel already made the row final and told the owner
	}
	if err != nil {
		// Why ctx ended matters more than what the backend made of it.
		switch {
		case errors.Is(context.Cause(ctx), errStalled):
			j.exclude = b.Name()
			requeued = q.requeue(j, false, ReasonStalled, sentence(j.stall)+" Trying another backend.")
			if !requeued {
				q.fail(j, ReasonStalled, q.stallMessage(j, ""))
			}
		case errors.Is(context.Cause(ctx), errJobTimeout) && j.stall != "":
			q.fail(j, ReasonJobTimeout, q.stallMessage(j, fmt.Sprintf("%s (queue.job_timeout)", q.opts.JobTimeout)))
		case errors.Is(context.Cause(ctx), errJobTimeout):
			q.fail(j, ReasonJobTimeout, fmt.Sprintf("The image was not finished within %s (queue.job_timeout), so it was stopped. Try a smaller size, fewer steps or fewer images.", q.opts.JobTimeout))
		case q.ctx.Err() != nil:
			requeued = q.requeue(j, true, "", "")
		default:
			q.backendFailed(j, rec.Attempts, b, err, &requeued)
		}
		return
	}
	ids, err := q.sink.Store(context.WithoutCancel(ctx), g, res)
	if err != nil {
		q.log.Error("queue: store images", "generation", j.id, "err", err)
		q.fail(j, ReasonStorage, "The images were made but could not be saved: "+app.ErrorMessage(err))
		return
	}
	ok, err := q.db.FinishGeneration(context.Background(), j.userID, j.id, app.GenerationSucceeded, "", "")
	if err != nil {
		q.log.Error("queue: record success", "generation", j.id, "err", err)
		return
	}
	if ok {
		q.hub.Publish(j.userID, Event{Type: EventSucceeded, GenerationID: j.id, ImageIDs: ids})
	}
	q.pool.Unstalled(b.Name()) // it finished a job: it is not hung
}

// resumable lets the backend take over work an earlier process of ours
// left on the same server (killed mid-job), and records what it needs to do
// the same after the next crash. The record is "backend\ttoken"; a token
// from another backend means nothing here.
func (q *Queue) resumable(ctx context.Context, id, backendName string, req *backend.Request) {
	ctx = context.WithoutCancel(ctx)
	prev, err := q.db.GenerationBackendJob(ctx, id)
	if err != nil {
		q.log.Warn("queue: read backend job", "generation", id, "err", err)
	}
	if name, token, ok := strings.Cut(prev, "\t"); ok && name == backendName {
		req.Resume = token
		q.log.Info("queue: taking over the backend's work from before the restart", "generation", id, "backend", backendName)
	} else if ok {
		// It runs elsewhere this time: what the other server may still be
		// doing for it is nobody's.
		q.abandonOn(name, token)
	}
	req.Submitted = func(token string) {
		if err := q.db.SetGenerationBackendJob(ctx, id, backendName+"\t"+token); err != nil {
			q.log.Warn("queue: record backend job", "generation", id, "err", err)
		}
	}
}

// abandon stops, on its server, the work of a job that ended while no
// process followed it (failed as interrupted at a restart), so the GPU
// does not go on making an image nobody will take.
func (q *Queue) abandon(ctx context.Context, id string) {
	prev, err := q.db.GenerationBackendJob(ctx, id)
	if name, token, ok := strings.Cut(prev, "\t"); err == nil && ok {
		q.abandonOn(name, token)
	}
}

func (q *Queue) abandonOn(name, token string) {
	if a, ok := q.pool.Backend(name).(backend.Abandoner); ok {
		q.running.Add(1)
		go func() {
			defer q.running.Done()
			a.Abandon(q.ctx, token)
		}()
	}
}

func (j *job) isCanceled(q *Queue) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return j.canceled
}

// backendFailed decides between a retry elsewhere and failing the job.
func (q *Queue) backendFailed(j *job, attempts int, b backend.Backend, err error, requeued *bool) {
	var be *backend.Error
	isBackendErr := errors.As(err, &be)
	if isBackendErr && be.Reason == backend.ReasonUnavailable {
		q.pool.MarkDown(b.Name(), err)
	}
	if isBackendErr && be.Retryable() && attempts < maxAttempts {
		// Prefer another backend; with no other one, the same backend may
		// take it again once its health check passes.
		j.exclude = ""
		if q.pool.HasOther(j.backend, j.model, b.Name()) {
			j.exclude = b.Name()
		}
		*requeued = q.requeue(j, false, be.Reason, "The backend failed; trying once more.")
		if *requeued {
			q.log.Warn("queue: generation will be retried", "generation", j.id, "reason", be.Reason, "backend", b.Name(), "attempt", attempts,
				"duration", q.db.Now().Sub(j.startedAt).Round(time.Millisecond).String(), "avoid", j.exclude, "message", j.redact(be.Message))
			return
		}
	}
	msg := app.ErrorMessage(err)
	reason := backend.Reason(err)
	if isBackendErr {
		msg = be.Message
	}
	if j.stall != "" && reason == backend.ReasonTimeout {
		// The backend's own timeout ran out on a job it had stopped
		// reporting on: its advice about sizes would mislead.
		msg = q.stallMessage(j, "the backend's timeout")
	}
	q.fail(j, reason, msg)
}

// requeue puts a running job back in the queue, in front of its owner's
// other jobs; the caller's deferred clean-up re-indexes it.
func (q *Queue) requeue(j *job, refund bool, reason, message string) bool {
	ok, err := q.db.RequeueGeneration(context.Background(), j.id, refund)
	if err != nil {
		q.log.Error("queue: requeue generation", "generation", j.id, "err", err)
		return false
	}
	if ok && !refund {
		j.enqueuedAt = q.db.Now()
		q.hub.Publish(j.userID, Event{Type: EventQueued, GenerationID: j.id, Reason: reason, Message: message})
	}
	return ok
}

// stalled handles a backend's report that a running job shows no sign of
// progress: the owner is told at once, the backend is marked stalled, and
// the job moves to another backend only when one can take it now (a
// second attempt is left); otherwise it goes on waiting where it is.
func (q *Queue) stalled(j *job, b backend.Backend, attempts int, p backend.Progress) {
	// "60 s", as people say it, rather than Go's "1m0s".
	silent := fmt.Sprintf("%d s", int(p.Stalled.Round(time.Second)/time.Second))
	if p.Stalled < time.Second {
		silent = fmt.Sprintf("%d ms", p.Stalled.Milliseconds())
	}
	j.stall = fmt.Sprintf("%s has not reported progress for %s", b.Name(), silent)
	if p.Steps > 0 {
		j.stall += fmt.Sprintf(" (at step %d of %d)", p.Step, p.Steps)
	}
	q.pool.Stalled(b.Name(), j.stall)
	move := attempts < maxAttempts && q.pool.Free(j.backend, j.model, b.Name())
	q.log.Warn("queue: generation stalled", "generation", j.id, "backend", b.Name(), "attempt", attempts,
		"silent_for", p.Stalled.String(), "step", p.Step, "steps", p.Steps, "moving", move)
	msg := sentence(j.stall)
	if !move {
		msg += " It may still recover; Z Image keeps waiting for it."
	}
	q.hub.Publish(j.userID, Event{Type: EventProgress, GenerationID: j.id, Step: p.Step, Steps: p.Steps, Reason: ReasonStalled, Message: msg})
	if move {
		j.move()
	}
}

// stallMessage is the final message of a job that failed after its backend
// stopped reporting: the real cause, not advice about image sizes. limit
// names the timeout that ended it, if one did.
func (q *Queue) stallMessage(j *job, limit string) string {
	msg := sentence(j.stall)
	if limit != "" {
		msg += " It was stopped when " + limit + " ran out."
	}
	return msg + " The backend seems hung: try again later, and tell the administrator, who should check that server."
}
