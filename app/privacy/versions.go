package privacy

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"zimage/app"
	"zimage/app/sqlite"
)

// PolicyVersion is one published version of the privacy policy.
type PolicyVersion struct {
	Version     int          `json:"version"`
	PublishedAt time.Time    `json:"published_at"`
	Summary     string       `json:"summary"`
	Significant bool         `json:"significant"`
	HTML        string       `json:"html,omitempty"`
	Text        string       `json:"-"`
	Values      PolicyValues `json:"-"`
}

// FirstVersionSummary is the summary of version 1: there is nothing to
// compare it with.
const FirstVersionSummary = "First version"

// Notifier queues a notice of a significant policy change to every person.
// The mail outbox seals each message with its recipient's key, so whoever
// wires it needs the vault; Policies only says when.
type Notifier interface {
	NotifyPolicyChange(ctx context.Context, v PolicyVersion) error
}

// Policies publishes policy versions and records acknowledgements.
type Policies struct {
	db       *sqlite.DB
	log      *slog.Logger
	notifier Notifier
}

// NewPolicies returns the service; notifier may be nil (no notices are
// queued, the banner and acknowledgement still work).
func NewPolicies(db *sqlite.DB, log *slog.Logger, notifier Notifier) *Policies {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Policies{db: db, log: log, notifier: notifier}
}

// Sync renders the policy from values and, when its text differs from the
// latest version's, publishes it as a new version. It runs at every start,
// so the page always states the values in force. summary "" means one is
// computed from the values that changed; significant marks a change that
// shows a banner, asks everyone to acknowledge it and queues a notice to
// each person. created is false when the text was unchanged.
func (p *Policies) Sync(ctx context.Context, values PolicyValues, summary string, significant bool) (PolicyVersion, bool, error) {
	htmlText, text, err := RenderPolicy(values)
	if err != nil {
		return PolicyVersion{}, false, err
	}
	hash := textHash(text)
	after := 0
	latest, err := p.db.LatestPolicyVersion(ctx)
	switch {
	case err == nil:
		if string(latest.TextHash) == string(hash) {
			v, err := fromRow(latest)
			return v, false, err
		}
		after = latest.Version
		prev, err := fromRow(latest)
		if err != nil {
			return PolicyVersion{}, false, err
		}
		if strings.TrimSpace(summary) == "" {
			summary = DiffSummary(prev.Values, values)
		}
	case app.ErrorCode(err) == app.ENOTFOUND:
		summary = FirstVersionSummary
	default:
		return PolicyVersion{}, false, err
	}
	valuesJSON, err := json.Marshal(values)
	if err != nil {
		return PolicyVersion{}, false, fmt.Errorf("privacy: encode policy values: %w", err)
	}
	row := &sqlite.PolicyVersionRow{TextHash: hash, Text: text, HTML: htmlText, Summary: strings.TrimSpace(summary),
		Significant: significant, ValuesJSON: string(valuesJSON)}
	if err := p.db.InsertPolicyVersion(ctx, row, after); err != nil {
		return PolicyVersion{}, false, err
	}
	v, err := fromRow(row)
	if err != nil {
		return v, true, err
	}
	p.log.Info("privacy policy: new version published", "version", v.Version, "significant", v.Significant, "summary", v.Summary)
	if significant && p.notifier != nil {
		if err := p.notifier.NotifyPolicyChange(ctx, v); err != nil {
			return v, true, fmt.Errorf("privacy: version %d is published, but queuing the notices failed (the banner still asks everyone to acknowledge it): %w", v.Version, err)
		}
	}
	return v, true, nil
}

// DiffSummary lists what changed between two sets of values, e.g.
// "Values in force changed: images retention 90 days → 60 days".
func DiffSummary(old, cur PolicyValues) string {
	var changes []string
	text := func(label, a, b string) {
		if a != b {
			changes = append(changes, fmt.Sprintf("%s %s → %s", label, orNotSet(a), orNotSet(b)))
		}
	}
	text("controller", old.Controller, cur.Controller)
	text("contact email", old.ContactEmail, cur.ContactEmail)
	text("DPO email", old.DPOEmail, cur.DPOEmail)
	text("postal address", old.Address, cur.Address)
	if old.MinAge != cur.MinAge {
		changes = append(changes, fmt.Sprintf("minimum age %d → %d", old.MinAge, cur.MinAge))
	}
	if old.TLS != cur.TLS {
		changes = append(changes, fmt.Sprintf("TLS served by Z Image itself %t → %t", old.TLS, cur.TLS))
	}
	ow, cw := old.windows(), cur.windows()
	for i := range ow {
		if *ow[i].d != *cw[i].d {
			changes = append(changes, fmt.Sprintf("%s retention %s → %s", ow[i].label, HumanWindow(*ow[i].d), HumanWindow(*cw[i].d)))
		}
	}
	if len(changes) == 0 {
		return "Wording revised; no values in force changed."
	}
	return "Values in force changed: " + strings.Join(changes, "; ")
}

func orNotSet(s string) string {
	if s == "" {
		return "(not set)"
	}
	return fmt.Sprintf("%q", s)
}

func fromRow(r *sqlite.PolicyVersionRow) (PolicyVersion, error) {
	v := PolicyVersion{Version: r.Version, PublishedAt: r.PublishedAt, Summary: r.Summary, Significant: r.Significant, HTML: r.HTML, Text: r.Text}
	if r.ValuesJSON != "" {
		if err := json.Unmarshal([]byte(r.ValuesJSON), &v.Values); err != nil {
			return v, fmt.Errorf("privacy: decode values of policy version %d: %w", r.Version, err)
		}
	}
	return v, nil
}

// Current returns the latest version, or ENOTFOUND before the first Sync.
func (p *Policies) Current(ctx context.Context) (PolicyVersion, error) {
	r, err := p.db.LatestPolicyVersion(ctx)
	if err != nil {
		return PolicyVersion{}, err
	}
	return fromRow(r)
}

// Get returns version n, or ENOTFOUND.
func (p *Policies) Get(ctx context.Context, n int) (PolicyVersion, error) {
	r, err := p.db.PolicyVersion(ctx, n)
	if err != nil {
		return PolicyVersion{}, err
	}
	return fromRow(r)
}

// List returns every version newest first, without HTML and text.
func (p *Policies) List(ctx context.Context) ([]PolicyVersion, error) {
	rows, err := p.db.PolicyVersions(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]PolicyVersion, 0, len(rows))
	for _, r := range rows {
		v, err := fromRow(r)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// Accept records that userID acknowledged version; ENOTFOUND for an
// unknown user or version.
func (p *Policies) Accept(ctx context.Context, userID string, version int) error {
	if version < 1 {
		return app.Errorf(app.EINVALID, "Policy version must be 1 or more (got %d).", version)
	}
	return p.db.AcceptPolicy(ctx, userID, version)
}

// NeedsAcceptance returns the significant version userID has yet to
// acknowledge, if any.
func (p *Policies) NeedsAcceptance(ctx context.Context, userID string) (PolicyVersion, bool, error) {
	r, err := p.db.PendingSignificantPolicyVersion(ctx, userID)
	if app.ErrorCode(err) == app.ENOTFOUND {
		return PolicyVersion{}, false, nil
	} else if err != nil {
		return PolicyVersion{}, false, err
	}
	v, err := fromRow(r)
	return v, err == nil, err
}
