package sqlite

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"zimage/app"
)

func newGeneration(id, userID string) *GenerationRecord {
	return &GenerationRecord{
		Generation: app.Generation{ID: id, UserID: userID, GenerationParams: app.GenerationParams{
			Width: 512, Height: 768, Steps: 8, Guidance: 3.5, Seed: 1<<53 - 1, Count: 2, Backend: "gpu", Model: "z"}},
		SealedPrompt: []byte("sealed-prompt-" + id), SealedNegativePrompt: []byte{},
	}
}

// clock makes db.Now tick one second per call, so rows get distinct times.
func clock(db *DB) {
	t := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	db.Now = func() time.Time { t = t.Add(time.Second); return t }
}

func TestGenerationCreateGetIsolation(t *testing.T) {
	db := MustOpen(t)
	clock(db)
	ctx := context.Background()
	in := newGeneration("g1", "alice")
	if err := db.CreateGeneration(ctx, in, 10); err != nil {
		t.Fatal(err)
	}
	got, err := db.Generation(ctx, "alice", "g1")
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != app.GenerationQueued || got.Seed != 1<<53-1 || got.Guidance != 3.5 || got.Width != 512 ||
		string(got.SealedPrompt) != "sealed-prompt-g1" || !got.CreatedAt.Equal(in.CreatedAt) || !got.StartedAt.IsZero() {
		t.Errorf("Generation = %+v", got)
	}
	if _, err := db.Generation(ctx, "bob", "g1"); app.ErrorCode(err) != app.ENOTFOUND {
		t.Errorf("bob reads alice's generation: %v, want ENOTFOUND", err)
	}
	if ok, err := db.FinishGeneration(ctx, "bob", "g1", app.GenerationCanceled, "", ""); ok || err != nil {
		t.Errorf("bob finishes alice's generation: %v, %v", ok, err)
	}
}

func TestGenerationQueuedCap(t *testing.T) {
	db := MustOpen(t)
	ctx := context.Background()
	for i := range 2 {
		if err := db.CreateGeneration(ctx, newGeneration(fmt.Sprint("a", i), "alice"), 2); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.CreateGeneration(ctx, newGeneration("a2", "alice"), 2); app.ErrorCode(err) != app.ECONFLICT {
		t.Errorf("third: %v, want ECONFLICT", err)
	}
	// A started job no longer counts as waiting.
	if _, err := db.StartGeneration(ctx, "a0", "gpu"); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateGeneration(ctx, newGeneration("a2", "alice"), 2); err != nil {
		t.Errorf("after one started: %v", err)
	}
}

func TestGenerationsPageNewestFirst(t *testing.T) {
	db := MustOpen(t)
	clock(db)
	ctx := context.Background()
	for i := range 5 {
		if err := db.CreateGeneration(ctx, newGeneration(fmt.Sprint("a", i), "alice"), 100); err != nil {
			t.Fatal(err)
		}
		if err := db.CreateGeneration(ctx, newGeneration(fmt.Sprint("b", i), "bob"), 100); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	before := ""
	for {
		page, err := db.Generations(ctx, "alice", before, 2)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		for _, r := range page {
			got = append(got, r.ID)
		}
		before = page[len(page)-1].ID
	}
	if s := strings.Join(got, ","); s != "a4,a3,a2,a1,a0" {
		t.Errorf("pages = %s, want alice's five newest first and none of bob's", s)
	}
	var plan string
	if err := db.r.QueryRow(`EXPLAIN QUERY PLAN SELECT id FROM generations WHERE user_id = ? ORDER BY created_at DESC, id DESC LIMIT 50`, "alice").Scan(new(int), new(int), new(int), &plan); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(plan, "generations_user_created") {
		t.Errorf("list query plan = %q, want the (user_id, created_at, id) index", plan)
	}
}

func TestGenerationLifecycle(t *testing.T) {
	db := MustOpen(t)
	ctx := context.Background()
	if err := db.CreateGeneration(ctx, newGeneration("g", "alice"), 10); err != nil {
		t.Fatal(err)
	}
	r, err := db.StartGeneration(ctx, "g", "gpu")
	if err != nil || r.Status != app.GenerationRunning || r.Attempts != 1 || r.AssignedBackend != "gpu" || r.StartedAt.IsZero() {
		t.Fatalf("start: %+v, %v", r, err)
	}
	if _, err := db.StartGeneration(ctx, "g", "gpu"); app.ErrorCode(err) != app.ECONFLICT {
		t.Errorf("starting a running job: %v, want ECONFLICT", err)
	}
	if ok, err := db.RequeueGeneration(ctx, "g", true); !ok || err != nil {
		t.Fatalf("requeue: %v, %v", ok, err)
	}
	if r, _ := db.Generation(ctx, "alice", "g"); r.Status != app.GenerationQueued || r.Attempts != 0 {
		t.Errorf("after a refunded requeue: %s, attempts %d", r.Status, r.Attempts)
	}
	if _, err := db.StartGeneration(ctx, "g", "gpu"); err != nil {
		t.Fatal(err)
	}
	if ok, _ := db.FinishGeneration(ctx, "alice", "g", app.GenerationCanceled, "canceled", "by you"); !ok {
		t.Error("cancel of a running job did not apply")
	}
	// The first ending wins: a success racing the cancel changes nothing.
	if ok, _ := db.FinishGeneration(ctx, "alice", "g", app.GenerationSucceeded, "", ""); ok {
		t.Error("success after cancel applied")
	}
	if _, err := db.FinishGeneration(ctx, "alice", "g", app.GenerationRunning, "", ""); err == nil {
		t.Error("finishing with a non-final status was accepted")
	}
	if r, _ := db.Generation(ctx, "alice", "g"); r.Status != app.GenerationCanceled || r.ErrorMessage != "by you" || r.FinishedAt.IsZero() {
		t.Errorf("final row: %+v", r)
	}
}

func TestRecoverGenerations(t *testing.T) {
	db := MustOpen(t)
	ctx := context.Background()
	for _, id := range []string{"once", "twice", "waiting", "done"} {
		if err := db.CreateGeneration(ctx, newGeneration(id, "alice"), 10); err != nil {
			t.Fatal(err)
		}
	}
	db.StartGeneration(ctx, "once", "gpu")
	db.StartGeneration(ctx, "twice", "gpu")
	db.RequeueGeneration(ctx, "twice", false)
	db.StartGeneration(ctx, "twice", "gpu")
	db.StartGeneration(ctx, "done", "gpu")
	db.FinishGeneration(ctx, "alice", "done", app.GenerationSucceeded, "", "")

	got, err := db.RecoverGenerations(ctx, 2, "interrupted twice")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("recovered %+v, want once and twice", got)
	}
	want := map[string]struct{ status, reason string }{
		"once":    {app.GenerationQueued, ""},
		"twice":   {app.GenerationFailed, "interrupted"},
		"waiting": {app.GenerationQueued, ""},
		"done":    {app.GenerationSucceeded, ""},
	}
	for id, w := range want {
		r, _ := db.Generation(ctx, "alice", id)
		if r.Status != w.status || r.ErrorReason != w.reason {
			t.Errorf("%s: %s/%s, want %s/%s", id, r.Status, r.ErrorReason, w.status, w.reason)
		}
	}
	queued, err := db.QueuedGenerations(ctx)
	if err != nil || len(queued) != 2 {
		t.Errorf("queued after recovery: %+v, %v", queued, err)
	}
}
