package privacy

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"log/slog"

	"github.com/oklog/ulid/v2"

	"zimage/app"
	"zimage/app/sqlite"
	"zimage/app/vault"
)

// MailKindPolicyChange is the outbox kind of a significant-change notice.
const MailKindPolicyChange = "policy_change"

// PolicyChangeMail is the sealed payload of a notice: the recipient's
// address and what the mailer needs to write the message.
type PolicyChangeMail struct {
	To          string `json:"to"`
	Version     int    `json:"version"`
	Summary     string `json:"summary"`
	PublishedAt string `json:"published_at"`
}

// MailNotifier queues a notice of a significant policy change to every
// active account through the outbox (sent once mail is configured). It
// implements Notifier.
type MailNotifier struct {
	DB    *sqlite.DB
	Vault *vault.Vault
	Log   *slog.Logger
}

// NotifyPolicyChange enqueues one sealed message per active account. An
// account whose address cannot be opened is logged and skipped: one broken
// row must not keep everyone else uninformed.
func (n MailNotifier) NotifyPolicyChange(ctx context.Context, v PolicyVersion) error {
	log := n.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	after, queued := "", 0
	for {
		users, err := n.DB.ListUsers(ctx, after, 200)
		if err != nil {
			return err
		}
		if len(users) == 0 {
			break
		}
		for _, u := range users {
			after = u.ID
			if !u.Active() {
				continue
			}
			email, err := n.Vault.Open(u.ID, []byte("users/"+u.ID+"/email"), u.SealedEmail)
			if err != nil {
				log.Warn("policy notice: address unreadable; no notice queued", "user", u.ID, "err", err)
				continue
			}
			id := ulid.MustNew(ulid.Timestamp(n.DB.Now()), rand.Reader).String()
			payload, _ := json.Marshal(PolicyChangeMail{To: string(email), Version: v.Version, Summary: v.Summary,
				PublishedAt: v.PublishedAt.Format("2006-01-02")})
			sealed, err := n.Vault.Seal(u.ID, []byte("outbox/"+id+"/payload"), payload)
			if err != nil {
				log.Warn("policy notice: could not seal; no notice queued", "user", u.ID, "err", err)
				continue
			}
			if err := n.DB.EnqueueMail(ctx, &sqlite.Mail{ID: id, UserID: u.ID, Kind: MailKindPolicyChange, SealedPayload: sealed}); err != nil {
				return fmt.Errorf("privacy: queue policy notice: %w", err)
			}
			queued++
		}
	}
	log.Info("policy notice queued", "version", v.Version, "recipients", queued)
	return n.DB.AppendAudit(ctx, app.AuditEntry{Action: "policy.notice", Detail: controlsDetail("version", v.Version, "recipients", queued)})
}
