package queue

import (
	"fmt"
	"testing"
	"time"
)

func TestHubSlowReaderKeepsLifecycleEvents(t *testing.T) {
	h := NewHub()
	events, stop := h.Subscribe("alice")
	defer stop()
	other, stopOther := h.Subscribe("bob")
	defer stopOther()

	// Nobody reads while two jobs stream thousands of steps: Publish must
	// not block, and memory must stay bounded.
	start := time.Now()
	for _, id := range []string{"g1", "g2"} {
		h.Publish("alice", Event{Type: EventStarted, GenerationID: id})
	}
	for step := 1; step <= 5000; step++ {
		for _, id := range []string{"g1", "g2"} {
			h.Publish("alice", Event{Type: EventProgress, GenerationID: id, Step: step, Steps: 5000})
		}
	}
	for i := range 100 {
		h.Publish("alice", Event{Type: EventProgress, GenerationID: fmt.Sprint("x", i), Step: 1})
	}
	h.Publish("alice", Event{Type: EventSucceeded, GenerationID: "g1"})
	h.Publish("alice", Event{Type: EventFailed, GenerationID: "g2"})
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("publishing to a stalled reader took %s", d)
	}

	var got []Event
	timeout := time.After(5 * time.Second)
	for len(got) == 0 || got[len(got)-1].Type != EventFailed {
		select {
		case e := <-events:
			got = append(got, e)
		case <-timeout:
			t.Fatalf("final events never arrived; got %d events", len(got))
		}
	}
	// Bound: the channel's buffer, one in the pump's hand, the pending
	// droppable ones, and the four lifecycle events.
	if bound := 16 + 1 + maxPending + 4; len(got) > bound {
		t.Errorf("slow reader got %d events, want at most %d", len(got), bound)
	}
	last := map[string]int{}
	for _, e := range got {
		if e.Type == EventProgress {
			last[e.GenerationID] = e.Step
		}
	}
	if last["g1"] != 5000 || last["g2"] != 5000 {
		t.Errorf("latest steps seen: %v, want 5000 for both jobs", last)
	}
	if n := len(got); got[n-2].Type != EventSucceeded || got[n-2].GenerationID != "g1" {
		t.Errorf("terminal events out of order: %+v", got[n-2:])
	}
	select {
	case e := <-other:
		t.Errorf("bob received alice's event %+v", e)
	default:
	}
	if h.Subscribed("carol") || !h.Subscribed("alice") {
		t.Error("Subscribed is wrong")
	}
	stop()
	if _, ok := <-events; ok {
		// Drain: stop closes the channel once the pump notices.
		for range events {
		}
	}
}

func TestIndexRoundRobinAndPositions(t *testing.T) {
	x := newIndex()
	for i := range 3 {
		x.push(&job{id: fmt.Sprint("a", i), userID: "a"}, false)
	}
	x.push(&job{id: "b0", userID: "b"}, false)
	// b arrived later, but neither has been served: a goes first.
	if got := []int{x.position(x.jobs["a0"]), x.position(x.jobs["b0"]), x.position(x.jobs["a1"]), x.position(x.jobs["a2"])}; fmt.Sprint(got) != "[1 2 3 4]" {
		t.Errorf("positions = %v, want [1 2 3 4]", got)
	}
	var order []string
	for len(x.ring) > 0 {
		j := x.take(x.ring[0])
		order = append(order, j.id)
		if j.id == "a0" {
			// A newcomer while a is being served goes before a's next job.
			x.push(&job{id: "c0", userID: "c"}, false)
		}
	}
	if fmt.Sprint(order) != "[a0 b0 c0 a1 a2]" {
		t.Errorf("start order = %v, want [a0 b0 c0 a1 a2]", order)
	}
}
