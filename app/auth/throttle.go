package auth

import (
	"net/netip"
	"sync"
	"time"
)

// ThrottleConfig sets how a Throttle slows down failed logins.
type ThrottleConfig struct {
	// FreeFailures is how many failures are allowed before delays start.
	FreeFailures int
	// BaseDelay is the wait after the FreeFailures-th failure; it doubles
	// with every further failure, up to MaxDelay.
	BaseDelay time.Duration
	MaxDelay  time.Duration
	// Window is how long a key's failures are remembered after the last
	// one, counted from the end of any delay it caused. Counting from the
	// end of the delay means waiting out a lockout does not also reset it:
	// at MaxDelay an attacker gets one guess per MaxDelay, forever.
	Window time.Duration
	// MaxEntries bounds memory. When full, stale entries go first, then the
	// one expiring soonest among a few sampled at random.
	MaxEntries int
}

// DefaultAccountThrottle is for keys from AccountKey: five wrong passwords
// are a person mistyping; after that, 1 s, 2 s, 4 s … up to 15 minutes. An
// entry is about 100 bytes, so 100,000 of them are ~10 MiB.
var DefaultAccountThrottle = ThrottleConfig{
	FreeFailures: 5, BaseDelay: time.Second, MaxDelay: 15 * time.Minute,
	Window: 15 * time.Minute, MaxEntries: 100_000,
}

// DefaultIPThrottle is for keys from IPKey. It allows more failures than
// the account throttle because many people can share one address (an
// office, a school, a mobile carrier's NAT), yet it still stops one address
// from trying a common password against every account.
var DefaultIPThrottle = ThrottleConfig{
	FreeFailures: 20, BaseDelay: time.Second, MaxDelay: 15 * time.Minute,
	Window: 15 * time.Minute, MaxEntries: 100_000,
}

// evictionSample is how many entries are looked at to pick one to evict
// when the map is full: enough to nearly always spare a locked-out key,
// few enough to cost nothing under a flood.
const evictionSample = 8

// Throttle counts failed logins per key and imposes growing delays. It is
// in memory: a restart forgets it, which costs an attacker little, since a
// restart is rare and the delays start again after FreeFailures. It is safe
// for concurrent use.
//
// Use one Throttle per kind of key (DefaultAccountThrottle with AccountKey,
// DefaultIPThrottle with IPKey): before checking a password, Check both; on
// a wrong password, Fail both; on success, Succeed the account key only —
// resetting the address too would let an attacker wipe its count by logging
// into an account of their own between guesses.
type Throttle struct {
	cfg       ThrottleConfig
	mu        sync.Mutex
	entries   map[string]*throttleEntry
	nextPrune time.Time
}

type throttleEntry struct {
	failures int
	until    time.Time // no attempt before this
	expires  time.Time // forget the entry at this time
}

// NewThrottle returns a Throttle; zero fields of cfg take the values of
// DefaultAccountThrottle.
func NewThrottle(cfg ThrottleConfig) *Throttle {
	d := DefaultAccountThrottle
	if cfg.FreeFailures <= 0 {
		cfg.FreeFailures = d.FreeFailures
	}
	if cfg.BaseDelay <= 0 {
		cfg.BaseDelay = d.BaseDelay
	}
	if cfg.MaxDelay <= 0 {
		cfg.MaxDelay = d.MaxDelay
	}
	if cfg.Window <= 0 {
		cfg.Window = d.Window
	}
	if cfg.MaxEntries <= 0 {
		cfg.MaxEntries = d.MaxEntries
	}
	return &Throttle{cfg: cfg, entries: make(map[string]*throttleEntry)}
}

// Check reports whether key may attempt a login at now; if not, retryAfter
// says how long to wait (round it up for a Retry-After header).
func (t *Throttle) Check(key string, now time.Time) (retryAfter time.Duration, allowed bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e := t.live(key, now)
	if e == nil || !now.Before(e.until) {
		return 0, true
	}
	return e.until.Sub(now), false
}

// Fail records a failed attempt for key at now. It returns true exactly when
// this failure starts a lockout (the FreeFailures-th within the window), so
// the caller can write one audit entry rather than one per attempt.
func (t *Throttle) Fail(key string, now time.Time) (lockedOut bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !now.Before(t.nextPrune) {
		t.prune(now)
	}
	e := t.live(key, now)
	if e == nil {
		if len(t.entries) >= t.cfg.MaxEntries {
			t.makeRoom(now)
		}
		e = &throttleEntry{}
		t.entries[key] = e
	}
	e.failures++
	if over := e.failures - t.cfg.FreeFailures; over >= 0 {
		e.until = now.Add(t.delay(over))
	}
	e.expires = now.Add(t.cfg.Window)
	if e.until.After(now) {
		e.expires = e.until.Add(t.cfg.Window)
	}
	return e.failures == t.cfg.FreeFailures
}

// Succeed forgets key's failures.
func (t *Throttle) Succeed(key string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.entries, key)
}

// Prune forgets every entry that has expired at now and returns how many.
// Fail prunes on its own from time to time; a cleanup job may call this too.
func (t *Throttle) Prune(now time.Time) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.prune(now)
}

// Len returns how many keys are remembered.
func (t *Throttle) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.entries)
}

// delay returns BaseDelay·2^over, capped at MaxDelay without overflowing.
func (t *Throttle) delay(over int) time.Duration {
	d := t.cfg.BaseDelay
	for range over {
		if d >= t.cfg.MaxDelay/2 {
			return t.cfg.MaxDelay
		}
		d *= 2
	}
	return min(d, t.cfg.MaxDelay)
}

// live returns key's entry, dropping it first if it has expired.
func (t *Throttle) live(key string, now time.Time) *throttleEntry {
	e := t.entries[key]
	if e != nil && !now.Before(e.expires) {
		delete(t.entries, key)
		return nil
	}
	return e
}

func (t *Throttle) prune(now time.Time) int {
	n := 0
	for k, e := range t.entries {
		if !now.Before(e.expires) {
			delete(t.entries, k)
			n++
		}
	}
	// A full scan at most once a minute keeps the cost flat under a flood.
	t.nextPrune = now.Add(time.Minute)
	return n
}

// makeRoom evicts one entry. Map iteration starts at a random position, so
// the first few entries are a random sample; of those, the one expiring
// soonest is the least useful to keep.
func (t *Throttle) makeRoom(now time.Time) {
	var victim string
	var soonest time.Time
	i := 0
	for k, e := range t.entries {
		if !now.Before(e.expires) {
			victim = k
			break
		}
		if i == 0 || e.expires.Before(soonest) {
			victim, soonest = k, e.expires
		}
		if i++; i == evictionSample {
			break
		}
	}
	delete(t.entries, victim)
}

// AccountKey is the Throttle key for a login that names no account; pass
// it normalized (NormalizeUsername or NormalizeEmail) so "Alice" and
// "alice" share a count. A login that names an account is keyed by
// userKey instead.
func AccountKey(login string) string { return "account:" + login }

// userKey is the Throttle key for an account, whichever of its names
// (username or email) was typed; password re-checks of a signed-in person
// share it, so a stolen session adds no guesses.
func userKey(id string) string { return AccountKey("id:" + id) }

// IPKey is the Throttle key for a client address. An IPv6 client usually
// holds a whole /64 and can pick a new address in it for every attempt, so
// IPv6 addresses are keyed by their /64.
func IPKey(addr netip.Addr) string {
	addr = addr.Unmap()
	if addr.Is6() {
		p, err := addr.WithZone("").Prefix(64)
		if err == nil {
			return "ip:" + p.String()
		}
	}
	return "ip:" + addr.String()
}
