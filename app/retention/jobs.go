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

// ImageSweeper deletes images due under the images window; app/media's
// store implements it. An image is due at the earlier of the expiry it was
// given at creation and created + window: a shortened window applies to
// images already stored, a longer one never extends what people were told.
type ImageSweeper interface {
	DeleteExpired(ctx context.Context, now time.Time, window time.Duration, batch int) (int, error)
	CountExpired(ctx context.Context, now time.Time, window time.Duration) (int, error)
}

// ImagesJob deletes generated images (files, thumbnails, rows) due as of
// asOf under window, the images window the policy states.
func ImagesJob(window time.Duration, sweeper ImageSweeper) Job {
	return Job{
		Name:   "images",
		Window: window,
		Run: func(ctx context.Context, asOf time.Time, dryRun bool, batch int) (Result, error) {
			if dryRun {
				n, err := sweeper.CountExpired(ctx, asOf, window)
				return Result{Removed: n}, err
			}
			n, err := sweeper.DeleteExpired(ctx, asOf, window, batch)
			return Result{Removed: n}, err
		},
	}
}
