package web

import (
	"testing"
)

// TestAuthenticatedResponsesAreNotStored: pages and JSON that carry
// personal data say no-store, so a shared computer keeps none of them.
func TestAuthenticatedResponsesAreNotStored(t *testing.T) {
	env := newAuthEnv(t, authOptionsForTest(), Options{})
	alice := env.signup(t, "alice")
	_, imageID := generateAndWait(t, alice)
	for _, path := range []string{
		"/gallery", "/images/" + imageID, "/generate", "/settings/profile", "/settings/password",
		"/settings/security", "/settings/privacy", "/support",
		"/api/v1/me", "/api/v1/images", "/api/v1/images/" + imageID,
	} {
		t.Run(path, func(t *testing.T) {
			r := alice.do("GET", path, "")
			if r.Code != 200 {
				t.Fatalf("GET %s: %d", path, r.Code)
			}
			if got := r.Header().Get("Cache-Control"); got != "no-store" {
				t.Errorf("GET %s: Cache-Control %q, want no-store", path, got)
			}
		})
	}
}

// TestImageFilesRevalidateWithETag: image files may be kept by the browser
// but are revalidated on every use; a revisit with the ETag is a 304
// without a body, and a deleted image is a 404 even with its old tag.
func TestImageFilesRevalidateWithETag(t *testing.T) {
	env := newAuthEnv(t, authOptionsForTest(), Options{})
	alice := env.signup(t, "alice")
	bob := env.signup(t, "bob")
	_, imageID := generateAndWait(t, alice)
	for _, q := range []string{"format=png", "size=thumb"} {
		path := "/api/v1/images/" + imageID + "/file?" + q
		t.Run(q, func(t *testing.T) {
			first := alice.do("GET", path, "")
			if first.Code != 200 || first.Body.Len() == 0 {
				t.Fatalf("first GET: %d, %d bytes", first.Code, first.Body.Len())
			}
			if got := first.Header().Get("Cache-Control"); got != "private, no-cache" {
				t.Errorf("Cache-Control %q, want private, no-cache", got)
			}
			etag := first.Header().Get("ETag")
			if len(etag) < 3 || etag[0] != '"' {
				t.Fatalf("ETag %q, want a quoted validator", etag)
			}
			tests := []struct {
				name, ifNoneMatch string
				as                *client
				want              int
			}{
				{name: "same tag", ifNoneMatch: etag, as: alice, want: 304},
				{name: "weak form and a list", ifNoneMatch: `"x", W/` + etag, as: alice, want: 304},
				{name: "other tag", ifNoneMatch: `"other"`, as: alice, want: 200},
				{name: "another person with the tag", ifNoneMatch: etag, as: bob, want: 404},
			}
			for _, tt := range tests {
				r := tt.as.do("GET", path, "", "If-None-Match", tt.ifNoneMatch)
				if r.Code != tt.want {
					t.Errorf("%s: %d, want %d", tt.name, r.Code, tt.want)
				}
				if r.Code == 304 && r.Body.Len() != 0 {
					t.Errorf("%s: 304 with a %d-byte body", tt.name, r.Body.Len())
				}
			}
		})
	}
	r := alice.do("GET", "/api/v1/images/"+imageID+"/file?format=png", "")
	etag := r.Header().Get("ETag")
	if r := alice.do("DELETE", "/api/v1/images/"+imageID, ""); r.Code != 204 {
		t.Fatalf("delete: %d %s", r.Code, r.Body)
	}
	if r := alice.do("GET", "/api/v1/images/"+imageID+"/file?format=png", "", "If-None-Match", etag); r.Code != 404 {
		t.Errorf("deleted image revalidated with its old tag: %d, want 404", r.Code)
	}
}
