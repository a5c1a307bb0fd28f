// Package mailpittest runs Mailpit, a real SMTP server with an HTTP API to
// read back what it received, for tests. It builds mailpit once from its
// module, outside our go.mod (its dependency graph is large and only tests
// need it), into the user cache.
package mailpittest

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// Module is the mailpit version the tests run.
const Module = "github.com/axllent/mailpit@v1.33.1"

// mailpitWait bounds building and starting mailpit.
const mailpitWait = 10 * time.Minute

// Server is a running mailpit.
type Server struct {
	SMTPPort int
	API      string         // base address of the HTTP API
	Roots    *x509.CertPool // trusts the certificate mailpit presents
	CAFile   string         // the same, as a PEM file (for mail.ca_file)
}

// mailpitBinary builds mailpit if the cache does not hold it yet.
func mailpitBinary(t testing.TB) string {
	t.Helper()
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	bin := filepath.Join(cache, "zimage-test", "mailpit-v1.33.1", "mailpit")
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to build mailpit and is not on PATH: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), mailpitWait)
	defer cancel()
	out, err := exec.CommandContext(ctx, goBin, "mod", "download", "-json", Module).Output()
	if err != nil {
		t.Fatalf("downloading %s: %v", Module, err)
	}
	var mod struct{ Dir, Error string }
	if err := json.Unmarshal(out, &mod); err != nil || mod.Dir == "" {
		t.Fatalf("downloading %s: %v %s", Module, err, mod.Error)
	}
	if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
		t.Fatal(err)
	}
	// Build under a temporary name and rename: a concurrent test process
	// never runs half a binary.
	tmp := bin + ".tmp" + strconv.Itoa(os.Getpid())
	build := exec.CommandContext(ctx, goBin, "build", "-o", tmp, ".")
	build.Dir = mod.Dir
	build.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOWORK=off", "CGO_ENABLED=0")
	if msg, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building mailpit failed: %v\n%s", err, msg)
	}
	if err := os.Rename(tmp, bin); err != nil {
		t.Fatal(err)
	}
	return bin
}

// Start runs mailpit on loopback ports until the test ends. tlsMode
// "starttls" requires STARTTLS, "implicit" TLS from the first byte; both
// accept any login.
func Start(t testing.TB, tlsMode string) *Server {
	t.Helper()
	bin := mailpitBinary(t)
	dir := t.TempDir()
	roots, caFile, certFile, keyFile := selfSignedCert(t, dir)
	mp := &Server{SMTPPort: freePort(t), Roots: roots, CAFile: caFile}
	httpPort := freePort(t)
	mp.API = "http://127.0.0.1:" + strconv.Itoa(httpPort)
	args := []string{"--disable-version-check", "--quiet", "--smtp-disable-rdns",
		"--smtp", "127.0.0.1:" + strconv.Itoa(mp.SMTPPort), "--listen", "127.0.0.1:" + strconv.Itoa(httpPort),
		"--database", filepath.Join(dir, "mailpit.db"),
		"--smtp-tls-cert", certFile, "--smtp-tls-key", keyFile, "--smtp-auth-accept-any"}
	if tlsMode == "implicit" {
		args = append(args, "--smtp-require-tls")
	} else {
		args = append(args, "--smtp-require-starttls")
	}
	var out bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() { cmd.Process.Kill(); <-exited })
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(mp.API + "/api/v1/messages")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return mp
			}
		}
		select {
		case <-exited:
			t.Fatalf("mailpit exited: %s", out.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("mailpit did not answer within 30s (last error %v): %s", err, out.String())
		}
	}
}

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// selfSignedCert writes a certificate for 127.0.0.1 signed by a fresh CA:
// the "private relay" case of mail.ca_file.
func selfSignedCert(t testing.TB, dir string) (*x509.CertPool, string, string, string) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "zimage test relay CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(key)
	caFile, certFile, keyFile := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "relay.pem"), filepath.Join(dir, "relay.key")
	os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o600)
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600)
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return pool, caFile, certFile, keyFile
}

// Message is a message as mailpit's API returns it.
type Message struct {
	ID        string
	MessageID string
	Subject   string
	To        []struct{ Address string }
	Text      string
	HTML      string
	Headers   map[string][]string
}

// Messages returns every message mailpit holds, newest first, read in
// full.
func (mp *Server) Messages(t testing.TB) []Message {
	t.Helper()
	var list struct{ Messages []Message }
	mp.get(t, "/api/v1/messages", &list)
	for i := range list.Messages {
		id := list.Messages[i].ID
		mp.get(t, "/api/v1/message/"+id, &list.Messages[i])
		mp.get(t, "/api/v1/message/"+id+"/headers", &list.Messages[i].Headers)
	}
	return list.Messages
}

func (mp *Server) get(t testing.TB, path string, v any) {
	t.Helper()
	resp, err := http.Get(mp.API + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("mailpit %s: %s", path, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("mailpit %s: %v", path, err)
	}
}

// WaitMessages waits until mailpit holds at least n messages and returns
// them.
func (mp *Server) WaitMessages(t testing.TB, n int, limit time.Duration) []Message {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		var list struct{ Messages []Message }
		mp.get(t, "/api/v1/messages", &list)
		if len(list.Messages) >= n {
			return mp.Messages(t)
		}
		if time.Now().After(deadline) {
			t.Fatalf("mailpit holds %d messages after %s, want %d", len(list.Messages), limit, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
