package cli

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"zimage/app"
	"zimage/app/config"
	"zimage/app/sqlite"
)

// A config with only the keys that have no default, in every section and
// for every backend kind, passes `config check` and starts the server.
func TestMinimalConfigsCheckAndStart(t *testing.T) {
	sections := "[server]\n[tls]\n[metrics]\n[auth]\n[queue]\n[generation]\n[retention]\n[privacy]\n[mail]\n[backup]\n"
	tests := []struct {
		name     string
		backends string
	}{
		{"no backends table", ""},
		{"builtin", "[[backends]]\nname = \"cpu\"\nkind = \"builtin\"\n"},
		{"comfyui", "[[backends]]\nname = \"gpu0\"\nkind = \"comfyui\"\nurl = \"http://127.0.0.1:1\"\n"},
		{"a1111", "[[backends]]\nname = \"forge\"\nkind = \"a1111\"\nurl = \"http://127.0.0.1:1\"\n"},
		{"openai", "[[backends]]\nname = \"localai\"\nkind = \"openai\"\nurl = \"http://127.0.0.1:1\"\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			body := strings.Replace(sections, "[server]\n", "[server]\ndata_dir = \""+filepath.Join(dir, "data")+"\"\nlisten = \"127.0.0.1:0\"\n", 1) + tt.backends
			path := writeFile(t, dir, "z.toml", body)
			if code, _, stderr := run(t, nil, "config", "check", path); code != 0 {
				t.Fatalf("config check: exit %d: %s", code, stderr)
			}
			cfg, err := config.Load(path, nil)
			if err != nil {
				t.Fatal(err)
			}
			startServe(t, cfg, 20*time.Second, nil)
		})
	}
}

// config check prints every problem, one a line, each naming the file and
// line it is on.
func TestConfigCheckListsEveryProblem(t *testing.T) {
	dir := t.TempDir()
	path := writeFile(t, dir, "z.toml", "[server]\nlisen = \"x\"\nlog_format = \"xml\"\n[[backends]]\nname = \"gpu0\"\nkind = \"comfyui\"\nurl = \"http://127.0.0.1:8188\"\nslots = 0\n")
	code, _, stderr := run(t, nil, "config", "check", path)
	want := []string{
		"zimage: config: " + path + ":2: server.lisen: unknown key; did you mean listen?",
		"zimage: config: " + path + ":3: server.log_format = \"xml\": must be one of text, json",
		"zimage: config: " + path + ":8: backends[0].slots = 0: must be between 1 and 64 concurrent jobs",
	}
	if code != 2 || strings.TrimSpace(stderr) != strings.Join(want, "\n") {
		t.Errorf("exit %d, stderr:\n%s\nwant:\n%s", code, stderr, strings.Join(want, "\n"))
	}
	missing := filepath.Join(dir, "missing.toml")
	code, _, stderr = run(t, nil, "config", "check", missing)
	if want := "zimage: config: " + missing + ": cannot read the file: no such file or directory; check the path\n"; code != 2 || stderr != want {
		t.Errorf("missing file: exit %d, stderr %q, want %q", code, stderr, want)
	}
}

// A start with a shortened retention.images brings the expiry of images
// already stored down to the new window, so the gallery's countdown is the
// real one before the first retention run.
func TestServeShortensStoredImageExpiries(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig(t)
	if err := os.MkdirAll(cfg.Server.DataDir, 0o700); err != nil {
		t.Fatal(err)
	}
	db, err := sqlite.Open(ctx, filepath.Join(cfg.Server.DataDir, "zimage.db"))
	if err != nil {
		t.Fatal(err)
	}
	created := time.Now().UTC().Add(-24 * time.Hour).Truncate(time.Millisecond)
	row := sqlite.ImageRow{Image: app.Image{ID: "img1", UserID: "alice", GenerationID: "g1", Width: 64, Height: 64,
		ContentType: "image/png", Bytes: 1, Steps: 8, Backend: "builtin", Model: "m",
		CreatedAt: created, ExpiresAt: created.Add(90 * 24 * time.Hour)},
		SealedPrompt: []byte("p"), SealedNegativePrompt: []byte("n")}
	if err := db.InsertImages(ctx, []sqlite.ImageRow{row}); err != nil {
		t.Fatal(err)
	}
	db.Close()

	cfg.Retention.Images = config.Duration(30 * 24 * time.Hour)
	startServe(t, cfg, 20*time.Second, nil)
	db, err = sqlite.Open(ctx, filepath.Join(cfg.Server.DataDir, "zimage.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	got, err := db.Image(ctx, "alice", "img1")
	if err != nil {
		t.Fatal(err)
	}
	if want := created.Add(30 * 24 * time.Hour); !got.ExpiresAt.Equal(want) {
		t.Errorf("after a start with a 30-day window the image expires %v, want %v", got.ExpiresAt, want)
	}
}
