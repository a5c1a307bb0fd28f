package mail

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/url"
	"time"

	"github.com/oklog/ulid/v2"

	"zimage/app/sqlite"
)

// Sealer seals and opens a person's data with their key (the vault).
type Sealer interface {
	Seal(userID string, aad, plain []byte) ([]byte, error)
	Open(userID string, aad, sealed []byte) ([]byte, error)
}

// PayloadAAD binds a sealed payload to its outbox row.
func PayloadAAD(id string) []byte { return []byte("outbox/" + id + "/payload") }

// Outbox writes messages for the outbox: the store method of the event
// that causes a message inserts it in the event's transaction.
type Outbox struct {
	Vault Sealer
	Now   func() time.Time
	// Wake, if set, is called after a message is committed to the outbox
	// (the sender's Wake), so it goes out now rather than at the next poll.
	Wake func()
}

// Queued tells the sender a committed message waits.
func (o *Outbox) Queued() {
	if o != nil && o.Wake != nil {
		o.Wake()
	}
}

// New returns a sealed outbox row of kind for userID at address to. The
// fields fill the kind's strings (see embed/mail/en.toml).
func (o Outbox) New(userID, kind, to string, fields map[string]any) (*sqlite.Mail, error) {
	now := time.Now
	if o.Now != nil {
		now = o.Now
	}
	id := ulid.MustNew(ulid.Timestamp(now()), rand.Reader).String()
	p := map[string]any{}
	for k, v := range fields {
		p[k] = v
	}
	p["to"] = to
	raw, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("mail: encode %s: %w", kind, err)
	}
	sealed, err := o.Vault.Seal(userID, PayloadAAD(id), raw)
	if err != nil {
		return nil, fmt.Errorf("mail: seal %s: %w", kind, err)
	}
	return &sqlite.Mail{ID: id, UserID: userID, Kind: kind, SealedPayload: sealed}, nil
}

// openPayload returns the address and fields of a row.
func openPayload(v Sealer, m *sqlite.Mail) (to string, fields map[string]any, err error) {
	raw, err := v.Open(m.UserID, PayloadAAD(m.ID), m.SealedPayload)
	if err != nil {
		return "", nil, fmt.Errorf("payload unreadable: %w", err)
	}
	if err := json.Unmarshal(raw, &fields); err != nil {
		return "", nil, fmt.Errorf("payload undecodable: %w", err)
	}
	to, _ = fields["to"].(string)
	delete(fields, "to")
	if to == "" {
		return "", nil, fmt.Errorf("payload has no address")
	}
	return to, fields, nil
}

// MessageID is the Message-ID of outbox row id, the same at every try: a
// message sent again after a crash (sent, but not yet marked) carries the
// id of the first copy, and mail systems drop the duplicate.
func MessageID(id, baseURL string) string {
	host := "zimage.invalid"
	if u, err := url.Parse(baseURL); err == nil && u.Hostname() != "" {
		host = u.Hostname()
	}
	return id + "@" + host
}
