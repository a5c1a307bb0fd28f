package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
)

// Usernames are the one piece of personal data kept in plaintext in the
// live database (the public handle: unique in SQL, shown to admins). So
// that a backup never holds them in plaintext, every user row also keeps a
// copy sealed with the person's key, and SnapshotTo replaces the plaintext
// in the snapshot with a placeholder. Restoring unseals it again; for a
// person whose key was destroyed in the meantime it stays unreadable, which
// is the point.

// UsernameAAD binds a sealed username to its user.
func UsernameAAD(userID string) []byte { return []byte("users/" + userID + "/username") }

// sealedUsernamePrefix marks a username replaced in a backup.
const sealedUsernamePrefix = "~sealed-"

func migrateUsernameSealed(tx *sql.Tx) error {
	return execAll(tx, `ALTER TABLE users ADD COLUMN username_sealed BLOB`)
}

// Unsealer opens what a person's key sealed; *vault.Vault is one.
type Unsealer interface {
	Open(userID string, aad, sealed []byte) ([]byte, error)
}

// Sealer seals with a person's key; *vault.Vault is one.
type Sealer interface {
	Seal(userID string, aad, plaintext []byte) ([]byte, error)
}

// SealMissingUsernames gives every active user without one a sealed copy of
// their username (rows written before the column existed). It returns how
// many it sealed.
func (db *DB) SealMissingUsernames(ctx context.Context, v Sealer) (int, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT id, username FROM users WHERE username_sealed IS NULL AND deleted_at = 0`)
	if err != nil {
		return 0, fmt.Errorf("sqlite: users to seal: %w", err)
	}
	type pair struct{ id, name string }
	var todo []pair
	for rows.Next() {
		var p pair
		if err := rows.Scan(&p.id, &p.name); err != nil {
			rows.Close()
			return 0, err
		}
		todo = append(todo, p)
	}
	rows.Close()
	n := 0
	for _, p := range todo {
		sealed, err := v.Seal(p.id, UsernameAAD(p.id), []byte(p.name))
		if err != nil {
			return n, fmt.Errorf("sqlite: seal username of %s: %w", p.id, err)
		}
		if _, err := db.w.ExecContext(ctx, `UPDATE users SET username_sealed = ? WHERE id = ? AND username = ?`, sealed, p.id, p.name); err != nil {
			return n, fmt.Errorf("sqlite: seal username of %s: %w", p.id, err)
		}
		n++
	}
	return n, nil
}

// scrubUsernames replaces, in the database file at path (a fresh snapshot),
// every username that has a sealed copy with a placeholder, empties any
// plaintext API key name or session label left, then rebuilds
// the file so the old text is not left in free pages.
func scrubUsernames(ctx context.Context, path string) error {
	c, err := sql.Open("sqlite", "file:"+escapePath(path)+"?_pragma=journal_mode(DELETE)&_pragma=secure_delete(1)")
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := c.ExecContext(ctx, `UPDATE users SET username = ? || id WHERE username_sealed IS NOT NULL`, sealedUsernamePrefix); err != nil {
		return fmt.Errorf("sqlite: scrub usernames: %w", err)
	}
	// Session labels and key names live sealed; a plaintext one is left
	// only by a key from before the sealed column whose name the next
	// start seals. The backup keeps no plaintext of it either: it
	// restores nameless.
	if _, err := c.ExecContext(ctx, `UPDATE api_keys SET name = '' WHERE name != ''`); err != nil {
		return fmt.Errorf("sqlite: scrub api key names: %w", err)
	}
	if _, err := c.ExecContext(ctx, `UPDATE sessions SET device = '', place = '' WHERE device != '' OR place != ''`); err != nil {
		return fmt.Errorf("sqlite: scrub session labels: %w", err)
	}
	if _, err := c.ExecContext(ctx, `VACUUM`); err != nil {
		return fmt.Errorf("sqlite: scrub usernames: %w", err)
	}
	return nil
}

// UnsealUsernames puts back the usernames a backup replaced, for every
// person whose key v still has. Those whose key is gone keep the
// placeholder (their account was deleted; the purge job removes it). It
// returns how many it restored and how many stay sealed.
func (db *DB) UnsealUsernames(ctx context.Context, v Unsealer) (restored, sealed int, err error) {
	rows, err := db.r.QueryContext(ctx, `SELECT id, username_sealed FROM users WHERE username LIKE ? ESCAPE '\'`, strings.ReplaceAll(sealedUsernamePrefix, "_", `\_`)+"%")
	if err != nil {
		return 0, 0, fmt.Errorf("sqlite: sealed usernames: %w", err)
	}
	type pair struct {
		id     string
		sealed []byte
	}
	var todo []pair
	for rows.Next() {
		var p pair
		if err := rows.Scan(&p.id, &p.sealed); err != nil {
			rows.Close()
			return 0, 0, err
		}
		todo = append(todo, p)
	}
	rows.Close()
	for _, p := range todo {
		name, err := v.Open(p.id, UsernameAAD(p.id), p.sealed)
		if err != nil {
			sealed++
			continue
		}
		if _, err := db.w.ExecContext(ctx, `UPDATE users SET username = ? WHERE id = ?`, string(name), p.id); err != nil {
			return restored, sealed, fmt.Errorf("sqlite: unseal username of %s: %w", p.id, err)
		}
		restored++
	}
	return restored, sealed, nil
}
