package vault

import (
	"container/list"
	"sync"
)

// keyCache is a bounded LRU of unwrapped user keys: Open sits on hot paths
// (every gallery page opens prompts), and unwrapping means a keyring read.
type keyCache struct {
	mu    sync.Mutex
	max   int
	order *list.List // front = most recently used; values are *cacheEntry
	byID  map[string]*list.Element
	// gen counts shreds; a load that started before a shred must not put a
	// destroyed key back.
	gen uint64
}

type cacheEntry struct {
	userID string
	keys   *userKeys
}

func newKeyCache(max int) *keyCache {
	return &keyCache{max: max, order: list.New(), byID: map[string]*list.Element{}}
}

func (c *keyCache) get(userID string) *userKeys {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.byID[userID]; ok {
		c.order.MoveToFront(el)
		return el.Value.(*cacheEntry).keys
	}
	return nil
}

func (c *keyCache) generation() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen
}

func (c *keyCache) put(userID string, keys *userKeys, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.max <= 0 || gen != c.gen {
		return
	}
	if el, ok := c.byID[userID]; ok {
		el.Value.(*cacheEntry).keys = keys
		c.order.MoveToFront(el)
		return
	}
	c.byID[userID] = c.order.PushFront(&cacheEntry{userID: userID, keys: keys})
	for c.order.Len() > c.max {
		oldest := c.order.Back()
		c.order.Remove(oldest)
		e := oldest.Value.(*cacheEntry)
		delete(c.byID, e.userID)
	}
}

// evict forgets userID and invalidates loads in flight.
func (c *keyCache) evict(userID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	if el, ok := c.byID[userID]; ok {
		c.order.Remove(el)
		delete(c.byID, userID)
	}
}

func (c *keyCache) clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	c.order.Init()
	clear(c.byID)
}

func (c *keyCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.Len()
}
