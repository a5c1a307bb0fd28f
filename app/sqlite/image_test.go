package sqlite

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"zimage/app"
)

func testImageRow(id, user, gen string, idx int, created time.Time) ImageRow {
	return ImageRow{
		Image: app.Image{
			ID: id, UserID: user, GenerationID: gen, Index: idx, Width: 64, Height: 32, Seed: 42 + int64(idx),
			ContentType: "image/png", Bytes: 1234, Steps: 8, Guidance: 1.5, Backend: "builtin", Model: "m",
			StartedAt: created.Add(-2 * time.Second), FinishedAt: created.Add(-time.Second),
			CreatedAt: created, ExpiresAt: created.Add(90 * 24 * time.Hour),
		},
		SealedPrompt: []byte("sealed-p"), SealedNegativePrompt: []byte("sealed-n"),
	}
}

func TestImagesRoundTripAndOwnership(t *testing.T) {
	ctx := context.Background()
	db := MustOpen(t)
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	want := testImageRow("img1", "alice", "gen1", 0, t0)
	if err := db.InsertImages(ctx, []ImageRow{want}); err != nil {
		t.Fatal(err)
	}
	got, err := db.Image(ctx, "alice", "img1")
	if err != nil {
		t.Fatal(err)
	}
	if got.Width != 64 || got.Height != 32 || got.Seed != 42 || got.Guidance != 1.5 || !got.CreatedAt.Equal(t0) ||
		!got.ExpiresAt.Equal(want.ExpiresAt) || !got.FinishedAt.Equal(want.FinishedAt) || !got.QueuedAt.IsZero() ||
		string(got.SealedPrompt) != "sealed-p" || got.HasWebP || got.Favourite {
		t.Errorf("got %+v, want %+v", got, want)
	}

	tests := []struct {
		name string
		call func() error
	}{
		{"Image", func() error { _, err := db.Image(ctx, "bob", "img1"); return err }},
		{"SetImageFavourite", func() error { return db.SetImageFavourite(ctx, "bob", "img1", true) }},
		{"DeleteImage", func() error { return db.DeleteImage(ctx, "bob", "img1") }},
	}
	for _, tt := range tests {
		t.Run("other user "+tt.name, func(t *testing.T) {
			if err := tt.call(); app.ErrorCode(err) != app.ENOTFOUND {
				t.Errorf("got %v, want not_found", err)
			}
		})
	}
	if n, err := db.DeleteImages(ctx, []ImageKey{{ID: "img1", UserID: "bob"}}); err != nil || n != 0 {
		t.Errorf("DeleteImages as bob = %d, %v; want 0", n, err)
	}

	if err := db.SetImageFavourite(ctx, "alice", "img1", true); err != nil {
		t.Fatal(err)
	}
	if ok, err := db.SetImageThumb(ctx, "img1", 999); !ok || err != nil {
		t.Fatalf("SetImageThumb = %v, %v", ok, err)
	}
	missing, err := db.ImagesMissingDerivatives(ctx, "", 10)
	if err != nil || len(missing) != 1 {
		t.Fatalf("missing derivatives = %v, %v", missing, err)
	}
	if ok, _ := db.SetImageWebP(ctx, "img1", 5000); !ok {
		t.Fatal("SetImageWebP: row not found")
	}
	if missing, _ := db.ImagesMissingDerivatives(ctx, "", 10); len(missing) != 0 {
		t.Errorf("missing derivatives after both = %v", missing)
	}
	got, _ = db.Image(ctx, "alice", "img1")
	if !got.Favourite || !got.HasThumb || got.ThumbBytes != 999 || !got.HasWebP || got.WebPBytes != 5000 {
		t.Errorf("after updates: %+v", got.Image)
	}
	if ok, _ := db.SetImageWebP(ctx, "nope", 1); ok {
		t.Error("SetImageWebP of a missing image reported success")
	}
}

func TestInsertImagesConflictIsAtomic(t *testing.T) {
	ctx := context.Background()
	db := MustOpen(t)
	t0 := time.Now().UTC()
	if err := db.InsertImages(ctx, []ImageRow{testImageRow("a", "u", "g", 0, t0)}); err != nil {
		t.Fatal(err)
	}
	err := db.InsertImages(ctx, []ImageRow{testImageRow("b", "u", "g", 1, t0), testImageRow("c", "u", "g", 0, t0)})
	if app.ErrorCode(err) != app.ECONFLICT {
		t.Fatalf("duplicate (generation, index): got %v, want conflict", err)
	}
	if _, err := db.Image(ctx, "u", "b"); app.ErrorCode(err) != app.ENOTFOUND {
		t.Errorf("first row of a failed batch was kept: %v", err)
	}
}

func TestImagesPageKeyset(t *testing.T) {
	ctx := context.Background()
	db := MustOpen(t)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var rows []ImageRow
	for i := range 25 {
		// Groups of five share a millisecond, so the id tie-break matters.
		rows = append(rows, testImageRow(fmt.Sprintf("id%02d", i), "alice", fmt.Sprintf("g%d", i), 0, t0.Add(time.Duration(i/5)*time.Millisecond)))
	}
	rows = append(rows, testImageRow("bobs", "bob", "gb", 0, t0))
	if err := db.InsertImages(ctx, rows); err != nil {
		t.Fatal(err)
	}
	var seen []string
	var after *ImageCursor
	for {
		var page []ImageCursor
		err := db.ImagesPage(ctx, "alice", after, 7, func(r *ImageRow) error {
			page = append(page, ImageCursor{CreatedAt: r.CreatedAt, ID: r.ID})
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range page {
			seen = append(seen, c.ID)
		}
		if len(page) < 7 {
			break
		}
		after = &page[len(page)-1]
	}
	if len(seen) != 25 {
		t.Fatalf("saw %d images, want 25: %v", len(seen), seen)
	}
	for i, id := range seen {
		if want := fmt.Sprintf("id%02d", 24-i); id != want {
			t.Fatalf("position %d: got %s, want %s (newest first, id descending on ties)", i, id, want)
		}
	}

	// The keyset query must walk the index, not sort.
	plan, err := db.r.QueryContext(ctx, `EXPLAIN QUERY PLAN SELECT `+imageColumns+` FROM images WHERE user_id = ?
		AND (created_at, id) < (?, ?) ORDER BY created_at DESC, id DESC LIMIT ?`, "alice", 1, "x", 10)
	if err != nil {
		t.Fatal(err)
	}
	defer plan.Close()
	var steps []string
	for plan.Next() {
		var id, parent, unused int
		var detail string
		plan.Scan(&id, &parent, &unused, &detail)
		steps = append(steps, detail)
	}
	joined := strings.Join(steps, "; ")
	if !strings.Contains(joined, "images_user_created") || strings.Contains(joined, "TEMP B-TREE") {
		t.Errorf("query plan %q: want a scan of images_user_created without a temp sort", joined)
	}
}

func TestExpiredImagesAndDeleteForUser(t *testing.T) {
	ctx := context.Background()
	db := MustOpen(t)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var rows []ImageRow
	for i := range 6 {
		r := testImageRow(fmt.Sprintf("e%d", i), "alice", fmt.Sprintf("g%d", i), 0, t0)
		r.ExpiresAt = t0.Add(time.Duration(i) * time.Hour)
		rows = append(rows, r)
	}
	if err := db.InsertImages(ctx, rows); err != nil {
		t.Fatal(err)
	}
	got, err := db.ExpiredImages(ctx, t0.Add(2*time.Hour), 10)
	if err != nil || len(got) != 3 || got[0].ID != "e0" || got[2].ID != "e2" {
		t.Fatalf("ExpiredImages at +2h = %v, %v; want e0..e2 (expiry at the instant counts)", got, err)
	}
	if n, err := db.DeleteImagesForUser(ctx, "alice", 4); err != nil || n != 4 {
		t.Fatalf("DeleteImagesForUser = %d, %v; want 4", n, err)
	}
	if ids, _ := db.ImageIDsForUser(ctx, "alice"); len(ids) != 2 {
		t.Errorf("left %v, want 2 ids", ids)
	}
}

// A shortened window applies to images already stored: their expiry comes
// down to created + window (what the gallery shows and the sweep deletes),
// and a longer window never moves an expiry later. Both queries use the
// lifetime index rather than reading the table.
func TestShortenImageExpiries(t *testing.T) {
	ctx := context.Background()
	db := MustOpen(t)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	const day = 24 * time.Hour
	rows := []ImageRow{
		testImageRow("old90", "alice", "g1", 0, t0),             // kept 90d from t0
		testImageRow("new90", "alice", "g2", 0, t0.Add(50*day)), // kept 90d from t0+50d
	}
	short := testImageRow("short", "bob", "g3", 0, t0)
	short.ExpiresAt = t0.Add(10 * day) // made under a 10-day window
	rows = append(rows, short)
	if err := db.InsertImages(ctx, rows); err != nil {
		t.Fatal(err)
	}
	expiry := func(id string) time.Time {
		t.Helper()
		var ms int64
		if err := db.r.QueryRow(`SELECT expires_at FROM images WHERE id = ?`, id).Scan(&ms); err != nil {
			t.Fatal(err)
		}
		return time.UnixMilli(ms).UTC()
	}

	// Dry-run count at t0+31d under a 30-day window: old90 (due at
	// t0+30d once shortened) and short; nothing is changed by counting.
	if n, err := db.CountExpiredImages(ctx, t0.Add(31*day), 30*day); err != nil || n != 2 {
		t.Errorf("count under 30d at t0+31d = %d, %v; want 2", n, err)
	}
	if n, err := db.CountExpiredImages(ctx, t0.Add(31*day), 90*day); err != nil || n != 1 {
		t.Errorf("count under 90d at t0+31d = %d, %v; want 1 (short only)", n, err)
	}
	if got := expiry("old90"); !got.Equal(t0.Add(90 * day)) {
		t.Fatalf("counting changed an expiry: %v", got)
	}

	if n, err := db.ShortenImageExpiries(ctx, 30*day); err != nil || n != 2 {
		t.Fatalf("shorten to 30d changed %d, %v; want 2", n, err)
	}
	for id, want := range map[string]time.Time{"old90": t0.Add(30 * day), "new90": t0.Add(80 * day), "short": t0.Add(10 * day)} {
		if got := expiry(id); !got.Equal(want) {
			t.Errorf("%s expires %v after shortening, want %v", id, got, want)
		}
	}
	if n, err := db.ShortenImageExpiries(ctx, 90*day); err != nil || n != 0 {
		t.Fatalf("a longer window changed %d, %v; want 0", n, err)
	}
	if got := expiry("old90"); !got.Equal(t0.Add(30 * day)) {
		t.Errorf("a longer window moved old90's expiry to %v", got)
	}
	keys, err := db.ExpiredImages(ctx, t0.Add(30*day), 10)
	if err != nil || len(keys) != 2 || keys[0].ID != "short" || keys[1].ID != "old90" {
		t.Errorf("expired at t0+30d = %v, %v; want short, old90", keys, err)
	}

	for _, q := range []string{
		`SELECT rowid FROM images WHERE expires_at - created_at > 1 LIMIT 1000`,
		`SELECT count(*) FROM images WHERE expires_at <= 1 OR (expires_at - created_at > 1 AND created_at <= 1)`,
	} {
		var steps []string
		plan, err := db.r.QueryContext(ctx, "EXPLAIN QUERY PLAN "+q)
		if err != nil {
			t.Fatal(err)
		}
		for plan.Next() {
			var id, parent, unused int
			var detail string
			plan.Scan(&id, &parent, &unused, &detail)
			steps = append(steps, detail)
		}
		plan.Close()
		joined := strings.Join(steps, "; ")
		if !strings.Contains(joined, "images_lifetime") || strings.Contains(joined, "SCAN images") {
			t.Errorf("plan of %q is %q: want the images_lifetime index, no table scan", q, joined)
		}
	}
}

// Shortening more images than one batch holds changes them all, a batch a
// transaction.
func TestShortenImageExpiriesInBatches(t *testing.T) {
	ctx := context.Background()
	db := MustOpen(t)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	n := 2*shortenBatch + 500
	rows := make([]ImageRow, n)
	for i := range rows {
		rows[i] = testImageRow(fmt.Sprintf("id%05d", i), "alice", fmt.Sprintf("g%d", i), 0, t0.Add(time.Duration(i)*time.Second))
	}
	if err := db.InsertImages(ctx, rows); err != nil {
		t.Fatal(err)
	}
	if got, err := db.ShortenImageExpiries(ctx, time.Hour); err != nil || got != n {
		t.Fatalf("shortened %d, %v; want %d", got, err, n)
	}
	if got, err := db.CountExpiredImages(ctx, t0.Add(time.Duration(n)*time.Second+time.Hour), time.Hour); err != nil || got != n {
		t.Errorf("due after the last one's hour: %d, %v; want %d", got, err, n)
	}
	var late int
	if err := db.r.QueryRow(`SELECT count(*) FROM images WHERE expires_at <> created_at + 3600000`).Scan(&late); err != nil || late != 0 {
		t.Errorf("%d images not shortened to created + 1h (%v)", late, err)
	}
}

func TestImageIDsForGenerations(t *testing.T) {
	ctx := context.Background()
	db := MustOpen(t)
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	// Inserted out of order: the answer follows idx, not insertion.
	rows := []ImageRow{
		testImageRow("a2", "alice", "g1", 1, t0), testImageRow("a1", "alice", "g1", 0, t0),
		testImageRow("a3", "alice", "g2", 0, t0), testImageRow("b1", "bob", "g3", 0, t0),
	}
	if err := db.InsertImages(ctx, rows); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		user string
		gens []string
		want map[string][]string
	}{
		{"a page of generations", "alice", []string{"g1", "g2", "g-none"}, map[string][]string{"g1": {"a1", "a2"}, "g2": {"a3"}}},
		{"one generation", "alice", []string{"g2"}, map[string][]string{"g2": {"a3"}}},
		{"no generations", "alice", nil, map[string][]string{}},
		{"another person's generation", "alice", []string{"g3"}, map[string][]string{}},
		{"own generations only", "bob", []string{"g1", "g3"}, map[string][]string{"g3": {"b1"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := db.ImageIDsForGenerations(ctx, tt.user, tt.gens)
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}
