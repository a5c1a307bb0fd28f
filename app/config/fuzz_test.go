package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/pelletier/go-toml/v2"
)

// FuzzParseDuration: an accepted duration is never negative, and the way
// Duration writes it (config.example.toml, `zimage doctor`) reads back as
// the same value.
func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{"90d", "1d12h", "15s", "0s", "0d", "36500d", "36501d", "876024h",
		"-1s", "1d-1h", "+1d", "d", "1.5d", "2562047h", "36500d2562047h", " 7d ", "1e3s", "9223372036854775807ns"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDuration(s)
		if err != nil {
			return
		}
		if d < 0 {
			t.Fatalf("ParseDuration(%q) = %v, negative", s, d)
		}
		text, err := Duration(d).MarshalText()
		if err != nil {
			t.Fatalf("MarshalText(%v): %v", d, err)
		}
		var back Duration
		if err := back.UnmarshalText(text); err != nil || back.D() != d {
			t.Fatalf("ParseDuration(%q) = %v, written %q, read back as %v, %v", s, d, text, back.D(), err)
		}
	})
}

// FuzzLoad feeds arbitrary files (and one environment override) to Load.
// A refusal is always config.Errors, each naming a key (or a position in
// the file) and what is allowed, the form cli prints a line each; an accepted config is valid and survives
// being written out as TOML and loaded again unchanged.
func FuzzLoad(f *testing.F) {
	example, err := os.ReadFile(examplePath)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(example, "")
	f.Add([]byte("[server]\nlisten = \"127.0.0.1:9000\"\n"), "ZIMAGE_SERVER_LOG_LEVEL=debug")
	f.Add([]byte("[[backends]]\nname = \"gpu\"\nkind = \"comfyui\"\nurl = \"http://127.0.0.1:8188\"\n[backends.workflow_map]\nprompt = \"6.text\"\n"), "")
	f.Add([]byte("[retention]\nimages = \"36500d\"\n"), "")
	f.Add([]byte("[generation]\nmax_side = 4096\nmax_pixels = 16777216\n"), "ZIMAGE_GENERATION_MAX_COUNT=16")
	f.Add([]byte("[server\nlisten = 1"), "")
	f.Add([]byte("[server]\nunknown = 1\n"), "")
	f.Add([]byte("# [[backends]] in a comment\n"), "")
	f.Add([]byte(""), "ZIMAGE_NOPE=1")
	f.Add([]byte(""), "ZIMAGE_AUTH_SESSION_IDLE=1d-1h")
	path := filepath.Join(f.TempDir(), "zimage.toml")
	f.Fuzz(func(t *testing.T, data []byte, env string) {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := Load(path, []string{env})
		if err != nil {
			// Every problem is a *config.Error that says what is allowed
			// and names either the key or, for a file that is not TOML at
			// all, where in the file it broke.
			var es Errors
			if !errors.As(err, &es) || len(es) == 0 {
				t.Fatalf("Load refused with %T %q; want config.Errors", err, err)
			}
			for _, ce := range es {
				if ce.Allowed == "" || (ce.Key == "" && ce.Source == "") {
					t.Fatalf("Load refused with %q; want each problem to name the key (or the file position) and what is allowed", ce)
				}
			}
			return
		}
		out, err := toml.Marshal(cfg)
		if err != nil {
			t.Fatalf("an accepted config cannot be written out: %v", err)
		}
		if err := os.WriteFile(path, out, 0o600); err != nil {
			t.Fatal(err)
		}
		again, err := Load(path, nil)
		if err != nil {
			t.Fatalf("an accepted config, written out, is refused: %v\n%s", err, out)
		}
		normalize(&cfg)
		normalize(&again)
		if !reflect.DeepEqual(again, cfg) {
			t.Fatalf("an accepted config changes when written out and read back:\n got %+v\nwant %+v\n%s", again, cfg, out)
		}
	})
}

// normalize makes absent lists and maps empty ones: TOML writes an empty
// workflow_map as a bare table header and reads that back as no map, and
// the two mean the same setting.
func normalize(c *Config) {
	for i := range c.Backends {
		if c.Backends[i].Models == nil {
			c.Backends[i].Models = []string{}
		}
		if c.Backends[i].WorkflowMap == nil {
			c.Backends[i].WorkflowMap = map[string]string{}
		}
	}
	if c.Server.TrustedProxies == nil {
		c.Server.TrustedProxies = []string{}
	}
	if c.TLS.Domains == nil {
		c.TLS.Domains = []string{}
	}
}
