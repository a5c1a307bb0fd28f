package web

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestListGenerationsCarriesImageIDs: the list answers each succeeded
// generation's image ids, the same as the one-generation route, and never
// another person's.
func TestListGenerationsCarriesImageIDs(t *testing.T) {
	env := newAuthEnv(t, authOptionsForTest(), Options{})
	alice, bob := env.signup(t, "alice"), env.signup(t, "bob")
	var want []string // newest first, as "gen=ids"
	for _, count := range []int{1, 2} {
		r := alice.do("POST", "/api/v1/generations", fmt.Sprintf(`{"prompt":"a quiet harbour at dawn","width":64,"height":64,"steps":1,"count":%d}`, count))
		if r.Code != http.StatusAccepted {
			t.Fatalf("generate: %d %s", r.Code, r.Body)
		}
		id := r.json(t)["id"].(string)
		ids := waitImages(t, alice, id)
		if len(ids) != count {
			t.Fatalf("generation %s has %d images, want %d", id, len(ids), count)
		}
		want = append([]string{id + "=" + strings.Join(ids, ",")}, want...)
		env.clock.Advance(time.Second) // "newest first" needs distinct times
	}
	generateAndWait(t, bob)

	tests := []struct {
		name  string
		query string
		want  []string
	}{
		{"whole list", "", want},
		{"a page of one", "?limit=1", want[:1]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := alice.do("GET", "/api/v1/generations"+tt.query, "")
			if r.Code != http.StatusOK {
				t.Fatalf("list: %d %s", r.Code, r.Body)
			}
			var page struct {
				Generations []struct {
					ID       string   `json:"id"`
					ImageIDs []string `json:"image_ids"`
				} `json:"generations"`
			}
			if err := json.Unmarshal(r.Body.Bytes(), &page); err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, g := range page.Generations {
				got = append(got, g.ID+"="+strings.Join(g.ImageIDs, ","))
			}
			if strings.Join(got, " ") != strings.Join(tt.want, " ") {
				t.Errorf("list shows %q, want %q", got, tt.want)
			}
		})
	}
}

// waitImages waits (bounded) for c's generation to succeed and returns
// its image ids as the one-generation route shows them.
func waitImages(t *testing.T, c *client, genID string) []string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		var g struct {
			Status   string          `json:"status"`
			ImageIDs []string        `json:"image_ids"`
			Error    json.RawMessage `json:"error"`
		}
		if err := json.Unmarshal(c.do("GET", "/api/v1/generations/"+genID, "").Body.Bytes(), &g); err != nil {
			t.Fatal(err)
		}
		switch g.Status {
		case "succeeded":
			return g.ImageIDs
		case "failed", "canceled":
			t.Fatalf("generation %s ended %s: %s", genID, g.Status, g.Error)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("generation %s did not finish within 20 s", genID)
	return nil
}

// TestImageFileThumbnailWhateverFormat: size=thumb means the thumbnail,
// which exists only as WebP, whether format says png, webp or nothing.
func TestImageFileThumbnailWhateverFormat(t *testing.T) {
	env := newAuthEnv(t, authOptionsForTest(), Options{})
	alice := env.signup(t, "alice")
	_, image := generateAndWait(t, alice)
	tests := []struct {
		query      string
		wantStatus int
		wantType   string
	}{
		{"?size=thumb", 200, "image/webp"},
		{"?format=webp&size=thumb", 200, "image/webp"},
		{"?format=png&size=thumb", 200, "image/webp"},
		{"?format=png", 200, "image/png"},
		{"?format=gif&size=thumb", 400, "application/json"},
		{"?size=huge", 400, "application/json"},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			r := alice.do("GET", "/api/v1/images/"+image+"/file"+tt.query, "")
			if r.Code != tt.wantStatus || !strings.HasPrefix(r.Header().Get("Content-Type"), tt.wantType) {
				t.Errorf("status %d, type %q; want %d, %q: %.200s", r.Code, r.Header().Get("Content-Type"), tt.wantStatus, tt.wantType, r.Body)
			}
		})
	}
}
