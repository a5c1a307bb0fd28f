package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"zimage/app/certs"
	"zimage/app/config"
	"zimage/app/sqlite"
)

type check struct {
	name string
	run  func() (ok bool, detail string)
}

func runDoctor(ctx context.Context, env Env, args []string) error {
	fs := newFlags(env, "doctor", "doctor [--config FILE]\n\nChecks the config, the data folder, the database and TLS settings, printing OK or FAIL\nwith how to fix each. Exits 1 if any check fails. Changes nothing.")
	cfgPath := configFlag(fs, env)
	if err := parse(fs, args); err != nil {
		return err
	}
	cfg, cfgErr := config.Load(*cfgPath, env.Environ)
	checks := []check{{"config", func() (bool, string) {
		if cfgErr != nil {
			return false, cfgErr.Error()
		}
		return true, fmt.Sprintf("%s is valid", orDefaults(*cfgPath))
	}}}
	if cfgErr == nil {
		checks = append(checks, doctorChecks(ctx, cfg)...)
	}
	failed := 0
	for _, c := range checks {
		ok, detail := c.run()
		status := "OK  "
		if !ok {
			status = "FAIL"
			failed++
		}
		fmt.Fprintf(env.Stdout, "%s %-10s %s\n", status, c.name, detail)
	}
	if failed > 0 {
		return fmt.Errorf("%d check(s) failed", failed)
	}
	return nil
}

func orDefaults(path string) string {
	if path == "" {
		return "the built-in defaults"
	}
	return path
}

func doctorChecks(ctx context.Context, cfg config.Config) []check {
	dir := cfg.Server.DataDir
	dbPath := filepath.Join(dir, "zimage.db")
	return []check{
		{"data_dir", func() (bool, string) {
			fi, err := os.Stat(dir)
			if os.IsNotExist(err) {
				return true, fmt.Sprintf("%s does not exist yet; zimage serve creates it (mode 0700)", dir)
			} else if err != nil {
				return false, fmt.Sprintf("%s: %v", dir, err)
			}
			if !fi.IsDir() {
				return false, fmt.Sprintf("%s is not a folder: set server.data_dir to a folder", dir)
			}
			if fi.Mode().Perm()&0o077 != 0 {
				return false, fmt.Sprintf("%s is open to other users (mode %04o): run chmod 700 %s", dir, fi.Mode().Perm(), dir)
			}
			probe, err := os.CreateTemp(dir, ".doctor-*")
			if err != nil {
				return false, fmt.Sprintf("%s is not writable (%v): chown it to zimage's user", dir, unwrapPathErr(err))
			}
			probe.Close()
			os.Remove(probe.Name())
			return true, fmt.Sprintf("%s is a private, writable folder", dir)
		}},
		{"database", func() (bool, string) {
			if _, err := os.Stat(dbPath); os.IsNotExist(err) {
				return true, "no database yet; zimage serve creates it"
			}
			db, err := sqlite.Open(ctx, dbPath)
			if err != nil {
				return false, errMessage(err)
			}
			defer db.Close()
			if err := db.IntegrityCheck(ctx); err != nil {
				return false, fmt.Sprintf("%v: restore the latest backup (zimage restore)", err)
			}
			v, _ := db.SchemaVersion(ctx)
			return true, fmt.Sprintf("%s passes the integrity check (schema %d)", dbPath, v)
		}},
		{"tls", func() (bool, string) {
			switch cfg.TLS.Mode {
			case "off":
				return true, "off: plain HTTP; fine on localhost or behind a TLS-terminating reverse proxy"
			case "files":
				if err := certs.Check(certOptions(cfg)); err != nil {
					return false, errMessage(err)
				}
				return true, fmt.Sprintf("files: %s and %s load as a pair", cfg.TLS.CertFile, cfg.TLS.KeyFile)
			default:
				if err := certs.Check(certOptions(cfg)); err != nil {
					return false, errMessage(err)
				}
				ca := cfg.TLS.CAURL
				if ca == "" {
					ca = "Let's Encrypt"
				}
				return true, fmt.Sprintf("auto: certificates for %v from %s; ports %s and %s must be reachable from the internet", cfg.TLS.Domains, ca, cfg.TLS.Listen, cfg.TLS.HTTPListen)
			}
		}},
	}
}
