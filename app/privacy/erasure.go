package privacy

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	"zimage/app"
	"zimage/app/auth"
	"zimage/app/sqlite"
	"zimage/app/vault"
)

// Audit actions of this package. Details hold ids, counts and codes only.
const (
	AuditAccountDelete      = "account.delete"
	AuditAccountErasedChild = "account.erased_child"
	AuditAccountPurge       = "account.purge"
	AuditLegalHoldSet       = "legal_hold.set"
	AuditLegalHoldRelease   = "legal_hold.release"
	AuditRestrict           = "account.restrict"
	AuditUnrestrict         = "account.unrestrict"
	AuditTrainingExport     = "training.export"
)

// JobCanceler stops a person's queued or running generation; *queue.Queue
// is one. The privacy layer sits below the queue, hence the interface.
type JobCanceler interface {
	Cancel(ctx context.Context, userID, id string) (app.Generation, error)
}

// MediaPurger removes every image file and row of a person; *media.Store
// is one.
type MediaPurger interface {
	DeleteAllForUser(ctx context.Context, userID string) (int, error)
}

// ControlsDeps are what the rights service works with. Jobs and Media may be nil
// in a process without a pipeline (the CLI purge passes Media only).
type ControlsDeps struct {
	DB     *sqlite.DB
	Vault  *vault.Vault
	Hasher *auth.Hasher // checks the password before a deletion
	Jobs   JobCanceler
	Media  MediaPurger
	// ExportsDir holds export archives in one folder per person; the purge
	// removes the person's folder. Empty: no exports here.
	ExportsDir string
	Log        *slog.Logger
}

// Controls carries out people's data rights: erasure, legal holds, the
// consent ledger, restriction and objection, and the training export.
// Safe for concurrent use.
type Controls struct {
	db       *sqlite.DB
	v        *vault.Vault
	hasher   *auth.Hasher
	jobs     JobCanceler
	media    MediaPurger
	exports  string
	log      *slog.Logger
	attempts *auth.Throttle
}

// NewControls returns the service.
func NewControls(d ControlsDeps) *Controls {
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	if d.Hasher == nil {
		d.Hasher = auth.NewHasher(auth.DefaultParams, 2)
	}
	return &Controls{db: d.DB, v: d.Vault, hasher: d.Hasher, jobs: d.Jobs, media: d.Media, exports: d.ExportsDir, log: d.Log,
		attempts: auth.NewThrottle(auth.DefaultAccountThrottle)}
}

func controlsDetail(kv ...any) string {
	m := map[string]any{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[fmt.Sprint(kv[i])] = kv[i+1]
	}
	b, _ := json.Marshal(m) // strings and numbers always encode
	return string(b)
}

// DeleteAccount erases the signed-in person's own account after checking
// their password and, when 2FA is on, a current code or an unused
// recovery code. A session alone must not be able to destroy an account.
// Errors: EINVALID for a missing field, EFORBIDDEN for a wrong password or
// code, ERATELIMITED after repeated failures, ECONFLICT under a legal hold.
func (s *Controls) DeleteAccount(ctx context.Context, userID, password, code string) error {
	rec, err := s.db.UserByID(ctx, userID)
	if err != nil {
		return err
	}
	if !rec.DeletedAt.IsZero() {
		return app.Errorf(app.ENOTFOUND, "This account was already deleted.")
	}
	if err := s.recheck(ctx, rec, password, code); err != nil {
		return err
	}
	if rec.Role == app.RoleAdmin {
		n, err := s.db.CountActiveAdmins(ctx)
		if err != nil {
			return err
		}
		if n <= 1 {
			return app.Errorf(app.ECONFLICT, "You are the only admin of this server: make someone else an admin first, so the server is not left without one. Nothing was deleted.")
		}
	}
	return s.erase(ctx, userID, app.AuditEntry{ActorID: userID, SubjectID: userID, Action: AuditAccountDelete})
}

// EraseChild ends an account reported as belonging to a child under 13:
// the same immediate erasure as a deletion, without the password, by an
// admin. The report's note is not stored (it would be about the child);
// the audit entry records that it happened and why, as a code.
func (s *Controls) EraseChild(ctx context.Context, adminID, userID string) error {
	if adminID == userID {
		return app.Errorf(app.EINVALID, "You cannot use the under-13 action on your own account; delete it from your settings instead.")
	}
	rec, err := s.db.UserByID(ctx, userID)
	if err != nil {
		return err
	}
	if !rec.DeletedAt.IsZero() {
		return app.Errorf(app.ENOTFOUND, "This account was already deleted.")
	}
	if rec.Role == app.RoleAdmin {
		return app.Errorf(app.ECONFLICT, "This account is an admin: change its role first, so the server is never left without an admin by mistake.")
	}
	err = s.erase(ctx, userID, app.AuditEntry{ActorID: adminID, SubjectID: userID, Action: AuditAccountErasedChild, Detail: controlsDetail("reason", "under_13")})
	if app.ErrorCode(err) == app.ECONFLICT {
		return app.Errorf(app.ECONFLICT, "This account is under a legal hold, so its data must be kept: lift the hold first (DELETE /api/v1/admin/users/%s/hold), then end the account.", userID)
	}
	return err
}

// erase is the immediate part of a deletion: the account row is ended and
// its credentials removed in one transaction, running jobs are stopped
// (before the key goes: canceling reads the job), then the data key is
// destroyed, which makes every sealed copy unreadable, backups included.
// The purge job removes rows and files later.
func (s *Controls) erase(ctx context.Context, userID string, entry app.AuditEntry) error {
	ids, err := s.db.ActiveGenerationIDs(ctx, userID)
	if err != nil {
		return err
	}
	entry.Detail = mergeDetail(entry.Detail, "canceled_jobs", len(ids))
	if err := s.db.MarkUserDeleted(ctx, userID, entry); err != nil {
		return err
	}
	if s.jobs != nil {
		for _, id := range ids {
			if _, err := s.jobs.Cancel(ctx, userID, id); err != nil && app.ErrorCode(err) != app.ECONFLICT && app.ErrorCode(err) != app.ENOTFOUND {
				s.log.Warn("erasure: could not cancel a job; it fails once the key is gone", "user", userID, "generation", id, "err", err)
			}
		}
	}
	if err := s.v.Shred(userID); err != nil {
		// The account is already closed; the purge shreds again.
		s.log.Error("erasure: destroying the data key failed; the purge job retries", "user", userID, "err", err)
		return app.Wrap(err, "Your account is closed, but destroying its encryption key failed; the server retries on its next clean-up run.")
	}
	if err := s.db.CheckpointTruncate(ctx); err != nil {
		s.log.Warn("erasure: WAL checkpoint deferred", "err", err)
	}
	s.log.Info("account erased", "user", userID, "action", entry.Action, "canceled_jobs", len(ids))
	return nil
}

// KeylessAccounts is what EndKeylessAccounts found.
type KeylessAccounts struct {
	// Ended were deleted after the backup (their key is destroyed) and
	// are marked deleted again; Held of them are under a legal hold and
	// were left as they are.
	Ended, Held int
	// Unknown have no key in this keyring at all: it is older than the
	// accounts. Their data is unreadable with it, and sign-in refuses
	// them, but they are not ended: a newer keyring would open them.
	Unknown int
}

// EndKeylessAccounts marks deleted every account the database still
// holds as live but whose data key the keyring shows as destroyed: after a
// restore, the people deleted since the backup was taken. Their rows came
// back with the backup, but nothing of theirs can be read and they asked to
// be gone, so they are treated exactly as a deletion made now (sessions and
// API keys removed, requests closed, purge due at the next retention run).
func (s *Controls) EndKeylessAccounts(ctx context.Context) (KeylessAccounts, error) {
	var res KeylessAccounts
	ids, err := s.db.ActiveUserIDs(ctx)
	if err != nil {
		return res, err
	}
	for _, id := range ids {
		if s.v.HasKey(id) {
			continue
		}
		if !s.v.KeyDestroyed(id) {
			res.Unknown++
			continue
		}
		err := s.db.MarkUserDeleted(ctx, id, app.AuditEntry{SubjectID: id, Action: AuditAccountDelete, Detail: controlsDetail("reason", "key_destroyed_before_restore")})
		switch app.ErrorCode(err) {
		case "":
			res.Ended++
		case app.ECONFLICT:
			s.log.Warn("restore: a deleted account is under a legal hold; it stays unusable and unpurged", "user", id)
			res.Held++
		default:
			return res, err
		}
	}
	return res, nil
}

func mergeDetail(detail string, key string, value any) string {
	m := map[string]any{}
	if detail != "" {
		_ = json.Unmarshal([]byte(detail), &m)
	}
	m[key] = value
	b, _ := json.Marshal(m)
	return string(b)
}

// recheck confirms the person at the keyboard is the account's owner.
func (s *Controls) recheck(ctx context.Context, rec *sqlite.UserRecord, password, code string) error {
	fe := app.FieldErrors{}
	if password == "" {
		fe.Add("password", "Enter your password to confirm the deletion.")
	}
	code = strings.TrimSpace(code)
	if rec.TOTPEnabled && code == "" {
		fe.Add("totp_code", "Your account uses two-factor authentication: enter the code from your authenticator app, or a recovery code.")
	}
	if err := fe.Err(); err != nil {
		return err
	}
	now := s.db.Now()
	key := "erase:" + rec.ID
	if wait, ok := s.attempts.Check(key, now); !ok {
		secs := int(math.Ceil(wait.Seconds()))
		return &app.Error{Code: app.ERATELIMITED, RetryAfterSeconds: secs, Message: fmt.Sprintf("Too many wrong attempts. Wait %d seconds, then try again.", secs)}
	}
	ok, _, err := s.hasher.Check(rec.PasswordHash, password)
	if err != nil {
		return app.Wrap(err, "stored password hash for a user is unreadable")
	}
	if !ok {
		s.attempts.Fail(key, now)
		return &app.Error{Code: app.EFORBIDDEN, Message: "Your password is wrong; nothing was deleted.", Fields: map[string]string{"password": "wrong password"}}
	}
	if rec.TOTPEnabled && !s.codeMatches(ctx, rec, code, now) {
		s.attempts.Fail(key, now)
		return &app.Error{Code: app.EFORBIDDEN, Message: "The code is wrong or was already used; nothing was deleted. Enter the code your authenticator app shows now, or an unused recovery code.",
			Fields: map[string]string{"totp_code": "wrong or already used"}}
	}
	s.attempts.Succeed(key)
	return nil
}

func (s *Controls) codeMatches(ctx context.Context, rec *sqlite.UserRecord, code string, now time.Time) bool {
	if len(rec.SealedTOTPSecret) > 0 {
		secret, err := s.v.Open(rec.ID, []byte("users/"+rec.ID+"/totp"), rec.SealedTOTPSecret)
		if err == nil {
			if _, ok := auth.ValidateTOTP(string(secret), code, now, rec.TOTPLastStep); ok {
				return true
			}
		}
	}
	hashes, err := s.db.RecoveryHashes(ctx, rec.ID)
	if err != nil {
		return false
	}
	_, ok := auth.MatchRecoveryCode(code, hashes)
	return ok
}

// PurgeResult is what one purge run removed.
type PurgeResult struct {
	Accounts int
	Files    int
	Rows     map[string]int
}

// CountPurgeable counts deleted accounts the purge would remove as of
// cutoff (deleted at or before it, not held).
func (s *Controls) CountPurgeable(ctx context.Context, cutoff time.Time) (int, error) {
	return s.db.CountPurgeableUsers(ctx, cutoff)
}

// PreviewPurge reports what PurgeDeleted would remove as of cutoff,
// changing nothing and needing no keys: the same accounts, the files
// (each image with its variants, as media counts them, and each export
// archive) and the rows per table. Images are counted as files, not rows,
// when mediaCounted is true, as the purge's media store deletes their rows
// before the account's other rows. An image or export that a run's images
// or exports job removes first is counted there too.
func PreviewPurge(ctx context.Context, db *sqlite.DB, exportsDir string, cutoff time.Time, mediaCounted bool) (PurgeResult, error) {
	res := PurgeResult{Rows: map[string]int{}}
	n, err := db.CountPurgeableUsers(ctx, cutoff)
	if err != nil || n == 0 {
		return res, err
	}
	ids, err := db.PurgeableUsers(ctx, cutoff, n)
	if err != nil {
		return res, err
	}
	for _, id := range ids {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		rows, err := db.CountUserRows(ctx, id)
		if err != nil {
			return res, err
		}
		if mediaCounted {
			res.Files += rows["images"]
			delete(rows, "images")
		}
		if exportsDir != "" {
			entries, _ := os.ReadDir(filepath.Join(exportsDir, id))
			res.Files += len(entries)
		}
		for t, n := range rows {
			res.Rows[t] += n
		}
		res.Accounts++
	}
	return res, nil
}

// PurgeDeleted physically removes accounts deleted at or before cutoff
// and not under a legal hold: the key is shredded again (a no-op unless
// the first attempt failed), the media folder and image rows go, then
// every row with the person's id, then the users row; finally the WAL is
// checkpointed so no old page survives there. batch accounts are done per
// round; ctx is checked between accounts.
func (s *Controls) PurgeDeleted(ctx context.Context, cutoff time.Time, batch int) (PurgeResult, error) {
	res := PurgeResult{Rows: map[string]int{}}
	if batch <= 0 {
		batch = 100
	}
	defer func() {
		if res.Accounts > 0 {
			if err := s.db.CheckpointTruncate(context.WithoutCancel(ctx)); err != nil {
				s.log.Warn("purge: WAL checkpoint deferred", "err", err)
			}
		}
	}()
	// seen guards the loop: an account handled once in this run and still
	// listed (failed, or not removed for any reason) is not tried again
	// until the next run.
	seen, failed := map[string]bool{}, 0
	for {
		ids, err := s.db.PurgeableUsers(ctx, cutoff, batch+len(seen))
		if err != nil {
			return res, err
		}
		progressed := false
		for _, id := range ids {
			if seen[id] {
				continue
			}
			seen[id] = true
			if err := ctx.Err(); err != nil {
				return res, err
			}
			if err := s.purgeOne(ctx, id, &res); err != nil {
				s.log.Error("purge: account not purged; retried at the next run", "user", id, "err", err)
				failed++
				continue
			}
			progressed = true
		}
		if !progressed {
			if failed > 0 {
				return res, fmt.Errorf("privacy: %d deleted account(s) could not be purged (see the log); the next run retries", failed)
			}
			return res, nil
		}
	}
}

func (s *Controls) purgeOne(ctx context.Context, userID string, res *PurgeResult) error {
	if err := s.v.Shred(userID); err != nil {
		return err
	}
	if s.media != nil {
		n, err := s.media.DeleteAllForUser(ctx, userID)
		res.Files += n
		if err != nil {
			return err
		}
	}
	if s.exports != "" {
		// Export archives are sealed with the destroyed key; remove them
		// anyway, rows and files together.
		dir := filepath.Join(s.exports, userID)
		entries, _ := os.ReadDir(dir)
		if err := os.RemoveAll(dir); err != nil {
			return err
		}
		res.Files += len(entries)
	}
	rows, err := s.db.PurgeUser(ctx, userID, app.AuditEntry{SubjectID: userID, Action: AuditAccountPurge})
	if err != nil {
		return err
	}
	for t, n := range rows {
		res.Rows[t] += n
	}
	res.Accounts++
	return nil
}
