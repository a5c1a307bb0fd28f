package cli

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"zimage/app/backend/backendfake"
	"zimage/app/sqlite"
	"zimage/app/vault"
)

// run runs the CLI in-process and returns exit code, stdout and stderr.
func run(t *testing.T, env []string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := Run(context.Background(), args, Env{Stdout: &out, Stderr: &errb, Environ: env})
	return code, out.String(), errb.String()
}

func writeFile(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestConfigCheckAndBadStarts(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	good := writeFile(t, dir, "good.toml", "[server]\ndata_dir = \""+data+"\"\nlisten = \"127.0.0.1:0\"\n")
	typo := writeFile(t, dir, "typo.toml", "[server]\ndata_dir = \""+data+"\"\nlisen = \"127.0.0.1:0\"\n")
	badValue := writeFile(t, dir, "bad.toml", "[server]\ndata_dir = \""+data+"\"\nlog_format = \"xml\"\n")
	conflict := writeFile(t, dir, "conflict.toml", "[server]\ndata_dir = \""+data+"\"\n[tls]\nmode = \"files\"\ncert_file = \"a.pem\"\nkey_file = \"b.pem\"\ndomains = [\"x.example\"]\n")
	missingCert := writeFile(t, dir, "cert.toml", "[server]\ndata_dir = \""+data+"\"\nlisten = \"127.0.0.1:0\"\n[tls]\nmode = \"files\"\nlisten = \"127.0.0.1:0\"\nhttp_listen = \"\"\ncert_file = \""+dir+"/none.pem\"\nkey_file = \""+dir+"/none.key\"\n")
	blocker := writeFile(t, dir, "not-a-dir", "x")
	notWritable := writeFile(t, dir, "nw.toml", "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = \""+blocker+"/data\"\n")

	tests := []struct {
		name     string
		args     []string
		env      []string
		wantCode int
		wantErr  string
	}{
		{"check good", []string{"config", "check", good}, nil, 0, ""},
		{"check typo", []string{"config", "check", typo}, nil, 2, "server.lisen"},
		{"check bad value", []string{"config", "check", badValue}, nil, 2, `server.log_format = "xml": must be one of text, json`},
		{"check conflict", []string{"config", "check", conflict}, nil, 2, "tls.domains"},
		{"check missing file", []string{"config", "check", filepath.Join(dir, "nope.toml")}, nil, 2, "cannot read"},
		{"check env typo", []string{"config", "check", good}, []string{"ZIMAGE_SERVER_LISTN=x"}, 2, "ZIMAGE_SERVER_LISTN"},
		{"serve typo", []string{"serve", "--config", typo}, nil, 2, "unknown key"},
		{"serve bad value", []string{"serve", "--config", badValue}, nil, 2, "server.log_format"},
		{"serve missing cert", []string{"serve", "--config", missingCert}, nil, 1, "tls.cert_file"},
		{"serve unwritable data dir", []string{"serve", "--config", notWritable}, nil, 1, "server.data_dir"},
		{"unknown command", []string{"frobnicate"}, nil, 2, "unknown command"},
		{"unknown flag", []string{"serve", "--confg", good}, nil, 2, "flag provided but not defined"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := run(t, tt.env, tt.args...)
			if code != tt.wantCode {
				t.Fatalf("exit %d, want %d; stderr: %s", code, tt.wantCode, stderr)
			}
			if !strings.Contains(stderr, tt.wantErr) {
				t.Errorf("stderr %q does not contain %q", stderr, tt.wantErr)
			}
			if n := strings.Count(strings.TrimSpace(stderr), "\n"); tt.wantCode != 0 && n != 0 {
				t.Errorf("error is %d lines, want one: %q", n+1, stderr)
			}
			if _, err := os.Stat(data); !os.IsNotExist(err) {
				t.Errorf("a failed start created %s", data)
			}
		})
	}
}

func TestHelpForEveryCommand(t *testing.T) {
	for _, c := range commands() {
		code, out, _ := run(t, nil, c.name, "--help")
		if code != 0 || strings.Count(out, "Usage: zimage "+c.name) != 1 {
			t.Errorf("%s --help: exit %d, output %q", c.name, code, out)
		}
	}
	if code, out, _ := run(t, nil, "--help"); code != 0 || !strings.Contains(out, "serve") {
		t.Errorf("--help: %d %q", code, out)
	}
}

func TestServePortInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cfg := testConfig(t)
	cfg.Server.Listen = ln.Addr().String()
	err = serve(context.Background(), cfg, nil, discardLogger(), nil)
	if err == nil || !strings.Contains(errMessage(err), "another program is using it") {
		t.Fatalf("got %v", err)
	}
	if _, err := os.Stat(cfg.Server.DataDir); !os.IsNotExist(err) {
		t.Error("data dir created although the port was taken")
	}
}

func TestOneServerPerDataDir(t *testing.T) {
	cfg := testConfig(t)
	startServe(t, cfg, 20*time.Second, nil)
	err := serve(context.Background(), cfg, nil, discardLogger(), nil)
	if err == nil || !strings.Contains(errMessage(err), "only one server") {
		t.Fatalf("second server: %v", err)
	}
	code, _, stderr := runWithDataDir(t, cfg.Server.DataDir, "keys", "rotate")
	if code == 0 || !strings.Contains(stderr, "stop the server") {
		t.Errorf("keys rotate beside a running server: %d %s", code, stderr)
	}
}

func runWithDataDir(t *testing.T, dataDir string, args ...string) (int, string, string) {
	return run(t, []string{"ZIMAGE_SERVER_DATA_DIR=" + dataDir}, args...)
}

func TestBackupRestoreRoundTrip(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig(t)
	dataDir := cfg.Server.DataDir
	srv := startServe(t, cfg, 20*time.Second, nil)
	_ = srv

	// Put something personal in while the server runs: a sealed value in
	// the database and a sealed media file.
	v, err := vault.Open(dataDir, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := v.EnsureUserKey("u1"); err != nil {
		t.Fatal(err)
	}
	sealed, _ := v.Seal("u1", []byte("settings/secret"), []byte("my secret prompt"))
	v.Close()
	db, err := sqlite.Open(ctx, filepath.Join(dataDir, "zimage.db"))
	if err != nil {
		t.Fatal(err)
	}
	db.SetSetting(ctx, "secret", string(sealed))
	db.Close()
	os.MkdirAll(filepath.Join(dataDir, "media", "u1"), 0o700)
	os.WriteFile(filepath.Join(dataDir, "media", "u1", "img.orig"), sealed, 0o600)
	os.WriteFile(filepath.Join(dataDir, "media", "u1", "img.orig.tmp-123"), []byte("half"), 0o600)

	// An account, whose username the backup must hold only sealed.
	if code, _, stderr := runWithDataDir(t, dataDir, "user", "create", "--email", "quill@example.com", "--username", "quillfeather"); code != 0 {
		t.Fatalf("user create: %s", stderr)
	}

	out := filepath.Join(t.TempDir(), "backup")
	if code, stdout, stderr := runWithDataDir(t, dataDir, "backup", "--out", out); code != 0 {
		t.Fatalf("backup: %d %s %s", code, stdout, stderr)
	}
	if _, err := os.Stat(filepath.Join(out, vault.KeyringFile)); !os.IsNotExist(err) {
		t.Error("data backup contains the keyring")
	}
	if _, err := os.Stat(filepath.Join(out, "media", "u1", "img.orig.tmp-123")); !os.IsNotExist(err) {
		t.Error("backup copied a temporary file")
	}
	if code, _, stderr := runWithDataDir(t, dataDir, "backup", "--out", out); code == 0 || !strings.Contains(stderr, "not empty") {
		t.Errorf("backup into a non-empty folder: %d %s", code, stderr)
	}
	keyDir := filepath.Join(t.TempDir(), "keys")
	code, stdout, stderr := runWithDataDir(t, dataDir, "backup", "--keyring", "--out", keyDir)
	if code != 0 {
		t.Fatalf("keyring backup: %s", stderr)
	}
	matches, _ := filepath.Glob(filepath.Join(keyDir, "keyring-*.db"))
	if len(matches) != 1 || !strings.Contains(stdout, matches[0]) {
		t.Fatalf("keyring backups %v, output %q", matches, stdout)
	}

	// Restore into a fresh data folder with the keyring backup and the
	// same master key; the sealed value must open again.
	fresh := filepath.Join(t.TempDir(), "fresh")
	os.MkdirAll(fresh, 0o700)
	key, _ := os.ReadFile(filepath.Join(dataDir, vault.MasterKeyFile))
	os.WriteFile(filepath.Join(fresh, vault.MasterKeyFile), key, 0o600)
	if code, _, stderr := runWithDataDir(t, fresh, "restore", "--from", out, "--keyring", matches[0]); code != 0 {
		t.Fatalf("restore: %s", stderr)
	}
	db, err = sqlite.Open(ctx, filepath.Join(fresh, "zimage.db"))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := db.Setting(ctx, "secret")
	db.Close()
	v, err = vault.Open(fresh, "")
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	if plain, err := v.Open("u1", []byte("settings/secret"), []byte(got)); err != nil || string(plain) != "my secret prompt" {
		t.Errorf("restored value: %q, %v", plain, err)
	}
	if b, _ := os.ReadFile(filepath.Join(fresh, "media", "u1", "img.orig")); !bytes.Equal(b, sealed) {
		t.Error("media not restored")
	}
	if raw, _ := os.ReadFile(filepath.Join(out, "zimage.db")); bytes.Contains(raw, []byte("quillfeather")) {
		t.Error("the data backup holds a username in plaintext")
	}
	if code, stdout, _ := runWithDataDir(t, fresh, "user", "list"); code != 0 || !strings.Contains(stdout, "quillfeather") {
		t.Errorf("restored accounts lack the unsealed username: %d %s", code, stdout)
	}
	// A second restore must not overwrite.
	if code, _, stderr := runWithDataDir(t, fresh, "restore", "--from", out); code == 0 || !strings.Contains(stderr, "already holds a database") {
		t.Errorf("restore over existing data: %d %s", code, stderr)
	}
}

func TestRestoreRefusesNewerSchema(t *testing.T) {
	out := t.TempDir()
	writeFile(t, out, manifestName, `{"format":1,"schema_version":99999,"created_at":"2026-01-01T00:00:00Z"}`)
	fresh := filepath.Join(t.TempDir(), "fresh")
	code, _, stderr := runWithDataDir(t, fresh, "restore", "--from", out)
	if code == 0 || !strings.Contains(stderr, "newer Z Image") {
		t.Fatalf("%d %s", code, stderr)
	}
	if _, err := os.Stat(filepath.Join(fresh, "zimage.db")); !os.IsNotExist(err) {
		t.Error("refused restore left a database behind")
	}
}

func TestDoctor(t *testing.T) {
	cfg := testConfig(t)
	env := []string{"ZIMAGE_SERVER_DATA_DIR=" + cfg.Server.DataDir}
	code, out, _ := run(t, env, "doctor")
	if code != 0 || !strings.Contains(out, "OK   config") || !strings.Contains(out, "does not exist yet") {
		t.Fatalf("fresh doctor: %d\n%s", code, out)
	}
	os.MkdirAll(cfg.Server.DataDir, 0o755)
	os.WriteFile(filepath.Join(cfg.Server.DataDir, "zimage.db"), bytes.Repeat([]byte("junk"), 1000), 0o600)
	code, out, _ = run(t, env, "doctor")
	if code == 0 || !strings.Contains(out, "FAIL data_dir") || !strings.Contains(out, "chmod 700") || !strings.Contains(out, "FAIL database") {
		t.Errorf("broken doctor: %d\n%s", code, out)
	}

	// A model server that does not answer is named with what is wrong.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	cfgFile := writeFile(t, t.TempDir(), "z.toml", "[server]\ndata_dir = \""+t.TempDir()+"\"\n[[backends]]\nname = \"gpu0\"\nkind = \"comfyui\"\nurl = \"http://"+addr+"\"\nslots = 1\ntimeout = \"1m\"\n")
	code, out, _ = run(t, nil, "doctor", "--config", cfgFile)
	if code == 0 || !strings.Contains(out, "FAIL backends") || !strings.Contains(out, "gpu0") {
		t.Errorf("doctor with a dead backend: %d\n%s", code, out)
	}

	// A ComfyUI that answers but has no model files is not healthy: the
	// doctor names each file the workflow needs and where it goes.
	comfy := backendfake.NewComfyUI(t, backendfake.ComfyUIConfig{Models: []string{}, CLIPs: []string{}, VAEs: []string{}})
	cfgFile = writeFile(t, t.TempDir(), "z.toml", "[server]\ndata_dir = \""+t.TempDir()+"\"\n[[backends]]\nname = \"gpu0\"\nkind = \"comfyui\"\nurl = \""+comfy.URL+"\"\nslots = 1\ntimeout = \"1m\"\n")
	code, out, _ = run(t, nil, "doctor", "--config", cfgFile)
	for _, want := range []string{"FAIL backends", "gpu0", "lists no models", "ae.safetensors (VAE, in models/vae)", "qwen_3_4b.safetensors (text encoder"} {
		if code == 0 || !strings.Contains(out, want) {
			t.Errorf("doctor with a ComfyUI without model files: %d, want %q in\n%s", code, want, out)
		}
	}
}

// /metrics carries the queue and each backend, besides HTTP.
func TestMetricsShowQueueAndBackends(t *testing.T) {
	srv := startServe(t, testConfig(t), 20*time.Second, nil)
	resp, err := http.Get("http://" + srv.addrs["http"] + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, want := range []string{`zimage_backend_up{backend="builtin",kind="builtin"} 1`, "zimage_queue_jobs_queued 0", `zimage_backend_slots{backend="builtin",kind="builtin"} 1`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

// Every retention window of the privacy policy has a job, and both the
// status and a dry run list them all.
func TestRetentionListsEveryWindow(t *testing.T) {
	cfg := testConfig(t)
	startServe(t, cfg, 20*time.Second, nil)
	jobs := []string{"images", "deleted-accounts", "usage", "support", "exports", "keyring-backups"}
	for _, args := range [][]string{{"retention", "status"}, {"retention", "run", "--dry-run"}} {
		code, out, stderr := runWithDataDir(t, cfg.Server.DataDir, args...)
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, stderr)
		}
		for _, j := range jobs {
			if !strings.Contains(out, j) {
				t.Errorf("%v does not list the %s job:\n%s", args, j, out)
			}
		}
	}
}

// `zimage policy publish --significant` queues a notice to every person,
// as the server's own start-up sync does.
func TestPolicyPublishSignificantQueuesNotices(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig(t)
	startServe(t, cfg, 20*time.Second, nil)
	dir := cfg.Server.DataDir
	if code, _, stderr := runWithDataDir(t, dir, "user", "create", "--email", "reader@example.com", "--username", "policyreader"); code != 0 {
		t.Fatalf("user create: %s", stderr)
	}
	env := []string{"ZIMAGE_SERVER_DATA_DIR=" + dir, "ZIMAGE_PRIVACY_CONTACT_EMAIL=privacy@example.com"}
	code, out, stderr := run(t, env, "policy", "publish", "--significant", "--summary", "A contact address for privacy questions.")
	if code != 0 || !strings.Contains(out, "published version 2") {
		t.Fatalf("publish: %d %s %s", code, out, stderr)
	}
	db, err := sqlite.Open(ctx, filepath.Join(dir, "zimage.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	mail, err := db.PendingMail(ctx, 10)
	if err != nil || len(mail) != 1 {
		t.Fatalf("pending notices: %d, %v; want one for the one person", len(mail), err)
	}
}
