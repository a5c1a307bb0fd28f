package cli

import (
	"context"
	"fmt"

	"zimage/app/media"
	"zimage/app/privacy"
)

const trainingSynopsis = `training export --out DIR [--config FILE]

Writes DIR/dataset.jsonl (prompt, negative prompt, seed, size, steps, model,
image file) and DIR/images/ (the decrypted originals) for the people whose
latest training consent is granted now, whose account is not deleted and who
have not restricted processing. Nobody is included by default: training use
is opt-in. DIR must be new or empty. The run is audited (counts only).
The dataset is plaintext: keep it as carefully as the data folder, and make
a new one rather than reuse an old one after people withdraw consent.`

func runTraining(ctx context.Context, env Env, args []string) error {
	if len(args) == 0 || args[0] != "export" {
		fs := newFlags(env, "training", trainingSynopsis)
		if err := parse(fs, args); err != nil {
			return err
		}
		return &usageError{msg: "usage: zimage training export --out DIR"}
	}
	fs := newFlags(env, "training export", trainingSynopsis)
	cfgPath := configFlag(fs, env)
	out := fs.String("out", "", "write the dataset into `DIR` (new or empty)")
	if err := parse(fs, args[1:]); err != nil {
		return err
	}
	switch {
	case fs.NArg() > 0:
		return &usageError{msg: fmt.Sprintf("unexpected argument %q (see zimage training export --help)", fs.Arg(0))}
	case *out == "":
		return &usageError{msg: "usage: zimage training export --out DIR (--out is needed)"}
	}
	d, err := openDataFolder(ctx, env, *cfgPath)
	if err != nil {
		return err
	}
	defer d.close()
	cfg, db, keys, log := d.cfg, d.db, d.keys, d.log
	m, err := media.New(cfg.Server.DataDir, db, keys, media.Options{ImagesRetention: cfg.Retention.Images.D(), Logger: log})
	if err != nil {
		return err
	}
	controls := privacy.NewControls(privacy.ControlsDeps{DB: db, Vault: keys, Log: log})
	res, err := controls.ExportTraining(ctx, m, *out)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "training dataset written to %s: %d images from %d consenting people\n", *out, res.Images, res.People)
	return nil
}
