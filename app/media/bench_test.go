package media

import (
	"context"
	"fmt"
	"testing"
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
		if _, err := thumbnail(m); err != nil {
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
