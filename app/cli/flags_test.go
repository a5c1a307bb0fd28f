package cli

import (
	"path/filepath"
	"strings"
	"testing"
)

// Every command that reads the config takes --config (and its other
// flags) after its verbs and between its arguments, not only before them.
// The config file holds an unknown key, so a command that really read it
// fails naming that key, whatever else it would have needed.
func TestConfigFlagAfterVerbs(t *testing.T) {
	dir := t.TempDir()
	cfg := writeFile(t, dir, "z.toml", "[server]\ndata_dir = \""+filepath.Join(dir, "data")+"\"\nmarker_key = 1\n")
	out := filepath.Join(dir, "out")
	tests := []struct {
		name string
		args []string
	}{
		{"serve", []string{"serve", "--config", cfg}},
		{"config check", []string{"config", "check", "--config", cfg}},
		{"config check FILE", []string{"config", "check", cfg}},
		{"doctor", []string{"doctor", "--config", cfg}},
		{"backup", []string{"backup", "--out", out, "--config", cfg}},
		{"backup keyring", []string{"backup", "--keyring", "--config", cfg}},
		{"restore", []string{"restore", "--from", out, "--config", cfg}},
		{"keys rotate", []string{"keys", "rotate", "--config", cfg}},
		{"retention run", []string{"retention", "run", "--dry-run", "--config", cfg}},
		{"retention status", []string{"retention", "status", "--config", cfg, "--json"}},
		{"policy show", []string{"policy", "show", "--config", cfg}},
		{"policy publish", []string{"policy", "publish", "--config", cfg}},
		{"user create", []string{"user", "create", "--email", "a@example.com", "--username", "alice", "--config", cfg}},
		{"user list", []string{"user", "list", "--config", cfg}},
		{"user disable", []string{"user", "disable", "alice", "--config", cfg}},
		{"export", []string{"export", "--user", "alice", "--out", filepath.Join(dir, "e.zip"), "--config", cfg}},
		{"training export", []string{"training", "export", "--out", out, "--config", cfg}},
		{"audit verify", []string{"audit", "verify", "--config", cfg}},
		{"provenance init", []string{"provenance", "init", "--config", cfg}},
		{"mail", []string{"mail", "--config", cfg}},
		{"mail retry", []string{"mail", "retry", "01JUNKNOWNMAIL0000000000000", "--config", cfg}},
	}
	covered := map[string]bool{"version": true} // reads no config
	for _, tt := range tests {
		covered[tt.args[0]] = true
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := run(t, nil, tt.args...)
			if code == 0 || !strings.Contains(stdout+stderr, "server.marker_key") {
				t.Errorf("exit %d, output %q %q; want the config's unknown key named", code, stdout, stderr)
			}
		})
	}
	for _, c := range commands() {
		if !covered[c.name] {
			t.Errorf("command %s has no row in this table", c.name)
		}
	}
}

func TestParseFlagsBetweenArguments(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		wantArgs []string
		wantOut  string
		wantBool bool
	}{
		{"flags first", []string{"--out", "o", "-v", "a", "b"}, []string{"a", "b"}, "o", true},
		{"flags last", []string{"a", "b", "--out", "o", "-v"}, []string{"a", "b"}, "o", true},
		{"flags between", []string{"a", "--out=o", "b"}, []string{"a", "b"}, "o", false},
		{"double dash keeps the rest", []string{"a", "--", "--out", "o"}, []string{"a", "--out", "o"}, "", false},
		{"no arguments", nil, nil, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := newFlags(Env{}, "t", "t")
			out := fs.String("out", "", "")
			v := fs.Bool("v", false, "")
			if err := parse(fs, tt.args); err != nil {
				t.Fatal(err)
			}
			if got := fs.Args(); strings.Join(got, "|") != strings.Join(tt.wantArgs, "|") || *out != tt.wantOut || *v != tt.wantBool {
				t.Errorf("args %q out %q v %v; want %q %q %v", got, *out, *v, tt.wantArgs, tt.wantOut, tt.wantBool)
			}
		})
	}
}
