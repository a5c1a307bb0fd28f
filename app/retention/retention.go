// Package retention runs the jobs that keep the privacy policy's retention
// windows true: one named job per window, each deleting what is older than
// its window in batches, on a cron schedule and on demand from the CLI
// (`zimage retention run --as-of … --dry-run`), through the same code.
//
// Adding a window is one Register call where the server and CLI are wired
// (app/cli newRetentionRunner):
//
//	runner.Register(retention.Job{
//		Name:   "exports",
//		Window: cfg.Retention.Exports.D(),
//		Run: func(ctx context.Context, asOf time.Time, dryRun bool, batch int) (retention.Result, error) {
//			cutoff := asOf.Add(-cfg.Retention.Exports.D())
//			if dryRun {
//				n, err := exports.CountOlderThan(ctx, cutoff)
//				return retention.Result{Removed: n}, err
//			}
//			n, err := exports.DeleteOlderThan(ctx, cutoff, batch) // batch rows a transaction, ctx checked between
//			return retention.Result{Removed: n, Files: n}, err
//		},
//	})
//
// The Runner does the rest for every job: it refuses overlapping runs (in
// this process and across processes sharing the database), recovers
// panics, logs counts, records the last run for `zimage retention status`
// and writes an audit entry.
package retention

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime/debug"
	"sort"
	"sync"
	"time"

	"github.com/robfig/cron/v3"

	"zimage/app"
	"zimage/app/sqlite"
)

// Job is one retention window's clean-up. Run deletes (or, with dryRun,
// only counts) what is older than Window as of asOf, batch rows at a time,
// checking ctx between batches.
type Job struct {
	Name   string
	Window time.Duration
	Run    func(ctx context.Context, asOf time.Time, dryRun bool, batch int) (Result, error)
}

// Result is what a job removed, or would remove in a dry run.
type Result struct {
	Removed int            `json:"removed"` // records (rows, archives, backups)
	Files   int            `json:"files"`   // files among them, or beside them
	Details map[string]int `json:"details,omitempty"`
}

// Report is one run of one job.
type Report struct {
	Name      string        `json:"name"`
	Window    time.Duration `json:"-"`
	AsOf      time.Time     `json:"as_of"`
	DryRun    bool          `json:"dry_run"`
	StartedAt time.Time     `json:"started_at"`
	Duration  time.Duration `json:"-"`
	Result
	Err string `json:"error,omitempty"`
}

// Auditor appends an entry to the audit log; the audit log's owner
// implements it. Detail holds counts and names only, never personal data.
type Auditor interface {
	Append(ctx context.Context, action string, detail map[string]any) error
}

// Options configure a Runner.
type Options struct {
	// DB keeps each job's last run and the cross-process run lease.
	DB  *sqlite.DB
	Log *slog.Logger
	// Auditor, when not nil, gets one entry per completed real run.
	Auditor Auditor
	// BatchSize is passed to every job (default 500).
	BatchSize int
	// Now is the clock of scheduled runs (default time.Now in UTC).
	Now func() time.Time
	// Holder names this process in the run lease (default "pid N").
	Holder string
}

// leaseStaleAfter is when a run lease left by a process that died is taken
// over. Runs delete in small batches and take minutes at most.
const leaseStaleAfter = 6 * time.Hour

// Runner runs registered jobs.
type Runner struct {
	opts    Options
	mu      sync.Mutex
	jobs    []Job
	running map[string]time.Time
	spec    string
	sched   cron.Schedule
	cron    *cron.Cron
	entries map[string]cron.EntryID
}

// NewRunner returns a Runner with no jobs.
func NewRunner(o Options) *Runner {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.BatchSize <= 0 {
		o.BatchSize = 500
	}
	if o.Now == nil {
		o.Now = func() time.Time { return time.Now().UTC() }
	}
	if o.Holder == "" {
		o.Holder = fmt.Sprintf("pid %d", os.Getpid())
	}
	return &Runner{opts: o, running: map[string]time.Time{}, entries: map[string]cron.EntryID{}}
}

// Register adds j. Names are stable ids (status keys, audit entries, cron
// entries), so a duplicate or empty name is refused, as is a window that
// would delete everything at once.
func (r *Runner) Register(j Job) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case j.Name == "":
		return app.Errorf(app.EINVALID, "A retention job needs a name.")
	case j.Window <= 0:
		return app.Errorf(app.EINVALID, "Retention job %s: its window must be longer than zero (it is %s).", j.Name, j.Window)
	case j.Run == nil:
		return app.Errorf(app.EINVALID, "Retention job %s has nothing to run.", j.Name)
	}
	for _, have := range r.jobs {
		if have.Name == j.Name {
			return app.Errorf(app.ECONFLICT, "A retention job named %s is already registered.", j.Name)
		}
	}
	r.jobs = append(r.jobs, j)
	return nil
}

// Jobs returns the registered jobs in registration order.
func (r *Runner) Jobs() []Job {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Job(nil), r.jobs...)
}

func (r *Runner) job(name string) (Job, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	names := make([]string, 0, len(r.jobs))
	for _, j := range r.jobs {
		if j.Name == name {
			return j, nil
		}
		names = append(names, j.Name)
	}
	sort.Strings(names)
	return Job{}, app.Errorf(app.ENOTFOUND, "There is no retention job %q; the jobs are: %v.", name, names)
}

// RunAll runs every job in turn, as of asOf. A failing job does not stop
// the others; their errors are joined. It stops early only when ctx ends.
func (r *Runner) RunAll(ctx context.Context, asOf time.Time, dryRun bool) ([]Report, error) {
	var reports []Report
	var errs []error
	for _, j := range r.Jobs() {
		if err := ctx.Err(); err != nil {
			return reports, errors.Join(append(errs, err)...)
		}
		rep, err := r.run(ctx, j, asOf, dryRun)
		reports = append(reports, rep)
		if err != nil {
			errs = append(errs, err)
		}
	}
	return reports, errors.Join(errs...)
}

// Run runs the job called name, as of asOf. A run of the same job already
// in progress (here or in another process) makes it return ECONFLICT.
func (r *Runner) Run(ctx context.Context, name string, asOf time.Time, dryRun bool) (Report, error) {
	j, err := r.job(name)
	if err != nil {
		return Report{Name: name, AsOf: asOf, DryRun: dryRun, Err: app.ErrorMessage(err)}, err
	}
	return r.run(ctx, j, asOf, dryRun)
}

func (r *Runner) run(ctx context.Context, j Job, asOf time.Time, dryRun bool) (rep Report, err error) {
	rep = Report{Name: j.Name, Window: j.Window, AsOf: asOf.UTC(), DryRun: dryRun, StartedAt: r.opts.Now()}
	release, err := r.claim(ctx, j.Name, rep.StartedAt)
	if err != nil {
		rep.Err = app.ErrorMessage(err)
		return rep, err
	}
	defer release()

	log := r.opts.Log.With("job", j.Name, "as_of", rep.AsOf, "dry_run", dryRun)
	start := time.Now()
	rep.Result, err = r.call(ctx, j, rep.AsOf, dryRun)
	rep.Duration = time.Since(start)
	if err != nil {
		rep.Err = errorText(err)
		err = fmt.Errorf("retention job %s: %w", j.Name, err)
		log.Error("retention: job failed", "removed", rep.Removed, "files", rep.Files, "err", err)
	} else {
		log.Info("retention: job done", "removed", rep.Removed, "files", rep.Files, "details", rep.Details, "duration", rep.Duration)
	}
	if !dryRun {
		// Recorded even when ctx ended: a cancelled run is worth knowing about.
		rctx := context.WithoutCancel(ctx)
		if e := r.record(rctx, rep); e != nil {
			log.Error("retention: could not record the run for status", "err", e)
		}
		if r.opts.Auditor != nil {
			detail := map[string]any{"job": j.Name, "as_of": rep.AsOf.Format(time.RFC3339), "removed": rep.Removed, "files": rep.Files}
			if rep.Err != "" {
				detail["error"] = app.ErrorCode(err)
			}
			if e := r.opts.Auditor.Append(rctx, "retention.run", detail); e != nil {
				log.Error("retention: could not write the audit entry", "err", e)
			}
		}
	}
	return rep, err
}

// errorText is what status and reports show: a person-facing message for
// domain errors, the plain text for others (admins read it, not visitors).
func errorText(err error) string {
	var ae *app.Error
	if errors.As(err, &ae) && ae.Code != app.EINTERNAL {
		return ae.Message
	}
	return err.Error()
}

// call runs the job, turning a panic into an error so one broken job
// cannot take the server down or stop the others.
func (r *Runner) call(ctx context.Context, j Job, asOf time.Time, dryRun bool) (res Result, err error) {
	defer func() {
		if p := recover(); p != nil {
			r.opts.Log.Error("retention: job panicked", "job", j.Name, "panic", p, "stack", string(debug.Stack()))
			err = fmt.Errorf("panic: %v", p)
		}
	}()
	return j.Run(ctx, asOf, dryRun, r.opts.BatchSize)
}

// claim marks name as running in this process and in the database, or
// says who is running it.
func (r *Runner) claim(ctx context.Context, name string, now time.Time) (release func(), err error) {
	r.mu.Lock()
	if since, ok := r.running[name]; ok {
		r.mu.Unlock()
		return nil, app.Errorf(app.ECONFLICT, "Retention job %s is already running since %s; wait for it to finish.", name, since.Format(time.RFC3339))
	}
	r.running[name] = now
	r.mu.Unlock()
	unmark := func() {
		r.mu.Lock()
		delete(r.running, name)
		r.mu.Unlock()
	}
	if r.opts.DB == nil {
		return unmark, nil
	}
	key := "retention.running." + name
	held, err := r.opts.DB.AcquireLease(ctx, key, r.opts.Holder, leaseStaleAfter)
	if err != nil {
		unmark()
		return nil, err
	}
	if held != nil {
		unmark()
		return nil, app.Errorf(app.ECONFLICT, "Retention job %s is already running since %s (%s, another process); wait for it to finish.", name, held.Since.Format(time.RFC3339), held.Holder)
	}
	return func() {
		if err := r.opts.DB.ReleaseLease(context.WithoutCancel(ctx), key, r.opts.Holder); err != nil {
			r.opts.Log.Error("retention: could not release the run lease", "job", name, "err", err)
		}
		unmark()
	}, nil
}

// LastRun is what status shows of a job's last real (not dry) run.
type LastRun struct {
	StartedAt  time.Time      `json:"started_at"`
	AsOf       time.Time      `json:"as_of"`
	DurationMS int64          `json:"duration_ms"`
	Removed    int            `json:"removed"`
	Files      int            `json:"files"`
	Details    map[string]int `json:"details,omitempty"`
	Error      string         `json:"error,omitempty"`
}

func lastKey(name string) string { return "retention.last." + name }

func (r *Runner) record(ctx context.Context, rep Report) error {
	if r.opts.DB == nil {
		return nil
	}
	b, err := json.Marshal(LastRun{StartedAt: rep.StartedAt, AsOf: rep.AsOf, DurationMS: rep.Duration.Milliseconds(),
		Removed: rep.Removed, Files: rep.Files, Details: rep.Details, Error: rep.Err})
	if err != nil {
		return err
	}
	return r.opts.DB.SetSetting(ctx, lastKey(rep.Name), string(b))
}

// SetSchedule sets the cron spec status computes next runs from, without
// scheduling anything (the CLI's status command).
func (r *Runner) SetSchedule(spec string) error {
	s, err := cron.ParseStandard(spec)
	if err != nil {
		return app.Errorf(app.EINVALID, "retention.schedule %q is not a cron schedule (%v): use five fields such as \"17 * * * *\" or a descriptor such as \"@hourly\".", spec, err)
	}
	r.mu.Lock()
	r.spec, r.sched = spec, s
	r.mu.Unlock()
	return nil
}

// Schedule adds every registered job to c under spec. Runs use ctx (so
// they stop between batches at shutdown) and the Runner's clock as as-of.
// c should be made with cron.WithChain(cron.Recover(…),
// cron.SkipIfStillRunning(…)) and cron.WithLocation(time.UTC).
func (r *Runner) Schedule(ctx context.Context, c *cron.Cron, spec string) error {
	if err := r.SetSchedule(spec); err != nil {
		return err
	}
	for _, j := range r.Jobs() {
		name := j.Name
		id, err := c.AddFunc(spec, func() {
			// Errors are logged and recorded by run; ECONFLICT here means a
			// CLI run holds the job, which is fine.
			r.Run(ctx, name, r.opts.Now(), false)
		})
		if err != nil {
			return app.Errorf(app.EINVALID, "retention.schedule %q: %v", spec, err)
		}
		r.mu.Lock()
		r.entries[name], r.cron = id, c
		r.mu.Unlock()
	}
	return nil
}

// Status is one job's state for `zimage retention status` and the admin
// page.
type Status struct {
	Name         string        `json:"name"`
	Window       time.Duration `json:"-"`
	Schedule     string        `json:"schedule,omitempty"`
	Last         *LastRun      `json:"last,omitempty"`
	Next         time.Time     `json:"next,omitempty"`
	RunningSince time.Time     `json:"running_since,omitempty"`
}

// Status returns every job's last run and next run, as of now.
func (r *Runner) Status(ctx context.Context, now time.Time) ([]Status, error) {
	var out []Status
	for _, j := range r.Jobs() {
		st := Status{Name: j.Name, Window: j.Window}
		r.mu.Lock()
		st.Schedule, st.RunningSince = r.spec, r.running[j.Name]
		if id, ok := r.entries[j.Name]; ok && r.cron != nil {
			st.Next = r.cron.Entry(id).Next
		}
		if st.Next.IsZero() && r.sched != nil {
			st.Next = r.sched.Next(now)
		}
		r.mu.Unlock()
		if r.opts.DB != nil {
			v, err := r.opts.DB.Setting(ctx, lastKey(j.Name))
			switch {
			case app.ErrorCode(err) == app.ENOTFOUND:
			case err != nil:
				return nil, err
			default:
				var last LastRun
				if err := json.Unmarshal([]byte(v), &last); err != nil {
					return nil, fmt.Errorf("retention: status of %s: %w", j.Name, err)
				}
				st.Last = &last
			}
		}
		out = append(out, st)
	}
	return out, nil
}
