package cli

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"zimage/app/config"
	"zimage/app/provenance/c2pa"
	"zimage/app/provenance/provenancetest"
)

// signingFiles are the broken key/certificate pairs an operator may
// configure, each with what doctor and the admin page must say.
func signingFiles(t *testing.T) []struct {
	name, key, cert, want string
} {
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	pair := func(prefix string, now time.Time, validFor time.Duration) (string, string) {
		k, c, err := c2pa.SelfSigned("Z Image test", now, validFor)
		if err != nil {
			t.Fatal(err)
		}
		return write(prefix+"-key.pem", k), write(prefix+"-cert.pem", c)
	}
	expKey, expCert := pair("expired", time.Now().AddDate(-3, 0, 0), 365*24*time.Hour)
	aKey, _ := pair("a", time.Now(), time.Hour)
	_, bCert := pair("b", time.Now(), time.Hour)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "p384"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageEmailProtection},
		SubjectKeyId: []byte{1}, AuthorityKeyId: []byte{1}}
	der, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &p384.PublicKey, p384)
	keyDER, _ := x509.MarshalPKCS8PrivateKey(p384)
	pKey := write("p384-key.pem", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}))
	pCert := write("p384-cert.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	return []struct{ name, key, cert, want string }{
		{"missing certificate", aKey, filepath.Join(dir, "nothing.pem"), "nothing.pem does not exist: fix provenance.cert_file"},
		{"expired certificate", expKey, expCert, "expired on"},
		{"key not matching the certificate", aKey, bCert, "does not match the signing key"},
		{"P-384 key", pKey, pCert, "needs an ECDSA P-256 key"},
	}
}

func TestDoctorChecksTheSigningKey(t *testing.T) {
	for _, tt := range signingFiles(t) {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			cfgFile := writeFile(t, dir, "z.toml", fmt.Sprintf("[server]\ndata_dir = %q\n[provenance]\nkey_file = %q\ncert_file = %q\n", filepath.Join(dir, "data"), tt.key, tt.cert))
			code, out, _ := run(t, nil, "doctor", "--config", cfgFile)
			if code == 0 || !strings.Contains(out, "FAIL signing") || !strings.Contains(out, tt.want) || !strings.Contains(out, "IPTC marks but not signed") {
				t.Errorf("doctor: exit %d, want FAIL signing saying %q\n%s", code, tt.want, out)
			}
		})
	}
	// Fresh and default: serve will make the key; after init it is good.
	cfg := testConfig(t)
	env := []string{"ZIMAGE_SERVER_DATA_DIR=" + cfg.Server.DataDir}
	if code, out, _ := run(t, env, "doctor"); code != 0 || !strings.Contains(out, "OK   signing") || !strings.Contains(out, "zimage serve makes a self-signed one") {
		t.Errorf("fresh doctor: %d\n%s", code, out)
	}
	code, out, stderr := run(t, env, "provenance", "init")
	if code != 0 || !strings.Contains(out, `signer as "unknown"`) || !strings.Contains(out, "CA that\nC2PA validators trust") {
		t.Fatalf("provenance init: %d\n%s%s", code, out, stderr)
	}
	if fi, err := os.Stat(filepath.Join(cfg.Server.DataDir, "c2pa-key.pem")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("key file: %v, mode %v; want 0600", err, fi)
	}
	if code, out, stderr := run(t, env, "provenance", "init"); code == 0 || !strings.Contains(out+stderr, "already exists") {
		t.Errorf("second init: exit %d, want a refusal saying the key already exists\n%s%s", code, out, stderr)
	}
	if code, out, _ := run(t, env, "doctor"); !strings.Contains(out, `OK   signing    Content Credentials signed by "Z Image (self-signed)"`) {
		t.Errorf("doctor after init: %d\n%s", code, out)
	}
}

// A broken signing configuration never stops the server: images are
// stored and marked, not signed, and the admin's backends page says
// signing is off and why; the image page's badge says what the file holds.
func TestServeWithBrokenSigningStoresMarkedImages(t *testing.T) {
	broken := signingFiles(t)[1] // expired
	for _, tt := range []struct {
		name      string
		prov      func(*config.Provenance)
		admin     []string
		badge     string
		signed    bool
		noInBadge string
	}{
		{"expired certificate", func(p *config.Provenance) { p.KeyFile, p.CertFile = broken.key, broken.cert },
			[]string{"Signing is off", "expired on"}, "AI-generated</span>", false, "Content Credentials"},
		{"self-signed at first start", func(*config.Provenance) {},
			[]string{"Signing on", "Z Image (self-signed)"}, "Content Credentials", true, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig(t)
			tt.prov(&cfg.Provenance)
			zi := startProvServer(t, cfg)
			id := zi.generate(t, 31337)
			png := zi.file(t, id, "format=png")
			chunks, _ := provenancetest.Chunks(t, png)
			var xmp, cabx bool
			for _, c := range chunks {
				xmp = xmp || c.Type == "iTXt" && strings.HasPrefix(string(c.Data), "XML:com.adobe.xmp")
				cabx = cabx || c.Type == "caBX"
			}
			if !xmp || cabx != tt.signed {
				t.Errorf("stored PNG: XMP marks %v, caBX %v; want marks and caBX %v", xmp, cabx, tt.signed)
			}
			page := string(zi.do(t, "GET", "/admin/backends", "", 200))
			for _, want := range tt.admin {
				if !strings.Contains(page, want) {
					t.Errorf("admin backends page lacks %q", want)
				}
			}
			badge := string(zi.do(t, "GET", "/images/"+id, "", 200))
			if !strings.Contains(badge, `id="provenance-badge"`) || !strings.Contains(badge, tt.badge) || (tt.noInBadge != "" && strings.Contains(badge, tt.noInBadge)) {
				t.Errorf("image page badge: want %q, not %q", tt.badge, tt.noInBadge)
			}
			if tt.signed && !strings.Contains(badge, "signed by Z Image (self-signed)") {
				t.Error("image page badge does not name the signer")
			}
		})
	}
}
