package web

import (
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
)

// contentSecurityPolicy allows no inline script or style and nothing from
// other origins: the UI is self-hosted, and no request leaves the appliance.
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; " +
	"connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

func (s *Server) securityHeaders(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Response().Header()
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Cross-Origin-Resource-Policy", "same-origin")
		h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=(), interest-cohort=()")
		// Nothing is cached unless a handler says otherwise: pages and JSON
		// carry prompts, emails and CSRF tokens, which must not outlive the
		// session on a shared computer. Static assets and image files set
		// their own policy.
		h.Set("Cache-Control", "no-store")
		if s.opts.HSTSMaxAge > 0 && c.Request().TLS != nil {
			h.Set("Strict-Transport-Security", "max-age="+strconv.Itoa(int(s.opts.HSTSMaxAge.Seconds())))
		}
		return next(c)
	}
}

var errBodyTooLarge = errors.New("request body too large")

// limitedBody fails reads past max with errBodyTooLarge, which the error
// handler turns into a 413 saying what the limit is.
type limitedBody struct {
	r   io.ReadCloser
	n   int64
	max int64
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.n > b.max {
		return 0, errBodyTooLarge
	}
	if int64(len(p)) > b.max-b.n+1 {
		p = p[:b.max-b.n+1]
	}
	n, err := b.r.Read(p)
	b.n += int64(n)
	if b.n > b.max {
		return n, errBodyTooLarge
	}
	return n, err
}

func (b *limitedBody) Close() error { return b.r.Close() }

func (s *Server) bodyLimit(max int64) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			r := c.Request()
			if r.ContentLength > max {
				return errBodyTooLarge
			}
			if r.Body != nil && r.Body != http.NoBody {
				r.Body = &limitedBody{r: r.Body, max: max}
			}
			return next(c)
		}
	}
}

// observe logs each request and records its metrics. It logs the route
// pattern, not the URL: query strings and ids can carry personal data
// (search terms), and logs are not covered by the retention jobs.
func (s *Server) observe(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		err := next(c)
		if err != nil {
			c.Error(err)
		}
		route := c.Path()
		if route == "" {
			route = "unmatched"
		}
		status := c.Response().Status
		elapsed := time.Since(start)
		s.metrics.observe(c.Request().Method, route, status, elapsed)
		level := slog.LevelInfo
		if route == "/healthz" || route == "/readyz" || route == "/metrics" || route == "/static/*" {
			level = slog.LevelDebug
		}
		s.log.Log(c.Request().Context(), level, "request",
			"method", c.Request().Method, "route", route, "status", status,
			"ms", float64(elapsed.Microseconds())/1000, "bytes", c.Response().Size,
			"request_id", c.Response().Header().Get(echo.HeaderXRequestID))
		return nil
	}
}
