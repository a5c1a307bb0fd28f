package cli

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"zimage/app/config"
	"zimage/app/provenance"
	"zimage/app/provenance/c2pa"
	"zimage/app/web"
)

// selfSignedValidity is how long a certificate from "zimage provenance
// init" (or the first start) lasts.
const selfSignedValidity = 2 * 365 * 24 * time.Hour

// signing loads the C2PA signer the config asks for. A broken key or
// certificate never stops the server: images are still stored with the
// IPTC marks, and Off says why they are not signed (logged at start, shown
// on the admin's backends page, checked by doctor). create makes the
// data folder's self-signed pair when neither file is configured and they
// do not exist yet (serve does; doctor only looks).
func signing(cfg config.Config, now time.Time, create bool) (provenance.Credentials, web.Signing) {
	if !cfg.Provenance.Sign {
		return provenance.Credentials{}, web.Signing{Off: "provenance.sign = false"}
	}
	keyFile, certFile, defaults := cfg.SigningFiles()
	if defaults && create {
		if _, err := os.Stat(keyFile); errors.Is(err, fs.ErrNotExist) {
			if _, err := os.Stat(certFile); errors.Is(err, fs.ErrNotExist) {
				if err := writeSelfSigned(keyFile, certFile, now, false); err != nil {
					return provenance.Credentials{}, web.Signing{Off: err.Error()}
				}
			}
		}
	}
	s, err := c2pa.LoadSigner(keyFile, certFile, now)
	if err != nil {
		return provenance.Credentials{}, web.Signing{Off: err.Error()}
	}
	return provenance.Credentials{Signer: s, Version: Version(), IncludeModel: cfg.Provenance.IncludeModel},
		web.Signing{Signer: s.CommonName, NotAfter: s.NotAfter}
}

// logSigning says at start whether files are signed, and why not.
func logSigning(log *slog.Logger, st web.Signing) {
	if st.Off != "" {
		log.Error("Content Credentials signing is off; images are still stored with the IPTC AI-generated marks", "reason", st.Off)
		return
	}
	log.Info("Content Credentials signing on", "signer", st.Signer, "certificate_expires", st.NotAfter.UTC().Format(time.DateOnly))
}

// writeSelfSigned makes a P-256 key (mode 0600) and a self-signed
// certificate; it refuses to replace existing files unless force.
func writeSelfSigned(keyFile, certFile string, now time.Time, force bool) error {
	if !force {
		for _, f := range []string{keyFile, certFile} {
			if _, err := os.Stat(f); err == nil {
				return fmt.Errorf("%s already exists: keep it, or pass --force to replace the key and certificate", f)
			}
		}
	}
	key, cert, err := c2pa.SelfSigned("Z Image (self-signed)", now, selfSignedValidity)
	if err != nil {
		return err
	}
	for _, f := range []string{keyFile, certFile} {
		if err := os.MkdirAll(filepath.Dir(f), 0o700); err != nil {
			return err
		}
	}
	if err := os.WriteFile(keyFile, key, 0o600); err != nil {
		return err
	}
	return os.WriteFile(certFile, cert, 0o644)
}

const selfSignedNote = `Validators (contentcredentials.org/verify, c2patool, the C2PA SDKs) check
this signature but show the signer as "unknown": a self-signed certificate
is on no trust list. To be named, get a signing certificate from a CA that
C2PA validators trust (its key P-256, ECDSA) and set provenance.key_file
and provenance.cert_file to it.`

const provenanceSynopsis = "provenance init [--config FILE] [--force]\n\nMakes the C2PA signing key (ECDSA P-256) and a self-signed certificate at\nprovenance.key_file and provenance.cert_file (default: c2pa-key.pem and\nc2pa-cert.pem in the data folder)."

func runProvenance(ctx context.Context, env Env, args []string) error {
	if len(args) == 0 || args[0] != "init" {
		fset := newFlags(env, "provenance", provenanceSynopsis)
		if err := parse(fset, args); err != nil {
			return err
		}
		return &usageError{msg: "usage: zimage provenance init [--config FILE] [--force]"}
	}
	fset := newFlags(env, "provenance init", provenanceSynopsis)
	cfgPath := configFlag(fset, env)
	force := fset.Bool("force", false, "replace an existing key and certificate")
	if err := parse(fset, args[1:]); err != nil {
		return err
	}
	cfg, err := config.Load(*cfgPath, env.Environ)
	if err != nil {
		return err
	}
	keyFile, certFile, _ := cfg.SigningFiles()
	if err := writeSelfSigned(keyFile, certFile, time.Now(), *force); err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "Signing key:  %s (keep it private; back it up)\nCertificate:  %s (self-signed, valid %d days)\n\n%s\n",
		keyFile, certFile, int(selfSignedValidity.Hours()/24), selfSignedNote)
	return nil
}
