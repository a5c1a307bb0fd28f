package c2pa

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var now = time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)

// certFor writes a key and a certificate for it made from tmpl, signed by
// signKey (the key itself when nil), and returns the two files.
func certFor(t *testing.T, key crypto.Signer, tmpl *x509.Certificate, certKey crypto.Signer) (keyFile, certFile string) {
	t.Helper()
	if certKey == nil {
		certKey = key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, certKey.Public(), certKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	keyFile, certFile = filepath.Join(dir, "key.pem"), filepath.Join(dir, "cert.pem")
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600)
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	return keyFile, certFile
}

func goodTemplate() *x509.Certificate {
	return &x509.Certificate{
		SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "Signer"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageEmailProtection},
		BasicConstraintsValid: true, SubjectKeyId: []byte{1, 2, 3, 4}, AuthorityKeyId: []byte{1, 2, 3, 4},
	}
}

func TestLoadSignerRefusesBadKeysAndCertificates(t *testing.T) {
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	tests := []struct {
		name  string
		files func(t *testing.T) (key, cert string)
		want  string // in the error; "" for none
	}{
		{"good", func(t *testing.T) (string, string) { return certFor(t, p256, goodTemplate(), nil) }, ""},
		{"self-signed from init", func(t *testing.T) (string, string) {
			k, c, err := SelfSigned("Z Image", now, time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			os.WriteFile(filepath.Join(dir, "k"), k, 0o600)
			os.WriteFile(filepath.Join(dir, "c"), c, 0o600)
			return filepath.Join(dir, "k"), filepath.Join(dir, "c")
		}, ""},
		{"no files configured", func(t *testing.T) (string, string) { return "", "" }, "must both be set"},
		{"missing certificate", func(t *testing.T) (string, string) {
			k, _ := certFor(t, p256, goodTemplate(), nil)
			return k, filepath.Join(t.TempDir(), "cert.pem")
		}, "cert.pem does not exist: fix provenance.cert_file"},
		{"missing key", func(t *testing.T) (string, string) {
			_, c := certFor(t, p256, goodTemplate(), nil)
			return filepath.Join(t.TempDir(), "key.pem"), c
		}, "key.pem does not exist: fix provenance.key_file"},
		{"expired certificate", func(t *testing.T) (string, string) {
			tm := goodTemplate()
			tm.NotBefore, tm.NotAfter = now.Add(-48*time.Hour), now.Add(-24*time.Hour)
			return certFor(t, p256, tm, nil)
		}, "expired on 2026-12-05"},
		{"key does not match the certificate", func(t *testing.T) (string, string) {
			_, c := certFor(t, other, goodTemplate(), nil)
			k, _ := certFor(t, p256, goodTemplate(), nil)
			return k, c
		}, "does not match the signing key"},
		{"P-384 key", func(t *testing.T) (string, string) { return certFor(t, p384, goodTemplate(), nil) }, "ECDSA P-384; Content Credentials are signed with ES256"},
		{"RSA key", func(t *testing.T) (string, string) { return certFor(t, rsaKey, goodTemplate(), nil) }, "rsa.PrivateKey; Content Credentials are signed with ES256"},
		{"no C2PA extended key usage", func(t *testing.T) (string, string) {
			tm := goodTemplate()
			tm.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
			return certFor(t, p256, tm, nil)
		}, "no extended key usage C2PA accepts"},
		{"no digitalSignature usage", func(t *testing.T) (string, string) {
			tm := goodTemplate()
			tm.KeyUsage = x509.KeyUsageKeyEncipherment
			return certFor(t, p256, tm, nil)
		}, "lacks digitalSignature"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key, cert := tt.files(t)
			s, err := LoadSigner(key, cert, now)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("LoadSigner: %v", err)
			case tt.want == "" && s.CommonName == "":
				t.Fatal("no signer name")
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("LoadSigner error %v, want one saying %q", err, tt.want)
			}
		})
	}
}
