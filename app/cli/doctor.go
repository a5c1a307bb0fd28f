package cli

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"zimage/app/backend"
	"zimage/app/certs"
	"zimage/app/config"
	"zimage/app/sqlite"
	"zimage/app/vault"
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
			// One problem a line, under the first.
			return false, strings.ReplaceAll(cfgErr.Error(), "\n", "\n"+strings.Repeat(" ", 16))
		}
		return true, fmt.Sprintf("%s: valid", orDefaults(*cfgPath))
	}}}
	if cfgErr == nil {
		checks = append(checks, doctorChecks(ctx, cfg, env.Environ)...)
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

func doctorChecks(ctx context.Context, cfg config.Config, environ []string) []check {
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
		{"master key", func() (bool, string) {
			if lookupEnv(environ, "ZIMAGE_MASTER_KEY") != "" {
				return true, "taken from ZIMAGE_MASTER_KEY"
			}
			path := filepath.Join(dir, vault.MasterKeyFile)
			fi, err := os.Stat(path)
			if os.IsNotExist(err) {
				if _, err := os.Stat(filepath.Join(dir, vault.KeyringFile)); err == nil {
					return false, fmt.Sprintf("%s is missing but a keyring exists: restore master.key from your key backup, or nothing sealed can be read", path)
				}
				return true, "not created yet; zimage serve creates it (mode 0600) — back it up once it exists"
			} else if err != nil {
				return false, err.Error()
			}
			if fi.Mode().Perm()&0o077 != 0 {
				return false, fmt.Sprintf("%s is readable by other users (mode %04o): run chmod 600 %s", path, fi.Mode().Perm(), path)
			}
			return true, fmt.Sprintf("%s is private (mode %04o)", path, fi.Mode().Perm())
		}},
		{"signing", func() (bool, string) {
			_, st := signing(cfg, time.Now(), false)
			if st.Off == "provenance.sign = false" {
				return true, "off (provenance.sign = false): images carry the IPTC marks only"
			}
			if st.Off != "" {
				if key, cert, defaults := cfg.SigningFiles(); defaults && !exists(key) && !exists(cert) {
					return true, "no key yet; zimage serve makes a self-signed one (or run zimage provenance init)"
				}
				return false, st.Off + " — until fixed, images are stored with the IPTC marks but not signed"
			}
			return true, fmt.Sprintf("Content Credentials signed by %q, certificate valid until %s", st.Signer, st.NotAfter.UTC().Format(time.DateOnly))
		}},
		{"file modes", func() (bool, string) {
			return checkFileModes(dir, cfg.KeyringBackupDir())
		}},
		{"backends", func() (bool, string) {
			bs, _, err := buildBackends(cfg)
			if err != nil {
				return false, errMessage(err)
			}
			// The same inspection as the running server's pool: answering is
			// not enough, the server must have the files its jobs need.
			var down []string
			for _, b := range bs {
				hctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				in, err := backend.Inspect(hctx, b)
				cancel()
				switch {
				case err != nil:
					down = append(down, fmt.Sprintf("%s: %s", b.Name(), errMessage(err)))
				case len(in.Models) == 0:
					down = append(down, fmt.Sprintf("%s answers but lists no models: install one on the server, or set model in its [[backends]] table", b.Name()))
				}
				if len(in.Missing) > 0 {
					down = append(down, fmt.Sprintf("%s lacks %s: put each file in that folder on the model server", b.Name(), strings.Join(in.Missing, ", ")))
				}
			}
			if len(down) > 0 {
				return false, strings.Join(down, "; ")
			}
			return true, fmt.Sprintf("%d backend(s) answer and have the models their jobs need", len(bs))
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

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// checkFileModes finds files in the data folder and the keyring backup
// folder that other accounts on the machine could read or write: every
// file Z Image creates there holds data and is made 0600. Certmagic's lock
// files (no data, short-lived) are left out.
func checkFileModes(dirs ...string) (bool, string) {
	var open []string
	files := 0
	for i, root := range dirs {
		if i > 0 && within(root, dirs[0]) {
			continue // walked already
		}
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					return nil
				}
				return err
			}
			if d.IsDir() && d.Name() == "locks" && filepath.Base(filepath.Dir(path)) == "certmagic" {
				return filepath.SkipDir
			}
			if !d.Type().IsRegular() {
				return nil
			}
			fi, err := d.Info()
			if err != nil {
				return nil // removed while walking
			}
			files++
			if fi.Mode().Perm()&0o077 != 0 {
				open = append(open, fmt.Sprintf("%s (%04o)", path, fi.Mode().Perm()))
			}
			return nil
		})
		if err != nil {
			return false, fmt.Sprintf("cannot read %s (%v): run doctor as the account that runs Z Image", root, unwrapPathErr(err))
		}
	}
	if len(open) > 0 {
		more := ""
		if len(open) > 5 {
			more = fmt.Sprintf(" and %d more", len(open)-5)
			open = open[:5]
		}
		return false, fmt.Sprintf("readable by other accounts, not 0600: %s%s: run chmod 600 on them (find %s -type f -exec chmod 600 {} +)",
			strings.Join(open, ", "), more, strings.Join(dirs, " "))
	}
	return true, fmt.Sprintf("all %d files are private (0600)", files)
}

// within reports whether path is dir or inside it.
func within(path, dir string) bool {
	rel, err := filepath.Rel(dir, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}
