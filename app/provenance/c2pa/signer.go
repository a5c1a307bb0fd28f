// Package c2pa writes signed C2PA Content Credentials (C2PA 2.1): one
// manifest with a c2pa.actions.v2 assertion (created, digital source type,
// software agent) and a c2pa.hash.data assertion that binds the file's
// bytes, a claim v2, and an ES256 COSE_Sign1 signature carrying the
// operator's certificate chain. It writes exactly that subset — no
// ingredients, thumbnails, time stamps or reading — because no maintained
// Go C2PA library exists; the reference reader (c2pa-rs) checks what it
// writes in the tests.
//
// The package knows nothing of file formats: a Container (see
// provenance) lays the manifest store into a PNG or WebP.
package c2pa

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"
)

// Signer holds the operator's signing key and certificate chain, checked.
type Signer struct {
	key   *ecdsa.PrivateKey
	chain [][]byte // DER, signer first
	// CommonName is the signing certificate's subject common name, what
	// readers show as the signer.
	CommonName string
	// NotAfter is when the signing certificate expires.
	NotAfter time.Time
}

type asn1OID = asn1.ObjectIdentifier

// Extended key usages C2PA accepts on a signing certificate (C2PA 2.1,
// "Certificate profile"): id-kp-documentSigning and C2PA's own
// c2pa-kp-claimSigning besides id-kp-emailProtection.
var (
	ekuDocumentSigning = asn1OID{1, 3, 6, 1, 5, 5, 7, 3, 36}
	ekuClaimSigning    = asn1OID{1, 3, 6, 1, 4, 1, 62558, 2, 1}
)

// LoadSigner reads a PEM private key (PKCS#8 or SEC 1) and a PEM
// certificate chain (signer first) and checks that they can sign C2PA
// claims at now: an ECDSA P-256 key (ES256), a certificate valid at now
// whose public key is the key's, with digitalSignature usage and a C2PA
// extended key usage. The errors say which file is wrong and how.
func LoadSigner(keyFile, certFile string, now time.Time) (*Signer, error) {
	if keyFile == "" || certFile == "" {
		return nil, errors.New("provenance.key_file and provenance.cert_file must both be set (run \"zimage provenance init\" to make them)")
	}
	keyPEM, err := readPEM("signing key", "provenance.key_file", keyFile)
	if err != nil {
		return nil, err
	}
	certPEM, err := readPEM("signing certificate", "provenance.cert_file", certFile)
	if err != nil {
		return nil, err
	}
	key, err := parseKey(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("signing key %s: %w", keyFile, err)
	}
	var chain [][]byte
	for rest := certPEM; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		if b.Type == "CERTIFICATE" {
			chain = append(chain, b.Bytes)
		}
	}
	if len(chain) == 0 {
		return nil, fmt.Errorf("signing certificate %s: no PEM CERTIFICATE in the file", certFile)
	}
	cert, err := x509.ParseCertificate(chain[0])
	if err != nil {
		return nil, fmt.Errorf("signing certificate %s: %w", certFile, err)
	}
	if err := checkCertificate(cert, key, now); err != nil {
		return nil, fmt.Errorf("signing certificate %s: %w", certFile, err)
	}
	return &Signer{key: key, chain: chain, CommonName: cert.Subject.CommonName, NotAfter: cert.NotAfter}, nil
}

// readPEM reads one of the two files, saying which and how to fix it.
func readPEM(what, key, path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s %s does not exist: fix %s, or run \"zimage provenance init\" to make a key and certificate", what, path, key)
	} else if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, fmt.Errorf("%s %s cannot be read: %w", what, path, err)
	}
	return data, nil
}

func parseKey(data []byte) (*ecdsa.PrivateKey, error) {
	b, _ := pem.Decode(data)
	if b == nil {
		return nil, errors.New("not a PEM file")
	}
	var k any
	var err error
	switch b.Type {
	case "EC PRIVATE KEY":
		k, err = x509.ParseECPrivateKey(b.Bytes)
	case "PRIVATE KEY":
		k, err = x509.ParsePKCS8PrivateKey(b.Bytes)
	default:
		return nil, fmt.Errorf("PEM block %q is not a private key", b.Type)
	}
	if err != nil {
		return nil, err
	}
	ec, ok := k.(*ecdsa.PrivateKey)
	if !ok || ec.Curve != elliptic.P256() {
		return nil, fmt.Errorf("the key is %s; Content Credentials are signed with ES256, which needs an ECDSA P-256 key", keyKind(k))
	}
	return ec, nil
}

func keyKind(k any) string {
	switch k := k.(type) {
	case *ecdsa.PrivateKey:
		return "ECDSA " + k.Curve.Params().Name
	default:
		return fmt.Sprintf("%T", k)
	}
}

func checkCertificate(cert *x509.Certificate, key *ecdsa.PrivateKey, now time.Time) error {
	pub, ok := cert.PublicKey.(*ecdsa.PublicKey)
	if !ok || !pub.Equal(&key.PublicKey) {
		return errors.New("its public key does not match the signing key (key_file and cert_file are not a pair)")
	}
	if now.After(cert.NotAfter) {
		return fmt.Errorf("expired on %s; renew it (or run \"zimage provenance init\" again)", cert.NotAfter.UTC().Format(time.DateOnly))
	}
	if now.Before(cert.NotBefore) {
		return fmt.Errorf("not valid before %s", cert.NotBefore.UTC().Format(time.RFC3339))
	}
	if cert.KeyUsage&x509.KeyUsageDigitalSignature == 0 {
		return errors.New("its key usage lacks digitalSignature, which C2PA requires")
	}
	eku := false
	for _, u := range cert.ExtKeyUsage {
		eku = eku || u == x509.ExtKeyUsageEmailProtection
	}
	for _, u := range cert.UnknownExtKeyUsage {
		eku = eku || u.Equal(ekuDocumentSigning) || u.Equal(ekuClaimSigning)
	}
	if !eku {
		return errors.New("it has no extended key usage C2PA accepts (emailProtection, documentSigning or c2pa-kp-claimSigning)")
	}
	if len(cert.AuthorityKeyId) == 0 {
		return errors.New("it has no authority key identifier, which C2PA validators require")
	}
	return nil
}
