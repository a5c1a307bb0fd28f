package web

import (
	"context"
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
//
// A request whose client hung up before the answer (a closed tab, a script
// timing out, an OpenAI client giving up on a slow generation) is not a
// server error: nobody is left to answer, so it is counted and logged at
// debug as status 499 (nginx's "client closed request"), not as a 500.
func (s *Server) observe(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		err := next(c)
		hungUp := err != nil && clientHungUp(c, err)
		if err != nil && !hungUp {
			c.Error(err)
		}
		route := c.Path()
		if route == "" {
			route = "unmatched"
		}
		status := c.Response().Status
		if hungUp {
			status = statusClientClosedRequest
		}
		elapsed := time.Since(start)
		s.metrics.observe(c.Request().Method, route, status, elapsed)
		level := slog.LevelInfo
		if hungUp || route == "/healthz" || route == "/readyz" || route == "/metrics" || route == "/static/*" {
			level = slog.LevelDebug
		}
		attrs := []any{"method", c.Request().Method, "route", route, "status", status,
			"ms", float64(elapsed.Microseconds()) / 1000, "bytes", c.Response().Size,
			"request_id", c.Response().Header().Get(echo.HeaderXRequestID)}
		if hungUp {
			attrs = append(attrs, "err", err)
		}
		s.log.Log(context.WithoutCancel(c.Request().Context()), level, "request", attrs...)
		return nil
	}
}

// statusClientClosedRequest is nginx's status for a client that went away
// before the answer; no response carries it, only logs and metrics.
const statusClientClosedRequest = 499

// clientHungUp reports whether err only says that the request's client
// went away: its context is canceled and nothing was sent yet. A body cut
// off by the body deadline also cancels the context, but it is the
// server's decision and gets its 408.
func clientHungUp(c echo.Context, err error) bool {
	if c.Response().Committed || errors.Is(err, errBodyTooSlow) {
		return false
	}
	return errors.Is(c.Request().Context().Err(), context.Canceled)
}
