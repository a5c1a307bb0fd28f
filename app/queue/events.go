package queue

import (
	"sync"
)

// Event types, in the order one generation sees them. queued may repeat
// (new position, retry, waiting for a backend); progress and preview repeat.
const (
	EventQueued    = "queued"
	EventStarted   = "started"
	EventProgress  = "progress"
	EventPreview   = "preview"
	EventSucceeded = "succeeded"
	EventFailed    = "failed"
	EventCanceled  = "canceled"
)

// Event is one piece of live news about a generation, for its owner.
type Event struct {
	Type         string
	GenerationID string
	Position     int // queued: 1 means next to start
	Step, Steps  int // progress and preview
	Preview      []byte
	PreviewType  string
	ImageIDs     []string // succeeded
	Reason       string   // failed (and queued, when waiting or retrying)
	Message      string   // for the person
}

// droppable events may be lost by a slow reader: a newer one of the same
// kind for the same generation says everything they said.
func (e Event) droppable() bool {
	return e.Type == EventProgress || e.Type == EventPreview || e.Type == EventQueued
}

// maxPending bounds what one slow subscriber can hold. Only droppable
// events count against it; the others are bounded by the user's queue caps
// (a handful of lifecycle events per job), so they are never dropped.
const maxPending = 64

// Hub fans a user's events out to that user's subscribers (browser tabs).
// Publish never blocks: each subscriber has a pending list drained by its
// own goroutine into its channel. When a reader falls behind, a droppable
// event replaces the pending one of the same type for the same generation
// (the reader sees the latest step, not every step), and past maxPending
// further droppable events are dropped; started and final events are
// always appended, so a reader always learns how each job ended.
type Hub struct {
	mu   sync.Mutex
	subs map[string]map[*subscriber]struct{}
}

type subscriber struct {
	out  chan Event
	wake chan struct{}
	done chan struct{}

	mu      sync.Mutex
	pending []Event
}

// NewHub returns an empty hub.
func NewHub() *Hub { return &Hub{subs: map[string]map[*subscriber]struct{}{}} }

// Subscribe returns userID's event stream and a function that ends it
// (closing the channel). Call the function when the reader goes away.
func (h *Hub) Subscribe(userID string) (<-chan Event, func()) {
	s := &subscriber{out: make(chan Event, 16), wake: make(chan struct{}, 1), done: make(chan struct{})}
	h.mu.Lock()
	if h.subs[userID] == nil {
		h.subs[userID] = map[*subscriber]struct{}{}
	}
	h.subs[userID][s] = struct{}{}
	h.mu.Unlock()
	go s.pump()
	var once sync.Once
	return s.out, func() {
		once.Do(func() {
			h.mu.Lock()
			delete(h.subs[userID], s)
			if len(h.subs[userID]) == 0 {
				delete(h.subs, userID)
			}
			h.mu.Unlock()
			close(s.done)
		})
	}
}

// Subscribed reports whether userID has a reader, so position updates are
// only computed for someone who will see them.
func (h *Hub) Subscribed(userID string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.subs[userID]) > 0
}

// Publish sends e to every subscriber of userID without blocking.
func (h *Hub) Publish(userID string, e Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs[userID] {
		s.push(e)
	}
}

func (s *subscriber) push(e Event) {
	s.mu.Lock()
	if e.droppable() {
		i := len(s.pending) - 1
		for ; i >= 0; i-- {
			if p := s.pending[i]; p.GenerationID == e.GenerationID && (p.Type == e.Type || !p.droppable()) {
				break
			}
		}
		// Replace only an event of the same type with nothing newer but
		// droppable ones after it, so order per generation is kept.
		switch {
		case i >= 0 && s.pending[i].Type == e.Type:
			s.pending[i] = e
		case len(s.pending) >= maxPending:
			s.mu.Unlock()
			return
		default:
			s.pending = append(s.pending, e)
		}
	} else {
		s.pending = append(s.pending, e)
	}
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *subscriber) pump() {
	defer close(s.out)
	for {
		select {
		case <-s.done:
			return
		case <-s.wake:
		}
		for {
			s.mu.Lock()
			if len(s.pending) == 0 {
				s.mu.Unlock()
				break
			}
			e := s.pending[0]
			s.pending = s.pending[1:]
			s.mu.Unlock()
			select {
			case s.out <- e:
			case <-s.done:
				return
			}
		}
	}
}
