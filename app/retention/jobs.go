package retention

import (
	"context"
	"time"

	"zimage/app/vault"
)

// KeyringPruner removes keyring backups taken before a time; *vault.Vault
// implements it.
type KeyringPruner interface {
	PruneKeyringBackups(dir string, olderThan time.Time) ([]string, error)
}

// KeyringBackupsJob deletes keyring backups in dir older than window. They
// hold the keys of accounts deleted after they were taken, so keeping one
// longer than the deleted-accounts window would break that promise. A dry
// run only lists, and needs no pruner.
func KeyringBackupsJob(dir string, window time.Duration, pruner KeyringPruner) Job {
	return Job{
		Name:   "keyring-backups",
		Window: window,
		Run: func(ctx context.Context, asOf time.Time, dryRun bool, _ int) (Result, error) {
			cutoff := asOf.Add(-window)
			var paths []string
			var err error
			if dryRun || pruner == nil {
				paths, err = vault.KeyringBackupsOlderThan(dir, cutoff)
				if !dryRun && err == nil && len(paths) > 0 {
					err = errNoPruner
				}
			} else {
				paths, err = pruner.PruneKeyringBackups(dir, cutoff)
			}
			return Result{Removed: len(paths), Files: len(paths)}, err
		},
	}
}

type noPrunerError struct{}

func (noPrunerError) Error() string {
	return "expired keyring backups were found but this run cannot remove them (no keyring open)"
}

var errNoPruner error = noPrunerError{}

// ImageSweeper deletes images whose expiry has passed; app/media's store
// implements it. Expiry is fixed when an image is made (created + the
// images window), so a changed window applies to new images only.
type ImageSweeper interface {
	DeleteExpired(ctx context.Context, now time.Time, batch int) (int, error)
	CountExpired(ctx context.Context, now time.Time) (int, error)
}

// ImagesJob deletes generated images (files, thumbnails, rows) that
// expired as of asOf; window is what the policy states, shown in reports.
func ImagesJob(window time.Duration, sweeper ImageSweeper) Job {
	return Job{
		Name:   "images",
		Window: window,
		Run: func(ctx context.Context, asOf time.Time, dryRun bool, batch int) (Result, error) {
			if dryRun {
				n, err := sweeper.CountExpired(ctx, asOf)
				return Result{Removed: n}, err
			}
			n, err := sweeper.DeleteExpired(ctx, asOf, batch)
			return Result{Removed: n}, err
		},
	}
}
