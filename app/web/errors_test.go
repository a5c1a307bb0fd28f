package web

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"

	"zimage/app"
)

// TestErrorStatusRetryAfterAndLogLevel: a thing that is merely not ready
// yet (a WebP copy still being made) answers 503 with Retry-After and is
// logged at debug; real faults stay at error.
func TestErrorStatusRetryAfterAndLogLevel(t *testing.T) {
	s := newTestServer(t, Options{})
	var logs bytes.Buffer
	s.log = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	tests := []struct {
		name           string
		err            error
		wantStatus     int
		wantRetryAfter string
		wantLevel      string
	}{
		{"not ready yet", &app.Error{Code: app.EUNAVAILABLE, RetryAfterSeconds: 1, Message: "The WebP copy is still being converted."}, 503, "1", "DEBUG"},
		{"unavailable for good", app.Errorf(app.EUNAVAILABLE, "Privacy controls are not available on this server."), 503, "", "ERROR"},
		{"internal", app.Wrap(http.ErrHandlerTimeout, "boom"), 500, "", "ERROR"},
		{"rate limited", &app.Error{Code: app.ERATELIMITED, RetryAfterSeconds: 7, Message: "Slow down."}, 429, "7", ""},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := "/api/v1/test/error/" + string(rune('a'+i))
			s.e.GET(path, func(echo.Context) error { return tt.err })
			logs.Reset()
			rec := httptest.NewRecorder()
			s.Handler().ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
			if rec.Code != tt.wantStatus {
				t.Errorf("status %d, want %d", rec.Code, tt.wantStatus)
			}
			if got := rec.Header().Get("Retry-After"); got != tt.wantRetryAfter {
				t.Errorf("Retry-After %q, want %q", got, tt.wantRetryAfter)
			}
			var levels []string
			for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
				// The access log line is written for every request alike.
				if strings.Contains(line, " msg=request ") {
					continue
				}
				if _, rest, ok := strings.Cut(line, "level="); ok {
					levels = append(levels, strings.Fields(rest)[0])
				}
			}
			if tt.wantLevel == "" {
				if len(levels) > 0 {
					t.Errorf("logged at %q, want no log line", levels)
				}
				return
			}
			if len(levels) != 1 || levels[0] != tt.wantLevel {
				t.Errorf("logged at %q, want one line at %s; log:\n%s", levels, tt.wantLevel, logs.String())
			}
		})
	}
}
