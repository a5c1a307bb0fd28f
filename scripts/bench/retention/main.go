// Command retention measures the images retention sweep (issue 7): how many
// expired images media.Store.DeleteExpired removes a second (files and
// rows), against `find -delete` over the same files, and what a sweep does
// to the latency of the gallery API while it runs.
//
//	go run ./scripts/bench/retention -n 100000
//
// Everything is real except the contents of the swept files: making N
// sealed images through Save would take longer than the sweep itself, and
// the sweep never opens a file, so each image gets its three variant files
// (orig, webp, thumb) as small files under the names media uses, and a real
// row with sealed prompts. The person whose gallery the API serves has real
// images saved through media.Save. The data folder is temporary and removed
// at the end.
package main

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"errors"
	"flag"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/oklog/ulid/v2"

	"zimage/app"
	"zimage/app/auth"
	"zimage/app/backend"
	"zimage/app/media"
	"zimage/app/sqlite"
	"zimage/app/vault"
	"zimage/app/web"
)

type flags struct {
	n, batch, gallery, clients, fileBytes int
	idle                                  time.Duration
	breakdown                             bool
}

func main() {
	var f flags
	flag.IntVar(&f.n, "n", 100000, "expired images to sweep")
	flag.IntVar(&f.batch, "batch", 500, "DeleteExpired batch size (retention.batch_size)")
	flag.IntVar(&f.gallery, "gallery", 200, "real images in the gallery the API serves")
	flag.IntVar(&f.clients, "clients", 8, "concurrent API clients")
	flag.IntVar(&f.fileBytes, "bytes", 256, "size of each seeded variant file")
	flag.DurationVar(&f.idle, "idle", 5*time.Second, "length of the API load without a sweep (the baseline)")
	flag.BoolVar(&f.breakdown, "breakdown", true, "also time the sweep's steps one by one (seeds the images once more)")
	flag.Parse()
	if f.n <= 0 || f.batch <= 0 || f.gallery <= 0 || f.clients <= 0 || f.fileBytes <= 0 || f.idle <= 0 {
		fmt.Fprintln(os.Stderr, "retention: -n, -batch, -gallery, -clients, -bytes and -idle must all be positive")
		os.Exit(2)
	}
	dir, err := os.MkdirTemp("", "zimage-bench-retention-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "retention:", err)
		os.Exit(1)
	}
	err = run(dir, f)
	// Removed before exiting on any outcome: 300,000 files left in the
	// temporary folder would outlive many runs.
	if rerr := os.RemoveAll(dir); rerr != nil && err == nil {
		err = rerr
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "retention:", err)
		os.Exit(1)
	}
}

// env is one data folder with the real stores over it.
type env struct {
	dir      string
	db       *sqlite.DB
	keys     *vault.Vault
	accounts *auth.Service
	media    *media.Store
	victim   *app.User // owns the expired images
	reader   *app.User // browses their gallery through the API
	prompt   []byte
}

func run(dir string, f flags) error {
	ctx := context.Background()
	e, closeEnv, err := newEnv(ctx, dir)
	if err != nil {
		return err
	}
	defer closeEnv()
	if err := e.saveGallery(ctx, f.gallery); err != nil {
		return err
	}
	fmt.Printf("retention sweep benchmark: %d expired images (%d files of %d B), batch %d; %s/%s, %d CPUs, %s\n",
		f.n, 3*f.n, f.fileBytes, f.batch, runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.Version())

	// 1. The sweep alone.
	now := time.Now().UTC()
	t0 := time.Now()
	if err := e.seed(ctx, filepath.Join(e.dir, "media"), f.n, f.fileBytes, now, true); err != nil {
		return err
	}
	fmt.Printf("seeded %d images in %s\n", f.n, time.Since(t0).Round(time.Millisecond))
	sweep, err := e.timedSweep(ctx, now, f.batch, f.n)
	if err != nil {
		return err
	}

	// 2. The same files removed by find, with no database and no fsync:
	// the floor of what unlinking them costs on this file system.
	findRoot := filepath.Join(e.dir, "find-baseline")
	if err := e.seed(ctx, filepath.Join(findRoot, "media"), f.n, f.fileBytes, now, false); err != nil {
		return err
	}
	find, err := timedFind(findRoot, 3*f.n)
	if err != nil {
		return err
	}

	// 3. Where the sweep's time goes: the same steps as deleteBatch, each
	// timed on its own.
	var parts breakdown
	if f.breakdown {
		if err := e.seed(ctx, filepath.Join(e.dir, "media"), f.n, f.fileBytes, now, true); err != nil {
			return err
		}
		if parts, err = e.timedParts(ctx, now, f.batch, f.n); err != nil {
			return err
		}
	}

	// 4. API latency: a baseline with the expired images present, then
	// the same load while they are swept.
	if err := e.seed(ctx, filepath.Join(e.dir, "media"), f.n, f.fileBytes, now, true); err != nil {
		return err
	}
	api, err := e.apiUnderSweep(ctx, now, f)
	if err != nil {
		return err
	}

	fmt.Println()
	fmt.Printf("%-34s %9s %10s %10s %10s\n", "removal", "time", "images/s", "files/s", "rows/s")
	fmt.Printf("%-34s %9s %10.0f %10.0f %10.0f\n", "DeleteExpired (files, then rows)", sweep.Round(time.Millisecond),
		float64(f.n)/sweep.Seconds(), float64(3*f.n)/sweep.Seconds(), float64(f.n)/sweep.Seconds())
	fmt.Printf("%-34s %9s %10.0f %10.0f %10s\n", "find -type f -delete (files only)", find.Round(time.Millisecond),
		float64(f.n)/find.Seconds(), float64(3*f.n)/find.Seconds(), "-")
	fmt.Printf("%-34s %9s %10.0f %10.0f %10.0f\n", "DeleteExpired under API load", api.sweep.Round(time.Millisecond),
		float64(f.n)/api.sweep.Seconds(), float64(3*f.n)/api.sweep.Seconds(), float64(f.n)/api.sweep.Seconds())
	fmt.Printf("DeleteExpired files/s is %.2f× find's (find/DeleteExpired time = %.2f)\n",
		find.Seconds()/sweep.Seconds(), sweep.Seconds()/find.Seconds())
	if f.breakdown {
		fmt.Println()
		parts.print(f.n)
	}
	fmt.Println()
	fmt.Printf("GET /api/v1/images?limit=50 (gallery of %d), %d clients, loopback\n", f.gallery, f.clients)
	fmt.Printf("%-22s %8s %8s %8s %8s %8s %8s %8s\n", "load", "requests", "req/s", "p50", "p95", "p99", "max", "errors")
	api.idle.print("no sweep")
	api.during.print("during the sweep")
	return nil
}

func newEnv(ctx context.Context, dir string) (*env, func(), error) {
	db, err := sqlite.Open(ctx, filepath.Join(dir, "zimage.db"))
	if err != nil {
		return nil, nil, err
	}
	keys, err := vault.Open(dir, "")
	if err != nil {
		db.Close()
		return nil, nil, err
	}
	m, err := media.New(dir, db, keys, media.Options{})
	if err != nil {
		keys.Close()
		db.Close()
		return nil, nil, err
	}
	// The derivative workers are not started: they would spend the CPU
	// the measurement is about on WebP copies of the gallery.
	closeEnv := func() { m.Stop(); keys.Close(); db.Close() }
	// Cheap password hashing: the benchmark signs up two people and
	// measures nothing about passwords.
	accounts := auth.New(db, keys, auth.Options{Hasher: auth.NewHasher(auth.Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}, 2)})
	e := &env{dir: dir, db: db, keys: keys, accounts: accounts, media: m,
		prompt: []byte("a lighthouse on a cliff at dusk, volumetric light, oil painting, highly detailed, warm palette")}
	for _, who := range []struct {
		name string
		u    **app.User
	}{{"victim", &e.victim}, {"reader", &e.reader}} {
		u, err := accounts.SignUp(ctx, auth.SignUpInput{Email: who.name + "@example.com", Username: who.name,
			Password: "correct horse battery staple", AgeConfirmed: true})
		if err != nil {
			closeEnv()
			return nil, nil, fmt.Errorf("sign up %s: %w", who.name, err)
		}
		*who.u = u
	}
	return e, closeEnv, nil
}

// saveGallery gives the reader n real images through media.Save, so a
// gallery page reads real rows and opens real sealed prompts.
func (e *env) saveGallery(ctx context.Context, n int) error {
	pic := smallPNG()
	for i := range n {
		g := media.GenerationInfo{ID: "gallery-" + strconv.Itoa(i), UserID: e.reader.ID, Prompt: string(e.prompt) + " #" + strconv.Itoa(i),
			NegativePrompt: "blurry, lowres", Steps: 8, Guidance: 1, Backend: "builtin", Model: "z-image-turbo", Seed: int64(i), Count: 1,
			QueuedAt: time.Now()}
		res := backend.Result{Images: []backend.Image{{Data: pic, ContentType: "image/png"}}, Submitted: time.Now(), Finished: time.Now()}
		if _, err := e.media.Save(ctx, g, res, media.SaveOptions{}); err != nil {
			return fmt.Errorf("save gallery image %d: %w", i, err)
		}
	}
	return nil
}

func smallPNG() []byte {
	img := image.NewRGBA(image.Rect(0, 0, 64, 64))
	for y := range 64 {
		for x := range 64 {
			img.SetRGBA(x, y, color.RGBA{uint8(4 * x), uint8(4 * y), 128, 255})
		}
	}
	var buf bytes.Buffer
	png.Encode(&buf, img) // an in-memory RGBA always encodes
	return buf.Bytes()
}

// seed writes n expired images of the victim under mediaRoot, at the paths
// media uses (media.FilePath), and, with rows, inserts their rows 1,000 to
// a transaction, expired an hour before now. The images' ids carry
// creation times spread over one retention window, as a person making
// them day after day would have, so they land in media's time shards as
// real ones do.
func (e *env) seed(ctx context.Context, mediaRoot string, n, fileBytes int, now time.Time, rows bool) error {
	content := bytes.Repeat([]byte{0xA5}, fileBytes)
	const perTx = 1000
	batch := make([]sqlite.ImageRow, 0, perTx)
	created := now.Add(-media.DefaultImagesRetention - time.Hour)
	made := map[string]bool{}
	for i := range n {
		at := created.Add(-media.DefaultImagesRetention * time.Duration(i) / time.Duration(n))
		id := ulid.MustNew(ulid.Timestamp(at), crand.Reader).String()
		for _, v := range []string{"orig", "webp", "thumb"} {
			path := media.FilePath(mediaRoot, e.victim.ID, id, v)
			if dir := filepath.Dir(path); !made[dir] {
				if err := os.MkdirAll(dir, 0o700); err != nil {
					return err
				}
				made[dir] = true
			}
			if err := os.WriteFile(path, content, 0o600); err != nil {
				return fmt.Errorf("seed files: %w", err)
			}
		}
		if !rows {
			continue
		}
		sp, err := e.keys.Seal(e.victim.ID, []byte("images/"+id+"/prompt"), e.prompt)
		if err != nil {
			return err
		}
		sn, err := e.keys.Seal(e.victim.ID, []byte("images/"+id+"/negative_prompt"), []byte("blurry, lowres"))
		if err != nil {
			return err
		}
		c := created.Add(time.Duration(i) * time.Millisecond)
		batch = append(batch, sqlite.ImageRow{
			Image: app.Image{ID: id, UserID: e.victim.ID, GenerationID: "seed-" + id, Width: 1024, Height: 1024, Seed: int64(i),
				ContentType: "image/png", Bytes: 1 << 20, WebPBytes: 200 << 10, ThumbBytes: 12 << 10, HasWebP: true, HasThumb: true,
				Steps: 8, Guidance: 1, Backend: "builtin", Model: "z-image-turbo",
				QueuedAt: c.Add(-20 * time.Second), StartedAt: c.Add(-10 * time.Second), FinishedAt: c,
				CreatedAt: c, ExpiresAt: c.Add(media.DefaultImagesRetention)},
			SealedPrompt: sp, SealedNegativePrompt: sn,
		})
		if len(batch) == perTx || i == n-1 {
			if err := e.db.InsertImages(ctx, batch); err != nil {
				return fmt.Errorf("seed rows: %w", err)
			}
			batch = batch[:0]
		}
	}
	return nil
}

// timedSweep runs DeleteExpired over the seeded images and checks it left
// neither file nor row of them, and the reader's gallery whole.
func (e *env) timedSweep(ctx context.Context, now time.Time, batch, want int) (time.Duration, error) {
	t0 := time.Now()
	n, err := e.media.DeleteExpired(ctx, now, media.DefaultImagesRetention, batch)
	d := time.Since(t0)
	if err != nil {
		return d, fmt.Errorf("DeleteExpired: %w", err)
	}
	return d, e.checkSwept(ctx, now, n, want)
}

func (e *env) checkSwept(ctx context.Context, now time.Time, removed, want int) error {
	if removed != want {
		return fmt.Errorf("DeleteExpired removed %d images, want %d", removed, want)
	}
	var left []string
	filepath.WalkDir(filepath.Join(e.dir, "media", e.victim.ID), func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			left = append(left, p)
		}
		return nil
	})
	if len(left) > 0 {
		return fmt.Errorf("%d files left in the victim's folder after the sweep, e.g. %s", len(left), left[0])
	}
	if ids, err := e.db.ImageIDsForUser(ctx, e.victim.ID); err != nil || len(ids) > 0 {
		return fmt.Errorf("%d rows of the victim left after the sweep (err %v)", len(ids), err)
	}
	if n, err := e.db.CountExpiredImages(ctx, now, media.DefaultImagesRetention); err != nil || n > 0 {
		return fmt.Errorf("%d expired rows left after the sweep (err %v)", n, err)
	}
	if ids, err := e.db.ImageIDsForUser(ctx, e.reader.ID); err != nil || len(ids) == 0 {
		return fmt.Errorf("the reader's gallery lost its images in the sweep (%d left, err %v)", len(ids), err)
	}
	return nil
}

func timedFind(root string, want int) (time.Duration, error) {
	t0 := time.Now()
	out, err := exec.Command("find", root, "-type", "f", "-delete").CombinedOutput()
	d := time.Since(t0)
	if err != nil {
		return d, fmt.Errorf("find -delete: %v: %s", err, out)
	}
	left := 0
	err = filepath.WalkDir(root, func(_ string, de os.DirEntry, err error) error {
		if err == nil && !de.IsDir() {
			left++
		}
		return err
	})
	if err != nil || left > 0 {
		return d, fmt.Errorf("find left %d of %d files (err %v)", left, want, err)
	}
	return d, nil
}

type apiResult struct {
	idle, during load
	sweep        time.Duration
}

func (e *env) apiUnderSweep(ctx context.Context, now time.Time, f flags) (apiResult, error) {
	var res apiResult
	log := slog.New(slog.DiscardHandler)
	srv, err := web.New(log, web.Deps{DB: e.db, Auth: e.accounts, Media: e.media}, web.Options{Version: "bench", MaxBodyBytes: 1 << 20})
	if err != nil {
		return res, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return res, err
	}
	hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go hs.Serve(ln)
	defer hs.Close()

	_, key, err := e.accounts.CreateAPIKey(ctx, &auth.Principal{User: e.reader}, "retention bench", []string{app.ScopeRead})
	if err != nil {
		return res, err
	}
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: f.clients}}
	url := "http://" + ln.Addr().String() + "/api/v1/images?limit=50"
	// One request first, so a broken route fails loudly here rather than
	// as a column of errors.
	if _, err := get(hc, url, key); err != nil {
		return res, err
	}

	stop := make(chan struct{})
	time.AfterFunc(f.idle, func() { close(stop) })
	res.idle = hammer(hc, url, key, f.clients, stop)

	stop = make(chan struct{})
	var sweepErr error
	go func() {
		defer close(stop)
		res.sweep, sweepErr = e.timedSweep(ctx, now, f.batch, f.n)
	}()
	res.during = hammer(hc, url, key, f.clients, stop)
	return res, sweepErr
}

// load is what the clients saw over one period.
type load struct {
	lat    []time.Duration
	errors int
	first  error
	period time.Duration
}

// hammer runs clients request loops until stop is closed.
func hammer(hc *http.Client, url, key string, clients int, stop <-chan struct{}) load {
	var mu sync.Mutex
	var out load
	var wg sync.WaitGroup
	t0 := time.Now()
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var lat []time.Duration
			var errs int
			var first error
			for {
				select {
				case <-stop:
					mu.Lock()
					out.lat = append(out.lat, lat...)
					out.errors += errs
					if out.first == nil {
						out.first = first
					}
					mu.Unlock()
					return
				default:
				}
				d, err := get(hc, url, key)
				if err != nil {
					errs++
					if first == nil {
						first = err
					}
					continue
				}
				lat = append(lat, d)
			}
		}()
	}
	wg.Wait()
	out.period = time.Since(t0)
	return out
}

func get(hc *http.Client, url, key string) (time.Duration, error) {
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+key)
	t0 := time.Now()
	resp, err := hc.Do(req)
	if err != nil {
		return 0, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	d := time.Since(t0)
	if err != nil {
		return d, err
	}
	if resp.StatusCode != http.StatusOK {
		return d, fmt.Errorf("GET %s: %d %s", url, resp.StatusCode, body)
	}
	if !bytes.Contains(body, []byte(`"images":[{`)) {
		return d, errors.New("GET /api/v1/images answered 200 without images")
	}
	return d, nil
}

func (l load) print(name string) {
	label := fmt.Sprintf("%s (%s)", name, l.period.Round(100*time.Millisecond))
	if len(l.lat) == 0 {
		fmt.Printf("%-22s %8d %8s %8s %8s %8s %8s %8d  %v\n", label, 0, "-", "-", "-", "-", "-", l.errors, l.first)
		return
	}
	slices.Sort(l.lat)
	ms := func(d time.Duration) string { return fmt.Sprintf("%.1fms", float64(d.Microseconds())/1000) }
	fmt.Printf("%-22s %8d %8.0f %8s %8s %8s %8s %8d\n", label, len(l.lat), float64(len(l.lat))/l.period.Seconds(),
		ms(pct(l.lat, 50)), ms(pct(l.lat, 95)), ms(pct(l.lat, 99)), ms(l.lat[len(l.lat)-1]), l.errors)
	if l.first != nil {
		fmt.Printf("  first error: %v\n", l.first)
	}
}

// pct is the nearest-rank percentile of sorted latencies.
func pct(sorted []time.Duration, p int) time.Duration {
	i := (len(sorted)*p + 99) / 100
	return sorted[max(0, min(len(sorted)-1, i-1))]
}

// breakdown is the sweep's time by step, summed over all batches.
type breakdown struct {
	batches                    int
	query, unlink, fsync, rows time.Duration
	maxRows                    time.Duration // longest rows transaction: how long the writer is held
	total                      time.Duration
}

// timedParts does what DeleteExpired does (select a batch of expired
// keys, unlink their files, sync the folder, delete the rows in one
// transaction), timing each step; the per-image locks are left out as
// nothing else runs.
func (e *env) timedParts(ctx context.Context, now time.Time, batch, want int) (breakdown, error) {
	var b breakdown
	root := filepath.Join(e.dir, "media")
	removed := 0
	t0 := time.Now()
	for {
		t := time.Now()
		keys, err := e.db.ExpiredImages(ctx, now, batch)
		b.query += time.Since(t)
		if err != nil {
			return b, err
		}
		if len(keys) == 0 {
			break
		}
		b.batches++
		t = time.Now()
		dirs := map[string]bool{}
		for _, k := range keys {
			for _, v := range []string{"orig", "webp", "thumb"} {
				path := media.FilePath(root, k.UserID, k.ID, v)
				if err := os.Remove(path); err != nil {
					return b, err
				}
				dirs[filepath.Dir(path)] = true
			}
		}
		b.unlink += time.Since(t)
		t = time.Now()
		for dir := range dirs {
			d, err := os.Open(dir)
			if err != nil {
				return b, err
			}
			err = d.Sync()
			d.Close()
			if err != nil {
				return b, err
			}
		}
		b.fsync += time.Since(t)
		t = time.Now()
		n, err := e.db.DeleteImages(ctx, keys)
		rt := time.Since(t)
		b.rows += rt
		b.maxRows = max(b.maxRows, rt)
		if err != nil {
			return b, err
		}
		removed += n
		if len(keys) < batch {
			break
		}
	}
	b.total = time.Since(t0)
	return b, e.checkSwept(ctx, now, removed, want)
}

func (b breakdown) print(n int) {
	fmt.Printf("sweep by step (%d batches, %s in all)     total   per batch   share\n", b.batches, b.total.Round(time.Millisecond))
	row := func(name string, d time.Duration) {
		fmt.Printf("%-42s %9s %10s %6.0f%%\n", name, d.Round(time.Millisecond), (d / time.Duration(max(1, b.batches))).Round(time.Microsecond), 100*d.Seconds()/b.total.Seconds())
	}
	row("select expired keys (ExpiredImages)", b.query)
	row("unlink 3 files an image", b.unlink)
	row("fsync the folder", b.fsync)
	row("delete rows, one tx (DeleteImages)", b.rows)
	fmt.Printf("longest rows transaction (writer held): %s; rows alone: %.0f rows/s\n", b.maxRows.Round(time.Microsecond), float64(n)/b.rows.Seconds())
}
