package config

import (
	"fmt"
	"net"
	"net/mail"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// Validate checks every value and the combinations that conflict. It
// returns every problem, as Errors.
func (c *Config) Validate() error { return c.validate(origin{}).orNil() }

// validate runs every check and says where each problem's value came
// from. A value the person did not write (a default) is never shown as
// theirs: the error says the default applies instead.
func (c *Config) validate(o origin) Errors {
	var p problems
	for _, check := range []func(*problems){
		c.validateServer, c.validateTLS, c.validateAuth, c.validateBackends,
		c.validateQueue, c.validateGeneration, c.validateRetention, c.validatePrivacy, c.validateOpenAI,
	} {
		check(&p)
	}
	known := o.written != nil || o.env != nil
	for _, e := range p {
		if e.Source = o.source(e.Key); e.Source == "" && known && e.Value != "" {
			e.Allowed += fmt.Sprintf(" (%s is not set, so its default %s applies)", e.Key, e.Value)
			e.Value = ""
		}
	}
	return Errors(p)
}

// problems collects the errors of the checks; add ignores nil so a check
// reads as a list of rules.
type problems Errors

func (p *problems) add(e *Error) {
	if e != nil {
		*p = append(*p, e)
	}
}

// applyDerivedDefaults lowers (or raises) defaults that depend on another
// key the person set, so that setting max_side = 1024 alone is not refused
// for a max_pixels nobody wrote.
func (c *Config) applyDerivedDefaults(isSet func(key string) bool) {
	g := &c.Generation
	if !isSet("generation.max_pixels") && g.MaxPixels > g.MaxSide*g.MaxSide {
		g.MaxPixels = g.MaxSide * g.MaxSide
	}
	if !isSet("generation.default_steps") && g.DefaultSteps > g.MaxSteps && g.MaxSteps > 0 {
		g.DefaultSteps = g.MaxSteps
	}
	a := &c.Auth
	if !isSet("auth.session_absolute") && a.SessionAbsolute < a.SessionIdle {
		a.SessionAbsolute = a.SessionIdle
	}
}

func bad(key string, value any, allowed string, args ...any) *Error {
	var v string
	switch x := value.(type) {
	case string:
		v = strconv.Quote(x)
	case Duration:
		v = strconv.Quote(x.String())
	case nil:
	default:
		v = fmt.Sprint(x)
	}
	return &Error{Key: key, Value: v, Allowed: fmt.Sprintf(allowed, args...)}
}

func oneOf(key, value string, allowed ...string) *Error {
	for _, a := range allowed {
		if value == a {
			return nil
		}
	}
	return bad(key, value, "must be one of %s", strings.Join(allowed, ", "))
}

func checkHostPort(key, v string) *Error {
	if _, port, err := net.SplitHostPort(v); err != nil {
		return bad(key, v, "must be host:port, e.g. \"127.0.0.1:8080\" or \":443\"")
	} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return bad(key, v, "port must be a number from 0 to 65535")
	}
	return nil
}

func (c *Config) validateServer(p *problems) {
	s := c.Server
	p.add(checkHostPort("server.listen", s.Listen))
	if s.DataDir == "" {
		p.add(bad("server.data_dir", s.DataDir, "must name a folder, e.g. \"./data\" or \"/var/lib/zimage\""))
	}
	if s.BaseURL != "" {
		u, err := url.Parse(s.BaseURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			p.add(bad("server.base_url", s.BaseURL, "must be an absolute http(s) URL such as \"https://images.example.com\", or empty"))
		}
	}
	p.add(oneOf("server.log_format", s.LogFormat, "text", "json"))
	p.add(oneOf("server.log_level", s.LogLevel, "debug", "info", "warn", "error"))
	if s.MaxBodyBytes < 4096 || s.MaxBodyBytes > 1<<30 {
		p.add(bad("server.max_body_bytes", s.MaxBodyBytes, "must be between 4096 and 1073741824 bytes"))
	}
	if s.ShutdownTimeout.D() < time.Second || s.ShutdownTimeout.D() > 10*time.Minute {
		p.add(bad("server.shutdown_timeout", s.ShutdownTimeout, "must be between 1s and 10m"))
	}
	if s.ReadHeaderTimeout.D() < time.Second || s.ReadHeaderTimeout.D() > 5*time.Minute {
		p.add(bad("server.read_header_timeout", s.ReadHeaderTimeout, "must be between 1s and 5m"))
	}
	if s.BodyTimeout.D() < time.Second || s.BodyTimeout.D() > time.Hour {
		p.add(bad("server.body_timeout", s.BodyTimeout, "must be between 1s and 1h"))
	}
	if s.BodyMinRate < 0 {
		p.add(bad("server.body_min_rate", s.BodyMinRate, "must be 0 (no extra time for large bodies) or more bytes per second"))
	}
	if s.APIRatePerKey < 0 {
		p.add(bad("server.api_rate_per_key", s.APIRatePerKey, "must be 0 (no limit) or more requests a minute"))
	}
	if s.APIRatePerAddress < 0 {
		p.add(bad("server.api_rate_per_address", s.APIRatePerAddress, "must be 0 (no limit) or more requests a minute"))
	}
	for _, tp := range s.TrustedProxies {
		if _, _, err := net.ParseCIDR(tp); err != nil && net.ParseIP(tp) == nil {
			p.add(bad("server.trusted_proxies", tp, "each entry must be an IP address or CIDR range such as \"127.0.0.1\" or \"10.0.0.0/8\""))
		}
	}
}

func (c *Config) validateTLS(p *problems) {
	t := c.TLS
	if err := oneOf("tls.mode", t.Mode, "off", "auto", "files"); err != nil {
		p.add(err)
		return // the other keys depend on the mode
	}
	if t.Mode == "off" {
		return
	}
	p.add(checkHostPort("tls.listen", t.Listen))
	if t.HTTPListen != "" {
		p.add(checkHostPort("tls.http_listen", t.HTTPListen))
	}
	switch t.Mode {
	case "auto":
		if len(t.Domains) == 0 {
			p.add(bad("tls.domains", nil, "tls.mode = \"auto\" needs at least one domain name to get a certificate for"))
		}
		for _, d := range t.Domains {
			if d == "" || strings.ContainsAny(d, "/: ") || net.ParseIP(d) != nil {
				p.add(bad("tls.domains", d, "must be DNS names such as \"images.example.com\" (no scheme, port or IP address)"))
			}
		}
		if t.Email != "" {
			if _, err := mail.ParseAddress(t.Email); err != nil {
				p.add(bad("tls.email", t.Email, "must be an email address for the ACME account, or empty"))
			}
		}
		if t.CAURL != "" {
			if u, err := url.Parse(t.CAURL); err != nil || u.Scheme != "https" || u.Host == "" {
				p.add(bad("tls.ca_url", t.CAURL, "must be the https URL of an ACME directory, or empty for Let's Encrypt"))
			}
		}
		if t.CertFile != "" || t.KeyFile != "" {
			p.add(bad("tls.cert_file", t.CertFile, "conflicts with tls.mode = \"auto\"; set tls.mode = \"files\" to use your own certificate"))
		}
		if t.HTTPListen == "" {
			p.add(bad("tls.http_listen", "", "tls.mode = \"auto\" needs an HTTP listener for the HTTP-01 challenge and the redirect to HTTPS"))
		}
	case "files":
		if t.CertFile == "" || t.KeyFile == "" {
			p.add(bad("tls.cert_file", t.CertFile, "tls.mode = \"files\" needs both tls.cert_file and tls.key_file"))
		}
		if len(t.Domains) > 0 || t.CAURL != "" {
			p.add(bad("tls.domains", strings.Join(t.Domains, ","), "domains and ca_url are for tls.mode = \"auto\"; remove them with tls.mode = \"files\""))
		}
	}
	if t.ChallengeHTTPPort < 0 || t.ChallengeHTTPPort > 65535 {
		p.add(bad("tls.challenge_http_port", t.ChallengeHTTPPort, "must be a port number or 0"))
	}
	if t.ChallengeALPNPort < 0 || t.ChallengeALPNPort > 65535 {
		p.add(bad("tls.challenge_alpn_port", t.ChallengeALPNPort, "must be a port number or 0"))
	}
	if t.Listen == c.Server.Listen && !strings.HasSuffix(t.Listen, ":0") {
		p.add(bad("tls.listen", t.Listen, "is also server.listen; give the TLS listener its own address"))
	}
}

func (c *Config) validateAuth(p *problems) {
	a := c.Auth
	p.add(oneOf("auth.signup", a.Signup, "open", "invite", "closed"))
	if a.SessionIdle.D() < time.Minute {
		p.add(bad("auth.session_idle", a.SessionIdle, "must be at least 1m"))
	} else if a.SessionAbsolute.D() < a.SessionIdle.D() {
		p.add(bad("auth.session_absolute", a.SessionAbsolute, "must be at least auth.session_idle (%s)", a.SessionIdle))
	}
	if a.MinAge < 13 || a.MinAge > 21 {
		p.add(bad("auth.min_age", a.MinAge, "must be between 13 and 21: the privacy policy promises no accounts for children under 13"))
	}
	if a.MaxLoginFailures < 1 || a.MaxLoginFailures > 100 {
		p.add(bad("auth.max_login_failures", a.MaxLoginFailures, "must be between 1 and 100"))
	}
}

var backendKinds = []string{"builtin", "comfyui", "a1111", "openai"}

func (c *Config) validateBackends(p *problems) {
	if len(c.Backends) == 0 {
		p.add(bad("backends", nil, "at least one [[backends]] entry is needed; kind = \"builtin\" works with no GPU"))
	}
	seen := map[string]bool{}
	for i, b := range c.Backends {
		k := fmt.Sprintf("backends[%d]", i)
		switch {
		case b.Name == "":
			p.add(bad(k+".name", nil, "is missing: give each backend a short unique name such as \"gpu0\""))
		case strings.ContainsAny(b.Name, " /\\") || len(b.Name) > 40:
			p.add(bad(k+".name", b.Name, "must be a short name without spaces or slashes, such as \"gpu0\""))
		case seen[b.Name]:
			p.add(bad(k+".name", b.Name, "is used by two backends; names must be unique"))
		}
		seen[b.Name] = true
		if b.Kind == "" {
			p.add(bad(k+".kind", nil, "is missing: say which server this is, one of %s", strings.Join(backendKinds, ", ")))
		} else if err := oneOf(k+".kind", b.Kind, backendKinds...); err != nil {
			p.add(err)
		} else if b.Kind == "builtin" {
			if b.URL != "" {
				p.add(bad(k+".url", b.URL, "the builtin renderer runs inside zimage; remove url"))
			}
		} else if b.URL == "" {
			p.add(bad(k+".url", nil, "is missing: give the http(s) URL of the %s server, e.g. \"http://127.0.0.1:8188\"", b.Kind))
		} else {
			u, err := url.Parse(b.URL)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				p.add(bad(k+".url", b.URL, "must be the http(s) URL of the %s server, e.g. \"http://127.0.0.1:8188\"", b.Kind))
			}
		}
		if b.Slots < 1 || b.Slots > 64 {
			p.add(bad(k+".slots", b.Slots, "must be between 1 and 64 concurrent jobs"))
		}
		if b.Timeout.D() < time.Second || b.Timeout.D() > 24*time.Hour {
			p.add(bad(k+".timeout", b.Timeout, "must be between 1s and 24h"))
		}
		if b.Workflow != "" && b.Kind != "comfyui" {
			p.add(bad(k+".workflow", b.Workflow, "only comfyui backends take a workflow"))
		}
		if len(b.WorkflowMap) > 0 && b.Workflow == "" {
			p.add(bad(k+".workflow_map", nil, "needs workflow: the mapping says which node inputs of your workflow take each parameter"))
		}
	}
}

func (c *Config) validateQueue(p *problems) {
	q := c.Queue
	if q.MaxQueuedPerUser < 1 || q.MaxQueuedPerUser > 10000 {
		p.add(bad("queue.max_queued_per_user", q.MaxQueuedPerUser, "must be between 1 and 10000"))
	}
	if q.MaxRunningPerUser < 1 || q.MaxRunningPerUser > 64 {
		p.add(bad("queue.max_running_per_user", q.MaxRunningPerUser, "must be between 1 and 64"))
	}
	if q.JobTimeout.D() < time.Second {
		p.add(bad("queue.job_timeout", q.JobTimeout, "must be at least 1s"))
	}
	if q.WaitForBackend.D() < time.Second {
		p.add(bad("queue.wait_for_backend", q.WaitForBackend, "must be at least 1s"))
	}
	if q.StallTimeout.D() < time.Second {
		p.add(bad("queue.stall_timeout", q.StallTimeout, "must be at least 1s"))
	}
}

func (c *Config) validateGeneration(p *problems) {
	g := c.Generation
	if g.MaxSide < 64 || g.MaxSide > 8192 || g.MaxSide%16 != 0 {
		p.add(bad("generation.max_side", g.MaxSide, "must be a multiple of 16 between 64 and 8192"))
	} else if g.MaxPixels < 64*64 || g.MaxPixels > g.MaxSide*g.MaxSide {
		p.add(bad("generation.max_pixels", g.MaxPixels, "must be between 4096 and max_side² (%d)", g.MaxSide*g.MaxSide))
	}
	if g.MaxSteps < 1 || g.MaxSteps > 1000 {
		p.add(bad("generation.max_steps", g.MaxSteps, "must be between 1 and 1000"))
	} else if g.DefaultSteps < 1 || g.DefaultSteps > g.MaxSteps {
		p.add(bad("generation.default_steps", g.DefaultSteps, "must be between 1 and generation.max_steps (%d)", g.MaxSteps))
	}
	if g.MaxCount < 1 || g.MaxCount > 16 {
		p.add(bad("generation.max_count", g.MaxCount, "must be between 1 and 16"))
	}
	if g.MaxPromptLength < 10 || g.MaxPromptLength > 100000 {
		p.add(bad("generation.max_prompt_length", g.MaxPromptLength, "must be between 10 and 100000 characters"))
	}
}

func (c *Config) validateRetention(p *problems) {
	r := c.Retention
	windows := []struct {
		key string
		v   Duration
		max time.Duration
		why string
	}{
		{"retention.images", r.Images, 90 * 24 * time.Hour, "the privacy policy promises deletion after 90 days"},
		{"retention.deleted_accounts", r.DeletedAccounts, 30 * 24 * time.Hour, "the privacy policy promises removal within 30 days"},
		{"retention.usage", r.Usage, 365 * 24 * time.Hour, "the privacy policy promises usage data is kept 12 months"},
		{"retention.support", r.Support, 730 * 24 * time.Hour, "the privacy policy promises support messages are kept 24 months"},
		{"retention.exports", r.Exports, 30 * 24 * time.Hour, "export archives hold everything about a person"},
		{"retention.keyring_backups", r.KeyringBackups, 30*24*time.Hour - time.Nanosecond, "a keyring backup older than 30 days could revive a deleted account"},
	}
	for _, w := range windows {
		if w.v.D() < time.Hour {
			p.add(bad(w.key, w.v, "must be at least 1h; zero or negative windows would delete data as it is made"))
		} else if w.v.D() > w.max {
			p.add(bad(w.key, w.v, "must be at most %s: %s", Duration(w.max), w.why))
		}
	}
	if _, err := cron.ParseStandard(r.Schedule); err != nil {
		p.add(bad("retention.schedule", r.Schedule, "must be a cron schedule such as \"@hourly\", \"@every 30m\" or \"0 3 * * *\""))
	}
	if r.BatchSize < 1 || r.BatchSize > 100000 {
		p.add(bad("retention.batch_size", r.BatchSize, "must be between 1 and 100000"))
	}
}

func (c *Config) validateOpenAI(p *problems) {
	o := c.OpenAI
	for name, target := range o.Aliases {
		if strings.TrimSpace(name) == "" || strings.TrimSpace(target) == "" {
			p.add(bad("openai.aliases", name+" = "+target, "each alias needs a name and the model it stands for, e.g. { \"dall-e-3\" = \"z-image-turbo\" }"))
		}
	}
	if o.URLExpiry.D() < time.Minute || o.URLExpiry.D() > 7*24*time.Hour {
		p.add(bad("openai.url_expiry", o.URLExpiry, "must be between 1m and 7d"))
	}
}

func (c *Config) validatePrivacy(p *problems) {
	pv := c.Privacy
	for _, f := range []struct{ key, v string }{{"privacy.contact_email", pv.ContactEmail}, {"privacy.dpo_email", pv.DPOEmail}, {"mail.from", c.Mail.From}} {
		if f.v == "" {
			continue
		}
		if a, err := mail.ParseAddress(f.v); err != nil || a.Name != "" && f.key != "mail.from" {
			p.add(bad(f.key, f.v, "must be an email address such as \"privacy@example.com\""))
		}
	}
	m := c.Mail
	if m.Host != "" && m.From == "" {
		p.add(bad("mail.from", "", "is needed when mail.host is set"))
	}
	if m.Port < 1 || m.Port > 65535 {
		p.add(bad("mail.port", m.Port, "must be between 1 and 65535"))
	}
	switch m.TLS {
	case "starttls", "implicit":
	case "none":
		if m.Host != "" && m.Host != "localhost" && !isLoopbackIP(m.Host) {
			p.add(bad("mail.tls", m.TLS, "\"none\" sends passwords and mail in clear text: use it only with a relay on this machine (localhost); use \"starttls\" or \"implicit\""))
		}
	default:
		p.add(bad("mail.tls", m.TLS, "must be \"starttls\", \"implicit\" or \"none\""))
	}
	if m.Auth != "plain" && m.Auth != "login" {
		p.add(bad("mail.auth", m.Auth, "must be \"plain\" or \"login\""))
	}
	if m.Password != "" && m.PasswordFile != "" {
		p.add(bad("mail.password_file", m.PasswordFile, "cannot be set together with mail.password: choose one"))
	}
	if m.MaxTries < 1 || m.MaxTries > 100 {
		p.add(bad("mail.max_tries", m.MaxTries, "must be between 1 and 100"))
	}
	for _, d := range []struct {
		key string
		v   Duration
	}{{"mail.retry_base", m.RetryBase}, {"mail.retry_max", m.RetryMax}, {"mail.poll", m.Poll}, {"mail.timeout", m.Timeout}} {
		if d.v <= 0 {
			p.add(bad(d.key, d.v, "must be more than 0s"))
		}
	}
}

func isLoopbackIP(host string) bool {
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
