// Package config loads Z Image's TOML configuration on top of defaults,
// applies ZIMAGE_<SECTION>_<KEY> environment overrides and validates the
// result. It depends on nothing else of ours: callers map its values into
// the options of the packages they configure.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/pelletier/go-toml/v2"
)

// Config is the whole configuration. Every key is documented in
// config.example.toml; a test keeps the two in step.
type Config struct {
	Server     Server     `toml:"server"`
	TLS        TLS        `toml:"tls"`
	Metrics    Metrics    `toml:"metrics"`
	Auth       Auth       `toml:"auth"`
	Backends   []Backend  `toml:"backends"`
	Queue      Queue      `toml:"queue"`
	Generation Generation `toml:"generation"`
	Retention  Retention  `toml:"retention"`
	Privacy    Privacy    `toml:"privacy"`
	Mail       Mail       `toml:"mail"`
	Backup     Backup     `toml:"backup"`
}

type Server struct {
	Listen          string   `toml:"listen"`
	BaseURL         string   `toml:"base_url"`
	DataDir         string   `toml:"data_dir"`
	LogFormat       string   `toml:"log_format"`
	LogLevel        string   `toml:"log_level"`
	MaxBodyBytes    int64    `toml:"max_body_bytes"`
	ShutdownTimeout Duration `toml:"shutdown_timeout"`
	TrustedProxies  []string `toml:"trusted_proxies"`
	// ReadHeaderTimeout bounds a request's headers; BodyTimeout its body,
	// plus a second per BodyMinRate bytes received.
	ReadHeaderTimeout Duration `toml:"read_header_timeout"`
	BodyTimeout       Duration `toml:"body_timeout"`
	BodyMinRate       int64    `toml:"body_min_rate"`
	// APIRatePerKey and APIRatePerAddress are API requests a minute per
	// key and per client address (0: no limit).
	APIRatePerKey     int `toml:"api_rate_per_key"`
	APIRatePerAddress int `toml:"api_rate_per_address"`
}

type TLS struct {
	Mode       string   `toml:"mode"`
	Domains    []string `toml:"domains"`
	Email      string   `toml:"email"`
	CAURL      string   `toml:"ca_url"`
	CARoot     string   `toml:"ca_root"`
	CertFile   string   `toml:"cert_file"`
	KeyFile    string   `toml:"key_file"`
	Listen     string   `toml:"listen"`
	HTTPListen string   `toml:"http_listen"`
	HSTSMaxAge Duration `toml:"hsts_max_age"`
	// ALPNPort and HTTPPort let ACME challenges be answered on other ports
	// than 443/80 (a private CA or a port-forwarding setup); 0 means the
	// ports of listen and http_listen.
	ChallengeHTTPPort int `toml:"challenge_http_port"`
	ChallengeALPNPort int `toml:"challenge_alpn_port"`
}

type Metrics struct {
	Enabled bool   `toml:"enabled"`
	Token   string `toml:"token"`
}

type Auth struct {
	Signup           string   `toml:"signup"`
	RequireAdmin2FA  bool     `toml:"require_admin_2fa"`
	SessionIdle      Duration `toml:"session_idle"`
	SessionAbsolute  Duration `toml:"session_absolute"`
	MinAge           int      `toml:"min_age"`
	MaxLoginFailures int      `toml:"max_login_failures"`
}

type Backend struct {
	Name        string            `toml:"name"`
	Kind        string            `toml:"kind"`
	URL         string            `toml:"url"`
	Slots       int               `toml:"slots"`
	Timeout     Duration          `toml:"timeout"`
	Model       string            `toml:"model"`
	Models      []string          `toml:"models"`
	APIKey      string            `toml:"api_key"`
	Workflow    string            `toml:"workflow"`
	WorkflowMap map[string]string `toml:"workflow_map"`
}

type Queue struct {
	MaxQueuedPerUser  int      `toml:"max_queued_per_user"`
	MaxRunningPerUser int      `toml:"max_running_per_user"`
	JobTimeout        Duration `toml:"job_timeout"`
	WaitForBackend    Duration `toml:"wait_for_backend"`
}

type Generation struct {
	MaxPixels       int `toml:"max_pixels"`
	MaxSide         int `toml:"max_side"`
	MaxSteps        int `toml:"max_steps"`
	MaxCount        int `toml:"max_count"`
	MaxPromptLength int `toml:"max_prompt_length"`
	DefaultSteps    int `toml:"default_steps"`
}

type Retention struct {
	Images          Duration `toml:"images"`
	DeletedAccounts Duration `toml:"deleted_accounts"`
	Usage           Duration `toml:"usage"`
	Support         Duration `toml:"support"`
	Exports         Duration `toml:"exports"`
	KeyringBackups  Duration `toml:"keyring_backups"`
	Schedule        string   `toml:"schedule"`
	BatchSize       int      `toml:"batch_size"`
}

type Privacy struct {
	Controller   string `toml:"controller"`
	ContactEmail string `toml:"contact_email"`
	DPOEmail     string `toml:"dpo_email"`
	Address      string `toml:"address"`
}

type Backup struct {
	KeyringDir string `toml:"keyring_dir"`
}

// KeyringBackupDir is where `zimage backup --keyring` writes and the
// keyring retention job prunes: backup.keyring_dir, or
// <data_dir>/backups/keyring.
func (c Config) KeyringBackupDir() string {
	if c.Backup.KeyringDir != "" {
		return c.Backup.KeyringDir
	}
	return filepath.Join(c.Server.DataDir, "backups", "keyring")
}

type Mail struct {
	SMTPURL string `toml:"smtp_url"`
	From    string `toml:"from"`
}

// Default returns the zero-config setup: plain HTTP on loopback, data in
// ./data, the builtin CPU renderer, and the privacy policy's windows.
func Default() Config {
	return Config{
		Server: Server{
			Listen:          "127.0.0.1:8080",
			DataDir:         "./data",
			LogFormat:       "text",
			LogLevel:        "info",
			MaxBodyBytes:    1 << 20,
			ShutdownTimeout: Duration(15e9),
			TrustedProxies:  []string{},

			ReadHeaderTimeout: Duration(10e9),
			BodyTimeout:       Duration(30e9),
			BodyMinRate:       16384,
			APIRatePerKey:     1200,
			APIRatePerAddress: 2400,
		},
		TLS: TLS{
			Mode:       "off",
			Domains:    []string{},
			Listen:     ":443",
			HTTPListen: ":80",
			HSTSMaxAge: Duration(365 * day),
		},
		Metrics: Metrics{Enabled: true},
		Auth: Auth{
			Signup:           "open",
			SessionIdle:      Duration(7 * day),
			SessionAbsolute:  Duration(30 * day),
			MinAge:           13,
			MaxLoginFailures: 5,
		},
		Backends: []Backend{{Name: "builtin", Kind: "builtin", Slots: 1, Timeout: Duration(10 * 60e9),
			Models: []string{}, WorkflowMap: map[string]string{}}},
		Queue: Queue{
			MaxQueuedPerUser:  20,
			MaxRunningPerUser: 1,
			JobTimeout:        Duration(10 * 60e9),
			WaitForBackend:    Duration(5 * 60e9),
		},
		Generation: Generation{
			MaxPixels:       2048 * 2048, // 4194304
			MaxSide:         2048,
			MaxSteps:        100,
			MaxCount:        4,
			MaxPromptLength: 2000,
			DefaultSteps:    8,
		},
		Retention: Retention{
			Images:          Duration(90 * day),
			DeletedAccounts: Duration(30 * day),
			Usage:           Duration(365 * day),
			Support:         Duration(730 * day),
			Exports:         Duration(7 * day),
			KeyringBackups:  Duration(29 * day),
			Schedule:        "@hourly",
			BatchSize:       500,
		},
	}
}

const day = 24 * 3600e9

// Error is a configuration problem: one key, the value found, what is
// allowed. cli prints it on one line and exits with status 2.
type Error struct {
	Key     string
	Value   string
	Allowed string
	Source  string // file:line or ENV_NAME, when known
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("config: ")
	if e.Source != "" {
		b.WriteString(e.Source)
		b.WriteString(": ")
	}
	b.WriteString(e.Key)
	if e.Value != "" {
		fmt.Fprintf(&b, " = %s", e.Value)
	}
	b.WriteString(": ")
	b.WriteString(e.Allowed)
	return b.String()
}

// Load reads the TOML file at path (none when path is ""), applies it on top
// of Default(), then environment overrides from env (os.Environ format), and
// validates. It touches nothing on disk but the file it reads.
func Load(path string, env []string) (Config, error) {
	cfg := Default()
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return cfg, &Error{Key: "--config", Value: path, Allowed: "cannot read the file: " + errText(err)}
		}
		if err := decode(&cfg, data, path); err != nil {
			return cfg, err
		}
	}
	if err := applyEnv(&cfg, env); err != nil {
		return cfg, err
	}
	return cfg, cfg.Validate()
}

func errText(err error) string {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

func decode(cfg *Config, data []byte, path string) error {
	// A [[backends]] table in the file replaces the default list rather than
	// appending to it: an admin who configures ComfyUI does not want the
	// builtin renderer quietly serving jobs too.
	if bytes.Contains(data, []byte("[[backends]]")) {
		cfg.Backends = nil
	}
	dec := toml.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	err := dec.Decode(cfg)
	if err == nil {
		return nil
	}
	var strict *toml.StrictMissingError
	if errors.As(err, &strict) && len(strict.Errors) > 0 {
		de := strict.Errors[0]
		row, _ := de.Position()
		return &Error{Key: strings.Join(de.Key(), "."), Allowed: "unknown key; see config.example.toml for the keys that exist", Source: fmt.Sprintf("%s:%d", path, row)}
	}
	var de *toml.DecodeError
	if errors.As(err, &de) {
		row, _ := de.Position()
		key := strings.Join(de.Key(), ".")
		if key == "" {
			key = "(syntax)"
		}
		return &Error{Key: key, Allowed: de.Error(), Source: fmt.Sprintf("%s:%d", path, row)}
	}
	return &Error{Key: "(file)", Value: path, Allowed: err.Error()}
}
