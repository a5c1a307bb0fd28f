package media

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"zimage/app"
	"zimage/app/sqlite"
)

// BenchmarkSaveOriginal1024 is the time storing adds between the backend's
// answer and the person seeing the picture: sniff, seal, write, fsync,
// rename, folder fsync and the row insert of one 1024×1024 PNG.
func BenchmarkSaveOriginal1024(b *testing.B) {
	ctx := context.Background()
	e := newTestEnv(b, Options{QueueSize: 1})
	data := testPNG(b, 1024, 1024, 1)
	res := testResult(data)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		if _, err := e.store.Save(ctx, testGeneration(fmt.Sprintf("g%d", i), "alice", "a benchmark"), res, SaveOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkThumbnail is the on-demand thumbnail: decode the 1024² PNG,
// box-filter it to 256², encode WebP.
func BenchmarkThumbnail(b *testing.B) {
	data := testPNG(b, 1024, 1024, 1)
	for b.Loop() {
		m, err := decode(data)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := thumbnail(m, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkWebP1024 is the full WebP copy (quality 90) of a decoded 1024²
// picture: the reason it is kept off the critical path.
func BenchmarkWebP1024(b *testing.B) {
	m, err := decode(testPNG(b, 1024, 1024, 1))
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := encodeWebP(m, WebPQuality); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkList100 is one gallery page: 100 rows read by keyset from 300,
// and their sealed prompts opened.
func BenchmarkList100(b *testing.B) {
	ctx := context.Background()
	e := newTestEnv(b, Options{})
	small := testPNG(b, 8, 8, 1)
	for i := range 300 {
		e.save(b, fmt.Sprintf("g%d", i), "alice", fmt.Sprintf("a long prompt of a person's own, number %d, with style words", i), SaveOptions{}, small)
	}
	_, cursor, err := e.store.List(ctx, "alice", "", 100, "")
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		page, _, err := e.store.List(ctx, "alice", cursor, 100, "")
		if err != nil || len(page) != 100 {
			b.Fatal(len(page), err)
		}
	}
}

// BenchmarkOpenThumb is serving one stored thumbnail: read, authenticate
// and open the sealed file. A gallery page does it 100 times.
func BenchmarkOpenThumb(b *testing.B) {
	ctx := context.Background()
	e := newTestEnv(b, Options{})
	id := e.save(b, "g", "alice", "p", SaveOptions{}, testPNG(b, 1024, 1024, 1))[0]
	if _, _, _, err := e.store.Open(ctx, "alice", id, "", SizeThumb); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		rc, _, _, err := e.store.Open(ctx, "alice", id, "", SizeThumb)
		if err != nil {
			b.Fatal(err)
		}
		rc.Close()
	}
}

// BenchmarkDeleteExpired is the images retention sweep at the production
// batch size (retention.batch_size = 500) over 5,000 expired images: three
// files each, a folder fsync and a rows transaction per batch. Seeding is
// untimed and writes small stand-in files, which the sweep never opens.
// scripts/bench/retention measures the same at 100,000 images, against
// find -delete and under API load.
func BenchmarkDeleteExpired(b *testing.B) {
	const n, batch = 5000, 500
	ctx := context.Background()
	e := newTestEnv(b, Options{})
	now := e.clock()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		seedExpired(b, e, "alice", n, now.Add(-time.Hour))
		b.StartTimer()
		got, err := e.store.DeleteExpired(ctx, now, DefaultImagesRetention, batch)
		if err != nil || got != n {
			b.Fatalf("DeleteExpired removed %d of %d: %v", got, n, err)
		}
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "images/s")
}

// seedExpired gives user n images that expired at expires: rows with
// sealed prompts, inserted 1,000 to a transaction, and their three
// variant files.
func seedExpired(tb testing.TB, e *testEnv, user string, n int, expires time.Time) {
	tb.Helper()
	if err := ensureDir(e.store.userDir(user)); err != nil {
		tb.Fatal(err)
	}
	if err := ensureDir(e.store.imageDir(user, "exp00000000")); err != nil {
		tb.Fatal(err)
	}
	content := make([]byte, 256)
	rows := make([]sqlite.ImageRow, 0, 1000)
	for i := range n {
		id := fmt.Sprintf("exp%08d", i)
		for _, v := range variants {
			if err := os.WriteFile(e.store.path(user, id, v), content, 0o600); err != nil {
				tb.Fatal(err)
			}
		}
		sp, err := e.vault.Seal(user, promptAAD(id), []byte("an expired picture of a lighthouse at dusk"))
		if err != nil {
			tb.Fatal(err)
		}
		sn, err := e.vault.Seal(user, negativeAAD(id), []byte("blurry"))
		if err != nil {
			tb.Fatal(err)
		}
		created := expires.Add(-DefaultImagesRetention)
		rows = append(rows, sqlite.ImageRow{
			Image: app.Image{ID: id, UserID: user, GenerationID: "g-" + id, Width: 1024, Height: 1024, ContentType: "image/png",
				Bytes: 256, WebPBytes: 256, ThumbBytes: 256, HasWebP: true, HasThumb: true, Steps: 8, Guidance: 1,
				Backend: "builtin", Model: "z-image-turbo", CreatedAt: created, ExpiresAt: expires},
			SealedPrompt: sp, SealedNegativePrompt: sn,
		})
		if len(rows) == cap(rows) || i == n-1 {
			if err := e.db.InsertImages(context.Background(), rows); err != nil {
				tb.Fatal(err)
			}
			rows = rows[:0]
		}
	}
}
