package media

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"image/png"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"zimage/app"
	"zimage/app/backend"
	"zimage/app/provenance"

	"github.com/chai2010/webp"
)

func TestSaveSealsAndOpensOriginal(t *testing.T) {
	ctx := context.Background()
	e := newTestEnv(t, Options{})
	const prompt = "a red fox sleeping in fresh snow"
	p1, p2 := testPNG(t, 96, 64, 1), testPNG(t, 64, 96, 2)
	ids := e.save(t, "gen1", "alice", prompt, SaveOptions{}, p1, p2)
	if len(ids) != 2 || ids[0] == ids[1] {
		t.Fatalf("ids = %v", ids)
	}

	for i, id := range ids {
		raw, err := os.ReadFile(e.store.path("alice", id, "orig"))
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(raw, []byte("\x89PNG")) || bytes.Contains(raw, []byte("IHDR")) || bytes.Contains(raw, []byte("red fox")) {
			t.Errorf("file of image %d holds plaintext", i)
		}
		if fi, _ := os.Stat(e.store.path("alice", id, "orig")); fi.Mode().Perm() != 0o600 {
			t.Errorf("file mode %v, want 0600", fi.Mode().Perm())
		}
		rc, ct, size, err := e.store.Open(ctx, "alice", id, "png", "full")
		if err != nil {
			t.Fatal(err)
		}
		got := readAll(t, rc)
		want, _, err := e.store.finishOriginal([][]byte{p1, p2}[i], "image/png", "z-image-turbo", SaveOptions{}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) || ct != "image/png" || size != int64(len(want)) {
			t.Errorf("image %d: got %d bytes (%s, size %d), want the %d bytes saved", i, len(got), ct, size, len(want))
		}
	}
	if fi, _ := os.Stat(filepath.Join(e.dir, "media", "alice")); fi.Mode().Perm() != 0o700 {
		t.Errorf("user folder mode %v, want 0700", fi.Mode().Perm())
	}
	db, _ := os.ReadFile(filepath.Join(e.dir, "zimage.db"))
	wal, _ := os.ReadFile(filepath.Join(e.dir, "zimage.db-wal"))
	if bytes.Contains(db, []byte("red fox")) || bytes.Contains(wal, []byte("red fox")) || bytes.Contains(wal, []byte("lowres")) {
		t.Error("the database holds the prompt in plaintext")
	}

	img, err := e.store.Get(ctx, "alice", ids[1])
	if err != nil {
		t.Fatal(err)
	}
	want := app.Image{ID: ids[1], UserID: "alice", GenerationID: "gen1", Index: 1, Width: 64, Height: 96, Seed: 1001,
		ContentType: "image/png", Bytes: img.Bytes, Prompt: prompt, NegativePrompt: "blurry, lowres", Steps: 8, Guidance: 1,
		Backend: "builtin", Model: "z-image-turbo", CreatedAt: e.clock(), ExpiresAt: e.clock().Add(DefaultImagesRetention),
		QueuedAt: time.Date(2026, 5, 1, 9, 59, 0, 0, time.UTC), StartedAt: time.Date(2026, 5, 1, 9, 59, 30, 0, time.UTC), FinishedAt: time.Date(2026, 5, 1, 9, 59, 40, 0, time.UTC)}
	if !equalImage(img, want) {
		t.Errorf("Get:\n got %+v\nwant %+v", img, want)
	}
	if img.RenderTime() != 10*time.Second || img.WaitTime() != 30*time.Second {
		t.Errorf("timings: render %v, wait %v", img.RenderTime(), img.WaitTime())
	}
}

func equalImage(a, b app.Image) bool {
	eq := func(x, y time.Time) bool { return x.Equal(y) }
	if !eq(a.CreatedAt, b.CreatedAt) || !eq(a.ExpiresAt, b.ExpiresAt) || !eq(a.QueuedAt, b.QueuedAt) || !eq(a.StartedAt, b.StartedAt) || !eq(a.FinishedAt, b.FinishedAt) {
		return false
	}
	a.CreatedAt, a.ExpiresAt, a.QueuedAt, a.StartedAt, a.FinishedAt = b.CreatedAt, b.ExpiresAt, b.QueuedAt, b.StartedAt, b.FinishedAt
	return a == b
}

func TestWorkerMakesWebPAndThumbnail(t *testing.T) {
	ctx := context.Background()
	e := newTestEnv(t, Options{})
	e.store.Start(ctx)
	ids := e.save(t, "gen1", "alice", "a lighthouse", SaveOptions{}, testPNG(t, 1024, 768, 3))
	e.waitDerivatives(t, "alice", ids[0])

	tests := []struct {
		name, format, size string
		w, h               int
		maxBytes           int
	}{
		{"full webp", "webp", "full", 1024, 768, 0},
		// A gallery page of 100 thumbnails must transfer under 1 MB.
		{"thumbnail", "webp", "thumb", 256, 192, ThumbMaxBytes},
		{"thumbnail, default format", "", "thumb", 256, 192, ThumbMaxBytes},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rc, ct, size, err := e.store.Open(ctx, "alice", ids[0], tt.format, tt.size)
			if err != nil {
				t.Fatal(err)
			}
			data := readAll(t, rc)
			if ct != "image/webp" || size != int64(len(data)) {
				t.Errorf("content type %q, size %d for %d bytes", ct, size, len(data))
			}
			m, err := webp.DecodeRGBA(data)
			if err != nil {
				t.Fatalf("not a WebP: %v", err)
			}
			if m.Rect.Dx() != tt.w || m.Rect.Dy() != tt.h {
				t.Errorf("size %v, want %dx%d", m.Rect.Size(), tt.w, tt.h)
			}
			if tt.maxBytes > 0 && len(data) > tt.maxBytes {
				t.Errorf("thumbnail is %d bytes, want at most %d", len(data), tt.maxBytes)
			}
			t.Logf("%s: %d bytes", tt.name, len(data))
		})
	}
	raw, _ := os.ReadFile(e.store.path("alice", ids[0], "thumb"))
	if bytes.Contains(raw, []byte("WEBP")) {
		t.Error("thumbnail file on disk is not sealed")
	}
}

func TestThumbnailOnDemandAndWebPNotReady(t *testing.T) {
	ctx := context.Background()
	e := newTestEnv(t, Options{}) // no Start: no worker runs
	ids := e.save(t, "gen1", "alice", "p", SaveOptions{}, testPNG(t, 300, 600, 4))

	_, _, _, err := e.store.Open(ctx, "alice", ids[0], "webp", "full")
	if app.ErrorCode(err) != app.EUNAVAILABLE || !strings.Contains(app.ErrorMessage(err), "ask for format=png") {
		t.Fatalf("webp before conversion: got %v, want unavailable with advice", err)
	}
	// The WebP is seconds away: the client is told when to ask again.
	if ae, ok := err.(*app.Error); !ok || ae.RetryAfterSeconds != 1 {
		t.Errorf("webp before conversion: error %#v, want RetryAfterSeconds 1", err)
	}
	rc, _, _, err := e.store.Open(ctx, "alice", ids[0], "webp", "thumb")
	if err != nil {
		t.Fatal(err)
	}
	first := readAll(t, rc)
	if cfg, err := webp.DecodeConfig(bytes.NewReader(first)); err != nil || cfg.Width != 128 || cfg.Height != 256 {
		t.Fatalf("thumbnail config %+v, %v; want 128x256", cfg, err)
	}
	img, _ := e.store.Get(ctx, "alice", ids[0])
	if !img.HasThumb || img.HasWebP || img.ThumbBytes != int64(len(first)) {
		t.Errorf("after on-demand thumbnail: has_thumb %v (%d bytes), has_webp %v", img.HasThumb, img.ThumbBytes, img.HasWebP)
	}
	rc, _, _, err = e.store.Open(ctx, "alice", ids[0], "", "thumb")
	if err != nil {
		t.Fatal(err)
	}
	if again := readAll(t, rc); !bytes.Equal(again, first) {
		t.Error("second thumbnail read differs from the stored one")
	}
	// Asking for a PNG thumbnail means "a thumbnail": the one there is.
	rc, ct, _, err := e.store.Open(ctx, "alice", ids[0], "png", "thumb")
	if err != nil {
		t.Fatalf("Open(png, thumb): %v, want the WebP thumbnail", err)
	}
	if again := readAll(t, rc); ct != "image/webp" || !bytes.Equal(again, first) {
		t.Errorf("Open(png, thumb) gave %s of %d bytes, want the stored WebP thumbnail", ct, len(again))
	}

	for _, tt := range []struct{ format, size string }{{"gif", "full"}, {"gif", "thumb"}, {"png", "huge"}} {
		if _, _, _, err := e.store.Open(ctx, "alice", ids[0], tt.format, tt.size); app.ErrorCode(err) != app.EINVALID {
			t.Errorf("Open(%s, %s): got %v, want invalid", tt.format, tt.size, err)
		}
	}
}

func TestOtherUsersSeeNothing(t *testing.T) {
	ctx := context.Background()
	e := newTestEnv(t, Options{})
	id := e.save(t, "gen1", "alice", "private", SaveOptions{}, testPNG(t, 32, 32, 5))[0]

	tests := []struct {
		name string
		call func() error
	}{
		{"Get", func() error { _, err := e.store.Get(ctx, "bob", id); return err }},
		{"Open png", func() error { _, _, _, err := e.store.Open(ctx, "bob", id, "png", "full"); return err }},
		{"Open thumb", func() error { _, _, _, err := e.store.Open(ctx, "bob", id, "webp", "thumb"); return err }},
		{"Delete", func() error { return e.store.Delete(ctx, "bob", id) }},
		{"SetFavourite", func() error { return e.store.SetFavourite(ctx, "bob", id, true) }},
		{"unknown id", func() error { _, err := e.store.Get(ctx, "alice", "01NOSUCHIMAGE"); return err }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.call(); app.ErrorCode(err) != app.ENOTFOUND {
				t.Errorf("got %v, want not_found", err)
			}
		})
	}
	if imgs, next, err := e.store.List(ctx, "bob", "", 100, ""); err != nil || len(imgs) != 0 || next != "" {
		t.Errorf("bob's list = %d images, %q, %v", len(imgs), next, err)
	}
	if imgs, _, _ := e.store.List(ctx, "bob", "", 100, "private"); len(imgs) != 0 {
		t.Errorf("bob's search found %d of alice's images", len(imgs))
	}
	if _, err := e.store.Get(ctx, "alice", id); err != nil {
		t.Errorf("alice's image was harmed: %v", err)
	}
}

func variantFiles(t *testing.T, e *testEnv, user, id string) []string {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(e.store.imageDir(user, id), id+".*"))
	return m
}

func TestDeleteRemovesFilesAndRow(t *testing.T) {
	ctx := context.Background()
	e := newTestEnv(t, Options{})
	e.store.Start(ctx)
	ids := e.save(t, "gen1", "alice", "p", SaveOptions{}, testPNG(t, 64, 64, 6), testPNG(t, 64, 64, 7))
	e.waitDerivatives(t, "alice", ids[0])
	if n := len(variantFiles(t, e, "alice", ids[0])); n != 3 {
		t.Fatalf("%d files before delete, want 3", n)
	}
	if err := e.store.Delete(ctx, "alice", ids[0]); err != nil {
		t.Fatal(err)
	}
	if f := variantFiles(t, e, "alice", ids[0]); len(f) != 0 {
		t.Errorf("files left after delete: %v", f)
	}
	if _, err := e.store.Get(ctx, "alice", ids[0]); app.ErrorCode(err) != app.ENOTFOUND {
		t.Errorf("row left after delete: %v", err)
	}
	if err := e.store.Delete(ctx, "alice", ids[0]); app.ErrorCode(err) != app.ENOTFOUND {
		t.Errorf("second delete: got %v, want not_found", err)
	}
	if _, err := e.store.Get(ctx, "alice", ids[1]); err != nil {
		t.Errorf("sibling image harmed: %v", err)
	}
}

func TestDeleteExpiredUsesTheClock(t *testing.T) {
	ctx := context.Background()
	e := newTestEnv(t, Options{ImagesRetention: 30 * 24 * time.Hour})
	var old, young []string
	for i := range 5 {
		old = append(old, e.save(t, fmt.Sprintf("old%d", i), "alice", "old", SaveOptions{}, testPNG(t, 16, 16, uint64(i)))...)
	}
	old = append(old, e.save(t, "oldbob", "bob", "old", SaveOptions{}, testPNG(t, 16, 16, 9))...)
	e.advance(10 * 24 * time.Hour)
	for i := range 3 {
		young = append(young, e.save(t, fmt.Sprintf("young%d", i), "alice", "young", SaveOptions{}, testPNG(t, 16, 16, uint64(i)))...)
	}

	if n, err := e.store.DeleteExpired(ctx, e.clock().Add(19*24*time.Hour), 30*24*time.Hour, 2); err != nil || n != 0 {
		t.Fatalf("a day before expiry: removed %d, %v", n, err)
	}
	n, err := e.store.DeleteExpired(ctx, e.clock().Add(20*24*time.Hour), 30*24*time.Hour, 2)
	if err != nil || n != len(old) {
		t.Fatalf("at expiry of the old ones: removed %d, %v; want %d", n, err, len(old))
	}
	for _, id := range old {
		user := "alice"
		if id == old[len(old)-1] {
			user = "bob"
		}
		if f := variantFiles(t, e, user, id); len(f) != 0 {
			t.Errorf("files of expired image left: %v", f)
		}
	}
	imgs, _, err := e.store.List(ctx, "alice", "", 100, "")
	if err != nil || len(imgs) != len(young) {
		t.Fatalf("left %d images, %v; want the %d young ones", len(imgs), err, len(young))
	}
	for _, img := range imgs {
		if !slices.Contains(young, img.ID) || len(variantFiles(t, e, "alice", img.ID)) == 0 {
			t.Errorf("young image %s harmed", img.ID)
		}
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := e.store.DeleteExpired(cancelled, e.clock().Add(365*24*time.Hour), 30*24*time.Hour, 2); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled run: %v", err)
	}
}

func TestListKeysetPagination(t *testing.T) {
	ctx := context.Background()
	e := newTestEnv(t, Options{})
	small := testPNG(t, 8, 8, 1)
	var want []string // newest first
	for i := range 250 {
		// Several images share each millisecond (a generation of four
		// does), so the id tie-break is exercised.
		if i%4 == 0 {
			e.advance(time.Millisecond)
		}
		want = append(want, e.save(t, fmt.Sprintf("g%03d", i), "alice", fmt.Sprintf("prompt %d", i), SaveOptions{}, small)...)
	}
	e.save(t, "bobs", "bob", "bob", SaveOptions{}, small)
	slices.Reverse(want)

	var got []string
	var sizes []int
	cursor := ""
	for {
		page, next, err := e.store.List(ctx, "alice", cursor, 100, "")
		if err != nil {
			t.Fatal(err)
		}
		sizes = append(sizes, len(page))
		for _, img := range page {
			got = append(got, img.ID)
			if !strings.HasPrefix(img.Prompt, "prompt ") {
				t.Fatalf("prompt not opened: %q", img.Prompt)
			}
		}
		if next == "" {
			break
		}
		cursor = next
	}
	if !slices.Equal(sizes, []int{100, 100, 50}) {
		t.Errorf("page sizes %v, want [100 100 50]", sizes)
	}
	if !slices.Equal(got, want) {
		t.Errorf("pages do not give every image once, newest first (got %d ids)", len(got))
	}
	if page, _, _ := e.store.List(ctx, "alice", "", 0, ""); len(page) != DefaultListLimit {
		t.Errorf("limit 0 gave %d, want %d", len(page), DefaultListLimit)
	}
	if page, _, _ := e.store.List(ctx, "alice", "", 1000, ""); len(page) != MaxListLimit {
		t.Errorf("limit 1000 gave %d, want %d", len(page), MaxListLimit)
	}
	for _, c := range []string{"!!!", "bm90LWEtY3Vyc29y", "MTIz"} {
		if _, _, err := e.store.List(ctx, "alice", c, 10, ""); app.ErrorCode(err) != app.EINVALID {
			t.Errorf("cursor %q: got %v, want invalid", c, err)
		}
	}
}

func TestListSearch(t *testing.T) {
	ctx := context.Background()
	small := testPNG(t, 8, 8, 1)
	e := newTestEnv(t, Options{SearchScanLimit: 10})
	prompts := []string{"A Red Fox at dawn", "blue whale", "fox and hound", "Ünïcode FÖX"}
	for i := range 40 {
		p := "nothing to see"
		if i < len(prompts) {
			p = prompts[i] // the oldest images hold the matches
		}
		e.advance(time.Millisecond)
		e.save(t, fmt.Sprintf("g%d", i), "alice", p, SaveOptions{}, small)
	}
	e.save(t, "bob1", "bob", "bob's fox", SaveOptions{}, small)

	tests := []struct {
		query string
		want  []string
	}{
		{"FOX", []string{"fox and hound", "A Red Fox at dawn"}},
		{"  red fox ", []string{"A Red Fox at dawn"}},
		{"föx", []string{"Ünïcode FÖX"}},
		{"zebra", nil},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			var got []string
			cursor, calls := "", 0
			for {
				page, next, err := e.store.List(ctx, "alice", cursor, 100, tt.query)
				if err != nil {
					t.Fatal(err)
				}
				calls++
				for _, img := range page {
					got = append(got, img.Prompt)
				}
				if next == "" {
					break
				}
				cursor = next
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("found %q, want %q", got, tt.want)
			}
			// 40 rows at 10 a call: the scan bound must have cut the
			// search into several calls.
			if calls < 4 {
				t.Errorf("%d calls, want at least 4 with a scan limit of 10 over 40 rows", calls)
			}
		})
	}
	page, next, _ := e.store.List(ctx, "alice", "", 1, "fox")
	if len(page) != 0 || next == "" {
		t.Errorf("first call with a bounded scan: %d results, next %q; want none yet and a cursor", len(page), next)
	}
}

func TestTamperedFilesGiveInternalErrors(t *testing.T) {
	ctx := context.Background()
	e := newTestEnv(t, Options{})
	ids := e.save(t, "gen1", "alice", "p", SaveOptions{}, testPNG(t, 64, 64, 1), testPNG(t, 64, 64, 2))

	flip := func(path string) {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		b[len(b)/2] ^= 0x40
		os.WriteFile(path, b, 0o600)
	}
	flip(e.store.path("alice", ids[0], "orig"))
	// A sealed file moved onto another image's name must not open either.
	other, _ := os.ReadFile(e.store.path("alice", ids[1], "orig"))

	tests := []struct {
		name string
		call func() error
	}{
		{"flipped byte, png", func() error { _, _, _, err := e.store.Open(ctx, "alice", ids[0], "png", "full"); return err }},
		{"flipped byte, on-demand thumbnail", func() error { _, _, _, err := e.store.Open(ctx, "alice", ids[0], "", "thumb"); return err }},
		{"file of another image", func() error {
			os.WriteFile(e.store.path("alice", ids[0], "orig"), other, 0o600)
			_, _, _, err := e.store.Open(ctx, "alice", ids[0], "png", "full")
			return err
		}},
		{"truncated", func() error {
			os.WriteFile(e.store.path("alice", ids[1], "orig"), other[:len(other)-20], 0o600)
			_, _, _, err := e.store.Open(ctx, "alice", ids[1], "png", "full")
			return err
		}},
		{"missing", func() error {
			os.Remove(e.store.path("alice", ids[1], "orig"))
			_, _, _, err := e.store.Open(ctx, "alice", ids[1], "png", "full")
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			var ae *app.Error
			if !errors.As(err, &ae) || ae.Code != app.EINTERNAL || !strings.Contains(ae.Message, ids[0][:10]) && !strings.Contains(ae.Message, ids[1][:10]) {
				t.Errorf("got %v, want an internal error naming the image", err)
			}
		})
	}
	// The image can still be deleted, which is what the message advises.
	if err := e.store.Delete(ctx, "alice", ids[0]); err != nil {
		t.Errorf("delete of a damaged image: %v", err)
	}
}

func TestNewSweepsLeftovers(t *testing.T) {
	ctx := context.Background()
	e := newTestEnv(t, Options{})
	kept := e.save(t, "gen1", "alice", "p", SaveOptions{}, testPNG(t, 16, 16, 1))[0]
	old := time.Now().Add(-time.Hour)

	// A crash while writing: a temporary file. A crash between rename and
	// insert: a complete sealed file with no row.
	staleTmp := e.store.path("alice", "01STALE", "orig") + ".tmp-0a0b0c"
	freshTmp := e.store.path("alice", "01FRESH", "orig") + ".tmp-0d0e0f"
	if err := ensureDir(filepath.Dir(staleTmp)); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{staleTmp, freshTmp} {
		os.WriteFile(p, []byte("half"), 0o600)
	}
	if err := e.store.writeSealed("alice", "01ORPHAN", variantOrig, testPNG(t, 16, 16, 2)); err != nil {
		t.Fatal(err)
	}
	orphan := e.store.path("alice", "01ORPHAN", "orig")
	for _, p := range []string{staleTmp, orphan, e.store.path("alice", kept, "orig")} {
		os.Chtimes(p, old, old)
	}

	e.reopen(t)
	tests := []struct {
		path   string
		exists bool
	}{
		{staleTmp, false},
		{orphan, false},
		{freshTmp, true}, // may belong to a write in flight
		{e.store.path("alice", kept, "orig"), true},
	}
	for _, tt := range tests {
		_, err := os.Stat(tt.path)
		if exists := err == nil; exists != tt.exists {
			t.Errorf("%s: exists %v, want %v", filepath.Base(tt.path), exists, tt.exists)
		}
	}
	rc, _, _, err := e.store.Open(ctx, "alice", kept, "png", "full")
	if err != nil {
		t.Fatal(err)
	}
	rc.Close()
}

// TestCrashLeavesNothingUnaccounted checks the invariant the store is built
// on: at every point where a crash may stop Save or Delete, each file on
// disk is either referenced by a row or removed by the next start's sweep,
// and each row can still be deleted.
func TestCrashLeavesNothingUnaccounted(t *testing.T) {
	ctx := context.Background()
	e := newTestEnv(t, Options{SweepGrace: time.Nanosecond})
	data := testPNG(t, 16, 16, 1)

	// Save stopped after the rename, before the insert.
	if err := e.store.writeSealed("alice", "01CRASHSAVE", variantOrig, data); err != nil {
		t.Fatal(err)
	}
	// Delete stopped after removing some files, before the row.
	id := e.save(t, "gen1", "alice", "p", SaveOptions{}, data)[0]
	if _, _, _, err := e.store.Open(ctx, "alice", id, "", "thumb"); err != nil {
		t.Fatal(err)
	}
	os.Remove(e.store.path("alice", id, "orig"))
	// Save failed on its insert (second save of the same generation).
	_, err := e.store.Save(ctx, testGeneration("gen1", "alice", "again"), testResult(data), SaveOptions{})
	if app.ErrorCode(err) != app.ECONFLICT {
		t.Fatalf("second save of a generation: got %v, want conflict", err)
	}

	time.Sleep(time.Millisecond)
	e.reopen(t)
	files := userFiles(t, e, "alice")
	for _, f := range files {
		imgID, _, _ := strings.Cut(filepath.Base(f), ".")
		if _, err := e.store.Get(ctx, "alice", imgID); err != nil {
			t.Errorf("file %s has no row after restart: %v", filepath.Base(f), err)
		}
	}
	if len(files) != 1 {
		t.Errorf("files after restart: %v, want only the thumbnail of the half-deleted image", files)
	}
	if err := e.store.Delete(ctx, "alice", id); err != nil {
		t.Fatalf("finishing the interrupted delete: %v", err)
	}
	if files := userFiles(t, e, "alice"); len(files) != 0 {
		t.Errorf("files left: %v", files)
	}
}

func TestRestartMakesMissingDerivatives(t *testing.T) {
	ctx := context.Background()
	e := newTestEnv(t, Options{QueueSize: 1})
	var ids []string
	for i := range 3 {
		ids = append(ids, e.save(t, fmt.Sprintf("g%d", i), "alice", "p", SaveOptions{}, testPNG(t, 40, 40, uint64(i)))...)
	}
	e.store.Stop() // the queue held one job and dropped the rest; none was done
	s := e.reopen(t)
	s.Start(ctx)
	for _, id := range ids {
		e.waitDerivatives(t, "alice", id)
	}
}

// pngTextChunks returns the text chunks of a PNG, keyed by keyword, and
// fails on a bad CRC.
func pngTextChunks(t *testing.T, data []byte) map[string]string {
	t.Helper()
	out := map[string]string{}
	for p := 8; p+12 <= len(data); {
		n := int(binary.BigEndian.Uint32(data[p:]))
		typ := string(data[p+4 : p+8])
		body := data[p+8 : p+8+n]
		switch typ {
		case "tEXt":
			k, v, _ := bytes.Cut(body, []byte{0})
			r := make([]rune, len(v))
			for i, c := range v {
				r[i] = rune(c)
			}
			out["tEXt:"+string(k)] = string(r)
		case "iTXt":
			k, rest, _ := bytes.Cut(body, []byte{0})
			rest = rest[2:]
			_, rest, _ = bytes.Cut(rest, []byte{0})
			_, rest, _ = bytes.Cut(rest, []byte{0})
			out["iTXt:"+string(k)] = string(rest)
		}
		p += 12 + n
	}
	return out
}

// TestEmbedParametersPreference saves a PNG as A1111 and ComfyUI return
// it (their own "parameters", "prompt" and "workflow" text chunks): the
// stored file carries none of them, only Z Image's marks, plus one
// "parameters" chunk of its own when the person chose to embed.
func TestEmbedParametersPreference(t *testing.T) {
	ctx := context.Background()
	e := newTestEnv(t, Options{})
	src := testPNG(t, 32, 32, 1)
	dirty := src
	for _, kv := range [][2]string{{"parameters", "backend prompt\nSteps: 8"}, {"prompt", `{"6":{"inputs":{"text":"backend prompt"}}}`}, {"workflow", `{"nodes":[]}`}} {
		var err error
		if dirty, err = provenance.InsertPNGText(dirty, kv[0], kv[1]); err != nil {
			t.Fatal(err)
		}
	}
	const xmpKey = "iTXt:XML:com.adobe.xmp"
	tests := []struct {
		name   string
		opts   SaveOptions
		prompt string
		want   map[string]string
	}{
		{"off by default", SaveOptions{}, "a secret prompt", map[string]string{}},
		{"on, latin-1", SaveOptions{EmbedParameters: true}, "café, at night", map[string]string{
			"tEXt:parameters": "café, at night\nNegative prompt: blurry, lowres\nSteps: 8, CFG scale: 1, Seed: 1000, Size: 32x32, Model: z-image-turbo, Backend: builtin, Generator: Z Image"}},
		{"on, beyond latin-1", SaveOptions{EmbedParameters: true}, "富士山 at dawn", map[string]string{
			"iTXt:parameters": "富士山 at dawn\nNegative prompt: blurry, lowres\nSteps: 8, CFG scale: 1, Seed: 1000, Size: 32x32, Model: z-image-turbo, Backend: builtin, Generator: Z Image"}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := e.save(t, fmt.Sprintf("gen%d", i), "alice", tt.prompt, tt.opts, dirty)[0]
			rc, _, _, err := e.store.Open(ctx, "alice", id, "png", "full")
			if err != nil {
				t.Fatal(err)
			}
			got := readAll(t, rc)
			if _, err := png.Decode(bytes.NewReader(got)); err != nil {
				t.Fatalf("stored PNG does not decode: %v", err)
			}
			chunks := pngTextChunks(t, got)
			if !strings.Contains(chunks[xmpKey], provenance.TrainedAlgorithmicMedia) {
				t.Errorf("no AI-generated mark in the stored PNG: %q", chunks)
			}
			delete(chunks, xmpKey)
			if fmt.Sprint(chunks) != fmt.Sprint(tt.want) {
				t.Errorf("text chunks %q, want %q", chunks, tt.want)
			}
			if n := bytes.Count(got, []byte("parameters\x00")); n != len(tt.want) {
				t.Errorf("%d parameters chunks, want %d", n, len(tt.want))
			}
			if bytes.Contains(got, []byte("backend prompt")) {
				t.Error("the backend's own text chunks came through")
			}
			img, _ := e.store.Get(ctx, "alice", id)
			if img.ParametersEmbedded != tt.opts.EmbedParameters || img.Bytes != int64(len(got)) {
				t.Errorf("row: embedded %v, bytes %d (file %d)", img.ParametersEmbedded, img.Bytes, len(got))
			}
		})
	}
}

func TestSaveRefusesWhatItCannotStore(t *testing.T) {
	ctx := context.Background()
	e := newTestEnv(t, Options{})
	good := testPNG(t, 16, 16, 1)
	tests := []struct {
		name   string
		g      GenerationInfo
		res    backend.Result
		code   string
		reason string
	}{
		{"not an image", testGeneration("g1", "alice", "p"), testResult(good, []byte("<html>502 Bad Gateway</html>")), app.EUNAVAILABLE, ""},
		{"no images", testGeneration("g2", "alice", "p"), backend.Result{}, app.EINVALID, ""},
		{"bad owner", testGeneration("g3", "../etc", "p"), testResult(good), app.EINVALID, ""},
		{"no generation", testGeneration("", "alice", "p"), testResult(good), app.EINVALID, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ids, err := e.store.Save(ctx, tt.g, tt.res, SaveOptions{})
			if tt.code != "" && app.ErrorCode(err) != tt.code {
				t.Errorf("got %v, want %s", err, tt.code)
			}
			// People read these messages (the queue shows them): no
			// package prefix, a sentence that starts with a capital.
			if msg := app.ErrorMessage(err); regexp.MustCompile(`^[a-z]+: `).MatchString(msg) {
				t.Errorf("message %q starts with a package prefix", msg)
			}
			if tt.reason != "" && backend.Reason(err) != tt.reason {
				t.Errorf("got %v, want backend reason %s", err, tt.reason)
			}
			if err == nil || ids != nil {
				t.Errorf("ids %v, err %v", ids, err)
			}
		})
	}
	if files := userFiles(t, e, "alice"); len(files) != 0 {
		t.Errorf("refused saves left files: %v", files)
	}
}

func TestDeleteAllForUser(t *testing.T) {
	ctx := context.Background()
	e := newTestEnv(t, Options{})
	small := testPNG(t, 8, 8, 1)
	for i := range 3 {
		e.save(t, fmt.Sprintf("a%d", i), "alice", "p", SaveOptions{}, small, small)
	}
	bobs := e.save(t, "b", "bob", "p", SaveOptions{}, small)
	n, err := e.store.DeleteAllForUser(ctx, "alice")
	if err != nil || n != 6 {
		t.Fatalf("DeleteAllForUser = %d, %v; want 6", n, err)
	}
	if _, err := os.Stat(filepath.Join(e.dir, "media", "alice")); !os.IsNotExist(err) {
		t.Errorf("alice's folder still exists: %v", err)
	}
	if imgs, _, _ := e.store.List(ctx, "alice", "", 100, ""); len(imgs) != 0 {
		t.Errorf("%d rows left", len(imgs))
	}
	if _, err := e.store.Get(ctx, "bob", bobs[0]); err != nil {
		t.Errorf("bob harmed: %v", err)
	}
	if n, err := e.store.DeleteAllForUser(ctx, "alice"); err != nil || n != 0 {
		t.Errorf("repeat = %d, %v", n, err)
	}
}

func TestFavourite(t *testing.T) {
	ctx := context.Background()
	e := newTestEnv(t, Options{})
	id := e.save(t, "g", "alice", "p", SaveOptions{}, testPNG(t, 8, 8, 1))[0]
	for _, fav := range []bool{true, false} {
		if err := e.store.SetFavourite(ctx, "alice", id, fav); err != nil {
			t.Fatal(err)
		}
		if img, _ := e.store.Get(ctx, "alice", id); img.Favourite != fav {
			t.Errorf("favourite = %v, want %v", img.Favourite, fav)
		}
	}
}

func TestThumbSize(t *testing.T) {
	tests := []struct{ w, h, ww, wh int }{
		{1024, 1024, 256, 256}, {1024, 768, 256, 192}, {768, 1344, 146, 256}, {100, 50, 100, 50}, {4000, 10, 256, 1},
	}
	for _, tt := range tests {
		if w, h := thumbSize(tt.w, tt.h, ThumbSide); w != tt.ww || h != tt.wh {
			t.Errorf("thumbSize(%d, %d) = %d, %d; want %d, %d", tt.w, tt.h, w, h, tt.ww, tt.wh)
		}
	}
	// Box filtering a two-colour picture keeps its average colour.
	src := image.NewRGBA(image.Rect(0, 0, 8, 8))
	for i := 0; i < len(src.Pix); i += 4 {
		v := uint8(0)
		if (i/4)%2 == 0 {
			v = 200
		}
		src.Pix[i], src.Pix[i+1], src.Pix[i+2], src.Pix[i+3] = v, v, v, 255
	}
	if got := downscale(src, 2, 2); got.Pix[0] != 100 || got.Pix[3] != 255 {
		t.Errorf("downscale average = %v, want 100 opaque", got.Pix[:4])
	}
}

// A gallery page of 100 thumbnails must transfer under 1 MB, even for the
// most detailed pictures.
func TestThumbnailBudget(t *testing.T) {
	noise := image.NewRGBA(image.Rect(0, 0, 1024, 1024))
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range noise.Pix {
		noise.Pix[i] = uint8(rng.Uint32())
		if i%4 == 3 {
			noise.Pix[i] = 255
		}
	}
	var buf bytes.Buffer
	png.Encode(&buf, noise)
	tests := []struct {
		name string
		png  []byte
	}{
		{"photo-like", testPNG(t, 1024, 1024, 11)},
		{"noise", buf.Bytes()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := decode(tt.png)
			if err != nil {
				t.Fatal(err)
			}
			thumb, err := thumbnail(m, nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(thumb) > ThumbMaxBytes {
				t.Errorf("thumbnail is %d bytes, want at most %d", len(thumb), ThumbMaxBytes)
			}
			t.Logf("%s: %d bytes", tt.name, len(thumb))
		})
	}
}

// userFiles lists the regular files under user's media folder, shard
// folders included.
func userFiles(t *testing.T, e *testEnv, user string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(e.store.userDir(user), func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			out = append(out, p)
		}
		return nil
	})
	return out
}

// TestSaveRecordsOnlyWhatWasApplied: a negative prompt the server did not
// use (the Turbo graph zeroes it) is not claimed by the image record.
func TestSaveRecordsOnlyWhatWasApplied(t *testing.T) {
	ctx := context.Background()
	e := newTestEnv(t, Options{})
	for _, tt := range []struct {
		name, want   string
		wantGuidance float64
		notApplied   []string
	}{
		{name: "applied", want: "blurry", wantGuidance: 4.5},
		{name: "negative prompt not applied", wantGuidance: 4.5, notApplied: []string{"negative_prompt"}},
		{name: "guidance not applied", want: "blurry", notApplied: []string{"guidance"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			g := testGeneration("gen-"+strings.ReplaceAll(tt.name, " ", "-"), "alice", "a fox")
			g.NegativePrompt, g.Guidance, g.Count = "blurry", 4.5, 1
			res := testResult(testPNG(t, 32, 32, 1))
			res.NotApplied = tt.notApplied
			ids, err := e.store.Save(ctx, g, res, SaveOptions{})
			if err != nil {
				t.Fatal(err)
			}
			img, err := e.store.Get(ctx, "alice", ids[0])
			if err != nil {
				t.Fatal(err)
			}
			if img.NegativePrompt != tt.want {
				t.Errorf("recorded negative prompt %q, want %q", img.NegativePrompt, tt.want)
			}
			if img.Guidance != tt.wantGuidance {
				t.Errorf("recorded guidance %v, want %v", img.Guidance, tt.wantGuidance)
			}
		})
	}
}
