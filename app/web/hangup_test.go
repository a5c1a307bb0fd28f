package web

import (
	"bytes"
	"context"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestClientHangUpIsNotAServerError: a request whose client went away is
// logged at debug and counted as 499, never as an ERROR with status 500.
func TestClientHangUpIsNotAServerError(t *testing.T) {
	env := newAuthEnv(t, authOptionsForTest(), Options{})
	alice := env.signup(t, "alice")
	key, _ := alice.apiKey(t, "generate", "read")
	var logs bytes.Buffer
	s, err := New(slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Deps{DB: env.db, Auth: env.auth, Queue: env.queue, Media: env.media}, Options{MetricsEnabled: true, MaxBodyBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ name, method, path, body string }{
		{name: "gallery API", method: "GET", path: "/api/v1/images?limit=50"},
		{name: "OpenAI endpoint", method: "POST", path: "/v1/images/generations", body: `{"prompt":"a quiet harbour at dawn","size":"64x64"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			logs.Reset()
			ctx, cancel := context.WithCancel(context.Background())
			cancel() // the client has gone before the server looks
			req := httptest.NewRequest(tt.method, tt.path, strings.NewReader(tt.body)).WithContext(ctx)
			req.RemoteAddr = "192.0.2.10:40000"
			req.Header.Set("Authorization", "Bearer "+key.bearer)
			if tt.body != "" {
				req.Header.Set("Content-Type", "application/json")
			}
			s.Handler().ServeHTTP(httptest.NewRecorder(), req)
			out := logs.String()
			if strings.Contains(out, "level=ERROR") || strings.Contains(out, "status=500") {
				t.Errorf("a hang-up was logged as a server error:\n%s", out)
			}
			if !strings.Contains(out, "level=DEBUG") || !strings.Contains(out, "status=499") {
				t.Errorf("a hang-up was not logged at debug with status 499:\n%s", out)
			}
		})
	}
	m := httptest.NewRequest("GET", "/metrics", nil)
	m.RemoteAddr = "127.0.0.1:40000"
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, m)
	for _, want := range []string{
		`zimage_http_requests_total{method="GET",route="/api/v1/images",status="499"} 1`,
		`zimage_http_requests_total{method="POST",route="/v1/images/generations",status="499"} 1`,
	} {
		if !strings.Contains(rec.Body.String(), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if strings.Contains(rec.Body.String(), `status="500"`) {
		t.Error("metrics count a hang-up as a 500")
	}
}
