package web

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"

	"zimage/app/auth"
	"zimage/app/sqlite"
	"zimage/app/vault"
)

func newTestServer(t *testing.T, opts Options) *Server {
	t.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "zimage.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if opts.MaxBodyBytes == 0 {
		opts.MaxBodyBytes = 4096
	}
	keys, err := vault.Open(t.TempDir(), "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { keys.Close() })
	accounts := auth.New(db, keys, auth.Options{Hasher: testHasher})
	s, err := New(slog.New(slog.NewTextHandler(io.Discard, nil)), Deps{DB: db, Auth: accounts}, opts)
	if err != nil {
		t.Fatal(err)
	}
	// A JSON echo route, to exercise body handling as real handlers will.
	s.e.POST("/api/v1/test/echo", func(c echo.Context) error {
		var v struct {
			Name  string `json:"name"`
			Count int    `json:"count"`
		}
		if err := decodeJSON(c, &v); err != nil {
			return err
		}
		return c.JSON(http.StatusOK, v)
	})
	return s
}

type apiError struct {
	Error struct {
		Code      string            `json:"code"`
		Message   string            `json:"message"`
		Fields    map[string]string `json:"fields"`
		RequestID string            `json:"request_id"`
	} `json:"error"`
}

func TestErrorsAndLimits(t *testing.T) {
	s := newTestServer(t, Options{MetricsEnabled: true})
	big := `{"name":"` + strings.Repeat("x", 5000) + `"}`
	tests := []struct {
		name       string
		method     string
		path       string
		body       string
		ctype      string
		header     map[string]string
		wantStatus int
		wantCode   string // API error code, "" for none
		wantInBody string
	}{
		{"healthz", "GET", "/healthz", "", "", nil, 200, "", `"status":"ok"`},
		{"readyz", "GET", "/readyz", "", "", nil, 200, "", `"ready"`},
		{"unknown api route", "GET", "/api/v1/nothing", "", "", nil, 404, "not_found", "/api/v1/nothing"},
		{"unknown page is html", "GET", "/nothing", "", "", nil, 404, "", "Page not found"},
		{"wrong method", "DELETE", "/healthz", "", "", nil, 405, "", ""},
		{"json ok", "POST", "/api/v1/test/echo", `{"name":"a","count":2}`, "application/json", nil, 200, "", `"count":2`},
		{"malformed json", "POST", "/api/v1/test/echo", `{"name":`, "application/json", nil, 400, "invalid", "ends in the middle"},
		{"syntax error", "POST", "/api/v1/test/echo", `{"name" "a"}`, "application/json", nil, 400, "invalid", "not valid JSON"},
		{"wrong type", "POST", "/api/v1/test/echo", `{"count":"two"}`, "application/json", nil, 400, "invalid", "count must be a whole number"},
		{"unknown field", "POST", "/api/v1/test/echo", `{"nmae":"a"}`, "application/json", nil, 400, "invalid", `Unknown field \"nmae\"`},
		{"empty body", "POST", "/api/v1/test/echo", ``, "application/json", nil, 400, "invalid", "empty"},
		{"trailing data", "POST", "/api/v1/test/echo", `{"name":"a"} {}`, "application/json", nil, 400, "invalid", ""},
		{"not json content type", "POST", "/api/v1/test/echo", `name=a`, "application/x-www-form-urlencoded", nil, 400, "invalid", "Content-Type: application/json"},
		{"too large", "POST", "/api/v1/test/echo", big, "application/json", nil, 413, "too_large", "4 KiB"},
		{"metrics from loopback", "GET", "/metrics", "", "", nil, 200, "", "zimage_http_requests_total"},
		{"metrics through a proxy", "GET", "/metrics", "", "", map[string]string{"X-Forwarded-For": "203.0.113.9"}, 403, "forbidden", "metrics.token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(tt.method, tt.path, strings.NewReader(tt.body))
			req.RemoteAddr = "127.0.0.1:5555"
			if tt.ctype != "" {
				req.Header.Set("Content-Type", tt.ctype)
			}
			for k, v := range tt.header {
				req.Header.Set(k, v)
			}
			if tt.name == "too large" {
				req.ContentLength = -1 // chunked: the limit must hold while reading too
			}
			rec := httptest.NewRecorder()
			s.Handler().ServeHTTP(rec, req)
			if rec.Code != tt.wantStatus {
				t.Fatalf("status = %d, want %d; body %s", rec.Code, tt.wantStatus, rec.Body)
			}
			if !strings.Contains(rec.Body.String(), tt.wantInBody) {
				t.Errorf("body %s does not contain %q", rec.Body, tt.wantInBody)
			}
			if tt.wantCode != "" {
				var e apiError
				if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil {
					t.Fatalf("error body is not JSON: %s", rec.Body)
				}
				if e.Error.Code != tt.wantCode || e.Error.Message == "" || e.Error.RequestID == "" {
					t.Errorf("error = %+v, want code %q with message and request id", e.Error, tt.wantCode)
				}
				if got := rec.Header().Get("X-Request-Id"); got != e.Error.RequestID {
					t.Errorf("request id header %q != body %q", got, e.Error.RequestID)
				}
			}
			for _, h := range []string{"Content-Security-Policy", "X-Content-Type-Options", "Referrer-Policy", "X-Frame-Options"} {
				if rec.Header().Get(h) == "" {
					t.Errorf("missing %s", h)
				}
			}
			if csp := rec.Header().Get("Content-Security-Policy"); strings.Contains(csp, "unsafe-inline") || !strings.Contains(csp, "frame-ancestors 'none'") {
				t.Errorf("weak CSP %q", csp)
			}
		})
	}
}

func TestMetricsToken(t *testing.T) {
	s := newTestServer(t, Options{MetricsEnabled: true, MetricsToken: "s3cret"})
	for _, tt := range []struct {
		auth string
		want int
	}{{"", 401}, {"Bearer wrong", 401}, {"Bearer s3cret", 200}, {"bearer s3cret", 200}, {"BEARER  s3cret", 200},
		{"Basic s3cret", 401}, {"Bearer", 401}, {"s3cret", 401}} {
		req := httptest.NewRequest("GET", "/metrics", nil)
		req.RemoteAddr = "198.51.100.7:1234"
		if tt.auth != "" {
			req.Header.Set("Authorization", tt.auth)
		}
		rec := httptest.NewRecorder()
		s.Handler().ServeHTTP(rec, req)
		if rec.Code != tt.want {
			t.Errorf("auth %q: status %d, want %d", tt.auth, rec.Code, tt.want)
		}
	}
	off := newTestServer(t, Options{MetricsEnabled: false})
	rec := httptest.NewRecorder()
	off.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 404 {
		t.Errorf("disabled metrics: status %d", rec.Code)
	}
}

func TestStaticAssetsAreHashedAndImmutable(t *testing.T) {
	s := newTestServer(t, Options{})
	url, err := s.assets.url("app.css")
	if err != nil || !strings.HasPrefix(url, "/static/app.") || url == "/static/app.css" {
		t.Fatalf("asset url = %q, %v", url, err)
	}
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest("GET", url, nil))
	if rec.Code != 200 || !strings.Contains(rec.Header().Get("Cache-Control"), "immutable") || !strings.Contains(rec.Header().Get("Content-Type"), "text/css") {
		t.Errorf("hashed asset: %d %v", rec.Code, rec.Header())
	}
	home := httptest.NewRecorder()
	s.Handler().ServeHTTP(home, httptest.NewRequest("GET", "/", nil))
	if !strings.Contains(home.Body.String(), url) {
		t.Errorf("home page does not link %s", url)
	}
	rec = httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/static/app.00000000.css", nil))
	if rec.Code != 404 {
		t.Errorf("unknown hash: %d", rec.Code)
	}
}

func TestClientRequestIDIsNotTrusted(t *testing.T) {
	s := newTestServer(t, Options{})
	req := httptest.NewRequest("GET", "/healthz", nil)
	req.Header.Set("X-Request-Id", "forged")
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, req)
	if got := rec.Header().Get("X-Request-Id"); got == "forged" || got == "" {
		t.Errorf("request id = %q", got)
	}
}
