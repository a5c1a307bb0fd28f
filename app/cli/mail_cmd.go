package cli

import (
	"context"
	"fmt"
	"sort"
	"text/tabwriter"

	"zimage/app"
)

// runMail shows the outbox to an admin: how much waits, retries and was
// dead-lettered, and what was sent by kind (never to whom or what it
// said: that is sealed with each person's key); `retry ID` gives a dead
// letter a fresh round of tries.
func runMail(ctx context.Context, env Env, args []string) error {
	fs := newFlags(env, "mail", "mail [retry ID]\n\nShows the mail outbox: counts by state, the dead letters with the relay's last answer, and mail sent by kind. With mail off (no mail.host) this is what would have been sent.\n`mail retry ID` tries a dead letter again.")
	cfgPath := configFlag(fs, env)
	if err := parse(fs, args); err != nil {
		return err
	}
	_, db, closeAll, err := openAccounts(ctx, env, *cfgPath)
	if err != nil {
		return err
	}
	defer closeAll()
	switch {
	case fs.NArg() == 2 && fs.Arg(0) == "retry":
		id := fs.Arg(1)
		if err := db.RetryMail(ctx, id, app.AuditEntry{Action: app.AuditMailRetry, Detail: fmt.Sprintf(`{"id":%q,"via":"cli"}`, id)}); err != nil {
			return err
		}
		fmt.Fprintf(env.Stdout, "message %s will be tried again by the running server\n", id)
		return nil
	case fs.NArg() != 0:
		return &usageError{msg: "usage: zimage mail [retry ID]"}
	}
	sum, err := db.MailSummary(ctx)
	if err != nil {
		return err
	}
	dead, err := db.DeadMail(ctx, 100)
	if err != nil {
		return err
	}
	w := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "waiting\t%d\nretrying\t%d\ndead-lettered\t%d\n", sum.Pending, sum.Retrying, sum.Dead)
	kinds := make([]string, 0, len(sum.SentByKind))
	for k := range sum.SentByKind {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	for _, k := range kinds {
		fmt.Fprintf(w, "sent %s\t%d\n", k, sum.SentByKind[k])
	}
	if len(dead) > 0 {
		fmt.Fprintf(w, "\nDEAD LETTER\tKIND\tTRIES\tSINCE\tLAST ANSWER\n")
		for _, m := range dead {
			fmt.Fprintf(w, "%s\t%s\t%d\t%s\t%s\n", m.ID, m.Kind, m.Tries, m.DeadAt.UTC().Format("2006-01-02 15:04"), m.LastError)
		}
	}
	return w.Flush()
}
