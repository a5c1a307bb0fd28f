package sqlite

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"zimage/app"
)

// auditHeadKey is the settings row holding the last entry's seq and hash.
// The chain alone cannot show that its newest entries were cut off; the head,
// written in the same transaction as every append, can.
const auditHeadKey = "audit.head"

// auditHash is SHA-256 over the previous entry's hash and a length-prefixed
// encoding of every field, so no two different entries encode alike.
func auditHash(prev []byte, seq, at int64, actor, subject, action, detail string) []byte {
	h := sha256.New()
	h.Write([]byte("zimage audit v1\x00"))
	h.Write(prev)
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(seq))
	h.Write(n[:])
	binary.BigEndian.PutUint64(n[:], uint64(at))
	h.Write(n[:])
	for _, f := range []string{actor, subject, action, detail} {
		binary.BigEndian.PutUint64(n[:], uint64(len(f)))
		h.Write(n[:])
		h.Write([]byte(f))
	}
	return h.Sum(nil)
}

// appendAudit adds e to the chain inside tx. The writer is one connection
// and transactions are immediate, so reading the head and appending cannot
// interleave with another append.
func appendAudit(ctx context.Context, tx *sql.Tx, now time.Time, e app.AuditEntry) error {
	var seq int64
	prev := make([]byte, sha256.Size) // the first entry follows 32 zero bytes
	err := tx.QueryRowContext(ctx, `SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1`).Scan(&seq, &prev)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("audit head: %w", err)
	}
	seq++
	if e.Detail == "" {
		e.Detail = "{}"
	}
	at := now.UnixMilli()
	hash := auditHash(prev, seq, at, e.ActorID, e.SubjectID, e.Action, e.Detail)
	if _, err := tx.ExecContext(ctx, `INSERT INTO audit_log (seq, at, actor_id, subject_id, action, detail, prev_hash, hash)
		VALUES (?,?,?,?,?,?,?,?)`, seq, at, e.ActorID, e.SubjectID, e.Action, e.Detail, prev, hash); err != nil {
		return fmt.Errorf("append audit: %w", err)
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO settings (key, value, updated_at) VALUES (?, ?, ?)
		ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`,
		auditHeadKey, strconv.FormatInt(seq, 10)+":"+hex.EncodeToString(hash), at)
	if err != nil {
		return fmt.Errorf("append audit head: %w", err)
	}
	return nil
}

// AppendAudit records entries on their own, for events that change nothing
// else (a failed login, an admin reading a profile).
func (db *DB) AppendAudit(ctx context.Context, entries ...app.AuditEntry) error {
	now := db.Now().Truncate(time.Millisecond)
	err := db.tx(ctx, func(tx *sql.Tx) error {
		for _, e := range entries {
			if err := appendAudit(ctx, tx, now, e); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("sqlite: %w", err)
	}
	return nil
}

const auditColumns = `seq, at, actor_id, subject_id, action, detail, prev_hash, hash`

func scanAudit(s rowScanner) (*app.AuditEntry, error) {
	var e app.AuditEntry
	var at int64
	if err := s.Scan(&e.Seq, &at, &e.ActorID, &e.SubjectID, &e.Action, &e.Detail, &e.PrevHash, &e.Hash); err != nil {
		return nil, err
	}
	e.At = fromMillis(at)
	return &e, nil
}

// AuditFilter selects audit entries: those after AfterSeq (0 for all),
// about SubjectID when set, at most Limit of them, oldest first.
type AuditFilter struct {
	AfterSeq  int64
	SubjectID string
	Limit     int
	// NewestFirst reads backwards from BeforeSeq (0: from the newest).
	NewestFirst bool
	BeforeSeq   int64
}

// AuditEntries returns entries matching f.
func (db *DB) AuditEntries(ctx context.Context, f AuditFilter) ([]*app.AuditEntry, error) {
	q := `SELECT ` + auditColumns + ` FROM audit_log WHERE seq > ?`
	args := []any{f.AfterSeq}
	order := ` ORDER BY seq LIMIT ?`
	if f.NewestFirst {
		order = ` ORDER BY seq DESC LIMIT ?`
		if f.BeforeSeq > 0 {
			q += ` AND seq < ?`
			args = append(args, f.BeforeSeq)
		}
	}
	if f.SubjectID != "" {
		q += ` AND subject_id = ?`
		args = append(args, f.SubjectID)
	}
	if f.Limit <= 0 {
		f.Limit = 100
	}
	rows, err := db.r.QueryContext(ctx, q+order, append(args, f.Limit)...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: audit entries: %w", err)
	}
	defer rows.Close()
	var out []*app.AuditEntry
	for rows.Next() {
		e, err := scanAudit(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: audit entries: %w", err)
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// AuditBrokenError says where the audit chain stops being trustworthy.
type AuditBrokenError struct {
	Seq    int64 // first entry that fails (or is missing)
	Reason string
}

func (e *AuditBrokenError) Error() string {
	return fmt.Sprintf("audit log broken at entry %d: %s", e.Seq, e.Reason)
}

// VerifyAudit walks the whole chain and returns how many entries it
// checked, or an *AuditBrokenError naming the first entry that was changed,
// removed or inserted. It reads in one snapshot, so appends while it runs
// do not confuse it.
func (db *DB) VerifyAudit(ctx context.Context) (int64, error) {
	tx, err := db.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return 0, fmt.Errorf("sqlite: verify audit: %w", err)
	}
	defer tx.Rollback()
	rows, err := tx.QueryContext(ctx, `SELECT `+auditColumns+` FROM audit_log ORDER BY seq`)
	if err != nil {
		return 0, fmt.Errorf("sqlite: verify audit: %w", err)
	}
	defer rows.Close()
	prev := make([]byte, sha256.Size)
	var want int64 = 1
	for rows.Next() {
		e, err := scanAudit(rows)
		if err != nil {
			return want - 1, fmt.Errorf("sqlite: verify audit: %w", err)
		}
		switch {
		case e.Seq != want:
			return want - 1, &AuditBrokenError{Seq: want, Reason: fmt.Sprintf("entry %d is missing (next entry is %d)", want, e.Seq)}
		case !bytes.Equal(e.PrevHash, prev):
			return want - 1, &AuditBrokenError{Seq: e.Seq, Reason: "it does not follow the entry before it (an entry before it was removed or replaced)"}
		case !bytes.Equal(e.Hash, auditHash(prev, e.Seq, e.At.UnixMilli(), e.ActorID, e.SubjectID, e.Action, e.Detail)):
			return want - 1, &AuditBrokenError{Seq: e.Seq, Reason: "its content does not match its hash (it was edited)"}
		}
		prev = e.Hash
		want++
	}
	if err := rows.Err(); err != nil {
		return want - 1, fmt.Errorf("sqlite: verify audit: %w", err)
	}
	last := want - 1
	var head string
	err = tx.QueryRowContext(ctx, `SELECT value FROM settings WHERE key = ?`, auditHeadKey).Scan(&head)
	if errors.Is(err, sql.ErrNoRows) {
		if last == 0 {
			return 0, nil
		}
		return last, &AuditBrokenError{Seq: last, Reason: "the recorded head of the log is missing"}
	} else if err != nil {
		return last, fmt.Errorf("sqlite: verify audit head: %w", err)
	}
	seqText, hashHex, _ := strings.Cut(head, ":")
	headSeq, _ := strconv.ParseInt(seqText, 10, 64)
	switch {
	case headSeq > last:
		return last, &AuditBrokenError{Seq: last + 1, Reason: fmt.Sprintf("the log ends at entry %d but %d entries were written: the newest were removed", last, headSeq)}
	case headSeq < last || hashHex != hex.EncodeToString(prev):
		return last, &AuditBrokenError{Seq: headSeq, Reason: "the newest entries do not match the recorded head of the log"}
	}
	return last, nil
}

// SetSettingAudited stores value under key and appends the audit entries
// in the same transaction.
func (db *DB) SetSettingAudited(ctx context.Context, key, value string, audit ...app.AuditEntry) error {
	now := db.Now().Truncate(time.Millisecond)
	err := db.tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO settings (key, value, updated_at) VALUES (?, ?, ?)
			ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`, key, value, now.UnixMilli())
		if err != nil {
			return err
		}
		for _, e := range audit {
			if err := appendAudit(ctx, tx, now, e); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("sqlite: set setting %s: %w", key, err)
	}
	return nil
}
