package vault

import (
	"fmt"
	"os"
	"path/filepath"

	"zimage/app"
)

// Test hooks: the kill test stops a real rotation at these points.
var (
	testHookRotateRow   func(done int) // after each user key is re-wrapped, inside the transaction
	testHookAfterCommit func()         // after the transaction, before master.key.new is renamed
)

// rotateBatch bounds memory while re-wrapping: rows are read a batch at a
// time inside the one transaction.
const rotateBatch = 500

// Rotate re-wraps every user key and the blind-index key with newMaster,
// and replaces the check value, in one SQLite transaction: if it is cut
// short the keyring still opens with the old key, and once it commits it
// opens only with the new one. Data keys do not change, so no sealed data
// is rewritten and the blind index stays valid. The caller must store
// newMaster durably BEFORE calling Rotate (RotateMasterFile does).
func (v *Vault) Rotate(newMaster []byte) error {
	if len(newMaster) != KeySize {
		return &app.Error{Code: app.EINVALID, Message: fmt.Sprintf("A new master key must be exactly %d bytes; got %d.", KeySize, len(newMaster))}
	}
	newMaster = append([]byte(nil), newMaster...)
	v.mu.Lock()
	defer v.mu.Unlock()
	old := v.master

	tx, err := v.db.Begin()
	if err != nil {
		return fmt.Errorf("vault: rotate: %w", err)
	}
	defer tx.Rollback()

	done := 0
	lastUser, lastVersion := "", int64(-1)
	for {
		rows, err := tx.Query(`SELECT user_id, version, wrapped FROM user_keys
			WHERE wrapped IS NOT NULL AND (user_id, version) > (?, ?)
			ORDER BY user_id, version LIMIT ?`, lastUser, lastVersion, rotateBatch)
		if err != nil {
			return fmt.Errorf("vault: rotate: %w", err)
		}
		type row struct {
			userID  string
			version int64
			wrapped []byte
		}
		var batch []row
		for rows.Next() {
			var r row
			if err := rows.Scan(&r.userID, &r.version, &r.wrapped); err != nil {
				rows.Close()
				return fmt.Errorf("vault: rotate: %w", err)
			}
			batch = append(batch, r)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("vault: rotate: %w", err)
		}
		if len(batch) == 0 {
			break
		}
		for _, r := range batch {
			ad := userKeyAD(r.userID, uint32(r.version))
			key, err := unwrap(old, r.wrapped, ad)
			if err != nil {
				return &app.Error{Code: app.EINTERNAL, Message: "Rotation stopped: a user key in the keyring does not open with the current master key, so the keyring is damaged. Nothing was changed; restore keyring.db from your most recent keyring backup.", Err: err}
			}
			rewrapped, err := wrap(newMaster, key, ad)
			clear(key)
			if err != nil {
				return fmt.Errorf("vault: rotate: %w", err)
			}
			if _, err := tx.Exec(`UPDATE user_keys SET wrapped = ? WHERE user_id = ? AND version = ?`, rewrapped, r.userID, r.version); err != nil {
				return fmt.Errorf("vault: rotate: %w", err)
			}
			done++
			if testHookRotateRow != nil {
				testHookRotateRow(done)
			}
		}
		last := batch[len(batch)-1]
		lastUser, lastVersion = last.userID, last.version
	}

	blind, err := wrap(newMaster, v.blindKey, []byte(adBlindKey))
	if err != nil {
		return fmt.Errorf("vault: rotate: %w", err)
	}
	check, err := wrap(newMaster, []byte(checkConstant), []byte(adCheck))
	if err != nil {
		return fmt.Errorf("vault: rotate: %w", err)
	}
	if _, err := tx.Exec(`UPDATE meta SET value = ? WHERE name = ?`, blind, metaBlindKey); err != nil {
		return fmt.Errorf("vault: rotate: %w", err)
	}
	if _, err := tx.Exec(`UPDATE meta SET value = ? WHERE name = ?`, check, metaCheck); err != nil {
		return fmt.Errorf("vault: rotate: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("vault: rotate: %w", err)
	}
	v.master = newMaster
	// Keys wrapped by the old master still sit in the WAL; a leaked old key
	// should not unlock them.
	if err := v.checkpoint(); err != nil {
		v.log.Warn("vault: rotation done, but the WAL could not be truncated yet", "err", err)
	}
	v.log.Info("vault: master key rotated", "user_keys", done)
	return nil
}

// RotateMasterFile replaces master.key with a new random key. The order
// makes a crash at any point recoverable: the new key is written to
// master.key.new first, the keyring is re-wrapped in one transaction, then
// master.key.new is renamed over master.key. Open takes whichever of the
// two files the keyring's check value accepts and tidies up the other.
// Back up the new master.key afterwards: older key backups no longer open
// this keyring (but still open older keyring backups).
func (v *Vault) RotateMasterFile() error {
	if v.fromEnv {
		return &app.Error{Code: app.EINVALID, Message: "The master key comes from ZIMAGE_MASTER_KEY, so there is no master.key file to rotate. Generate a new key, call the rotation with it, then set ZIMAGE_MASTER_KEY to the new value before the next start."}
	}
	keyPath := filepath.Join(v.dataDir, MasterKeyFile)
	newPath := filepath.Join(v.dataDir, masterKeyNewFile)
	newKey, err := NewMasterKey()
	if err != nil {
		return err
	}
	defer clear(newKey)
	if err := writeKeyFileAtomic(newPath, newKey); err != nil {
		return err
	}
	if err := v.Rotate(newKey); err != nil {
		// Only drop the new key if the keyring surely does not use it: a
		// commit can report an error and still have happened.
		if meta, mErr := v.readMeta(); mErr == nil && meta != nil && !meta.matches(newKey) {
			os.Remove(newPath)
		}
		return err
	}
	if testHookAfterCommit != nil {
		testHookAfterCommit()
	}
	if err := os.Rename(newPath, keyPath); err != nil {
		return app.Wrap(err, "The keyring now uses the key in %s, but it could not be renamed to %s: rename it by hand before the next start (starting also completes it).", newPath, keyPath)
	}
	return syncDir(v.dataDir)
}
