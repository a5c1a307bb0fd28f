package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"zimage/app"
	"zimage/app/config"
	"zimage/app/privacy"
)

// policyValues maps the config to the facts the privacy policy states.
func policyValues(cfg config.Config) privacy.PolicyValues {
	return privacy.PolicyValues{
		Controller:      cfg.Privacy.Controller,
		ContactEmail:    cfg.Privacy.ContactEmail,
		DPOEmail:        cfg.Privacy.DPOEmail,
		Address:         cfg.Privacy.Address,
		MinAge:          cfg.Auth.MinAge,
		TLS:             cfg.TLS.Mode != "off",
		Images:          cfg.Retention.Images.D(),
		DeletedAccounts: cfg.Retention.DeletedAccounts.D(),
		Usage:           cfg.Retention.Usage.D(),
		Support:         cfg.Retention.Support.D(),
		Exports:         cfg.Retention.Exports.D(),
		KeyringBackups:  cfg.Retention.KeyringBackups.D(),
		NoAIMarks:       !cfg.Provenance.Marks,
		NoCredentials:   !cfg.Provenance.Sign,
	}
}

// syncPolicy publishes a new policy version at start when the values in
// force changed the text. A version stored whose notices failed is logged,
// not fatal: the banner still asks everyone to acknowledge it.
func syncPolicy(ctx context.Context, cfg config.Config, p *privacy.Policies, log *slog.Logger) error {
	v, created, err := p.Sync(ctx, policyValues(cfg), "", false)
	if err != nil && created {
		log.Warn("privacy policy published, but notices were not queued", "version", v.Version, "err", err)
		return nil
	}
	return err
}

const policySynopsis = `policy show [--version N] [--json] | policy publish [--summary TEXT] [--significant]

  show     prints a published version of the privacy policy (default: the current one)
  publish  renders the policy from the config now and publishes it if its text changed;
           --significant shows a banner and asks everyone to acknowledge it.
           Run it before restarting the server with the changed config (the server
           publishes unmarked changes itself at start).`

func runPolicy(ctx context.Context, env Env, args []string) error {
	if len(args) > 0 {
		switch args[0] {
		case "show":
			return runPolicyShow(ctx, env, args[1:])
		case "publish":
			return runPolicyPublish(ctx, env, args[1:])
		}
	}
	fs := newFlags(env, "policy", policySynopsis)
	if err := parse(fs, args); err != nil {
		return err
	}
	return &usageError{msg: "usage: zimage policy show [--version N] | policy publish [--summary TEXT] [--significant]"}
}

func runPolicyShow(ctx context.Context, env Env, args []string) error {
	fs := newFlags(env, "policy show", "policy show [--version N] [--json]\n\nPrints a published version of the privacy policy: its number, date, summary and text (Markdown).")
	cfgPath := configFlag(fs, env)
	version := fs.Int("version", 0, "print version `N` instead of the current one")
	asJSON := fs.Bool("json", false, "print JSON (with the HTML) instead of text")
	if err := parse(fs, args); err != nil {
		return err
	}
	_, db, err := openConfigDB(ctx, env, *cfgPath)
	if err != nil {
		return err
	}
	defer db.Close()
	p := privacy.NewPolicies(db, nil, nil)
	var v privacy.PolicyVersion
	if *version != 0 {
		v, err = p.Get(ctx, *version)
	} else {
		v, err = p.Current(ctx)
	}
	if app.ErrorCode(err) == app.ENOTFOUND && *version == 0 {
		return app.Errorf(app.ENOTFOUND, "no privacy policy has been published yet: start the server once, or run zimage policy publish")
	} else if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(env.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	significant := ""
	if v.Significant {
		significant = " (significant change)"
	}
	fmt.Fprintf(env.Stdout, "Version %d, published %s%s\nSummary: %s\n\n%s", v.Version, v.PublishedAt.Format(time.DateOnly), significant, v.Summary, v.Text)
	return nil
}

func runPolicyPublish(ctx context.Context, env Env, args []string) error {
	fs := newFlags(env, "policy publish", policySynopsis)
	cfgPath := configFlag(fs, env)
	summary := fs.String("summary", "", "the key changes, in a sentence (default: the list of changed values)")
	significant := fs.Bool("significant", false, "mark the change significant: banner, notice to everyone, acknowledgement asked")
	if err := parse(fs, args); err != nil {
		return err
	}
	// The keyring is opened so a significant change queues its notice to
	// every person here, as the server's own start-up sync does.
	d, err := openDataFolder(ctx, env, *cfgPath)
	if err != nil {
		return err
	}
	defer d.close()
	notices := privacy.MailNotifier{DB: d.db, Vault: d.keys, Log: d.log}
	v, created, err := privacy.NewPolicies(d.db, d.log, notices).Sync(ctx, policyValues(d.cfg), *summary, *significant)
	if err != nil {
		return err
	}
	if !created {
		fmt.Fprintf(env.Stdout, "unchanged: version %d (published %s) already states these values\n", v.Version, v.PublishedAt.Format(time.DateOnly))
		return nil
	}
	fmt.Fprintf(env.Stdout, "published version %d: %s\n", v.Version, strconv.Quote(v.Summary))
	return nil
}
