package cli

import (
	"context"
	"path/filepath"
	"time"

	"zimage/app/config"
	"zimage/app/privacy"
	"zimage/app/retention"
	"zimage/app/sqlite"
)

// exportsDir is where export archives live: <data_dir>/exports/<user>/.
func exportsDir(cfg config.Config) string { return filepath.Join(cfg.Server.DataDir, "exports") }

// rightsRetentionJobs are the usage, support and exports windows. They
// need only the database and the data folder (no keys), so dry runs and
// status use the same jobs as real runs.
func rightsRetentionJobs(cfg config.Config, db *sqlite.DB) []retention.Job {
	usage, support, exports := cfg.Retention.Usage.D(), cfg.Retention.Support.D(), cfg.Retention.Exports.D()
	sweep := privacy.UsageSweep{DB: db}
	tickets := privacy.NewSupport(db, nil, nil)
	return []retention.Job{
		{Name: "usage", Window: usage, Run: func(ctx context.Context, asOf time.Time, dryRun bool, batch int) (retention.Result, error) {
			cutoff := asOf.Add(-usage)
			var ev, sess int
			var err error
			if dryRun {
				ev, sess, err = sweep.CountBefore(ctx, cutoff)
			} else {
				ev, sess, err = sweep.DeleteBefore(ctx, cutoff, batch)
			}
			return retention.Result{Removed: ev + sess, Details: map[string]int{"events": ev, "sessions": sess}}, err
		}},
		{Name: "support", Window: support, Run: func(ctx context.Context, asOf time.Time, dryRun bool, batch int) (retention.Result, error) {
			cutoff := asOf.Add(-support)
			if dryRun {
				n, err := tickets.CountInactive(ctx, cutoff)
				return retention.Result{Removed: n}, err
			}
			n, err := tickets.DeleteInactive(ctx, cutoff, batch)
			return retention.Result{Removed: n}, err
		}},
		// Expiry is stamped when an archive is finished (done + window),
		// so asOf itself is the cutoff.
		{Name: "exports", Window: exports, Run: func(ctx context.Context, asOf time.Time, dryRun bool, batch int) (retention.Result, error) {
			if dryRun {
				n, err := db.CountExpiredExports(ctx, asOf)
				return retention.Result{Removed: n, Files: n}, err
			}
			n, err := privacy.DeleteExpiredExports(ctx, db, exportsDir(cfg), asOf, batch)
			return retention.Result{Removed: n, Files: n}, err
		}},
	}
}
