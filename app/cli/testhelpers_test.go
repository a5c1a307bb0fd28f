package cli

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"zimage/app/config"
)

// syncBuffer collects output written from several goroutines (a child
// process's stdout and stderr, slog handlers) for failure messages.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// freePort returns a loopback port that is free for TCP and UDP right now.
// Something else may take it before the caller binds it; tests that need a
// port known in advance (pebble validates on fixed ports) accept that.
func freePort(t *testing.T) int {
	t.Helper()
	for range 20 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("no free loopback port: %v", err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		pc, err := net.ListenPacket("udp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		ln.Close()
		if err != nil {
			continue
		}
		pc.Close()
		return port
	}
	t.Fatal("no loopback port free for both TCP and UDP after 20 tries")
	return 0
}

func loopback(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }

// testConfig is the default config with its data in a folder that does not
// exist yet (so tests can see whether serve created it) and every listener
// on a free loopback port.
func testConfig(t *testing.T) config.Config {
	cfg := config.Default()
	cfg.Server.DataDir = filepath.Join(t.TempDir(), "data")
	cfg.Server.Listen = "127.0.0.1:0"
	cfg.Server.ShutdownTimeout = config.Duration(5 * time.Second)
	return cfg
}

type served struct {
	addrs map[string]string
	log   *syncBuffer
}

// startServe runs serve until the test ends and returns the bound
// addresses. It fails the test if serve returns first or is not ready
// within limit; more, when not empty, is appended to the failure message
// (a child process's output).
func startServe(t *testing.T, cfg config.Config, limit time.Duration, more func() string) served {
	t.Helper()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("test config is invalid: %v", err)
	}
	logs := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx, cancel := context.WithCancel(context.Background())
	readyc := make(chan map[string]string, 1)
	done := make(chan error, 1)
	go func() { done <- serve(ctx, cfg, nil, log, func(a map[string]string) { readyc <- a }) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("serve returned %v at shutdown", err)
			}
		case <-time.After(20 * time.Second):
			t.Errorf("serve did not stop within 20 s of its context ending\nlog:\n%s", logs)
		}
	})
	extra := func() string {
		if more == nil {
			return ""
		}
		return more()
	}
	select {
	case a := <-readyc:
		return served{addrs: a, log: logs}
	case err := <-done:
		done <- nil // Cleanup must not wait for a second result
		t.Fatalf("serve stopped before it was ready: %v\nzimage log:\n%s%s", err, logs, extra())
	case <-time.After(limit):
		t.Fatalf("serve was not ready within %s\nzimage log:\n%s%s", limit, logs, extra())
	}
	return served{}
}

// writeCertPair writes a self-signed ECDSA certificate for names with the
// given serial and its key as PEM files; replacing happens by rename, as
// certbot and friends do.
func writeCertPair(t *testing.T, certFile, keyFile string, serial int64, names ...string) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: names[0]},
		DNSNames:     names,
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	replaceFile(t, certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	replaceFile(t, keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}))
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// replaceFile swaps in new content by rename with a modification time
// later than the old file's, so a poller comparing times sees the change
// even on file systems with coarse timestamps.
func replaceFile(t *testing.T, path string, data []byte) {
	t.Helper()
	next := time.Now()
	if old, err := os.Stat(path); err == nil && !next.After(old.ModTime()) {
		next = old.ModTime().Add(time.Second)
	}
	tmp := path + ".new"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(tmp, next, next); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// tlsClientConfig trusts only roots and pins the name checked, so a test
// dials 127.0.0.1 and still verifies the certificate for serverName.
func tlsClientConfig(roots *x509.CertPool, serverName string, maxVersion uint16) *tls.Config {
	return &tls.Config{RootCAs: roots, ServerName: serverName, MaxVersion: maxVersion}
}

// servedCert does one handshake and returns the leaf the server presented.
func servedCert(addr string, cfg *tls.Config) (*x509.Certificate, error) {
	d := &net.Dialer{Timeout: 5 * time.Second}
	conn, err := tls.DialWithDialer(d, "tcp", addr, cfg)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0], nil
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
