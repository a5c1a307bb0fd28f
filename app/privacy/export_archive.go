package privacy

import (
	"archive/zip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path"
	"strings"
	"time"

	"zimage/app"
)

// The archive's records. They are the export's public format: each has a
// JSON Schema in schemas/, generated from these structs.

type exportAccount struct {
	ID                string     `json:"id"`
	Username          string     `json:"username"`
	Role              string     `json:"role"`
	CreatedAt         time.Time  `json:"created_at"`
	AgeConfirmedAt    *time.Time `json:"age_confirmed_at" doc:"when you affirmed the minimum age (no birth date is kept)"`
	PasswordChangedAt *time.Time `json:"password_changed_at"`
	TwoFactorEnabled  bool       `json:"two_factor_enabled"`
	DisabledAt        *time.Time `json:"disabled_at"`
	DeletedAt         *time.Time `json:"deleted_at"`
}

type exportProfile struct {
	Email       string `json:"email"`
	DisplayName string `json:"display_name"`
}

type exportConsent struct {
	Purpose       string    `json:"purpose"`
	Granted       bool      `json:"granted"`
	At            time.Time `json:"at"`
	PolicyVersion int       `json:"policy_version"`
	Method        string    `json:"method"`
}

type exportSession struct {
	ID         string    `json:"id"`
	CreatedAt  time.Time `json:"created_at"`
	LastSeenAt time.Time `json:"last_seen_at"`
	ExpiresAt  time.Time `json:"expires_at"`
	Device     string    `json:"device" doc:"browser and system, summarised"`
	Place      string    `json:"place" doc:"network address cut to its network (IPv4 /24, IPv6 /48)"`
}

type exportAPIKey struct {
	ID         string     `json:"id"`
	Name       string     `json:"name"`
	Prefix     string     `json:"prefix"`
	Scopes     []string   `json:"scopes"`
	CreatedAt  time.Time  `json:"created_at"`
	LastUsedAt *time.Time `json:"last_used_at"`
	RevokedAt  *time.Time `json:"revoked_at"`
}

type exportGeneration struct {
	ID             string     `json:"id"`
	Status         string     `json:"status"`
	Prompt         string     `json:"prompt"`
	NegativePrompt string     `json:"negative_prompt"`
	Width          int        `json:"width"`
	Height         int        `json:"height"`
	Steps          int        `json:"steps"`
	Guidance       float64    `json:"guidance"`
	Seed           int64      `json:"seed"`
	Count          int        `json:"count"`
	Backend        string     `json:"backend"`
	Model          string     `json:"model"`
	ErrorMessage   string     `json:"error_message"`
	CreatedAt      time.Time  `json:"created_at"`
	StartedAt      *time.Time `json:"started_at"`
	FinishedAt     *time.Time `json:"finished_at"`
}

type exportImage struct {
	ID             string    `json:"id"`
	GenerationID   string    `json:"generation_id"`
	Index          int       `json:"index"`
	File           string    `json:"file" doc:"path of the image file inside this archive"`
	ContentType    string    `json:"content_type"`
	Bytes          int64     `json:"bytes"`
	Width          int       `json:"width"`
	Height         int       `json:"height"`
	Seed           int64     `json:"seed"`
	Prompt         string    `json:"prompt"`
	NegativePrompt string    `json:"negative_prompt"`
	Steps          int       `json:"steps"`
	Guidance       float64   `json:"guidance"`
	Backend        string    `json:"backend"`
	Model          string    `json:"model"`
	Favourite      bool      `json:"favourite"`
	CreatedAt      time.Time `json:"created_at"`
	ExpiresAt      time.Time `json:"expires_at" doc:"when the images retention job deletes it"`
}

type exportUsageEvent struct {
	Kind   string          `json:"kind"`
	Route  string          `json:"route"`
	At     time.Time       `json:"at"`
	Detail json.RawMessage `json:"detail"`
}

type exportTicket struct {
	ID            string                `json:"id"`
	Subject       string                `json:"subject"`
	Status        string                `json:"status"`
	CreatedAt     time.Time             `json:"created_at"`
	LastMessageAt time.Time             `json:"last_message_at"`
	Messages      []exportTicketMessage `json:"messages"`
}

type exportTicketMessage struct {
	ID         string    `json:"id"`
	AuthorRole string    `json:"author_role" doc:"user (you), support or admin"`
	Body       string    `json:"body"`
	CreatedAt  time.Time `json:"created_at"`
}

type exportAuditEntry struct {
	Seq         int64           `json:"seq"`
	At          time.Time       `json:"at"`
	Action      string          `json:"action"`
	ByYou       bool            `json:"by_you" doc:"you did it; otherwise staff or the system did"`
	AboutYou    bool            `json:"about_you"`
	Detail      json.RawMessage `json:"detail"`
	HashHex     string          `json:"hash" doc:"this entry's link in the hash-chained audit log"`
	PrevHashHex string          `json:"prev_hash"`
}

type exportRequest struct {
	ID         string     `json:"id"`
	Kind       string     `json:"kind"`
	Status     string     `json:"status"`
	Details    string     `json:"details"`
	CreatedAt  time.Time  `json:"created_at"`
	DueAt      time.Time  `json:"due_at"`
	ClosedAt   *time.Time `json:"closed_at"`
	Resolution string     `json:"resolution"`
}

func optTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// archive is one export being written.
type archive struct {
	ctx    context.Context
	x      *Exports
	userID string
	zw     *zip.Writer
	made   time.Time
	policy string
}

func (a *archive) writeAll() error {
	a.policy = "no policy version had been published"
	if a.x.policies != nil {
		if v, err := a.x.policies.Current(a.ctx); err == nil {
			a.policy = fmt.Sprintf("version %d, published %s", v.Version, v.PublishedAt.Format(time.DateOnly))
		}
	}
	steps := []func() error{a.readme, a.account, a.consents, a.sessions, a.apiKeys, a.generations, a.imagesAndFiles,
		a.usage, a.tickets, a.audit, a.requests}
	for _, step := range steps {
		if err := a.ctx.Err(); err != nil {
			return err
		}
		if err := step(); err != nil {
			return err
		}
	}
	return nil
}

func (a *archive) create(name string, store bool) (io.Writer, error) {
	h := &zip.FileHeader{Name: name, Method: zip.Deflate, Modified: a.made}
	if store {
		h.Method = zip.Store // images are compressed already
	}
	w, err := a.zw.CreateHeader(h)
	if err != nil {
		return nil, app.Wrap(err, "Could not write %s into the export.", name)
	}
	return w, nil
}

// writeJSON writes name (e.g. "account.json") and its schema.
func (a *archive) writeJSON(name string, v any) error {
	w, err := a.create(name, false)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return app.Wrap(err, "Could not write %s into the export.", name)
	}
	base := strings.TrimSuffix(name, ".json")
	about := ""
	for _, f := range ExportFiles {
		if f.Name == name {
			about = f.About
		}
	}
	sw, err := a.create("schemas/"+base+".schema.json", false)
	if err != nil {
		return err
	}
	enc = json.NewEncoder(sw)
	enc.SetIndent("", "  ")
	if err := enc.Encode(schemaFor(name, about, v)); err != nil {
		return app.Wrap(err, "Could not write the schema of %s into the export.", name)
	}
	return nil
}

func (a *archive) readme() error {
	w, err := a.create("README.txt", false)
	if err != nil {
		return err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Z Image data export\n===================\n\n")
	fmt.Fprintf(&b, "Made: %s (UTC)\nAccount id: %s\nPrivacy policy in force: %s\n\n", a.made.Format(time.RFC3339), a.userID, a.policy)
	b.WriteString("This archive holds everything this Z Image installation keeps about you, in\n")
	b.WriteString("machine-readable form so that you can read it or take it to another service.\n")
	b.WriteString("Times are RFC 3339 in UTC. Each JSON file has a JSON Schema (draft 2020-12)\n")
	b.WriteString("describing it in schemas/<name>.schema.json.\n\nFiles:\n")
	for _, f := range ExportFiles {
		fmt.Fprintf(&b, "  %-18s %s\n", f.Name, f.About)
	}
	b.WriteString("  images/            the image files themselves, decrypted, named by image id\n")
	b.WriteString("  schemas/           one JSON Schema per JSON file\n\n")
	b.WriteString("Not included: your password (only a one-way hash is kept), your API keys and\n")
	b.WriteString("session tokens (only hashes are kept), and the names of staff who handled your\n")
	b.WriteString("requests. Everything personal is stored encrypted with a key of your own;\n")
	b.WriteString("deleting your account destroys that key.\n")
	_, err = io.WriteString(w, b.String())
	return err
}

func (a *archive) account() error {
	u, err := a.x.profiles.Profile(a.ctx, a.userID)
	if err != nil {
		return err
	}
	acc := exportAccount{ID: u.ID, Username: u.Username, Role: u.Role, CreatedAt: u.CreatedAt, AgeConfirmedAt: optTime(u.AgeConfirmedAt),
		PasswordChangedAt: optTime(u.PasswordChangedAt), TwoFactorEnabled: u.TOTPEnabled, DisabledAt: optTime(u.DisabledAt), DeletedAt: optTime(u.DeletedAt)}
	if err := a.writeJSON("account.json", acc); err != nil {
		return err
	}
	return a.writeJSON("profile.json", exportProfile{Email: u.Email, DisplayName: u.DisplayName})
}

func (a *archive) consents() error {
	rows, err := a.x.db.Consents(a.ctx, a.userID)
	if err != nil {
		return err
	}
	out := make([]exportConsent, 0, len(rows))
	for i := len(rows) - 1; i >= 0; i-- { // oldest first, as a history reads
		r := rows[i]
		out = append(out, exportConsent{Purpose: r.Purpose, Granted: r.Granted, At: r.At, PolicyVersion: r.PolicyVersion, Method: r.Method})
	}
	return a.writeJSON("consents.json", out)
}

func (a *archive) sessions() error {
	rows, err := a.x.db.ListSessions(a.ctx, a.userID)
	if err != nil {
		return err
	}
	out := make([]exportSession, 0, len(rows))
	for _, r := range rows {
		s, err := r.Opened(a.x.sealer)
		if err != nil {
			return err
		}
		out = append(out, exportSession{ID: s.ID, CreatedAt: s.CreatedAt, LastSeenAt: s.LastSeenAt, ExpiresAt: s.ExpiresAt, Device: s.Device, Place: s.Place})
	}
	return a.writeJSON("sessions.json", out)
}

func (a *archive) apiKeys() error {
	rows, err := a.x.db.ListAPIKeys(a.ctx, a.userID)
	if err != nil {
		return err
	}
	out := make([]exportAPIKey, 0, len(rows))
	for _, r := range rows {
		k, err := r.Opened(a.x.sealer)
		if err != nil {
			return err
		}
		out = append(out, exportAPIKey{ID: k.ID, Name: k.Name, Prefix: k.Prefix, Scopes: append([]string{}, k.Scopes...), CreatedAt: k.CreatedAt,
			LastUsedAt: optTime(k.LastUsedAt), RevokedAt: optTime(k.RevokedAt)})
	}
	return a.writeJSON("api_keys.json", out)
}

func (a *archive) generations() error {
	out := []exportGeneration{}
	before := ""
	for {
		if err := a.ctx.Err(); err != nil {
			return err
		}
		rows, err := a.x.db.Generations(a.ctx, a.userID, before, 500)
		if err != nil {
			return err
		}
		for _, r := range rows {
			g := r.Generation
			p, err := a.x.sealer.Open(a.userID, []byte("generations/"+g.ID+"/prompt"), r.SealedPrompt)
			if err != nil {
				return app.Wrap(err, "Could not decrypt the prompt of generation %s.", g.ID)
			}
			n, err := a.x.sealer.Open(a.userID, []byte("generations/"+g.ID+"/negative_prompt"), r.SealedNegativePrompt)
			if err != nil {
				return app.Wrap(err, "Could not decrypt the negative prompt of generation %s.", g.ID)
			}
			out = append(out, exportGeneration{ID: g.ID, Status: g.Status, Prompt: string(p), NegativePrompt: string(n), Width: g.Width, Height: g.Height,
				Steps: g.Steps, Guidance: g.Guidance, Seed: g.Seed, Count: g.Count, Backend: g.AssignedBackend, Model: g.Model,
				ErrorMessage: g.ErrorMessage, CreatedAt: g.CreatedAt, StartedAt: optTime(g.StartedAt), FinishedAt: optTime(g.FinishedAt)})
		}
		if len(rows) < 500 {
			break
		}
		before = rows[len(rows)-1].ID
	}
	return a.writeJSON("generations.json", out)
}

func imageExt(contentType string) string {
	switch contentType {
	case "image/jpeg":
		return ".jpg"
	case "image/webp":
		return ".webp"
	}
	return ".png"
}

// imagesAndFiles writes each image file as it is listed, then images.json:
// files stream through one at a time, so memory stays flat.
func (a *archive) imagesAndFiles() error {
	out := []exportImage{}
	cursor := ""
	for {
		if err := a.ctx.Err(); err != nil {
			return err
		}
		page, next, err := a.x.images.List(a.ctx, a.userID, cursor, 100, "")
		if err != nil {
			return err
		}
		for _, img := range page {
			name := path.Join("images", img.ID+imageExt(img.ContentType))
			rc, _, _, err := a.x.images.Open(a.ctx, a.userID, img.ID, "png", "full")
			if app.ErrorCode(err) == app.ENOTFOUND {
				continue // deleted or expired while the export ran
			} else if err != nil {
				return err
			}
			w, err := a.create(name, true)
			if err == nil {
				_, err = io.Copy(w, rc)
			}
			rc.Close()
			if err != nil {
				return app.Wrap(err, "Could not write image %s into the export.", img.ID)
			}
			out = append(out, exportImage{ID: img.ID, GenerationID: img.GenerationID, Index: img.Index, File: name, ContentType: img.ContentType,
				Bytes: img.Bytes, Width: img.Width, Height: img.Height, Seed: img.Seed, Prompt: img.Prompt, NegativePrompt: img.NegativePrompt,
				Steps: img.Steps, Guidance: img.Guidance, Backend: img.Backend, Model: img.Model, Favourite: img.Favourite,
				CreatedAt: img.CreatedAt, ExpiresAt: img.ExpiresAt})
		}
		if next == "" {
			break
		}
		cursor = next
	}
	return a.writeJSON("images.json", out)
}

func rawDetail(s string) json.RawMessage {
	if s == "" || !json.Valid([]byte(s)) {
		return json.RawMessage("{}")
	}
	return json.RawMessage(s)
}

func (a *archive) usage() error {
	rows, err := a.x.db.UsageEventsOf(a.ctx, a.userID)
	if err != nil {
		return err
	}
	out := make([]exportUsageEvent, 0, len(rows))
	for _, e := range rows {
		out = append(out, exportUsageEvent{Kind: e.Kind, Route: e.Route, At: e.At, Detail: rawDetail(e.Detail)})
	}
	return a.writeJSON("usage_events.json", out)
}

func (a *archive) tickets() error {
	s := &Support{db: a.x.db, sealer: a.x.sealer, log: a.x.opts.Log}
	list, err := s.List(a.ctx, a.userID)
	if err != nil {
		return err
	}
	out := make([]exportTicket, 0, len(list))
	for _, t := range list {
		full, err := s.Get(a.ctx, a.userID, t.ID)
		if app.ErrorCode(err) == app.ENOTFOUND {
			continue
		} else if err != nil {
			return err
		}
		et := exportTicket{ID: full.ID, Subject: full.Subject, Status: full.Status, CreatedAt: full.CreatedAt, LastMessageAt: full.LastMessageAt,
			Messages: make([]exportTicketMessage, 0, len(full.Messages))}
		for _, m := range full.Messages {
			et.Messages = append(et.Messages, exportTicketMessage{ID: m.ID, AuthorRole: m.AuthorRole, Body: m.Body, CreatedAt: m.CreatedAt})
		}
		out = append(out, et)
	}
	return a.writeJSON("tickets.json", out)
}

func (a *archive) audit() error {
	rows, err := a.x.db.AuditEntriesOf(a.ctx, a.userID)
	if err != nil {
		return err
	}
	out := make([]exportAuditEntry, 0, len(rows))
	for _, e := range rows {
		out = append(out, exportAuditEntry{Seq: e.Seq, At: e.At, Action: e.Action, ByYou: e.ActorID == a.userID, AboutYou: e.SubjectID == a.userID,
			Detail: rawDetail(e.Detail), HashHex: fmt.Sprintf("%x", e.Hash), PrevHashHex: fmt.Sprintf("%x", e.PrevHash)})
	}
	return a.writeJSON("audit.json", out)
}

func (a *archive) requests() error {
	r := &Requests{db: a.x.db, sealer: a.x.sealer, log: a.x.opts.Log}
	list, err := r.List(a.ctx, a.userID)
	if err != nil {
		return err
	}
	out := make([]exportRequest, 0, len(list))
	for _, q := range list {
		out = append(out, exportRequest{ID: q.ID, Kind: q.Kind, Status: q.Status, Details: q.Details, CreatedAt: q.CreatedAt, DueAt: q.DueAt,
			ClosedAt: optTime(q.ClosedAt), Resolution: q.Resolution})
	}
	return a.writeJSON("requests.json", out)
}
