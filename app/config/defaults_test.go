package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "z.toml")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// A [[backends]] table needs only the keys without a default; every other
// key takes the default config.example.toml documents for it.
func TestMinimalBackendTables(t *testing.T) {
	tests := []struct {
		name string
		file string
		want []Backend
	}{
		{"comfyui", "[[backends]]\nname = \"gpu0\"\nkind = \"comfyui\"\nurl = \"http://127.0.0.1:8188\"\n",
			[]Backend{withIdentity(DefaultBackend("comfyui"), "gpu0", "http://127.0.0.1:8188")}},
		{"a1111", "[[backends]]\nname = \"forge\"\nkind = \"a1111\"\nurl = \"http://127.0.0.1:7860\"\n",
			[]Backend{withIdentity(DefaultBackend("a1111"), "forge", "http://127.0.0.1:7860")}},
		{"openai", "[[backends]]\nname = \"localai\"\nkind = \"openai\"\nurl = \"http://127.0.0.1:8080\"\n",
			[]Backend{withIdentity(DefaultBackend("openai"), "localai", "http://127.0.0.1:8080")}},
		{"builtin", "[[backends]]\nname = \"cpu\"\nkind = \"builtin\"\n",
			[]Backend{withIdentity(DefaultBackend("builtin"), "cpu", "")}},
		{"two tables, one key set", "[[backends]]\nname = \"a\"\nkind = \"comfyui\"\nurl = \"http://h:1\"\nslots = 3\n[[backends]]\nname = \"b\"\nkind = \"builtin\"\n",
			[]Backend{withSlots(withIdentity(DefaultBackend("comfyui"), "a", "http://h:1"), 3), withIdentity(DefaultBackend("builtin"), "b", "")}},
		{"comment naming the table keeps the default list", "# no [[backends]] here\n[server]\n", Default().Backends},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Load(writeConfig(t, tt.file), nil)
			if err != nil {
				t.Fatalf("minimal config refused: %v", err)
			}
			if !reflect.DeepEqual(cfg.Backends, tt.want) {
				t.Errorf("backends = %+v\nwant %+v", cfg.Backends, tt.want)
			}
		})
	}
}

// loadText loads file (none when "") with env and returns the error.
func loadText(t *testing.T, file string, env []string) error {
	t.Helper()
	path := ""
	if file != "" {
		path = writeConfig(t, file)
	}
	_, err := Load(path, env)
	return err
}

func withIdentity(b Backend, name, url string) Backend {
	b.Name, b.URL = name, url
	return b
}

func withSlots(b Backend, n int) Backend {
	b.Slots = n
	return b
}

// Every section may be present and empty: its keys keep their defaults.
func TestEmptySectionsTakeDefaults(t *testing.T) {
	cfg, err := Load(writeConfig(t, "[server]\n[tls]\n[metrics]\n[auth]\n[queue]\n[generation]\n[retention]\n[privacy]\n[mail]\n[backup]\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(cfg, Default()) {
		t.Errorf("empty sections changed the config:\n got %+v\nwant %+v", cfg, Default())
	}
}

// An error names a value only when the person wrote it (in the file, at
// its line, or in the variable they set); a setting that moves a default
// it depends on is not refused for that default.
func TestErrorsNameOnlyWrittenValues(t *testing.T) {
	tests := []struct {
		name       string
		file       string
		env        []string
		wantErr    string // "" for a config that loads
		wantSource string
	}{
		{"smaller max_side lowers the default max_pixels", "[generation]\nmax_side = 1024\n", nil, "", ""},
		{"fewer max_steps lowers the default steps", "[generation]\nmax_steps = 4\n", nil, "", ""},
		{"longer idle raises the default absolute", "[auth]\nsession_idle = \"60d\"\n", nil, "", ""},
		{"written zero slots", "[[backends]]\nname = \"g\"\nkind = \"comfyui\"\nurl = \"http://h:1\"\nslots = 0\n", nil, "backends[0].slots = 0: must be between 1 and 64", "z.toml:5"},
		{"second table's timeout", "[[backends]]\nname = \"a\"\nkind = \"builtin\"\n[[backends]]\nname = \"b\"\nkind = \"builtin\"\ntimeout = \"0s\"\n", nil, `backends[1].timeout = "0s"`, "z.toml:7"},
		{"missing url names no value", "[[backends]]\nname = \"g\"\nkind = \"comfyui\"\n", nil, "backends[0].url: is missing", ""},
		{"missing name names no value", "[[backends]]\nkind = \"builtin\"\n", nil, "backends[0].name: is missing", ""},
		{"missing kind names no value", "[[backends]]\nname = \"g\"\n", nil, "backends[0].kind: is missing", ""},
		{"value from the environment", "", []string{"ZIMAGE_QUEUE_MAX_RUNNING_PER_USER=0"}, "queue.max_running_per_user = 0", "ZIMAGE_QUEUE_MAX_RUNNING_PER_USER"},
		{"file value overridden by the environment", "[queue]\nmax_running_per_user = 2\n", []string{"ZIMAGE_QUEUE_MAX_RUNNING_PER_USER=0"}, "queue.max_running_per_user = 0", "ZIMAGE_QUEUE_MAX_RUNNING_PER_USER"},
		{"default in a conflict is labelled", "[generation]\nmax_pixels = 4096\nmax_side = 64\ndefault_steps = 8\nmax_steps = 4\n", nil, "generation.default_steps = 8", "z.toml:4"},
		{"conflict with a default names the written side", "[tls]\nmode = \"files\"\ncert_file = \"c\"\nkey_file = \"k\"\nlisten = \"127.0.0.1:8080\"\n", nil, "tls.listen = \"127.0.0.1:8080\"", "z.toml:5"},
		{"inline table value is the person's", "server = { log_format = \"xml\" }\n", nil, `server.log_format = "xml": must be one of text, json`, "z.toml"},
		{"dotted key value is the person's", "server.log_format = \"xml\"\n", nil, `server.log_format = "xml": must be one of text, json`, "z.toml:1"},
		{"a default in a conflict is said to be one", "[server]\nlisten = \":443\"\n[tls]\nmode = \"files\"\ncert_file = \"c\"\nkey_file = \"k\"\n", nil, "tls.listen: is also server.listen; give the TLS listener its own address (tls.listen is not set, so its default \":443\" applies)", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := loadText(t, tt.file, tt.env)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("got %v, want a *config.Error", err)
			}
			if !strings.Contains(ce.Error(), tt.wantErr) {
				t.Errorf("error %q does not say %q", ce, tt.wantErr)
			}
			if !strings.HasSuffix(ce.Source, tt.wantSource) || (tt.wantSource == "" && ce.Source != "") {
				t.Errorf("source %q, want %q", ce.Source, tt.wantSource)
			}
		})
	}
}

// One run reports every problem, each with the nearest existing key for a
// typo, and names an unreadable file as the file (not as a flag).
func TestEveryProblemInOneRun(t *testing.T) {
	tests := []struct {
		name string
		file string
		env  []string
		want []string // each error's text contains one, in order
	}{
		{"typos and values together",
			"[server]\nlisen = \"x\"\nlog_format = \"xml\"\n[sever]\nlisten = \"y\"\n[queue]\nmax_queued_per_user = \"lots\"\njob_timeout = 5\n[[backends]]\nname = \"gpu0\"\nkind = \"comfyui\"\nurl = \"http://h:1\"\nslts = 2\n",
			nil,
			[]string{
				"z.toml:2: server.lisen: unknown key; did you mean listen?",
				`z.toml:3: server.log_format = "xml": must be one of text, json`,
				"z.toml:4: sever: unknown key; did you mean server?",
				`z.toml:7: queue.max_queued_per_user = "lots": must be a whole number`,
				`z.toml:8: queue.job_timeout = 5: must be a duration in quotes`,
				"z.toml:13: backends[0].slts: unknown key; did you mean slots?",
			}},
		{"no near key", "[server]\nfavourite_colour = \"blue\"\n", nil,
			[]string{"server.favourite_colour: unknown key; see config.example.toml"}},
		{"environment typos and values", "", []string{"ZIMAGE_SERVER_LISEN=x", "ZIMAGE_AUTH_MIN_AGE=12", "ZIMAGE_SERVER_LOG_LEVEL=loud"},
			[]string{
				"ZIMAGE_SERVER_LISEN: unknown environment variable; did you mean ZIMAGE_SERVER_LISTEN?",
				`ZIMAGE_SERVER_LOG_LEVEL: server.log_level = "loud"`,
				"ZIMAGE_AUTH_MIN_AGE: auth.min_age = 12",
			}},
		{"every window", "[retention]\nimages = \"91d\"\nusage = \"0d\"\nbatch_size = 0\n", nil,
			[]string{"retention.images", "retention.usage", "retention.batch_size"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := loadText(t, tt.file, tt.env)
			var errs Errors
			if !errors.As(err, &errs) {
				t.Fatalf("got %v, want config.Errors", err)
			}
			var got []string
			for _, e := range errs {
				got = append(got, e.Error())
			}
			if len(got) != len(tt.want) {
				t.Fatalf("%d problems, want %d:\n%s", len(got), len(tt.want), strings.Join(got, "\n"))
			}
			for i, w := range tt.want {
				if !strings.Contains(got[i], w) {
					t.Errorf("problem %d = %q, want it to say %q", i, got[i], w)
				}
			}
		})
	}
}

func TestUnreadableFileIsNamed(t *testing.T) {
	path := filepath.Join(t.TempDir(), "missing.toml")
	_, err := Load(path, nil)
	if err == nil || err.Error() != "config: "+path+": cannot read the file: no such file or directory; check the path" {
		t.Errorf("got %v", err)
	}
}

func TestNearestKey(t *testing.T) {
	keys := []string{"listen", "base_url", "data_dir", "log_format", "log_level"}
	tests := []struct{ in, want string }{
		{"lisen", "listen"},
		{"Listen", "listen"},
		{"log_levle", "log_level"},
		{"datadir", "data_dir"},
		{"port", ""},
		{"x", ""},
	}
	for _, tt := range tests {
		if got := nearest(tt.in, keys); got != tt.want {
			t.Errorf("nearest(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
