package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"zimage/app"
	"zimage/app/auth"
	"zimage/app/media"
	"zimage/app/privacy"
)

const exportSynopsis = `export --user USER --out FILE

Writes the same archive a person gets from "Download my data" (README, JSON files with their
JSON Schemas, and the image files), decrypted, to FILE: for an administrator answering a
legal or data-rights request on someone's behalf. USER is a username, an email address or an
account id. FILE must not exist yet. The export is recorded in the audit log (export.admin).
The server may keep running.`

func runExport(ctx context.Context, env Env, args []string) error {
	fs := newFlags(env, "export", exportSynopsis)
	cfgPath := configFlag(fs, env)
	user := fs.String("user", "", "the account to export: `USER` name, email or id")
	out := fs.String("out", "", "write the ZIP to `FILE` (must not exist)")
	if err := parse(fs, args); err != nil {
		return err
	}
	switch {
	case fs.NArg() > 0:
		return &usageError{msg: fmt.Sprintf("unexpected argument %q (see zimage export --help)", fs.Arg(0))}
	case *user == "" || *out == "":
		return &usageError{msg: "usage: zimage export --user USER --out FILE (both are needed)"}
	}
	// Checked before anything is opened, and again atomically at create:
	// an existing file is never overwritten.
	if _, err := os.Lstat(*out); err == nil {
		return &app.Error{Code: app.ECONFLICT, Message: fmt.Sprintf("%s already exists: choose another --out file, or move that one away first", *out)}
	}
	d, err := openDataFolder(ctx, env, *cfgPath)
	if err != nil {
		return err
	}
	defer d.close()
	cfg, db, keys, log := d.cfg, d.db, d.keys, d.log
	accounts := auth.New(db, keys, authOptions(cfg, log))
	u, err := findUser(ctx, accounts, *user)
	if err != nil {
		return err
	}
	m, err := media.New(cfg.Server.DataDir, db, keys, mediaOptions(cfg, log))
	if err != nil {
		return err
	}
	exports := privacy.NewExports(db, keys, accounts, m, privacy.NewPolicies(db, log, nil),
		privacy.ExportOptions{Dir: exportsDir(cfg), Keep: cfg.Retention.Exports.D(), Log: log})

	f, err := os.OpenFile(*out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return &app.Error{Code: app.ECONFLICT, Message: fmt.Sprintf("%s already exists: choose another --out file, or move that one away first", *out)}
	} else if err != nil {
		return &app.Error{Code: app.EINVALID, Message: fmt.Sprintf("cannot create %s (%v): check the folder exists and is writable", *out, unwrapPathErr(err))}
	}
	if err := exports.Write(ctx, u.ID, f); err != nil {
		f.Close()
		os.Remove(*out)
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(*out)
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(*out)
		return err
	}
	if err := db.AppendAudit(ctx, app.AuditEntry{SubjectID: u.ID, Action: app.AuditExportAdmin, Detail: `{"via":"cli"}`}); err != nil {
		os.Remove(*out)
		return fmt.Errorf("export written but not audited, so it was removed again: %w", err)
	}
	abs, _ := filepath.Abs(*out)
	fmt.Fprintf(env.Stdout, "wrote the export of %s (%s) to %s\nit is not encrypted: hand it over securely and delete it afterwards\n", u.Username, u.ID, abs)
	return nil
}

// findUser resolves an account by id, or else by username or email.
func findUser(ctx context.Context, accounts *auth.Service, login string) (*app.User, error) {
	if u, err := accounts.User(ctx, login); err == nil {
		return u, nil
	}
	u, err := accounts.UserByLogin(ctx, login)
	if app.ErrorCode(err) == app.ENOTFOUND || app.ErrorCode(err) == app.EINVALID {
		return nil, &app.Error{Code: app.ENOTFOUND, Message: fmt.Sprintf("there is no account %q: give a username, email address or account id (zimage user list shows them)", login)}
	}
	return u, err
}
