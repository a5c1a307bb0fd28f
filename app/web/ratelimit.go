package web

import (
	"math"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"zimage/app"
	"zimage/app/auth"
)

// rateLimiter is a token bucket per key: perMinute requests a minute,
// spendable in one burst. It is in memory (a restart refills every bucket,
// which costs a flood little) and safe for concurrent use.
type rateLimiter struct {
	perMinute float64
	mu        sync.Mutex
	buckets   map[string]*rateBucket
	nextPrune time.Time
}

type rateBucket struct {
	tokens float64
	at     time.Time // when tokens was counted
}

// maxRateBuckets bounds memory (~100 bytes a bucket): past it, full buckets
// go first, then a few at random, which only forgives their owners.
const maxRateBuckets = 100_000

func newRateLimiter(perMinute int) *rateLimiter {
	if perMinute <= 0 {
		return nil
	}
	return &rateLimiter{perMinute: float64(perMinute), buckets: map[string]*rateBucket{}}
}

// allow takes one token from key's bucket at now; when it is empty, it
// says how long until the next token.
func (l *rateLimiter) allow(key string, now time.Time) (wait time.Duration, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !now.Before(l.nextPrune) || len(l.buckets) >= maxRateBuckets {
		l.prune(now)
	}
	b := l.buckets[key]
	if b == nil {
		b = &rateBucket{tokens: l.perMinute, at: now}
		l.buckets[key] = b
	}
	b.tokens = l.refilled(b, now)
	b.at = now
	if b.tokens < 1 {
		return time.Duration((1 - b.tokens) / l.perMinute * float64(time.Minute)), false
	}
	b.tokens--
	return 0, true
}

func (l *rateLimiter) refilled(b *rateBucket, now time.Time) float64 {
	if !now.After(b.at) {
		return b.tokens
	}
	return math.Min(l.perMinute, b.tokens+now.Sub(b.at).Minutes()*l.perMinute)
}

// prune forgets full buckets (a new one starts full anyway), and if the
// map is still at its bound, a sample of the others.
func (l *rateLimiter) prune(now time.Time) {
	for k, b := range l.buckets {
		if l.refilled(b, now) >= l.perMinute {
			delete(l.buckets, k)
		}
	}
	for k := range l.buckets {
		if len(l.buckets) < maxRateBuckets*9/10 {
			break
		}
		delete(l.buckets, k) // map order is random
	}
	l.nextPrune = now.Add(time.Minute)
}

// isAPIPath is what the API rate limits cover: the JSON API and the
// OpenAI-compatible endpoint.
func isAPIPath(path string) bool {
	return strings.HasPrefix(path, "/api/") || strings.HasPrefix(path, "/v1/")
}

func errRateLimited(wait time.Duration, who string) error {
	secs := max(1, int(math.Ceil(wait.Seconds())))
	return &app.Error{Code: app.ERATELIMITED, RetryAfterSeconds: secs,
		Message: "Too many API requests from " + who + ". Wait " + itoa(secs) + " seconds, then try again; spread requests out or ask the administrator to raise the limit."}
}

// limitAddress applies the per-address API limit. It runs before
// authentication, so a flood is turned away before it costs a key lookup.
func (s *Server) limitAddress(next echo.HandlerFunc) echo.HandlerFunc {
	if s.addrLimit == nil {
		return next
	}
	return func(c echo.Context) error {
		if isAPIPath(c.Request().URL.Path) {
			if wait, ok := s.addrLimit.allow(auth.IPKey(clientIP(c)), s.db.Now()); !ok {
				return errRateLimited(wait, "this address")
			}
		}
		return next(c)
	}
}

// limitKey applies the per-key API limit, once authentication has said
// which key a request carries.
func (s *Server) limitKey(next echo.HandlerFunc) echo.HandlerFunc {
	if s.keyLimit == nil {
		return next
	}
	return func(c echo.Context) error {
		if p := currentUser(c); p != nil && p.APIKey != nil && isAPIPath(c.Request().URL.Path) {
			if wait, ok := s.keyLimit.allow(p.APIKey.ID, s.db.Now()); !ok {
				return errRateLimited(wait, "this API key")
			}
		}
		return next(c)
	}
}
