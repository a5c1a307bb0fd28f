package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestServerLimitKeys checks the request-time and rate-limit keys: each bad
// value is refused naming its key.
func TestServerLimitKeys(t *testing.T) {
	tests := []struct {
		name, file, wantKey, wantMsg string
	}{
		{"header timeout too short", "[server]\nread_header_timeout = \"0s\"\n", "server.read_header_timeout", "between 1s and 5m"},
		{"body timeout too long", "[server]\nbody_timeout = \"2h\"\n", "server.body_timeout", "between 1s and 1h"},
		{"negative body rate", "[server]\nbody_min_rate = -1\n", "server.body_min_rate", "bytes per second"},
		{"negative key rate", "[server]\napi_rate_per_key = -5\n", "server.api_rate_per_key", "requests a minute"},
		{"negative address rate", "[server]\napi_rate_per_address = -5\n", "server.api_rate_per_address", "requests a minute"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "z.toml")
			if err := os.WriteFile(path, []byte(tt.file), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := Load(path, nil)
			var ce *Error
			if !errors.As(err, &ce) || ce.Key != tt.wantKey || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("Load: %v, want an error for %s saying %q", err, tt.wantKey, tt.wantMsg)
			}
		})
	}
	cfg, err := Load("", []string{"ZIMAGE_SERVER_API_RATE_PER_KEY=0", "ZIMAGE_SERVER_BODY_TIMEOUT=1m"})
	if err != nil || cfg.Server.APIRatePerKey != 0 || cfg.Server.BodyTimeout.D().Minutes() != 1 {
		t.Errorf("environment overrides: %+v, %v", cfg.Server, err)
	}
}
