// Package web is Z Image's HTTP face: one routes table, one error handler,
// middleware for security headers, body limits, logs and metrics, and one
// handler per file. HTML pages and the JSON API sit side by side.
package web

import (
	"context"
	"crypto/rand"
	"html/template"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"zimage/app"
	"zimage/app/auth"
	"zimage/app/media"
	"zimage/app/privacy"
	"zimage/app/queue"
	"zimage/app/sqlite"
	"zimage/ui"
)

// Options are the server's settings, mapped from config by the caller.
type Options struct {
	Version        string
	MaxBodyBytes   int64
	MetricsEnabled bool
	MetricsToken   string
	// HSTSMaxAge > 0 sends Strict-Transport-Security on TLS requests.
	HSTSMaxAge     time.Duration
	TrustedProxies []string
	// ImagesRetention is shown to people ("deleted after 90 days").
	ImagesRetention string
	// BaseURL is server.base_url; when it is https, session cookies are
	// Secure even on requests a TLS-terminating proxy forwarded as HTTP.
	BaseURL string
	// BodyTimeout is how long a request body may take to arrive (0: no
	// limit), plus a second for every BodyMinRate bytes received.
	BodyTimeout time.Duration
	BodyMinRate int64
	// APIRatePerKey and APIRatePerAddr are API requests a minute per key
	// and per client address (0: no limit).
	APIRatePerKey  int
	APIRatePerAddr int
	// Limits and DefaultSteps shape the generate form and API defaults.
	Limits       app.GenerationLimits
	DefaultSteps int
	// Signing is the state of Content Credentials signing, shown on the
	// admin's backends page.
	Signing Signing
	// OpenAIAliases maps model names OpenAI clients send to served
	// models; OpenAIURLExpiry is how long a response_format=url link
	// works (1h when zero).
	OpenAIAliases   map[string]string
	OpenAIURLExpiry time.Duration
}

// Signing says whether stored images get signed Content Credentials:
// Signer and NotAfter when they do, Off (why not) when they do not.
type Signing struct {
	Signer   string
	NotAfter time.Time
	Off      string
}

// Deps are the services handlers call. More join as they are built; a
// struct keeps New's signature stable while they do.
type Deps struct {
	DB   *sqlite.DB
	Auth *auth.Service
	// Policies serves the privacy policy's versions; nil leaves /privacy
	// answering 503.
	Policies *privacy.Policies
	Queue    *queue.Queue
	Media    *media.Store
	// Rights carries out erasure, legal holds, consents and restriction;
	// nil leaves those routes answering 503.
	Rights *privacy.Controls
	// Support, Exports, Requests and Usage serve tickets, data exports,
	// data-rights requests and usage events; nil leaves their routes
	// answering 503 (Usage nil: nothing is counted).
	Support  *privacy.Support
	Exports  *privacy.Exports
	Requests *privacy.Requests
	Usage    *privacy.Usage
}

// Server holds the dependencies every handler may use.
type Server struct {
	e        *echo.Echo
	log      *slog.Logger
	db       *sqlite.DB
	auth     *auth.Service
	policies *privacy.Policies
	queue    *queue.Queue
	media    *media.Store
	rights   *privacy.Controls
	support  *privacy.Support
	exports  *privacy.Exports
	requests *privacy.Requests
	usage    *privacy.Usage
	opts     Options
	metrics  *metrics
	assets   *assets
	pages    map[string]*template.Template
	// pageHook fills the signed-in parts of a page (user, CSRF token,
	// policy notice); the auth middleware's owner sets it.
	pageHook func(echo.Context, *page)
	// keyLimit and addrLimit are the API rate limits; nil: none.
	keyLimit, addrLimit *rateLimiter
	// linkKey signs the OpenAI API's image links.
	linkKey []byte
}

// New builds the server and its routes. It fails if a template or static
// file is broken, so that shows at start, not on a request.
func New(log *slog.Logger, deps Deps, opts Options) (*Server, error) {
	a, err := loadAssets(ui.Static)
	if err != nil {
		return nil, err
	}
	pages, err := loadPages(a)
	if err != nil {
		return nil, err
	}
	s := &Server{e: echo.New(), log: log, db: deps.DB, auth: deps.Auth, policies: deps.Policies, queue: deps.Queue, media: deps.Media, rights: deps.Rights, opts: opts, metrics: newMetrics(), assets: a, pages: pages}
	s.support, s.exports, s.requests, s.usage = deps.Support, deps.Exports, deps.Requests, deps.Usage
	s.keyLimit, s.addrLimit = newRateLimiter(opts.APIRatePerKey), newRateLimiter(opts.APIRatePerAddr)
	if s.opts.OpenAIURLExpiry <= 0 {
		s.opts.OpenAIURLExpiry = time.Hour
	}
	s.linkKey = make([]byte, 32)
	rand.Read(s.linkKey) // no database (some tests): links last while the process does
	if deps.DB != nil {
		if s.linkKey, err = loadLinkSecret(context.Background(), deps.DB); err != nil {
			return nil, err
		}
	}
	s.e.HideBanner, s.e.HidePort = true, true
	s.e.HTTPErrorHandler = s.handleError
	s.e.IPExtractor = ipExtractor(opts.TrustedProxies)
	s.routes()
	return s, nil
}

// Handler returns the http.Handler to serve.
func (s *Server) Handler() http.Handler { return s.e }

// ipExtractor believes forwarding headers only from configured proxies.
func ipExtractor(trusted []string) echo.IPExtractor {
	if len(trusted) == 0 {
		return echo.ExtractIPDirect()
	}
	opts := []echo.TrustOption{echo.TrustLoopback(false), echo.TrustLinkLocal(false), echo.TrustPrivateNet(false)}
	for _, t := range trusted {
		if _, n, err := net.ParseCIDR(t); err == nil {
			opts = append(opts, echo.TrustIPRange(n))
		} else if ip := net.ParseIP(t); ip != nil {
			bits := 32
			if ip.To4() == nil {
				bits = 128
			}
			opts = append(opts, echo.TrustIPRange(&net.IPNet{IP: ip, Mask: net.CIDRMask(bits, bits)}))
		}
	}
	return echo.ExtractIPFromXFFHeader(opts...)
}

func requestID() echo.MiddlewareFunc {
	return middleware.RequestIDWithConfig(middleware.RequestIDConfig{
		// Never reuse an id a client sent: it would let them forge log lines
		// that look like someone else's request.
		Skipper: func(c echo.Context) bool { c.Request().Header.Del(echo.HeaderXRequestID); return false },
	})
}
