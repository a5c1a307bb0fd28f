package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/pelletier/go-toml/v2"
)

const examplePath = "../../config.example.toml"

// The example file is the documentation of every key: it must parse
// strictly, hold exactly the defaults, and name every key the code knows.
func TestExampleIsCompleteAndEqualsDefaults(t *testing.T) {
	cfg, err := Load(examplePath, nil)
	if err != nil {
		t.Fatalf("example does not load: %v", err)
	}
	if want := Default(); !reflect.DeepEqual(cfg, want) {
		t.Errorf("example values differ from Default():\n got %+v\nwant %+v", cfg, want)
	}
	data, err := os.ReadFile(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	var documented map[string]any
	if err := toml.Unmarshal(data, &documented); err != nil {
		t.Fatal(err)
	}
	encoded, err := toml.Marshal(Default())
	if err != nil {
		t.Fatal(err)
	}
	var known map[string]any
	if err := toml.Unmarshal(encoded, &known); err != nil {
		t.Fatal(err)
	}
	if got, want := keys(documented), keys(known); !reflect.DeepEqual(got, want) {
		t.Errorf("documented keys differ from the code's:\n got %v\nwant %v", got, want)
	}
}

func keys(m map[string]any) []string {
	var out []string
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		switch x := v.(type) {
		case map[string]any:
			if prefix != "" && (strings.HasSuffix(prefix, "workflow_map") || prefix == "openai.aliases") {
				out = append(out, prefix)
				return
			}
			for k, vv := range x {
				p := k
				if prefix != "" {
					p = prefix + "." + k
				}
				walk(p, vv)
			}
		case []any:
			if len(x) > 0 {
				if _, ok := x[0].(map[string]any); ok {
					walk(prefix, x[0])
					return
				}
			}
			out = append(out, prefix)
		default:
			out = append(out, prefix)
		}
	}
	walk("", m)
	sort.Strings(out)
	return out
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name    string
		file    string
		env     []string
		wantKey string
		wantMsg string
	}{
		{"unknown key", "[server]\nlisen = \"x\"\n", nil, "server.lisen", "unknown key; did you mean listen?"},
		{"unknown section", "[sever]\nlisten = \"x\"\n", nil, "sever", "unknown key"},
		{"bad log format", "[server]\nlog_format = \"xml\"\n", nil, "server.log_format", "text, json"},
		{"bad listen", "[server]\nlisten = \"8080\"\n", nil, "server.listen", "host:port"},
		{"bad duration", "[retention]\nimages = \"ninety days\"\n", nil, "retention.images", ""},
		{"zero window", "[retention]\nimages = \"0d\"\n", nil, "retention.images", "at least 1h"},
		{"window over promise", "[retention]\nimages = \"91d\"\n", nil, "retention.images", "90 days"},
		{"keyring backups 30d", "[retention]\nkeyring_backups = \"30d\"\n", nil, "retention.keyring_backups", "30 days"},
		{"bad schedule", "[retention]\nschedule = \"sometimes\"\n", nil, "retention.schedule", "cron"},
		{"auto without domains", "[tls]\nmode = \"auto\"\n", nil, "tls.domains", "at least one domain"},
		{"files without key", "[tls]\nmode = \"files\"\ncert_file = \"c.pem\"\n", nil, "tls.cert_file", "key_file"},
		{"auto with cert file", "[tls]\nmode = \"auto\"\ndomains=[\"a.example\"]\ncert_file = \"c.pem\"\n", nil, "tls.cert_file", "conflicts"},
		{"unknown tls mode", "[tls]\nmode = \"on\"\n", nil, "tls.mode", "off, auto, files"},
		{"backend kind", "[[backends]]\nname = \"g\"\nkind = \"dalle\"\nslots = 1\ntimeout = \"1m\"\n", nil, "backends[0].kind", "comfyui"},
		{"backend url", "[[backends]]\nname = \"g\"\nkind = \"comfyui\"\nurl = \"localhost:8188\"\nslots = 1\ntimeout = \"1m\"\n", nil, "backends[0].url", "http(s) URL"},
		{"duplicate backend", "[[backends]]\nname = \"g\"\nkind = \"builtin\"\nslots = 1\ntimeout = \"1m\"\n[[backends]]\nname = \"g\"\nkind = \"builtin\"\nslots = 1\ntimeout = \"1m\"\n", nil, "backends[1].name", "unique"},
		{"min age under 13", "[auth]\nmin_age = 12\n", nil, "auth.min_age", "under 13"},
		{"side not multiple of 16", "[generation]\nmax_side = 1000\n", nil, "generation.max_side", "multiple of 16"},
		{"syntax error", "[server\n", nil, "", "not valid TOML"},
		{"wrong type", "[server]\nmax_body_bytes = \"big\"\n", nil, "server.max_body_bytes", ""},
		{"env unknown", "", []string{"ZIMAGE_SERVER_LISEN=x"}, "ZIMAGE_SERVER_LISEN", "unknown environment variable"},
		{"env bad int", "", []string{"ZIMAGE_QUEUE_MAX_QUEUED_PER_USER=lots"}, "queue.max_queued_per_user", "whole number"},
		{"env bad value", "", []string{"ZIMAGE_SERVER_LOG_FORMAT=xml"}, "server.log_format", "text, json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := ""
			if tt.file != "" {
				path = filepath.Join(t.TempDir(), "z.toml")
				if err := os.WriteFile(path, []byte(tt.file), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			_, err := Load(path, tt.env)
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("got %v, want *config.Error", err)
			}
			if ce.Key != tt.wantKey {
				t.Errorf("key = %q, want %q (error: %v)", ce.Key, tt.wantKey, err)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("error %q does not say %q", err, tt.wantMsg)
			}
		})
	}
}

func TestEnvOverrides(t *testing.T) {
	cfg, err := Load("", []string{
		"ZIMAGE_SERVER_LISTEN=0.0.0.0:9000",
		"ZIMAGE_RETENTION_IMAGES=30d",
		"ZIMAGE_METRICS_ENABLED=false",
		"ZIMAGE_SERVER_TRUSTED_PROXIES=127.0.0.1, 10.0.0.0/8",
		"ZIMAGE_MASTER_KEY=ignored-here",
		"PATH=/bin",
	})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Server.Listen != "0.0.0.0:9000" || cfg.Retention.Images.D() != 30*24*time.Hour || cfg.Metrics.Enabled {
		t.Errorf("overrides not applied: %+v", cfg)
	}
	if got := cfg.Server.TrustedProxies; !reflect.DeepEqual(got, []string{"127.0.0.1", "10.0.0.0/8"}) {
		t.Errorf("trusted proxies = %q", got)
	}
}

func TestBackendsTableReplacesDefault(t *testing.T) {
	path := filepath.Join(t.TempDir(), "z.toml")
	os.WriteFile(path, []byte("[[backends]]\nname = \"gpu0\"\nkind = \"comfyui\"\nurl = \"http://127.0.0.1:8188\"\nslots = 2\ntimeout = \"5m\"\n"), 0o600)
	cfg, err := Load(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Backends) != 1 || cfg.Backends[0].Name != "gpu0" || cfg.Backends[0].Slots != 2 {
		t.Errorf("backends = %+v", cfg.Backends)
	}
}

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"90d", 90 * 24 * time.Hour, true},
		{"36h", 36 * time.Hour, true},
		{"1d12h", 36 * time.Hour, true},
		{"15m", 15 * time.Minute, true},
		{"0d", 0, true},
		{"", 0, false},
		{"d", 0, false},
		{"-1d", 0, false},
		{"-5h", 0, false},
		{"1w", 0, false},
		{"999999d", 0, false},
	}
	for _, tt := range tests {
		got, err := ParseDuration(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v, ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
	if s := Duration(90 * 24 * time.Hour).String(); s != "90d" {
		t.Errorf("String = %q", s)
	}
}
