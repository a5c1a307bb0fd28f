package queue_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"zimage/app/backend"
	"zimage/app/media"
	"zimage/app/queue"
)

// TestStorageFailureTellsWhatToDo runs a job whose images cannot be stored
// by the real media store (the person's folder is a file, as after a bad mount or a
// mistaken copy): the job fails with reason storage and a message the
// person and the administrator can act on, not the generic "something went
// wrong" (which is what a cause hidden as internal would give).
func TestStorageFailureTellsWhatToDo(t *testing.T) {
	e := newEnv(t, []backend.Backend{builtin(t, "cpu", time.Millisecond)}, nil, queue.Options{}, false)
	m, err := media.New(e.dir, e.db, e.vault, media.Options{})
	if err != nil {
		t.Fatal(err)
	}
	// A file where alice's media folder should be: no write below it can
	// succeed, even for root (chmod would not stop root).
	if err := os.WriteFile(filepath.Join(e.dir, "media", "alice"), []byte("not a folder"), 0o600); err != nil {
		t.Fatal(err)
	}
	e.q = queue.New(e.db, e.pool, e.vault, media.Sink{Media: m}, queue.Options{})
	e.start(t)
	events, stop := e.q.Subscribe("alice")
	defer stop()

	g, _ := e.submit(t, "alice", params("a lighthouse at dusk"))
	seen := waitEvent(t, events, final(g.ID))
	done := seen[len(seen)-1]
	if done.Type != queue.EventFailed || done.Reason != queue.ReasonStorage {
		t.Fatalf("final event = %+v, want failed with reason %s", done, queue.ReasonStorage)
	}
	if strings.Contains(done.Message, "Something went wrong on our side") || !strings.Contains(done.Message, "data folder") {
		t.Errorf("message = %q, want one that says the data folder is the problem", done.Message)
	}
}
