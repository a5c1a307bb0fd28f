package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	"zimage/app"
	"zimage/app/config"
	"zimage/app/media"
	"zimage/app/privacy"
	"zimage/app/retention"
	"zimage/app/sqlite"
	"zimage/app/vault"
)

// retentionDeps are the stores whose jobs exist so far; nil ones are left
// out. Later windows (deleted accounts, usage, support, exports) join here
// and in newRetentionRunner.
type retentionDeps struct {
	Keys   retention.KeyringPruner
	Images retention.ImageSweeper
	// Accounts purges deleted accounts; nil (dry runs, status) counts
	// them from the database alone.
	Accounts accountPurger
}

// newRetentionRunner registers one job per retention window; serve
// schedules it, `zimage retention` runs it on demand.
func newRetentionRunner(cfg config.Config, db *sqlite.DB, log *slog.Logger, deps retentionDeps) (*retention.Runner, error) {
	r := retention.NewRunner(retention.Options{DB: db, Log: log, Auditor: dbAuditor{db}, BatchSize: cfg.Retention.BatchSize})
	jobs := []retention.Job{retention.KeyringBackupsJob(cfg.KeyringBackupDir(), cfg.Retention.KeyringBackups.D(), deps.Keys)}
	if deps.Images != nil {
		jobs = append(jobs, retention.ImagesJob(cfg.Retention.Images.D(), deps.Images))
	}
	jobs = append(jobs, rightsRetentionJobs(cfg, db)...)
	jobs = append(jobs, deletedAccountsJob(cfg.Retention.DeletedAccounts.D(), db, exportsDir(cfg), deps.Accounts))
	for _, j := range jobs {
		if err := r.Register(j); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// expiredImageCounter answers the images job's dry run from the database
// alone.
type expiredImageCounter struct{ db *sqlite.DB }

func (c expiredImageCounter) CountExpired(ctx context.Context, now time.Time, window time.Duration) (int, error) {
	return c.db.CountExpiredImages(ctx, now, window)
}

func (c expiredImageCounter) DeleteExpired(context.Context, time.Time, time.Duration, int) (int, error) {
	return 0, fmt.Errorf("retention: a dry run deletes nothing")
}

// dbAuditor writes retention runs to the audit log as system actions.
type dbAuditor struct{ db *sqlite.DB }

func (a dbAuditor) Append(ctx context.Context, action string, detail map[string]any) error {
	b, err := json.Marshal(detail)
	if err != nil {
		return err
	}
	return a.db.AppendAudit(ctx, app.AuditEntry{Action: action, Detail: string(b)})
}

const retentionSynopsis = `retention run [--as-of TIME] [--dry-run] [--job NAME] | retention status

  run     runs the retention jobs now, as the schedule would, and prints what
          they removed (or, with --dry-run, would remove) as JSON
  status  shows each job's last run and next scheduled run`

func runRetention(ctx context.Context, env Env, args []string) error {
	if len(args) > 0 {
		switch args[0] {
		case "run":
			return runRetentionRun(ctx, env, args[1:])
		case "status":
			return runRetentionStatus(ctx, env, args[1:])
		}
	}
	fs := newFlags(env, "retention", retentionSynopsis)
	if err := parse(fs, args); err != nil {
		return err
	}
	return &usageError{msg: "usage: zimage " + "retention run [--as-of TIME] [--dry-run] [--job NAME] | retention status"}
}

// asOfFuture is how far ahead --as-of may be without --dry-run: enough for
// a date typed in another time zone, never enough to delete a day early.
const asOfFuture = 24 * time.Hour

// parseAsOf reads --as-of: RFC 3339, or a date meaning midnight UTC. A time
// more than a day ahead is refused unless dryRun: running deletions "from
// the future" would delete data before its window ends.
func parseAsOf(s string, now time.Time, dryRun bool) (time.Time, error) {
	if s == "" {
		return now.UTC(), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t, err = time.Parse(time.DateOnly, s)
	}
	if err != nil {
		return time.Time{}, &usageError{msg: fmt.Sprintf("--as-of %q is not a time: use RFC 3339 (2026-03-01T12:00:00Z, or with an offset such as +01:00) or a date (2026-03-01, meaning midnight UTC)", s)}
	}
	t = t.UTC()
	if t.After(now.Add(asOfFuture)) && !dryRun {
		return time.Time{}, &usageError{msg: fmt.Sprintf("--as-of %s is more than a day in the future: a run as of then would delete data before its retention window ends; add --dry-run to see what it would remove", t.Format(time.RFC3339))}
	}
	return t, nil
}

type retentionRunOutput struct {
	AsOf   time.Time           `json:"as_of"`
	DryRun bool                `json:"dry_run"`
	Jobs   []retentionJobEntry `json:"jobs"`
}

type retentionJobEntry struct {
	Name    string         `json:"name"`
	Window  string         `json:"window"`
	Removed int            `json:"removed"`
	Files   int            `json:"files"`
	Details map[string]int `json:"details"`
	Error   string         `json:"error"`
}

// openExistingDB opens the database of an existing data folder: a run
// against a mistyped folder should say so, not create an empty one.
func openExistingDB(ctx context.Context, cfg config.Config) (*sqlite.DB, error) {
	path := filepath.Join(cfg.Server.DataDir, "zimage.db")
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return nil, &app.Error{Code: app.ENOTFOUND, Message: fmt.Sprintf("there is no Z Image database at %s: check --config and server.data_dir, or start the server once", path)}
	}
	return sqlite.Open(ctx, path)
}

func runRetentionRun(ctx context.Context, env Env, args []string) error {
	fs := newFlags(env, "retention run", "retention run [--as-of TIME] [--dry-run] [--job NAME]\n\nRuns the retention jobs now and prints what they removed as JSON. The server may keep running;\na job it is running at the same moment is refused, not run twice.\nTIME is RFC 3339 (2026-03-01T12:00:00Z) or a date (2026-03-01, midnight UTC); more than a day ahead\nneeds --dry-run, since deleting \"from the future\" would delete data early.")
	cfgPath := configFlag(fs, env)
	asOfText := fs.String("as-of", "", "run as of `TIME` instead of now (RFC 3339 or YYYY-MM-DD)")
	dryRun := fs.Bool("dry-run", false, "only count what would be removed")
	only := fs.String("job", "", "run only the job `NAME`")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return &usageError{msg: fmt.Sprintf("unexpected argument %q (see zimage retention run --help)", fs.Arg(0))}
	}
	asOf, err := parseAsOf(*asOfText, time.Now(), *dryRun)
	if err != nil {
		return err
	}
	cfg, db, err := openConfigDB(ctx, env, *cfgPath)
	if err != nil {
		return err
	}
	defer db.Close()
	var deps retentionDeps
	log := newLogger(Env{Stderr: env.Stderr}, cfg.Server)
	if *dryRun {
		// Counting needs no keys, and opening the media store would sweep
		// leftover files: a dry run changes nothing.
		deps.Images = expiredImageCounter{db}
	} else {
		keys, err := vault.Open(cfg.Server.DataDir, lookupEnv(env.Environ, "ZIMAGE_MASTER_KEY"))
		if err != nil {
			return err
		}
		defer keys.Close()
		deps.Keys = keys
		m, err := media.New(cfg.Server.DataDir, db, keys, media.Options{ImagesRetention: cfg.Retention.Images.D(), Logger: log})
		if err != nil {
			return err
		}
		deps.Images = m
		deps.Accounts = privacy.NewControls(privacy.ControlsDeps{DB: db, Vault: keys, Media: m, ExportsDir: exportsDir(cfg), Log: log})
	}
	runner, err := newRetentionRunner(cfg, db, log, deps)
	if err != nil {
		return err
	}
	var reports []retention.Report
	if *only != "" {
		rep, e := runner.Run(ctx, *only, asOf, *dryRun)
		if app.ErrorCode(e) == app.ENOTFOUND && rep.Window == 0 {
			return &usageError{msg: "--job: " + app.ErrorMessage(e)}
		}
		reports, err = []retention.Report{rep}, e
	} else {
		reports, err = runner.RunAll(ctx, asOf, *dryRun)
	}
	out := retentionRunOutput{AsOf: asOf, DryRun: *dryRun, Jobs: []retentionJobEntry{}}
	for _, r := range reports {
		details := r.Details
		if details == nil {
			details = map[string]int{}
		}
		out.Jobs = append(out.Jobs, retentionJobEntry{Name: r.Name, Window: config.Duration(r.Window).String(),
			Removed: r.Removed, Files: r.Files, Details: details, Error: r.Err})
	}
	enc := json.NewEncoder(env.Stdout)
	enc.SetIndent("", "  ")
	if e := enc.Encode(out); e != nil {
		return e
	}
	return err
}

func runRetentionStatus(ctx context.Context, env Env, args []string) error {
	fs := newFlags(env, "retention status", "retention status [--json]\n\nShows each retention job's last run (when, as of when, what it removed, any error) and its next\nscheduled run per retention.schedule (UTC).")
	cfgPath := configFlag(fs, env)
	asJSON := fs.Bool("json", false, "print JSON instead of a table")
	if err := parse(fs, args); err != nil {
		return err
	}
	cfg, db, err := openConfigDB(ctx, env, *cfgPath)
	if err != nil {
		return err
	}
	defer db.Close()
	runner, err := newRetentionRunner(cfg, db, nil, retentionDeps{Images: expiredImageCounter{db}})
	if err != nil {
		return err
	}
	if err := runner.SetSchedule(cfg.Retention.Schedule); err != nil {
		return err
	}
	sts, err := runner.Status(ctx, time.Now().UTC())
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(env.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(map[string]any{"schedule": cfg.Retention.Schedule, "jobs": sts})
	}
	tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "JOB\tWINDOW\tLAST RUN\tREMOVED\tFILES\tERROR\tNEXT RUN")
	for _, st := range sts {
		last, removed, files, errText := "never", "-", "-", ""
		if l := st.Last; l != nil {
			last = l.StartedAt.Format(time.RFC3339)
			if d := l.AsOf.Sub(l.StartedAt); d > time.Minute || d < -time.Minute {
				last += " (as of " + l.AsOf.Format(time.RFC3339) + ")"
			}
			removed, files, errText = fmt.Sprint(l.Removed), fmt.Sprint(l.Files), l.Error
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", st.Name, config.Duration(st.Window), last, removed, files, errText, st.Next.Format(time.RFC3339))
	}
	return tw.Flush()
}

// accountPurger is what the deleted-accounts job calls; *privacy.Controls
// is one.
type accountPurger interface {
	PurgeDeleted(ctx context.Context, cutoff time.Time, batch int) (privacy.PurgeResult, error)
}

// deletedAccountsJob physically removes deleted accounts. Their key is
// destroyed at deletion, so nothing of theirs can be read from then on;
// the purge runs at the first run after the deletion rather than waiting
// for the window, which is the maximum the policy promises. Held accounts
// are skipped.
func deletedAccountsJob(window time.Duration, db *sqlite.DB, exports string, purger accountPurger) retention.Job {
	return retention.Job{
		Name:   "deleted-accounts",
		Window: window,
		Run: func(ctx context.Context, asOf time.Time, dryRun bool, batch int) (retention.Result, error) {
			if dryRun {
				// What the run with keys would do: its media store and
				// exports folder, as retention run wires them.
				res, err := privacy.PreviewPurge(ctx, db, exports, asOf, true)
				return retention.Result{Removed: res.Accounts, Files: res.Files, Details: res.Rows}, err
			}
			if purger == nil {
				n, err := db.CountPurgeableUsers(ctx, asOf)
				if err == nil && n > 0 {
					err = fmt.Errorf("retention: %d deleted account(s) wait for their purge, but this run cannot remove them (no keyring open)", n)
				}
				return retention.Result{Removed: n}, err
			}
			res, err := purger.PurgeDeleted(ctx, asOf, batch)
			return retention.Result{Removed: res.Accounts, Files: res.Files, Details: res.Rows}, err
		},
	}
}
