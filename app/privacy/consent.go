package privacy

import (
	"context"
	"slices"
	"time"

	"zimage/app"
	"zimage/app/sqlite"
)

// Purposes a person decides on. Training and marketing are opt-in (off
// until granted); analytics runs on legitimate interest (on until the
// person objects, or their browser sends Global Privacy Control / DNT).
const (
	PurposeTraining  = "training"
	PurposeMarketing = "marketing"
	PurposeAnalytics = "analytics"
)

// Purposes lists them in the order they are shown.
var Purposes = []string{PurposeTraining, PurposeMarketing, PurposeAnalytics}

// DefaultGranted is each purpose's state before the person has said
// anything.
var DefaultGranted = map[string]bool{PurposeTraining: false, PurposeMarketing: false, PurposeAnalytics: true}

// Methods: how a ledger entry was made.
const (
	MethodAPI  = "api"  // JSON API from a signed-in session
	MethodForm = "form" // settings page
)

// Consent is one ledger entry.
type Consent struct {
	Purpose       string    `json:"purpose"`
	Granted       bool      `json:"granted"`
	At            time.Time `json:"at"`
	PolicyVersion int       `json:"policy_version"`
	Method        string    `json:"method"`
}

// PurposeState is where one purpose stands now.
type PurposeState struct {
	Purpose string `json:"purpose"`
	Granted bool   `json:"granted"`
	// Default is true while the person has never decided.
	Default bool       `json:"default"`
	Since   *time.Time `json:"since,omitempty"`
}

// ConsentState is a person's current decisions and the full history.
type ConsentState struct {
	Purposes   []PurposeState `json:"purposes"`
	Restricted bool           `json:"restricted"`
	History    []Consent      `json:"history"`
}

// Granted reports the current state of purpose.
func (c ConsentState) Granted(purpose string) bool {
	for _, p := range c.Purposes {
		if p.Purpose == purpose {
			return p.Granted
		}
	}
	return false
}

// Consents returns userID's current state per purpose and their ledger,
// newest first. Restriction overrides: while restricted, nothing but the
// service itself is processed, whatever the ledger says.
func (s *Controls) Consents(ctx context.Context, userID string) (ConsentState, error) {
	recs, err := s.db.Consents(ctx, userID)
	if err != nil {
		return ConsentState{}, err
	}
	since, err := s.db.RestrictedSince(ctx, userID)
	if err != nil {
		return ConsentState{}, err
	}
	st := ConsentState{Restricted: !since.IsZero(), History: make([]Consent, 0, len(recs))}
	latest := map[string]sqlite.ConsentRecord{}
	for _, r := range recs {
		st.History = append(st.History, Consent{Purpose: r.Purpose, Granted: r.Granted, At: r.At, PolicyVersion: r.PolicyVersion, Method: r.Method})
		if _, ok := latest[r.Purpose]; !ok {
			latest[r.Purpose] = r
		}
	}
	for _, p := range Purposes {
		ps := PurposeState{Purpose: p, Granted: DefaultGranted[p], Default: true}
		if r, ok := latest[p]; ok {
			at := r.At
			ps.Granted, ps.Default, ps.Since = r.Granted, false, &at
		}
		if st.Restricted {
			ps.Granted = false
		}
		st.Purposes = append(st.Purposes, ps)
	}
	return st, nil
}

// SetConsent appends a decision to the ledger; it takes effect at once.
// Withdrawing analytics or marketing is the objection the policy promises.
func (s *Controls) SetConsent(ctx context.Context, userID, purpose string, granted bool, method string) error {
	if !slices.Contains(Purposes, purpose) {
		return app.FieldErrors{"purpose": "Choose one of training, marketing or analytics."}.Err()
	}
	if method == "" {
		method = MethodAPI
	}
	return s.db.AppendConsent(ctx, &sqlite.ConsentRecord{UserID: userID, Purpose: purpose, Granted: granted, Method: method})
}

// SetRestricted turns "restrict processing" on or off for userID. While it
// is on: no training export, no analytics events, no marketing — whatever
// the ledger says; the account, its gallery and generation keep working,
// since that is the service the person asked for. Audited.
func (s *Controls) SetRestricted(ctx context.Context, userID string, restricted bool) error {
	action := AuditUnrestrict
	if restricted {
		action = AuditRestrict
	}
	return s.db.SetRestricted(ctx, userID, restricted, app.AuditEntry{ActorID: userID, SubjectID: userID, Action: action})
}

// Allows reports whether userID's data may be used for purpose now: the
// latest ledger entry (or the default) and no restriction. Callers that
// also see a request add the browser's signal (Global Privacy Control).
func (s *Controls) Allows(ctx context.Context, userID, purpose string) (bool, error) {
	st, err := s.Consents(ctx, userID)
	if err != nil {
		return false, err
	}
	return st.Granted(purpose), nil
}
