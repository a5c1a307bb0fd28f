package web

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestCrossSiteCheckComparesWholeOrigin: an Origin matches only with the
// same scheme, host and port as base_url or as the request's own address;
// http:// is another site than https://.
func TestCrossSiteCheckComparesWholeOrigin(t *testing.T) {
	tests := []struct {
		name, baseURL, host, origin string
		want                        int
	}{
		{name: "base_url origin", baseURL: "https://images.example.test", host: "images.example.test", origin: "https://images.example.test", want: 200},
		{name: "base_url origin, explicit default port", baseURL: "https://images.example.test", host: "images.example.test", origin: "https://images.example.test:443", want: 200},
		{name: "base_url origin, other case", baseURL: "https://images.example.test/", host: "127.0.0.1:8080", origin: "HTTPS://Images.Example.TEST", want: 200},
		{name: "http when base_url is https", baseURL: "https://images.example.test", host: "images.example.test", origin: "http://images.example.test", want: 403},
		{name: "http on port 443", baseURL: "https://images.example.test", host: "images.example.test", origin: "http://images.example.test:443", want: 403},
		{name: "other port", baseURL: "https://images.example.test", host: "images.example.test", origin: "https://images.example.test:8443", want: 403},
		{name: "other host", baseURL: "https://images.example.test", host: "images.example.test", origin: "https://evil.example.test", want: 403},
		{name: "no base_url, own address", host: "127.0.0.1:8080", origin: "http://127.0.0.1:8080", want: 200},
		{name: "no base_url, https on a plain connection", host: "127.0.0.1:8080", origin: "https://127.0.0.1:8080", want: 403},
		{name: "no base_url, other port", host: "127.0.0.1:8080", origin: "http://127.0.0.1:9090", want: 403},
		{name: "opaque origin", host: "127.0.0.1:8080", origin: "null", want: 403},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := newAuthEnv(t, authOptionsForTest(), Options{BaseURL: tt.baseURL})
			env.signup(t, "alice")
			req := httptest.NewRequest("POST", "/api/v1/auth/login", strings.NewReader(`{"login":"alice","password":"`+testPassword+`"}`))
			req.Host = tt.host
			req.RemoteAddr = "192.0.2.10:40000"
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Origin", tt.origin)
			rec := httptest.NewRecorder()
			env.s.Handler().ServeHTTP(rec, req)
			if rec.Code != tt.want {
				t.Errorf("Origin %s to %s (base_url %q): %d %s, want %d", tt.origin, tt.host, tt.baseURL, rec.Code, rec.Body, tt.want)
			}
			if tt.want == http.StatusForbidden && !strings.Contains(rec.Body.String(), "another website") {
				t.Errorf("refusal does not say why: %s", rec.Body)
			}
		})
	}
}
