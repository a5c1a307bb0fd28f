// Package config loads Z Image's TOML configuration on top of defaults,
// applies ZIMAGE_<SECTION>_<KEY> environment overrides and validates the
// result. It depends on nothing else of ours: callers map its values into
// the options of the packages they configure.
package config

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
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
	Provenance Provenance `toml:"provenance"`
	OpenAI     OpenAI     `toml:"openai"`
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
	StallTimeout      Duration `toml:"stall_timeout"`
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

// Provenance says what every stored image file declares about itself.
type Provenance struct {
	// Marks writes IPTC "made by an algorithm" marks (XMP) into every file;
	// turning it off may breach Article 50 of the EU AI Act where it applies.
	Marks bool `toml:"marks"`
	// Sign adds signed C2PA Content Credentials to every image file.
	Sign bool `toml:"sign"`
	// KeyFile and CertFile are the signer's PEM key (ECDSA P-256) and
	// certificate chain; empty means c2pa-key.pem and c2pa-cert.pem in the
	// data folder, made (self-signed) at the first start.
	KeyFile  string `toml:"key_file"`
	CertFile string `toml:"cert_file"`
	// IncludeModel names the model in the credentials.
	IncludeModel bool `toml:"include_model"`
}

// SigningFiles returns the key and certificate files, the data folder's
// defaults when not set, and whether they are those defaults.
func (c Config) SigningFiles() (key, cert string, defaults bool) {
	key, cert = c.Provenance.KeyFile, c.Provenance.CertFile
	if key == "" && cert == "" {
		return filepath.Join(c.Server.DataDir, "c2pa-key.pem"), filepath.Join(c.Server.DataDir, "c2pa-cert.pem"), true
	}
	return key, cert, false
}

// OpenAI shapes the OpenAI-compatible API under /v1.
type OpenAI struct {
	// Aliases maps model names clients send ("dall-e-3") to models the
	// backends serve; any other unknown name is a 404 model_not_found.
	Aliases map[string]string `toml:"aliases"`
	// URLExpiry is how long a response_format=url link works.
	URLExpiry Duration `toml:"url_expiry"`
}

// Mail is the SMTP relay the outbox is sent through; an empty Host turns
// mail off.
type Mail struct {
	Host string `toml:"host"`
	Port int    `toml:"port"`
	// TLS is "starttls" (required, port 587), "implicit" (port 465) or
	// "none" (loopback relays only).
	TLS          string   `toml:"tls"`
	Auth         string   `toml:"auth"` // "plain" or "login", used when Username is set
	Username     string   `toml:"username"`
	Password     string   `toml:"password"`
	PasswordFile string   `toml:"password_file"`
	From         string   `toml:"from"`
	CAFile       string   `toml:"ca_file"`
	MaxTries     int      `toml:"max_tries"`
	RetryBase    Duration `toml:"retry_base"`
	RetryMax     Duration `toml:"retry_max"`
	Poll         Duration `toml:"poll"`
	Timeout      Duration `toml:"timeout"`
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
		Mail: Mail{
			Port: 587, TLS: "starttls", Auth: "plain", MaxTries: 8,
			RetryBase: Duration(60e9), RetryMax: Duration(6 * 3600e9), Poll: Duration(5e9), Timeout: Duration(30e9),
		},
		Backends: []Backend{builtinBackend()},
		Queue: Queue{
			MaxQueuedPerUser:  20,
			MaxRunningPerUser: 1,
			JobTimeout:        Duration(10 * 60e9),
			WaitForBackend:    Duration(5 * 60e9),
			StallTimeout:      Duration(60e9),
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
		Provenance: Provenance{Marks: true, Sign: true},
		OpenAI:     OpenAI{Aliases: map[string]string{}, URLExpiry: Duration(3600e9)},
	}
}

const day = 24 * 3600e9

func builtinBackend() Backend {
	b := DefaultBackend("builtin")
	b.Name = "builtin"
	return b
}

// DefaultBackend is what a [[backends]] table of this kind holds before the
// keys written in it apply: a table needs only name, kind and (but for
// builtin) url. Defaults that differ by kind belong here.
func DefaultBackend(kind string) Backend {
	return Backend{Kind: kind, Slots: 1, Timeout: Duration(10 * 60e9), Models: []string{}, WorkflowMap: map[string]string{}}
}

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
	if e.Key != "" {
		b.WriteString(e.Key)
		if e.Value != "" {
			fmt.Fprintf(&b, " = %s", e.Value)
		}
		b.WriteString(": ")
	}
	b.WriteString(e.Allowed)
	return b.String()
}

// Errors is every problem one load found, in the order of the file's
// lines, so a person fixes them all in one round rather than one a start.
type Errors []*Error

func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap lets errors.As find the first *Error.
func (es Errors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// orNil keeps a nil slice from becoming a non-nil error.
func (es Errors) orNil() error {
	if len(es) == 0 {
		return nil
	}
	return es
}

// Load reads the TOML file at path (none when path is ""), applies it on top
// of Default(), then environment overrides from env (os.Environ format), and
// validates. It returns every problem it finds as Errors. It touches
// nothing on disk but the file it reads.
func Load(path string, env []string) (Config, error) {
	cfg := Default()
	var errs Errors
	o := origin{path: path}
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return cfg, Errors{{Source: path, Allowed: "cannot read the file: " + errText(err) + "; check the path"}}
		}
		o.data = data
		var fatal bool
		errs, fatal = decode(&cfg, &o)
		if fatal {
			return cfg, errs
		}
	}
	envSet, envErrs := applyEnv(&cfg, env)
	errs = append(errs, envErrs...)
	o.env = envSet
	cfg.applyDerivedDefaults(o.isSet)
	errs = append(errs, cfg.validate(o)...)
	sortByLine(errs, path)
	return cfg, errs.orNil()
}

// sortByLine puts the problems found in the file in the order of its
// lines, the order a person fixes them in; the others (environment) follow
// in the order found.
func sortByLine(errs Errors, path string) {
	line := func(e *Error) int {
		rest, ok := strings.CutPrefix(e.Source, path+":")
		if !ok || path == "" {
			return math.MaxInt
		}
		n, err := strconv.Atoi(rest)
		if err != nil {
			return math.MaxInt
		}
		return n
	}
	sort.SliceStable(errs, func(i, j int) bool { return line(errs[i]) < line(errs[j]) })
}

func errText(err error) string {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}
