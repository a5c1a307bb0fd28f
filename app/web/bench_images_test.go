package web

import (
	"bytes"
	"context"
	"encoding/json"
	"image"
	pngenc "image/png"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"

	"zimage/app"
	"zimage/app/backend"
	"zimage/app/media"
	"zimage/app/sqlite"
)

// benchGalleryImages is how many images the person in the gallery
// benchmarks owns: enough that a page is a range scan of a real index, few
// enough to seed in about a second.
const benchGalleryImages = 10_000

// galleryBench is a server whose person owns benchGalleryImages images with
// sealed prompts, written the way media.Save writes them, and a bearer key
// that may read them.
type galleryBench struct {
	env    *authEnv
	bearer string
	first  string // id of the newest image
	cursor string // the next cursor after page 1
	// generation made the newest image; it stays queued.
	generation string
	file       string // an image with a real file
}

func newGalleryBench(b *testing.B) *galleryBench {
	b.Helper()
	env := newAuthEnv(b, authOptionsForTest(), Options{})
	c := env.signup(b, "alice")
	key, _ := c.apiKey(b, app.ScopeRead)
	ctx := context.Background()
	now := env.clock.Now()
	rows := make([]sqlite.ImageRow, 0, 1000)
	var first string
	for i := range benchGalleryImages {
		created := now.Add(-time.Duration(benchGalleryImages-i) * time.Minute)
		id := ulid.MustNew(ulid.Timestamp(created), ulid.DefaultEntropy()).String()
		first = id
		prompt := "a lighthouse on a cliff at dusk, volumetric light, oil painting, highly detailed #" + strconv.Itoa(i)
		sp, err := env.keys.Seal(c.userID, []byte("images/"+id+"/prompt"), []byte(prompt))
		if err != nil {
			b.Fatal(err)
		}
		sn, err := env.keys.Seal(c.userID, []byte("images/"+id+"/negative_prompt"), []byte("blurry, lowres"))
		if err != nil {
			b.Fatal(err)
		}
		rows = append(rows, sqlite.ImageRow{Image: app.Image{ID: id, UserID: c.userID, GenerationID: "gen" + strconv.Itoa(i), Width: 1024, Height: 1024,
			Seed: int64(i), ContentType: "image/png", Bytes: 1 << 20, WebPBytes: 200 << 10, ThumbBytes: 8 << 10, HasWebP: true, HasThumb: true,
			Steps: 8, Guidance: 1, Backend: "builtin", Model: "z-image-turbo",
			QueuedAt: created.Add(-3 * time.Second), StartedAt: created.Add(-2 * time.Second), FinishedAt: created,
			CreatedAt: created, ExpiresAt: created.Add(90 * 24 * time.Hour)},
			SealedPrompt: sp, SealedNegativePrompt: sn})
		if len(rows) == cap(rows) {
			if err := env.db.InsertImages(ctx, rows); err != nil {
				b.Fatal(err)
			}
			rows = rows[:0]
		}
	}
	if err := env.db.InsertImages(ctx, rows); err != nil {
		b.Fatal(err)
	}
	// The generation of the newest image, for the status read.
	gid := "gen" + strconv.Itoa(benchGalleryImages-1)
	sp, err := env.keys.Seal(c.userID, []byte("generations/"+gid+"/prompt"), []byte("a lighthouse"))
	if err != nil {
		b.Fatal(err)
	}
	sn, err := env.keys.Seal(c.userID, []byte("generations/"+gid+"/negative_prompt"), []byte("blurry"))
	if err != nil {
		b.Fatal(err)
	}
	gen := &sqlite.GenerationRecord{Generation: app.Generation{ID: gid, UserID: c.userID,
		GenerationParams: app.GenerationParams{Width: 1024, Height: 1024, Steps: 8, Guidance: 1, Count: 1, Backend: "builtin"}},
		SealedPrompt: sp, SealedNegativePrompt: sn}
	if err := env.db.CreateGeneration(ctx, gen, 100); err != nil {
		b.Fatal(err)
	}
	// One image with a real sealed file, for the download path: a 512²
	// PNG of noise, about as large as it gets.
	pic := image.NewRGBA(image.Rect(0, 0, 512, 512))
	rnd := rand.New(rand.NewPCG(1, 2))
	for i := range pic.Pix {
		pic.Pix[i] = byte(rnd.Uint32())
	}
	var png bytes.Buffer
	if err := pngenc.Encode(&png, pic); err != nil {
		b.Fatal(err)
	}
	fileIDs, err := env.media.Save(ctx, media.GenerationInfo{ID: "file-gen", UserID: c.userID, Prompt: "noise", Steps: 8, Guidance: 1,
		Backend: "builtin", Model: "z-image-turbo", Count: 1, QueuedAt: now},
		backend.Result{Images: []backend.Image{{Data: png.Bytes(), ContentType: "image/png"}}, Submitted: now, Finished: now}, media.SaveOptions{})
	if err != nil {
		b.Fatal(err)
	}
	g := &galleryBench{env: env, bearer: key.bearer, first: first, generation: gid, file: fileIDs[0]}
	rec := g.get(b, "/api/v1/images?limit=50")
	var page struct {
		Images []imageJSON `json:"images"`
		Next   string      `json:"next"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &page); err != nil {
		b.Fatal(err)
	}
	if len(page.Images) != 50 || page.Next == "" || page.Images[1].ID != first || page.Images[1].Prompt == "" {
		b.Fatalf("page 1: %d images, next %q, first %+v", len(page.Images), page.Next, page.Images[0])
	}
	g.cursor = page.Next
	return g
}

// get serves one bearer request through the whole handler (middleware,
// routing, auth, store, JSON), without a socket, so allocations per request
// are the server's alone.
func (g *galleryBench) get(b *testing.B, path string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodGet, path, nil)
	req.Header.Set("Authorization", "Bearer "+g.bearer)
	req.RemoteAddr = "127.0.0.1:40000"
	rec := httptest.NewRecorder()
	g.env.s.Handler().ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		b.Fatalf("GET %s: %d %s", path, rec.Code, rec.Body)
	}
	return rec
}

func (g *galleryBench) run(b *testing.B, path string) {
	g.get(b, path) // warm the key cache, statements and pools
	req := httptest.NewRequest(http.MethodGet, path, nil)
	req.Header.Set("Authorization", "Bearer "+g.bearer)
	req.RemoteAddr = "127.0.0.1:40000"
	w := &discardWriter{h: http.Header{}}
	h := g.env.s.Handler()
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := processCPU()
	for b.Loop() {
		clear(w.h)
		w.code = 0
		h.ServeHTTP(w, req)
		if w.code != http.StatusOK {
			b.Fatalf("GET %s: %d", path, w.code)
		}
	}
	// CPU time, unlike ns/op, hardly moves when other programs share the
	// machine: it is the figure to compare between commits.
	b.ReportMetric(float64((processCPU()-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
}

// discardWriter is a ResponseWriter that keeps only the status, so the
// benchmark counts the server's allocations and not a recorder's.
type discardWriter struct {
	h    http.Header
	code int
}

func (w *discardWriter) Header() http.Header { return w.h }
func (w *discardWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
}
func (w *discardWriter) Write(p []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	return len(p), nil
}

// processCPU is the user and system CPU time this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkGalleryHandler measures GET /api/v1/images?limit=50 with an API
// key over a person's 10,000 images — the gallery API's whole handler path
// — and the other hot reads: one image's metadata, a generation's status.
// Read allocs/op and B/op against the previous commit; ns/op is only
// comparable on a quiet machine.
//
//	go test ./app/web -run '^$' -bench GalleryHandler -benchmem -cpu 1
func BenchmarkGalleryHandler(b *testing.B) {
	g := newGalleryBench(b)
	b.Run("page1", func(b *testing.B) { g.run(b, "/api/v1/images?limit=50") })
	b.Run("cursor", func(b *testing.B) { g.run(b, "/api/v1/images?limit=50&cursor="+g.cursor) })
	b.Run("image", func(b *testing.B) { g.run(b, "/api/v1/images/"+g.first) })
	b.Run("generation", func(b *testing.B) { g.run(b, "/api/v1/generations/"+g.generation) })
	b.Run("file", func(b *testing.B) { g.run(b, "/api/v1/images/"+g.file+"/file?format=png") })
}
