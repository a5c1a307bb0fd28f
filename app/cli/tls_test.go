package cli

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"zimage/app/certs"
)

// pebbleWait bounds every wait on pebble and on certificate issuance.
const pebbleWait = 60 * time.Second

type pebble struct {
	dirURL  string // ACME directory
	mgmtURL string // management API: /roots/0 is the root that signs issued certificates
	minica  string // PEM file of the CA that signs pebble's own HTTPS certificate
	api     *http.Client
	out     *syncBuffer // pebble's and challtestsrv's output
}

// startPebble builds pebble and pebble-challtestsrv from the tools module
// (tools/go.mod pins them, apart from the binary's own module graph) and
// runs them on loopback: challtestsrv is pebble's DNS server and answers
// every name with 127.0.0.1, so pebble's validation requests for a test
// name reach zimage on httpPort (HTTP-01) and tlsPort (TLS-ALPN-01). Any
// failure fails the test: CI must not pass TLS tests it did not run.
func startPebble(t *testing.T, httpPort, tlsPort int) *pebble {
	t.Helper()
	modDir, bin := buildPebble(t)

	p := &pebble{out: &syncBuffer{}, minica: filepath.Join(modDir, "test", "certs", "pebble.minica.pem")}
	minica, err := os.ReadFile(p.minica)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(minica) {
		t.Fatalf("%s holds no certificate", p.minica)
	}
	p.api = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}

	apiPort, mgmtPort, dnsPort, chalMgmtPort := freePort(t), freePort(t), freePort(t), freePort(t)
	p.dirURL = "https://" + loopback(apiPort) + "/dir"
	p.mgmtURL = "https://" + loopback(mgmtPort)

	raw, err := os.ReadFile(filepath.Join(modDir, "test", "config", "pebble-config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var conf map[string]map[string]any
	if err := json.Unmarshal(raw, &conf); err != nil {
		t.Fatalf("pebble's test config changed shape: %v", err)
	}
	pc := conf["pebble"]
	pc["listenAddress"] = loopback(apiPort)
	pc["managementListenAddress"] = loopback(mgmtPort)
	pc["certificate"] = filepath.Join(modDir, "test", "certs", "localhost", "cert.pem")
	pc["privateKey"] = filepath.Join(modDir, "test", "certs", "localhost", "key.pem")
	pc["httpPort"] = httpPort
	pc["tlsPort"] = tlsPort
	// The default (3 s and 5 s) makes the client wait between polls.
	pc["retryAfter"] = map[string]int{"authz": 1, "order": 1}
	confFile := filepath.Join(t.TempDir(), "pebble-config.json")
	raw, _ = json.Marshal(conf)
	if err := os.WriteFile(confFile, raw, 0o600); err != nil {
		t.Fatal(err)
	}

	dnsAddr := loopback(dnsPort)
	chal := p.run(t, filepath.Join(bin, "pebble-challtestsrv"), nil,
		"-defaultIPv4", "127.0.0.1", "-defaultIPv6", "", "-dnsserver", dnsAddr, "-management", loopback(chalMgmtPort),
		"-http01", "", "-https01", "", "-tlsalpn01", "", "-doh", "")
	// NOSLEEP drops pebble's random pause before validating; validation
	// itself stays real (no PEBBLE_VA_ALWAYS_VALID).
	peb := p.run(t, filepath.Join(bin, "pebble"), []string{"PEBBLE_VA_NOSLEEP=1", "PEBBLE_WFE_NONCEREJECT=0"},
		"-config", confFile, "-dnsserver", dnsAddr)

	plain := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(pebbleWait)
	for _, probe := range []struct {
		name   string
		client *http.Client
		url    string
		exited <-chan struct{}
	}{
		{"pebble-challtestsrv", plain, "http://" + loopback(chalMgmtPort) + "/", chal},
		{"pebble", p.api, p.dirURL, peb},
	} {
		for {
			resp, err := probe.client.Get(probe.url)
			if err == nil {
				resp.Body.Close()
				if probe.name != "pebble" || resp.StatusCode == http.StatusOK {
					break
				}
			}
			select {
			case <-probe.exited:
				t.Fatalf("%s exited during start\noutput:\n%s", probe.name, p.out)
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s did not answer %s within %s (last error %v)\noutput:\n%s", probe.name, probe.url, pebbleWait, err, p.out)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return p
}

// pebbleModule is pebble's module path in tools/go.mod.
const pebbleModule = "github.com/letsencrypt/pebble/v2"

// buildPebble downloads pebble's module (a fresh clone has an empty module
// cache: the download must come before anything reads the module's
// folder), builds its two commands into a temporary folder, and returns
// the module folder (for its test certificates and config) and the folder
// holding the binaries.
func buildPebble(t *testing.T) (modDir, bin string) {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to build pebble and is not on PATH: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	gomod, err := exec.CommandContext(ctx, goBin, "env", "GOMOD").Output()
	if err != nil || strings.TrimSpace(string(gomod)) == "" {
		t.Fatalf("cannot find this module's go.mod (go env GOMOD: %q, %v)", gomod, err)
	}
	tools := filepath.Join(filepath.Dir(strings.TrimSpace(string(gomod))), "tools")
	var stderr strings.Builder
	dl := exec.CommandContext(ctx, goBin, "mod", "download", "-json", pebbleModule)
	dl.Dir, dl.Stderr = tools, &stderr
	out, err := dl.Output()
	var mod struct{ Dir, Error string }
	if jerr := json.Unmarshal(out, &mod); err != nil || jerr != nil || mod.Error != "" || mod.Dir == "" {
		t.Fatalf("cannot download pebble's module in %s (go mod download: %v; error %q)\n%s%s", tools, err, mod.Error, out, stderr.String())
	}
	bin = t.TempDir()
	build := exec.CommandContext(ctx, goBin, "build", "-o", bin+string(filepath.Separator),
		pebbleModule+"/cmd/pebble", pebbleModule+"/cmd/pebble-challtestsrv")
	build.Dir = tools
	if msg, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building pebble in %s failed: %v\n%s", tools, err, msg)
	}
	return mod.Dir, bin
}

// run starts a child process whose output goes to p.out and which is
// killed when the test ends; the channel closes when it exits.
func (p *pebble) run(t *testing.T, path string, env []string, args ...string) <-chan struct{} {
	t.Helper()
	cmd := exec.Command(path, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = p.out, p.out
	if err := cmd.Start(); err != nil {
		t.Fatalf("cannot start %s: %v", path, err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
	})
	return exited
}

func (p *pebble) issuingRoots(t *testing.T) *x509.CertPool {
	t.Helper()
	resp, err := p.api.Get(p.mgmtURL + "/roots/0")
	if err != nil {
		t.Fatalf("fetching pebble's issuing root: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	pool := x509.NewCertPool()
	if resp.StatusCode != http.StatusOK || !pool.AppendCertsFromPEM(body) {
		t.Fatalf("pebble's /roots/0 answered %s with no certificate: %.200s", resp.Status, body)
	}
	return pool
}

func TestTLSAutoWithPebble(t *testing.T) {
	const name = "zimage.test"
	// pebble validates HTTP-01 and TLS-ALPN-01 on the ports in its config,
	// so zimage's listeners get ports chosen before pebble starts.
	httpPort, tlsPort := freePort(t), freePort(t)
	p := startPebble(t, httpPort, tlsPort)

	cfg := testConfig(t)
	cfg.TLS.Mode = "auto"
	cfg.TLS.Domains = []string{name}
	cfg.TLS.Email = "admin@example.com"
	cfg.TLS.CAURL = p.dirURL
	cfg.TLS.CARoot = p.minica
	cfg.TLS.Listen = loopback(tlsPort)
	cfg.TLS.HTTPListen = loopback(httpPort)
	s := startServe(t, cfg, pebbleWait, func() string { return "\npebble output:\n" + p.out.String() })
	if got := p.out.String(); !strings.Contains(got, "set VALID by completed challenge") || strings.Contains(got, "Skipping real validation") {
		t.Errorf("pebble did not validate a challenge against zimage; output:\n%s", got)
	}

	roots := p.issuingRoots(t)
	httpsAddr := s.addrs["https"]
	client := &http.Client{
		Timeout:   10 * time.Second,
		Transport: &http.Transport{TLSClientConfig: tlsClientConfig(roots, name, 0)},
	}
	resp, err := client.Get("https://" + httpsAddr + "/healthz")
	if err != nil {
		t.Fatalf("HTTPS /healthz with pebble's root trusted: %v\nzimage log:\n%s", err, s.log)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("HTTPS /healthz: status %d, want 200", resp.StatusCode)
	}
	if resp.TLS.Version != tls.VersionTLS13 {
		t.Errorf("negotiated TLS version %x, want TLS 1.3", resp.TLS.Version)
	}
	if hsts := resp.Header.Get("Strict-Transport-Security"); !strings.HasPrefix(hsts, "max-age=") {
		t.Errorf("Strict-Transport-Security = %q, want max-age=…", hsts)
	}
	leaf := resp.TLS.PeerCertificates[0]
	if err := leaf.VerifyHostname(name); err != nil {
		t.Errorf("served certificate: %v", err)
	}

	t.Run("TLS 1.2 refused", func(t *testing.T) {
		_, err := servedCert(httpsAddr, tlsClientConfig(roots, name, tls.VersionTLS12))
		if err == nil || !strings.Contains(err.Error(), "protocol version") {
			t.Errorf("TLS 1.2 handshake error = %v, want a protocol version error", err)
		}
	})

	t.Run("HTTP redirects to HTTPS", func(t *testing.T) {
		noFollow := &http.Client{Timeout: 5 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		req, _ := http.NewRequest(http.MethodGet, "http://"+s.addrs["redirect"]+"/x?y=1", nil)
		req.Host = name
		resp, err := noFollow.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		want := fmt.Sprintf("https://%s:%d/x?y=1", name, tlsPort)
		if resp.StatusCode != http.StatusPermanentRedirect || resp.Header.Get("Location") != want {
			t.Errorf("GET /x on the HTTP listener: %d Location %q, want 308 to %q", resp.StatusCode, resp.Header.Get("Location"), want)
		}
	})

	t.Run("plain listener serves health only", func(t *testing.T) {
		for path, want := range map[string]int{"/healthz": http.StatusOK, "/": http.StatusNotFound} {
			resp, err := http.Get("http://" + s.addrs["http"] + path)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != want || resp.Header.Get("Strict-Transport-Security") != "" {
				t.Errorf("plain GET %s: %d, HSTS %q; want %d and no HSTS", path, resp.StatusCode, resp.Header.Get("Strict-Transport-Security"), want)
			}
		}
	})

	t.Run("certificate stored in the data dir", func(t *testing.T) {
		var stored []string
		root := filepath.Join(cfg.Server.DataDir, "certmagic")
		filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err == nil && d.Name() == name+".crt" {
				stored = append(stored, path)
			}
			return nil
		})
		if len(stored) != 1 {
			t.Fatalf("found %d stored certificates for %s under %s, want 1: %v", len(stored), name, root, stored)
		}
		data, err := os.ReadFile(stored[0])
		if err != nil {
			t.Fatal(err)
		}
		block, _ := pem.Decode(data)
		if block == nil {
			t.Fatalf("%s is not PEM", stored[0])
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		if cert.SerialNumber.Cmp(leaf.SerialNumber) != 0 {
			t.Errorf("stored certificate serial %s, served %s", cert.SerialNumber, leaf.SerialNumber)
		}
	})
}

func TestTLSFiles(t *testing.T) {
	const name = "files.zimage.test"
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	first := writeCertPair(t, certFile, keyFile, 1001, name)

	prev := certPollInterval
	certPollInterval = 20 * time.Millisecond
	t.Cleanup(func() { certPollInterval = prev })

	cfg := testConfig(t)
	cfg.TLS.Mode = "files"
	cfg.TLS.CertFile, cfg.TLS.KeyFile = certFile, keyFile
	cfg.TLS.Listen = loopback(freePort(t)) // validation rejects two equal ":0" addresses
	cfg.TLS.HTTPListen = ""
	s := startServe(t, cfg, 30*time.Second, nil)
	addr := s.addrs["https"]

	trust := func(c *x509.Certificate) *x509.CertPool {
		pool := x509.NewCertPool()
		pool.AddCert(c)
		return pool
	}
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: tlsClientConfig(trust(first), name, 0)}}
	resp, err := client.Get("https://" + addr + "/healthz")
	if err != nil {
		t.Fatalf("HTTPS /healthz: %v\nzimage log:\n%s", err, s.log)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.TLS.Version != tls.VersionTLS13 {
		t.Errorf("HTTPS /healthz: status %d TLS %x, want 200 over TLS 1.3", resp.StatusCode, resp.TLS.Version)
	}

	if _, err := servedCert(addr, tlsClientConfig(trust(first), name, tls.VersionTLS12)); err == nil || !strings.Contains(err.Error(), "protocol version") {
		t.Errorf("TLS 1.2 handshake error = %v, want a protocol version error", err)
	}

	// The watcher must pick up a renewed pair without a restart.
	second := writeCertPair(t, certFile, keyFile, 2002, name)
	waitServed := func(want *x509.Certificate) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			got, err := servedCert(addr, tlsClientConfig(trust(want), name, 0))
			if err == nil && got.SerialNumber.Cmp(want.SerialNumber) == 0 {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("certificate serial %s not served within 10 s of replacing the files (last: %v)\nzimage log:\n%s", want.SerialNumber, err, s.log)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitServed(second)

	// A broken replacement is logged and the working pair stays in service.
	logged := len(s.log.String())
	replaceFile(t, certFile, []byte("not a certificate"))
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(s.log.String()[logged:], "cannot be loaded") {
		if time.Now().After(deadline) {
			t.Fatalf("a garbage certificate file was not reported within 10 s\nzimage log:\n%s", s.log)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got, err := servedCert(addr, tlsClientConfig(trust(second), name, 0)); err != nil || got.SerialNumber.Cmp(second.SerialNumber) != 0 {
		t.Errorf("after a broken replacement: %v (serial %v), want serial %s still served", err, got, second.SerialNumber)
	}
}

// TestTLSManagerReload exercises Reload as SIGHUP calls it, without
// signalling the test process.
func TestTLSManagerReload(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	first := writeCertPair(t, certFile, keyFile, 1, "a.zimage.test")
	m, err := certs.New(certs.Options{Mode: "files", CertFile: certFile, KeyFile: keyFile}, discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	serial := func() string {
		c, err := m.TLSConfig().GetCertificate(&tls.ClientHelloInfo{})
		if err != nil || c.Leaf == nil {
			t.Fatalf("GetCertificate: %v", err)
		}
		return c.Leaf.SerialNumber.String()
	}
	if got := serial(); got != first.SerialNumber.String() {
		t.Fatalf("serving serial %s, want %s", got, first.SerialNumber)
	}
	second := writeCertPair(t, certFile, keyFile, 2, "a.zimage.test")
	if got := serial(); got != first.SerialNumber.String() {
		t.Errorf("serial changed to %s before Reload", got)
	}
	if err := m.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := serial(); got != second.SerialNumber.String() {
		t.Errorf("after Reload serving serial %s, want %s", got, second.SerialNumber)
	}
	replaceFile(t, keyFile, []byte("garbage"))
	if err := m.Reload(); err == nil || !strings.Contains(err.Error(), "tls.key_file") {
		t.Errorf("Reload with a garbage key: %v, want an error naming tls.key_file", err)
	}
	if got := serial(); got != second.SerialNumber.String() {
		t.Errorf("a failed Reload replaced the certificate: serving %s", got)
	}
}

func TestTLSFilesBadInput(t *testing.T) {
	type pair struct{ cert, key string }
	tests := []struct {
		name  string
		setup func(t *testing.T, dir string) pair
		want  []string // all must appear in the error message
	}{
		{"missing cert file", func(t *testing.T, dir string) pair {
			p := pair{filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")}
			writeCertPair(t, p.cert, p.key, 1, "x.zimage.test")
			os.Remove(p.cert)
			return p
		}, []string{"tls.cert_file", "check the path"}},
		{"missing key file", func(t *testing.T, dir string) pair {
			p := pair{filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")}
			writeCertPair(t, p.cert, p.key, 1, "x.zimage.test")
			os.Remove(p.key)
			return p
		}, []string{"tls.key_file", "check the path"}},
		{"key does not match cert", func(t *testing.T, dir string) pair {
			p := pair{filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")}
			writeCertPair(t, p.cert, filepath.Join(dir, "unused.pem"), 1, "x.zimage.test")
			writeCertPair(t, filepath.Join(dir, "other.pem"), p.key, 2, "x.zimage.test")
			return p
		}, []string{"tls.cert_file", "tls.key_file", "check that the key belongs"}},
		{"garbage PEM", func(t *testing.T, dir string) pair {
			p := pair{filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")}
			writeCertPair(t, p.cert, p.key, 1, "x.zimage.test")
			replaceFile(t, p.cert, []byte("-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n"))
			return p
		}, []string{"tls.cert_file", "PEM"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := tt.setup(t, t.TempDir())
			cfg := testConfig(t)
			cfg.TLS.Mode = "files"
			cfg.TLS.CertFile, cfg.TLS.KeyFile = p.cert, p.key
			cfg.TLS.Listen = loopback(freePort(t)) // validation rejects two equal ":0" addresses
			cfg.TLS.HTTPListen = ""
			if err := cfg.Validate(); err != nil {
				t.Fatalf("test config is invalid: %v", err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			err := serve(ctx, cfg, nil, discardLogger(), func(map[string]string) { t.Error("serve became ready with a bad certificate pair") })
			if err == nil {
				t.Fatal("serve accepted a bad certificate pair")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if _, statErr := os.Stat(cfg.Server.DataDir); !errors.Is(statErr, fs.ErrNotExist) {
				t.Errorf("data dir %s exists after a failed start (stat: %v); nothing should be created", cfg.Server.DataDir, statErr)
			}
		})
	}
}
