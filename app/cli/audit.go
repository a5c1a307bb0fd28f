package cli

import (
	"context"
	"errors"
	"fmt"

	"zimage/app"
	"zimage/app/sqlite"
)

func runAudit(ctx context.Context, env Env, args []string) error {
	fs := newFlags(env, "audit", "audit verify\n\nWalks the hash-chained audit log and exits 1 at the first entry that was changed, removed or inserted.")
	cfgPath := configFlag(fs, env)
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 || fs.Arg(0) != "verify" {
		return &usageError{msg: "usage: zimage audit verify"}
	}
	_, db, closeAll, err := openAccounts(ctx, env, *cfgPath)
	if err != nil {
		return err
	}
	defer closeAll()
	n, err := db.VerifyAudit(ctx)
	var broken *sqlite.AuditBrokenError
	if errors.As(err, &broken) {
		return &app.Error{Code: app.ECONFLICT, Message: fmt.Sprintf("audit log NOT intact: entry %d: %s (%d entries before it check out). Restore the database from a backup to compare, and find out who had access to the file.", broken.Seq, broken.Reason, n)}
	} else if err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "audit log intact: %d entries verified\n", n)
	return nil
}
