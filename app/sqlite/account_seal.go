package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"zimage/app"
)

// The free text of sessions and API keys is personal data: a key's name is
// whatever its owner typed ("Anna's laptop"), a session's device and place
// say which browser, and from roughly where, they sign in. Like every other
// personal field they are kept sealed with the owner's key, so erasure
// makes every copy unreadable, backups included. The plaintext columns of
// the first schema stay (STRICT tables keep TEXT columns TEXT) but are
// written empty.

// SessionDeviceAAD, SessionPlaceAAD and APIKeyNameAAD bind a sealed value
// to its row.
func SessionDeviceAAD(id string) []byte { return []byte("sessions/" + id + "/device") }
func SessionPlaceAAD(id string) []byte  { return []byte("sessions/" + id + "/place") }
func APIKeyNameAAD(id string) []byte    { return []byte("api_keys/" + id + "/name") }

// migrateSealSessionsAndKeyNames adds the sealed columns. Existing
// sessions lose their device and place labels (they cannot be sealed
// without the keyring, which migrations do not open; the labels are only
// shown to the person and come back at the next sign-in). Existing API key
// names are sealed at the next start by SealPlaintextKeyNames, which needs
// the keyring; until then a snapshot writes them empty (see scrubSnapshot).
func migrateSealSessionsAndKeyNames(tx *sql.Tx) error {
	return execAll(tx,
		`ALTER TABLE sessions ADD COLUMN device_sealed BLOB`, // sealed, aad sessions/<id>/device; NULL for rows from before
		`ALTER TABLE sessions ADD COLUMN place_sealed BLOB`,  // sealed, aad sessions/<id>/place
		`ALTER TABLE api_keys ADD COLUMN name_sealed BLOB`,   // sealed, aad api_keys/<id>/name; NULL until sealed at start
		`UPDATE sessions SET device = '', place = ''`,
	)
}

// SessionRow is a sessions row with device and place still sealed.
type SessionRow struct {
	app.Session
	SealedDevice, SealedPlace []byte
}

// Opened returns the session with device and place opened with v.
func (r *SessionRow) Opened(v Unsealer) (*app.Session, error) {
	s := r.Session
	if r.SealedDevice != nil {
		b, err := v.Open(s.UserID, SessionDeviceAAD(s.ID), r.SealedDevice)
		if err != nil {
			return nil, fmt.Errorf("sqlite: open session device: %w", err)
		}
		s.Device = string(b)
	}
	if r.SealedPlace != nil {
		b, err := v.Open(s.UserID, SessionPlaceAAD(s.ID), r.SealedPlace)
		if err != nil {
			return nil, fmt.Errorf("sqlite: open session place: %w", err)
		}
		s.Place = string(b)
	}
	return &s, nil
}

// APIKeyRow is an api_keys row with its name still sealed.
type APIKeyRow struct {
	app.APIKey
	SealedName []byte
}

// Opened returns the key with its name opened with v. A name not sealed
// yet (a key from before the sealed column, until the next start seals it)
// is the plaintext one.
func (r *APIKeyRow) Opened(v Unsealer) (*app.APIKey, error) {
	k := r.APIKey
	if r.SealedName != nil {
		b, err := v.Open(k.UserID, APIKeyNameAAD(k.ID), r.SealedName)
		if err != nil {
			return nil, fmt.Errorf("sqlite: open api key name: %w", err)
		}
		k.Name = string(b)
	}
	return &k, nil
}

// SealPlaintextKeyNames seals the name of every API key that still has it
// in plaintext (keys made before the sealed column) and empties the
// plaintext. It returns how many it sealed.
func (db *DB) SealPlaintextKeyNames(ctx context.Context, v Sealer) (int, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT id, user_id, name FROM api_keys WHERE name_sealed IS NULL AND name != ''`)
	if err != nil {
		return 0, fmt.Errorf("sqlite: api key names to seal: %w", err)
	}
	type todo struct{ id, userID, name string }
	var list []todo
	for rows.Next() {
		var t todo
		if err := rows.Scan(&t.id, &t.userID, &t.name); err != nil {
			rows.Close()
			return 0, fmt.Errorf("sqlite: api key names to seal: %w", err)
		}
		list = append(list, t)
	}
	rows.Close()
	n := 0
	for _, t := range list {
		sealed, err := v.Seal(t.userID, APIKeyNameAAD(t.id), []byte(t.name))
		if err != nil {
			// The owner's key is gone (deleted, awaiting the purge): the
			// name is only a label, so it goes rather than stay readable.
			if _, err := db.w.ExecContext(ctx, `UPDATE api_keys SET name = '' WHERE id = ?`, t.id); err != nil {
				return n, fmt.Errorf("sqlite: clear api key name: %w", err)
			}
			continue
		}
		if _, err := db.w.ExecContext(ctx, `UPDATE api_keys SET name_sealed = ?, name = '' WHERE id = ? AND name_sealed IS NULL`, sealed, t.id); err != nil {
			return n, fmt.Errorf("sqlite: seal api key name: %w", err)
		}
		n++
	}
	return n, nil
}
