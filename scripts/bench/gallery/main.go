// Command gallery measures the gallery API (issue 19): GET
// /api/v1/images?limit=50 with a bearer key, served by the real server,
// against a minimal reference handler doing the same work — Echo v4 and
// modernc SQLite, bearer token → SHA-256 → one key-and-owner lookup → one
// keyset query → the sealed prompts opened → the same JSON.
//
//	go run ./scripts/bench/gallery            # 1,000,000 images, an owner of 100,000
//	go run ./scripts/bench/gallery -n 200000  # a smaller run
//
// The data is seeded the way the app writes it: accounts through the auth
// service, prompts sealed by the vault under each image's own associated
// data, rows through the store. The real server is `zimage serve` itself
// (cli.Run with the data folder and address in its environment); the
// reference reads the same database file and keyring.
//
// Each server runs as its own child process of this program, so that its
// CPU time (/proc/PID/stat) and resident memory (/proc/PID/status) are its
// own and not the load generator's; in one process the two would share a
// heap and a garbage collector and neither figure could be told apart. The
// load generator stays in this process, on loopback, with a bounded number
// of requests and time per run. Runs alternate between the two servers
// (the order flips every round) and repeat, so a noisy neighbour on the
// machine weighs on both sides alike: read the ratios, not the absolute
// figures. The data folder is temporary and removed at the end.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/oklog/ulid/v2"

	"zimage/app"
	"zimage/app/auth"
	"zimage/app/cli"
	"zimage/app/sqlite"
	"zimage/app/vault"
)

type flags struct {
	n, owners, rounds, maxRequests int
	conns                          string
	duration                       time.Duration
	child, dir, addr               string
}

func main() {
	var f flags
	flag.IntVar(&f.n, "n", 1_000_000, "images to seed in all")
	flag.IntVar(&f.owners, "owners", 10, "people the images are spread over; the one measured owns n/owners")
	flag.IntVar(&f.rounds, "rounds", 3, "alternated rounds of every scenario")
	flag.StringVar(&f.conns, "conns", "16,64", "concurrent connections to measure, comma-separated")
	flag.DurationVar(&f.duration, "d", 3*time.Second, "length of one measured run")
	flag.IntVar(&f.maxRequests, "max", 200_000, "most requests in one run")
	flag.StringVar(&f.child, "child", "", "internal: serve as \"real\" or \"ref\"")
	flag.StringVar(&f.dir, "dir", "", "internal: data folder of a child")
	flag.StringVar(&f.addr, "addr", "", "internal: loopback address of a child")
	flag.Parse()
	if f.child != "" {
		if err := serveChild(f); err != nil {
			fmt.Fprintln(os.Stderr, "gallery child:", err)
			os.Exit(1)
		}
		return
	}
	if f.n <= 0 || f.owners <= 0 || f.n < f.owners || f.rounds <= 0 || f.duration <= 0 || f.maxRequests <= 0 {
		fmt.Fprintln(os.Stderr, "gallery: -n, -owners, -rounds, -d and -max must be positive, and -n at least -owners")
		os.Exit(2)
	}
	dir, err := os.MkdirTemp("", "zimage-bench-gallery-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "gallery:", err)
		os.Exit(1)
	}
	err = run(dir, f)
	if rerr := os.RemoveAll(dir); rerr != nil && err == nil {
		err = rerr
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "gallery:", err)
		os.Exit(1)
	}
}

func run(dir string, f flags) error {
	var conns []int
	for _, s := range strings.Split(f.conns, ",") {
		c, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || c <= 0 {
			return fmt.Errorf("-conns: %q is not a positive number", s)
		}
		conns = append(conns, c)
	}
	fmt.Printf("gallery API benchmark: %d images, the measured owner has %d; %s/%s, %d CPUs, %s\n",
		f.n, f.n/f.owners, runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.Version())
	t0 := time.Now()
	token, err := seed(context.Background(), dir, f.n, f.owners)
	if err != nil {
		return err
	}
	fmt.Printf("seeded in %s; load average %s\n", time.Since(t0).Round(time.Millisecond), loadAvg())

	real, err := startChild(dir, "real")
	if err != nil {
		return err
	}
	defer real.stop()
	ref, err := startChild(dir, "ref")
	if err != nil {
		return err
	}
	defer ref.stop()
	servers := []*child{real, ref}

	// Both must answer the same JSON, or the comparison is not of the same
	// work. The cursor page uses the cursor page 1 gave.
	page1 := "/api/v1/images?limit=50"
	var first, firstRef map[string]any
	if first, err = getJSON(real.base+page1, token); err != nil {
		return fmt.Errorf("real server: %w", err)
	}
	if firstRef, err = getJSON(ref.base+page1, token); err != nil {
		return fmt.Errorf("reference: %w", err)
	}
	if !reflect.DeepEqual(first, firstRef) {
		return errors.New("the reference's page 1 differs from the real server's: fix the reference first")
	}
	next, _ := first["next"].(string)
	if n, _ := first["images"].([]any); len(n) != 50 || next == "" {
		return fmt.Errorf("page 1 has %d images and next %q; seed at least 51 images per owner", len(n), next)
	}
	cursor := page1 + "&cursor=" + next

	type scenario struct {
		name  string
		path  string
		conns int
	}
	var scenarios []scenario
	for _, c := range conns {
		scenarios = append(scenarios, scenario{"page 1", page1, c}, scenario{"cursor page", cursor, c})
	}
	// Warm both: page cache, connection pools, prepared statements.
	for _, s := range servers {
		if _, err := load(s, s.base+page1, token, conns[0], time.Second, f.maxRequests); err != nil {
			return err
		}
	}
	results := map[string][]result{} // scenario/server → one per round
	for round := range f.rounds {
		order := servers
		if round%2 == 1 {
			order = []*child{ref, real}
		}
		for _, sc := range scenarios {
			for _, s := range order {
				r, err := load(s, s.base+sc.path, token, sc.conns, f.duration, f.maxRequests)
				if err != nil {
					return err
				}
				key := fmt.Sprintf("%s|%d|%s", sc.name, sc.conns, s.name)
				results[key] = append(results[key], r)
			}
		}
		fmt.Printf("round %d of %d done; load average %s\n", round+1, f.rounds, loadAvg())
	}

	fmt.Printf("\n%-12s %5s %-5s %9s %8s %8s %10s %8s\n", "scenario", "conns", "side", "req/s", "p50 ms", "p99 ms", "CPU µs/req", "RSS MB")
	for _, sc := range scenarios {
		var sum [2]summary
		for i, s := range servers {
			sum[i] = summarize(results[fmt.Sprintf("%s|%d|%s", sc.name, sc.conns, s.name)])
			fmt.Printf("%-12s %5d %-5s %9.0f %8.2f %8.2f %10.0f %8.1f\n", sc.name, sc.conns, s.name,
				sum[i].rps, ms(sum[i].p50), ms(sum[i].p99), sum[i].cpuPerReq, float64(sum[i].rss)/(1<<20))
		}
		fmt.Printf("%-12s %5d ratio real/ref: req/s %.2f×, CPU per request %.2f×, p99 %.2f×\n", sc.name, sc.conns,
			sum[0].rps/sum[1].rps, sum[0].cpuPerReq/sum[1].cpuPerReq, float64(sum[0].p99)/float64(sum[1].p99))
	}
	fmt.Printf("\npeak RSS: real %.1f MB, ref %.1f MB; load average at the end %s\n",
		float64(real.peakRSS())/(1<<20), float64(ref.peakRSS())/(1<<20), loadAvg())
	return nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// seed creates the owners through the auth service and n images spread
// over them, newest first by ULID time, each with a prompt and a negative
// prompt sealed for its owner under the image's own associated data. It
// returns a read key of the first owner.
func seed(ctx context.Context, dir string, n, owners int) (string, error) {
	db, err := sqlite.Open(ctx, filepath.Join(dir, "zimage.db"))
	if err != nil {
		return "", err
	}
	defer db.Close()
	keys, err := vault.Open(dir, "")
	if err != nil {
		return "", err
	}
	defer keys.Close()
	// Cheap password hashing: nobody signs in with a password here.
	accounts := auth.New(db, keys, auth.Options{Signup: "open", Hasher: auth.NewHasher(auth.Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}, 2)})
	var users []*app.User
	for i := range owners {
		u, err := accounts.SignUp(ctx, auth.SignUpInput{Email: fmt.Sprintf("owner%d@example.com", i), Username: fmt.Sprintf("owner%d", i),
			Password: "correct horse battery staple", AgeConfirmed: true})
		if err != nil {
			return "", fmt.Errorf("sign up owner %d: %w", i, err)
		}
		users = append(users, u)
	}
	_, token, err := accounts.CreateAPIKey(ctx, &auth.Principal{User: users[0]}, "gallery bench", []string{app.ScopeRead})
	if err != nil {
		return "", err
	}
	now := time.Now().UTC()
	const batch = 5000
	rows := make([]sqlite.ImageRow, 0, batch)
	for i := range n {
		u := users[i%owners]
		created := now.Add(-time.Duration(n-i) * time.Second)
		id := ulid.MustNew(ulid.Timestamp(created), ulid.DefaultEntropy()).String()
		prompt := fmt.Sprintf("a lighthouse on a cliff at dusk, volumetric light, oil painting, highly detailed, warm palette #%d", i)
		sp, err := keys.Seal(u.ID, []byte("images/"+id+"/prompt"), []byte(prompt))
		if err != nil {
			return "", err
		}
		sn, err := keys.Seal(u.ID, []byte("images/"+id+"/negative_prompt"), []byte("blurry, lowres"))
		if err != nil {
			return "", err
		}
		// Derivatives marked present, so the server's start-up recovery
		// finds no backlog to render.
		rows = append(rows, sqlite.ImageRow{Image: app.Image{ID: id, UserID: u.ID, GenerationID: "gen-" + id, Width: 1024, Height: 1024,
			Seed: int64(i), ContentType: "image/png", Bytes: 1 << 20, WebPBytes: 200 << 10, ThumbBytes: 8 << 10, HasWebP: true, HasThumb: true,
			Steps: 8, Guidance: 1, Backend: "builtin", Model: "z-image-turbo",
			QueuedAt: created.Add(-3 * time.Second), StartedAt: created.Add(-2 * time.Second), FinishedAt: created,
			CreatedAt: created, ExpiresAt: created.Add(90 * 24 * time.Hour)},
			SealedPrompt: sp, SealedNegativePrompt: sn})
		if len(rows) == batch || i == n-1 {
			if err := db.InsertImages(ctx, rows); err != nil {
				return "", err
			}
			rows = rows[:0]
		}
	}
	return token, nil
}

// child is one server process.
type child struct {
	name string
	base string
	cmd  *exec.Cmd
	log  *os.File
}

func startChild(dir, name string) (*child, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	addr, err := freeLoopbackAddr()
	if err != nil {
		return nil, err
	}
	logf, err := os.Create(filepath.Join(dir, name+".log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self, "-child", name, "-dir", dir, "-addr", addr)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, err
	}
	c := &child{name: name, base: "http://" + addr, cmd: cmd, log: logf}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		res, err := http.Get(c.base + "/healthz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return c, nil
			}
		}
		if time.Now().After(deadline) {
			c.stop()
			return nil, fmt.Errorf("%s server did not answer /healthz within 2 minutes; see its log", name)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (c *child) stop() {
	if c.cmd.ProcessState == nil {
		c.cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { c.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			c.cmd.Process.Kill()
			<-done
		}
	}
	c.log.Close()
}

// cpu is the child's user and system CPU time so far.
func (c *child) cpu() time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", c.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	// Fields after the command name, which may hold spaces, in brackets.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * time.Second / 100 // USER_HZ is 100 on Linux
}

func (c *child) statusKB(field string) int64 {
	fh, err := os.Open(fmt.Sprintf("/proc/%d/status", c.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	defer fh.Close()
	sc := bufio.NewScanner(fh)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb
		}
	}
	return 0
}

func (c *child) rss() int64     { return c.statusKB("VmRSS") << 10 }
func (c *child) peakRSS() int64 { return c.statusKB("VmHWM") << 10 }

func freeLoopbackAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Join(strings.Fields(string(b))[:3], " ")
}

func getJSON(url, token string) (map[string]any, error) {
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %d %s", url, res.StatusCode, body)
	}
	var m map[string]any
	return m, json.Unmarshal(body, &m)
}

// result is one run against one server.
type result struct {
	requests  int
	elapsed   time.Duration
	latencies []time.Duration
	cpu       time.Duration
	rss       int64
}

// load keeps conns connections busy with GET url for d or until max
// requests, each connection sending its next request when the last one's
// answer has been read.
func load(c *child, url, token string, conns int, d time.Duration, max int) (result, error) {
	tr := &http.Transport{MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns, DisableCompression: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	var mu sync.Mutex
	var lat []time.Duration
	var firstErr error
	sent := 0
	cpu0 := c.cpu()
	start := time.Now()
	stopAt := start.Add(d)
	var wg sync.WaitGroup
	for range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			own := make([]time.Duration, 0, 1024)
			defer func() { mu.Lock(); lat = append(lat, own...); mu.Unlock() }()
			for {
				mu.Lock()
				if sent >= max || firstErr != nil || time.Now().After(stopAt) {
					mu.Unlock()
					return
				}
				sent++
				mu.Unlock()
				req, _ := http.NewRequest(http.MethodGet, url, nil)
				req.Header.Set("Authorization", "Bearer "+token)
				t := time.Now()
				res, err := client.Do(req)
				if err == nil {
					_, err = io.Copy(io.Discard, res.Body)
					res.Body.Close()
					if err == nil && res.StatusCode != http.StatusOK {
						err = fmt.Errorf("%s answered %d", c.name, res.StatusCode)
					}
				}
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					return
				}
				own = append(own, time.Since(t))
			}
		}()
	}
	wg.Wait()
	r := result{requests: len(lat), elapsed: time.Since(start), latencies: lat, cpu: c.cpu() - cpu0, rss: c.rss()}
	return r, firstErr
}

// summary pools the rounds of one scenario on one server: the median
// round's rate, latency percentiles over every request, CPU over every
// request, the largest RSS seen.
type summary struct {
	rps       float64
	p50, p99  time.Duration
	cpuPerReq float64 // µs
	rss       int64
}

func summarize(rs []result) summary {
	var s summary
	var rates []float64
	var all []time.Duration
	var cpu time.Duration
	n := 0
	for _, r := range rs {
		rates = append(rates, float64(r.requests)/r.elapsed.Seconds())
		all = append(all, r.latencies...)
		cpu += r.cpu
		n += r.requests
		s.rss = max(s.rss, r.rss)
	}
	slices.Sort(rates)
	s.rps = rates[len(rates)/2]
	slices.Sort(all)
	if len(all) > 0 {
		s.p50 = all[len(all)/2]
		s.p99 = all[min(len(all)-1, int(math.Ceil(0.99*float64(len(all))))-1)]
	}
	if n > 0 {
		s.cpuPerReq = float64(cpu.Microseconds()) / float64(n)
	}
	return s
}

// serveChild runs one of the two servers until SIGTERM.
func serveChild(f flags) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	switch f.child {
	case "real":
		// `zimage serve`, configured as a person would: through its
		// environment. The API rate limits are off: one key sends the
		// whole load here, which the defaults would answer with 429s.
		env := append(os.Environ(), "ZIMAGE_SERVER_LISTEN="+f.addr, "ZIMAGE_SERVER_DATA_DIR="+f.dir,
			"ZIMAGE_SERVER_API_RATE_PER_KEY=0", "ZIMAGE_SERVER_API_RATE_PER_ADDRESS=0")
		if code := cli.Run(ctx, []string{"serve"}, cli.Env{Stdout: os.Stdout, Stderr: os.Stderr, Stdin: os.Stdin, Environ: env}); code != 0 {
			return fmt.Errorf("zimage serve exited with %d", code)
		}
		return nil
	case "ref":
		return serveReference(ctx, f.dir, f.addr)
	}
	return fmt.Errorf("unknown child %q", f.child)
}
