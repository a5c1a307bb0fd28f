package privacy

import (
	"context"
	"strings"
	"time"
	"unicode/utf8"

	"zimage/app"
	"zimage/app/sqlite"
)

// MaxHoldReasonRunes bounds a hold's reason: a case reference and a line of
// context, not a file.
const MaxHoldReasonRunes = 1000

// LegalHold is a hold as an admin sees it.
type LegalHold struct {
	UserID    string
	AdminID   string
	Reason    string
	CreatedAt time.Time
}

// HoldNotice is what the held person is told (GET /api/v1/me).
const HoldNotice = "Your account is under a legal hold; deletion will happen when it ends."

func holdReasonAAD(userID string) []byte { return []byte("legal_holds/" + userID + "/reason") }

// SetHold puts userID's account under a legal hold: deletion (by the
// person, or the purge) waits until it is released. The reason may name
// people or cases, so it is sealed with the held person's key and kept out
// of the audit log, which records only who and when.
func (s *Controls) SetHold(ctx context.Context, adminID, userID, reason string) error {
	reason = strings.TrimSpace(reason)
	switch {
	case reason == "":
		return app.FieldErrors{"reason": "Say why the account is held (for example the case or order reference)."}.Err()
	case utf8.RuneCountInString(reason) > MaxHoldReasonRunes:
		return app.FieldErrors{"reason": "Keep the reason under 1000 characters."}.Err()
	case app.CheckText("reason", reason, app.MultiLine) != "":
		return app.FieldErrors{"reason": app.CheckText("reason", reason, app.MultiLine)}.Err()
	}
	if _, err := s.db.UserByID(ctx, userID); err != nil {
		return err
	}
	sealed, err := s.v.Seal(userID, holdReasonAAD(userID), []byte(reason))
	if err != nil {
		if app.ErrorCode(err) == app.ENOTFOUND { // the key is destroyed: deleted
			return app.Errorf(app.ENOTFOUND, "There is no such user.")
		}
		return app.Wrap(err, "Could not seal the reason of the legal hold.")
	}
	return s.db.SetLegalHold(ctx, &sqlite.LegalHold{UserID: userID, AdminID: adminID, SealedReason: sealed},
		app.AuditEntry{ActorID: adminID, SubjectID: userID, Action: AuditLegalHoldSet})
}

// ReleaseHold lifts userID's hold; a deletion the person asks for after
// that goes ahead. ENOTFOUND when the account is not held.
func (s *Controls) ReleaseHold(ctx context.Context, adminID, userID string) error {
	if _, err := s.db.UserByID(ctx, userID); err != nil {
		return err
	}
	return s.db.ReleaseLegalHold(ctx, userID, app.AuditEntry{ActorID: adminID, SubjectID: userID, Action: AuditLegalHoldRelease})
}

// Hold returns userID's hold with its reason opened (for admins), and
// whether there is one.
func (s *Controls) Hold(ctx context.Context, userID string) (*LegalHold, bool, error) {
	h, err := s.db.LegalHoldOf(ctx, userID)
	if app.ErrorCode(err) == app.ENOTFOUND {
		return nil, false, nil
	} else if err != nil {
		return nil, false, err
	}
	reason, err := s.v.Open(userID, holdReasonAAD(userID), h.SealedReason)
	if err != nil {
		return nil, true, app.Wrap(err, "Could not open the reason of the legal hold on %s.", userID)
	}
	return &LegalHold{UserID: h.UserID, AdminID: h.AdminID, Reason: string(reason), CreatedAt: h.CreatedAt}, true, nil
}

// IsHeld reports whether userID is under a legal hold, without opening
// the reason: what the person themself may learn.
func (s *Controls) IsHeld(ctx context.Context, userID string) (bool, error) {
	_, err := s.db.LegalHoldOf(ctx, userID)
	if app.ErrorCode(err) == app.ENOTFOUND {
		return false, nil
	}
	return err == nil, err
}
