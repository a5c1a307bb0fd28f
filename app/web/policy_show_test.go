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
	"time"

	"zimage/app/auth"
	"zimage/app/privacy"
	"zimage/app/sqlite"
	"zimage/app/vault"
)

// newPolicyServer serves a real router over a real database holding two
// policy versions: 90-day images, then 60-day images.
func newPolicyServer(t *testing.T) *httptest.Server {
	t.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "zimage.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	now := time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)
	db.Now = func() time.Time { return now }
	keys, err := vault.Open(t.TempDir(), "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { keys.Close() })
	policies := privacy.NewPolicies(db, nil, nil)
	const day = 24 * time.Hour
	values := privacy.PolicyValues{Controller: "Example <Lab>", ContactEmail: "privacy@lab.example", MinAge: 13,
		Images: 90 * day, DeletedAccounts: 30 * day, Usage: 365 * day, Support: 730 * day, Exports: 7 * day, KeyringBackups: 29 * day}
	if _, _, err := policies.Sync(ctx, values, "", false); err != nil {
		t.Fatal(err)
	}
	now = now.Add(40 * day)
	values.Images = 60 * day
	if _, _, err := policies.Sync(ctx, values, "Images are kept for 60 days.", true); err != nil {
		t.Fatal(err)
	}
	s, err := New(slog.New(slog.NewTextHandler(io.Discard, nil)), Deps{DB: db, Auth: auth.New(db, keys, auth.Options{Hasher: testHasher}), Policies: policies},
		Options{MaxBodyBytes: 4096, Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	return ts
}

func TestPolicyRoutes(t *testing.T) {
	ts := newPolicyServer(t)
	tests := []struct {
		name       string
		path       string
		wantStatus int
		want       []string
		notWant    []string
	}{
		{"current page", "/privacy", 200,
			[]string{"Version 2, published 14 February 2026", "deleted 60 days after", "Example &lt;Lab&gt;",
				`href="/privacy/versions/1"`, "Version 1</a>, published 5 January 2026", "(significant change)</strong>: Images are kept for 60 days."},
			[]string{"deleted 90 days after", "no longer in force"}},
		{"past version stays readable", "/privacy/versions/1", 200,
			[]string{"Version 1, published 5 January 2026", "deleted 90 days after", "no longer in force", `<a href="/privacy">Read the current version (2)`},
			[]string{"deleted 60 days after"}},
		{"current version by number", "/privacy/versions/2", 200, []string{"deleted 60 days after"}, []string{"no longer in force"}},
		{"missing version", "/privacy/versions/3", 404, []string{"There is no version 3"}, nil},
		{"not a number", "/privacy/versions/abc", 404, []string{"versions are numbered"}, nil},
		{"api current", "/api/v1/policy", 200, []string{`"version":2`, `"significant":true`, `"summary":"Images are kept for 60 days."`, `"html":"`, "deleted 60 days after"}, nil},
		{"api versions", "/api/v1/policy/versions", 200, []string{`"versions":[{"version":2`, `{"version":1,"published_at":"2026-01-05T09:00:00Z","summary":"First version","significant":false}`}, []string{`"html"`}},
		{"api one version", "/api/v1/policy/versions/1", 200, []string{`"version":1`, "deleted 90 days after"}, nil},
		{"api missing version", "/api/v1/policy/versions/0", 404, []string{`"code":"not_found"`}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := http.Get(ts.URL + tt.path)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != tt.wantStatus {
				t.Fatalf("status %d, want %d: %s", res.StatusCode, tt.wantStatus, body)
			}
			text := string(body)
			if strings.HasPrefix(tt.path, "/api/") {
				var v any
				if err := json.Unmarshal(body, &v); err != nil {
					t.Fatalf("not JSON: %v", err)
				}
				text = strings.ReplaceAll(text, `\u003c`, "<")
				text = strings.ReplaceAll(text, `\u003e`, ">")
			}
			for _, w := range tt.want {
				if !strings.Contains(text, w) {
					t.Errorf("body lacks %q", w)
				}
			}
			for _, w := range tt.notWant {
				if strings.Contains(text, w) {
					t.Errorf("body has %q", w)
				}
			}
		})
	}
}

func TestPolicyRoutesWithoutService(t *testing.T) {
	s := newTestServer(t, Options{})
	ts := httptest.NewServer(s.Handler())
	defer ts.Close()
	res, err := http.Get(ts.URL + "/api/v1/policy")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("status %d, want 503", res.StatusCode)
	}
}
