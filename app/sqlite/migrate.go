package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"zimage/app"
)

// migrations is append-only: a shipped migration is never edited, since
// installs in the field have already run it. The schema version is the
// number applied, kept in PRAGMA user_version.
var migrations = []func(*sql.Tx) error{
	migrate1Settings,
	migrateGenerations,
	migrateImages,
	migrateAccounts,
	migratePolicy,
	migrateRights,
	migrateErasure,
	migrateConsents,
	migrateUsernameSealed,
	migrateUserPrefs,
	migrateImagesLifetimeIndex,         // 11: index on an image's lifetime (expires_at - created_at)
	migrateSealSessionsAndKeyNames,     // 12: sealed session device/place and API key names
	migrateGenerationsSamplerScheduler, // 13: generations.sampler and scheduler
	migrateGenerationBackendJob,        // 14: the backend's own id of a running job, so a restart can reattach
	migrateMailDelivery,                // 15: outbox tries/backoff/dead letters, sent counts, email verification
	migrateGenerationsAPIKey,           // 16: the API key a generation and its images came from
}

func (db *DB) migrate(ctx context.Context) error {
	v, err := db.SchemaVersion(ctx)
	if err != nil {
		return notOurs(db.Path, err)
	}
	if v > len(migrations) {
		return &app.Error{Code: app.EINVALID, Message: fmt.Sprintf("%s was written by a newer Z Image (schema %d; this binary knows up to %d): run the newer binary, or restore a backup made by this version", db.Path, v, len(migrations))}
	}
	for i := v; i < len(migrations); i++ {
		err := db.tx(ctx, func(tx *sql.Tx) error {
			if err := migrations[i](tx); err != nil {
				return err
			}
			if i == 0 {
				if _, err := tx.Exec(fmt.Sprintf("PRAGMA application_id = %d", applicationID)); err != nil {
					return err
				}
			}
			_, err := tx.Exec(fmt.Sprintf("PRAGMA user_version = %d", i+1))
			return err
		})
		if err != nil {
			return fmt.Errorf("sqlite: migration %d: %w", i+1, err)
		}
	}
	return nil
}

func execAll(tx *sql.Tx, stmts ...string) error {
	for _, s := range stmts {
		if _, err := tx.Exec(s); err != nil {
			return fmt.Errorf("%w in: %.80s", err, s)
		}
	}
	return nil
}

func migrate1Settings(tx *sql.Tx) error {
	return execAll(tx, `CREATE TABLE settings (
		key        TEXT PRIMARY KEY,
		value      TEXT NOT NULL,
		updated_at INTEGER NOT NULL -- unix milliseconds, as every time column
	) STRICT`)
}

// migrateGenerationsAPIKey records which API key asked for a generation
// and its images, so the gallery can name the tool (issue 16). An id, not
// the name: key names are sealed, and a revoked key's id still names it.
func migrateGenerationsAPIKey(tx *sql.Tx) error {
	return execAll(tx,
		`ALTER TABLE generations ADD COLUMN api_key_id TEXT NOT NULL DEFAULT ''`,
		`ALTER TABLE images ADD COLUMN api_key_id TEXT NOT NULL DEFAULT ''`,
	)
}
