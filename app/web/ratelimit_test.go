package web

import (
	"net/http"
	"testing"
	"time"
)

// TestAPIRateLimitPerKey and TestAPIRateLimitPerAddress: each API key and
// each client address gets its own budget a minute; past it, 429 with
// Retry-After, and the budget refills with time. Pages are not counted.
func TestAPIRateLimitPerKey(t *testing.T) {
	env := newAuthEnv(t, authOptionsForTest(), Options{APIRatePerKey: 3, APIRatePerAddr: 10})
	alice := env.signup(t, "alice") // 192.0.2.10: 1 of its 10
	k1, _ := alice.apiKey(t, "read")
	k2, _ := alice.apiKey(t, "read") // 3 of 10
	k1.ip, k2.ip = "198.51.100.1", "198.51.100.2"

	get := func(c *client) response { return c.do("GET", "/api/v1/me", "") }
	for i := range 3 {
		if r := get(k1); r.Code != http.StatusOK {
			t.Fatalf("key request %d: %d %s", i+1, r.Code, r.Body)
		}
	}
	r := get(k1)
	if r.Code != http.StatusTooManyRequests || r.errCode(t) != "rate_limited" || r.Header().Get("Retry-After") != "20" {
		t.Fatalf("4th request of a key limited to 3 a minute: %d Retry-After %q %s, want 429 after 20 s",
			r.Code, r.Header().Get("Retry-After"), r.Body)
	}
	k1.ip = "198.51.100.9" // a new address does not reset a key
	if r := get(k1); r.Code != http.StatusTooManyRequests {
		t.Errorf("the key from another address: %d, want 429", r.Code)
	}
	if r := get(k2); r.Code != http.StatusOK {
		t.Errorf("another key of the same person: %d, want 200", r.Code)
	}
	env.clock.Advance(20 * time.Second)
	if r := get(k1); r.Code != http.StatusOK {
		t.Errorf("after Retry-After: %d, want 200", r.Code)
	}

}

func TestAPIRateLimitPerAddress(t *testing.T) {
	env := newAuthEnv(t, authOptionsForTest(), Options{APIRatePerKey: 3, APIRatePerAddr: 10})
	get := func(c *client) response { return c.do("GET", "/api/v1/me", "") }
	alice := env.signup(t, "alice") // 192.0.2.10: 1 of its 10
	alice.apiKey(t, "read")
	alice.apiKey(t, "read") // 3 of 10
	// 7 more API requests from 192.0.2.10, whatever they carry, reach its
	// 10; pages do not count.
	anon := env.anon()
	for i := range 5 {
		if r := anon.do("GET", "/login", ""); r.Code != http.StatusOK {
			t.Fatalf("page %d: %d", i+1, r.Code)
		}
	}
	for i := range 7 {
		c := alice
		if i%2 == 1 {
			c = anon
		}
		if r := get(c); r.Code == http.StatusTooManyRequests {
			t.Fatalf("API request %d of the address's 10: 429", 4+i)
		}
	}
	r := anon.do("POST", "/api/v1/auth/login", `{"login":"alice","password":"`+testPassword+`"}`)
	if r.Code != http.StatusTooManyRequests || r.Header().Get("Retry-After") == "" {
		t.Errorf("11th API request from one address: %d Retry-After %q, want 429 with Retry-After", r.Code, r.Header().Get("Retry-After"))
	}
	if r := get(alice); r.Code != http.StatusTooManyRequests {
		t.Errorf("a session from the limited address: %d, want 429", r.Code)
	}
	other := env.anon()
	other.ip = "203.0.113.5"
	if r := other.do("POST", "/api/v1/auth/login", `{"login":"alice","password":"`+testPassword+`"}`); r.Code != http.StatusOK {
		t.Errorf("another address: %d, want 200", r.Code)
	}
}
