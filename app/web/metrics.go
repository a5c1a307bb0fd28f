package web

import (
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"crypto/subtle"

	"zimage/app"
)

// metrics holds the server's own registry: a private one, so tests can run
// many servers in one process and nothing registers behind our back.
type metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "zimage_http_requests_total",
			Help: "HTTP requests by route pattern, method and status.",
		}, []string{"route", "method", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "zimage_http_request_duration_seconds",
			Help:    "HTTP request latency by route pattern, method and status.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 10},
		}, []string{"route", "method", "status"}),
	}
	m.reg.MustRegister(m.requests, m.latency,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *metrics) observe(method, route string, status int, d time.Duration) {
	code := strconv.Itoa(status)
	m.requests.WithLabelValues(route, method, code).Inc()
	m.latency.WithLabelValues(route, method, code).Observe(d.Seconds())
}

// Registry lets other packages (queue, backends) add their collectors.
func (s *Server) Registry() *prometheus.Registry { return s.metrics.reg }

// handleMetrics serves /metrics to loopback clients, or to anyone with the
// configured bearer token.
func (s *Server) handleMetrics() echo.HandlerFunc {
	h := promhttp.HandlerFor(s.metrics.reg, promhttp.HandlerOpts{})
	return func(c echo.Context) error {
		if !s.opts.MetricsEnabled {
			return app.Errorf(app.ENOTFOUND, "Metrics are turned off (metrics.enabled = false).")
		}
		if tok := s.opts.MetricsToken; tok != "" {
			got, _ := bearerToken(c.Request().Header.Get("Authorization"))
			if subtle.ConstantTimeCompare([]byte(got), []byte(tok)) != 1 {
				return app.Errorf(app.EUNAUTHORIZED, "Send the metrics token as Authorization: Bearer <metrics.token>.")
			}
		} else if !isLoopback(c.Request()) {
			return app.Errorf(app.EFORBIDDEN, "Metrics are served to loopback clients only; set metrics.token to read them from elsewhere.")
		}
		h.ServeHTTP(c.Response(), c.Request())
		return nil
	}
}

// isLoopback looks at the socket peer, never trusting forwarding headers;
// a request that carries them came through a proxy, so it is not local even
// when the proxy itself runs on loopback.
func isLoopback(r *http.Request) bool {
	if r.Header.Get("X-Forwarded-For") != "" || r.Header.Get("X-Real-Ip") != "" || r.Header.Get("Forwarded") != "" {
		return false
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
