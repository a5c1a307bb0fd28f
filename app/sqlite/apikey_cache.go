package sqlite

import (
	"sync"
	"time"

	"zimage/app"
)

// Every API request looks its key up with its owner. The answer changes
// only when a key or account changes, which here is always a write
// transaction of this DB (revocation, role, disabling, deletion), so a
// looked-up key is kept in memory until the next committed write — or for
// authCacheTTL at most, which bounds how long a change made by another
// process (the zimage CLI on the same file) takes to apply.
const (
	authCacheTTL = 5 * time.Second
	// authCacheMax bounds memory; past it the cache starts over, which
	// only costs one lookup per key.
	authCacheMax = 4096
)

type authCache struct {
	mu     sync.Mutex
	byHash map[string]*authEntry
}

type authEntry struct {
	key    app.APIKey
	user   UserRecord
	writes uint64 // DB.writes when loaded
	at     time.Time
}

// get returns copies of the cached key and owner of hash, if they were
// loaded after the last committed write and within the TTL.
func (c *authCache) get(hash []byte, writes uint64, now time.Time) (*app.APIKey, *UserRecord, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.byHash[string(hash)]
	if !ok || e.writes != writes || now.Sub(e.at) >= authCacheTTL || now.Before(e.at) {
		return nil, nil, false
	}
	k, u := e.key, e.user
	return &k, &u, true
}

// put keeps a lookup that started when the write count was writes; the
// count, not the time of the put, decides whether it is still current.
func (c *authCache) put(hash []byte, k *app.APIKey, u *UserRecord, writes uint64, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.byHash == nil || len(c.byHash) >= authCacheMax {
		c.byHash = make(map[string]*authEntry)
	}
	c.byHash[string(hash)] = &authEntry{key: *k, user: *u, writes: writes, at: now}
}

// touched records a key's new last use, so the cached copy does not ask
// for another touch on every request.
func (c *authCache) touched(keyID string, at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range c.byHash {
		if e.key.ID == keyID {
			e.key.LastUsedAt = at
		}
	}
}
