package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"zimage/app"
)

// migratePolicy creates the published privacy-policy versions and who
// acknowledged which. Versions are never edited or removed: a past version
// is what people agreed to at the time.
func migratePolicy(tx *sql.Tx) error {
	return execAll(tx,
		`CREATE TABLE policy_versions (
		id           INTEGER PRIMARY KEY,
		version      INTEGER NOT NULL UNIQUE, -- 1, 2, 3, …
		text_hash    BLOB NOT NULL, -- SHA-256 of text: a change of the rendered text is a new version
		text         TEXT NOT NULL, -- the rendered Markdown
		html         TEXT NOT NULL,
		summary      TEXT NOT NULL, -- the key changes, shown with the version
		significant  INTEGER NOT NULL DEFAULT 0, -- 1: banner, notice to everyone, acknowledgement asked
		values_json  TEXT NOT NULL DEFAULT '{}', -- the values in force it was rendered from, to diff the next one
		published_at INTEGER NOT NULL
	) STRICT`,
		`CREATE TRIGGER policy_versions_no_update BEFORE UPDATE ON policy_versions
		BEGIN SELECT RAISE(ABORT, 'policy_versions is append-only'); END`,
		`CREATE TABLE policy_acceptances (
		user_id     TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
		version     INTEGER NOT NULL REFERENCES policy_versions (version),
		accepted_at INTEGER NOT NULL,
		PRIMARY KEY (user_id, version)
	) STRICT, WITHOUT ROWID`,
	)
}

// PolicyVersionRow is one published version of the privacy policy.
type PolicyVersionRow struct {
	Version     int
	TextHash    []byte
	Text        string
	HTML        string
	Summary     string
	Significant bool
	ValuesJSON  string
	PublishedAt time.Time
}

const policyColumns = `version, text_hash, text, html, summary, significant, values_json, published_at`

func scanPolicyVersion(s rowScanner) (*PolicyVersionRow, error) {
	var v PolicyVersionRow
	var published int64
	if err := s.Scan(&v.Version, &v.TextHash, &v.Text, &v.HTML, &v.Summary, &v.Significant, &v.ValuesJSON, &published); err != nil {
		return nil, err
	}
	v.PublishedAt = fromMillis(published)
	return &v, nil
}

func errPolicyVersionNotFound(version int) error {
	if version <= 0 {
		return app.Errorf(app.ENOTFOUND, "No privacy policy has been published yet.")
	}
	return app.Errorf(app.ENOTFOUND, "There is no version %d of the privacy policy.", version)
}

// LatestPolicyVersion returns the newest version, or ENOTFOUND before the
// first is published.
func (db *DB) LatestPolicyVersion(ctx context.Context) (*PolicyVersionRow, error) {
	v, err := scanPolicyVersion(db.r.QueryRowContext(ctx, `SELECT `+policyColumns+` FROM policy_versions ORDER BY version DESC LIMIT 1`))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errPolicyVersionNotFound(0)
	} else if err != nil {
		return nil, fmt.Errorf("sqlite: latest policy version: %w", err)
	}
	return v, nil
}

// PolicyVersion returns version n, or ENOTFOUND.
func (db *DB) PolicyVersion(ctx context.Context, n int) (*PolicyVersionRow, error) {
	v, err := scanPolicyVersion(db.r.QueryRowContext(ctx, `SELECT `+policyColumns+` FROM policy_versions WHERE version = ?`, n))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errPolicyVersionNotFound(n)
	} else if err != nil {
		return nil, fmt.Errorf("sqlite: policy version %d: %w", n, err)
	}
	return v, nil
}

// PolicyVersions returns every version, newest first, without text and
// HTML: lists show dates and summaries only.
func (db *DB) PolicyVersions(ctx context.Context) ([]*PolicyVersionRow, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT version, text_hash, '', '', summary, significant, values_json, published_at
		FROM policy_versions ORDER BY version DESC`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: policy versions: %w", err)
	}
	defer rows.Close()
	var out []*PolicyVersionRow
	for rows.Next() {
		v, err := scanPolicyVersion(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: policy versions: %w", err)
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// InsertPolicyVersion publishes v as version after+1, now. after is the
// version the caller diffed against: if another process published in
// between, the insert is refused with ECONFLICT instead of numbering two
// different texts alike or summarising the wrong change.
func (db *DB) InsertPolicyVersion(ctx context.Context, v *PolicyVersionRow, after int) error {
	v.PublishedAt = db.Now().Truncate(time.Millisecond)
	v.Version = after + 1
	err := db.tx(ctx, func(tx *sql.Tx) error {
		var latest int
		if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(version), 0) FROM policy_versions`).Scan(&latest); err != nil {
			return err
		}
		if latest != after {
			return app.Errorf(app.ECONFLICT, "Privacy policy version %d was published meanwhile by another process; start again to compare against it.", latest)
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO policy_versions (`+policyColumns+`) VALUES (?,?,?,?,?,?,?,?)`,
			v.Version, v.TextHash, v.Text, v.HTML, v.Summary, v.Significant, v.ValuesJSON, v.PublishedAt.UnixMilli())
		return err
	})
	var ae *app.Error
	if errors.As(err, &ae) {
		return err
	} else if err != nil {
		return fmt.Errorf("sqlite: insert policy version: %w", err)
	}
	return nil
}

// AcceptPolicy records that userID acknowledged version. Accepting twice is
// harmless; the first time is kept.
func (db *DB) AcceptPolicy(ctx context.Context, userID string, version int) error {
	_, err := db.w.ExecContext(ctx, `INSERT INTO policy_acceptances (user_id, version, accepted_at) VALUES (?,?,?)
		ON CONFLICT (user_id, version) DO NOTHING`, userID, version, db.Now().UnixMilli())
	if err != nil && strings.Contains(err.Error(), "FOREIGN KEY constraint failed") {
		return app.Errorf(app.ENOTFOUND, "Cannot record the acknowledgement: there is no such user or no version %d of the privacy policy.", version)
	} else if err != nil {
		return fmt.Errorf("sqlite: accept policy: %w", err)
	}
	return nil
}

// PendingSignificantPolicyVersion returns the newest significant version
// userID still has to acknowledge: one newer than every version they
// accepted and published after their account was made (people who signed
// up later agreed to it at sign-up). ENOTFOUND means nothing is pending.
func (db *DB) PendingSignificantPolicyVersion(ctx context.Context, userID string) (*PolicyVersionRow, error) {
	v, err := scanPolicyVersion(db.r.QueryRowContext(ctx, `SELECT `+policyColumns+` FROM policy_versions
		WHERE significant = 1
		  AND version > (SELECT coalesce(max(version), 0) FROM policy_acceptances WHERE user_id = ?)
		  AND published_at > (SELECT created_at FROM users WHERE id = ?)
		ORDER BY version DESC LIMIT 1`, userID, userID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, app.Errorf(app.ENOTFOUND, "No privacy policy change is waiting for acknowledgement.")
	} else if err != nil {
		return nil, fmt.Errorf("sqlite: pending policy version: %w", err)
	}
	return v, nil
}
