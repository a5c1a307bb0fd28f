package browsertest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// stepTimeout bounds every browser action, so a hang fails with the name
// of the step rather than at the go test deadline.
const stepTimeout = 30 * time.Second

// findChromium returns the browser to drive. A missing browser is a
// failure, not a skip: CI installs it, and a silently skipped browser
// suite would hide every UI regression.
func findChromium(t testing.TB) string {
	t.Helper()
	for _, name := range []string{"chromium", "/usr/bin/chromium"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("chromium is not installed: apt-get install -y chromium (scripts/test, which .ci/run calls, does this before the tests)")
	}
	t.Fatal("chromium is not installed, and the browser tests need it: apt-get install -y chromium (Debian), or put a chromium binary on PATH")
	return ""
}

// lockedBuffer collects chromium's output from its reader goroutine.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.b.Len() > 64<<10 {
		return len(p), nil
	}
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

// tab is one chromium tab, in a browser of its own with a fresh profile.
type tab struct {
	t   testing.TB
	ctx context.Context
	net *netWatch
}

// newTab starts chromium headless and opens a tab. The browser is stopped
// at the end of the test; its output is shown if the test failed.
func newTab(t testing.TB) *tab {
	t.Helper()
	exe := findChromium(t)
	profile := t.TempDir()
	out := &lockedBuffer{}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.UserDataDir(profile),
		chromedp.NoSandbox, // the CI container runs as root, where the sandbox cannot start
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-first-run", true),
		chromedp.WindowSize(1280, 800),
		chromedp.CombinedOutput(out),
	)
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	nw := &netWatch{urls: map[network.RequestID]string{}}
	// Registered after t.TempDir, so it runs before the profile is removed;
	// and after the server's cleanups, so it runs while the server still
	// answers.
	t.Cleanup(func() {
		nw.check(t)
		cancel()
		acancel()
		if t.Failed() {
			t.Logf("chromium output:\n%s", out)
		}
	})
	// The first Do starts the browser and binds its life to the context it
	// gets, so it must have no deadline; a timer bounds the start instead.
	started := make(chan error, 1)
	go func() { started <- chromedp.Do(ctx) }()
	select {
	case err := <-started:
		if err != nil {
			t.Fatalf("start chromium (%s): %v\n%s", exe, err, out)
		}
	case <-time.After(stepTimeout):
		cancel()
		t.Fatalf("chromium (%s) did not start within %s\n%s", exe, stepTimeout, out)
	}
	if err := chromedp.Listen(ctx, nw.record); err != nil {
		t.Fatalf("listen to chromium's network events: %v", err)
	}
	return &tab{t: t, ctx: ctx, net: nw}
}

// netWatch records every request of the tab that answered 4xx or 5xx, or
// got no answer at all: a page that works for the person never asks for
// something the server refuses, even where the page hides the failure (a
// broken thumbnail, a fetch whose error is swallowed). Every test's tab
// checks this at its end; a test that means to open an error page says
// so with allow.
type netWatch struct {
	mu       sync.Mutex
	urls     map[network.RequestID]string
	failures []netFailure
	allowed  []netFailure
}

type netFailure struct {
	Path   string // path and query
	Status int64  // 0: no answer
	Error  string
}

func (f netFailure) String() string {
	if f.Status == 0 {
		return fmt.Sprintf("%s: no answer (%s)", f.Path, f.Error)
	}
	return fmt.Sprintf("%s: %d", f.Path, f.Status)
}

// record runs on chromedp's reader goroutine: it only files the event.
func (n *netWatch) record(ev any) {
	n.mu.Lock()
	defer n.mu.Unlock()
	switch ev := ev.(type) {
	case *network.EventRequestWillBeSent:
		n.urls[ev.RequestID] = ev.Request.URL
	case *network.EventResponseReceived:
		if ev.Response.Status >= 400 {
			n.failures = append(n.failures, netFailure{Path: pathOf(ev.Response.URL), Status: ev.Response.Status})
		}
	case *network.EventLoadingFailed:
		// Canceled: the page navigated away from a request still open (the
		// event stream, a lazy image), which is no failure of the server.
		if !ev.Canceled {
			n.failures = append(n.failures, netFailure{Path: pathOf(n.urls[ev.RequestID]), Error: ev.ErrorText})
		}
	}
}

func pathOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "data" {
		return raw
	}
	return u.RequestURI()
}

// allow lets path answer status without failing the test: an error page
// the test opens on purpose.
func (b *tab) allow(status int64, path string) {
	b.net.mu.Lock()
	defer b.net.mu.Unlock()
	b.net.allowed = append(b.net.allowed, netFailure{Path: path, Status: status})
}

// failedRequests lists the failures seen so far that were not allowed.
func (b *tab) failedRequests() []string {
	b.net.mu.Lock()
	defer b.net.mu.Unlock()
	return b.net.unexpected()
}

func (n *netWatch) unexpected() []string {
	var out []string
	for _, f := range n.failures {
		ok := false
		for _, a := range n.allowed {
			if a.Path == f.Path && a.Status == f.Status {
				ok = true
				break
			}
		}
		if !ok {
			out = append(out, f.String())
		}
	}
	return out
}

func (n *netWatch) check(t testing.TB) {
	t.Helper()
	n.mu.Lock()
	defer n.mu.Unlock()
	bad := n.unexpected()
	switch {
	case len(bad) == 0:
	case t.Failed():
		t.Logf("also, %d requests from the page failed:%s", len(bad), joinLines(bad))
	default:
		t.Errorf("%d requests from the page failed (each is something the person did not get):%s", len(bad), joinLines(bad))
	}
}

// do runs actions with a deadline; what names the step in the failure.
func (b *tab) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.t.Fatalf("%s: %v", what, timeoutHint(err))
	}
}

// run is do for one action that returns a value.
func run[T any](b *tab, what string, a chromedp.Action[T]) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		b.t.Fatalf("%s: %v", what, timeoutHint(err))
	}
	return v
}

func timeoutHint(err error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%w (no result within %s: the page did not reach the expected state)", err, stepTimeout)
	}
	return err
}

// eval evaluates a JavaScript expression in the page and decodes its value;
// promises are awaited.
func eval[T any](b *tab, what, js string) T {
	b.t.Helper()
	return run(b, what, chromedp.Evaluate[T](js, chromedp.EvalAwaitPromise))
}

// navigate loads url and waits for its load event.
func (b *tab) navigate(url string) {
	b.t.Helper()
	b.do("open "+url, chromedp.Navigate(url))
}

// path is the current location's path and query.
func (b *tab) path() string {
	b.t.Helper()
	return eval[string](b, "read location", `location.pathname + location.search`)
}

// viewport emulates a window width at device scale 1.
func (b *tab) viewport(width int64) {
	b.t.Helper()
	b.do(fmt.Sprintf("emulate a %d px wide viewport", width), chromedp.EmulateViewport(width, 800, chromedp.EmulateScale(1)))
}

// colorScheme emulates prefers-color-scheme ("light" or "dark").
func (b *tab) colorScheme(scheme string) {
	b.t.Helper()
	b.do("emulate prefers-color-scheme: "+scheme, chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := chromedp.Call(ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
			Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: scheme}},
		})
		return err
	}))
}

// disableCache makes every load a first load, for the transfer sizes.
func (b *tab) disableCache() {
	b.t.Helper()
	b.do("disable the HTTP cache", chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := chromedp.Call(ctx, network.SetCacheDisabled, network.SetCacheDisabledParams{CacheDisabled: true})
		return err
	}))
}

// repoRoot is the folder holding go.mod, found from the package folder go
// test runs in.
func repoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d
		}
		if filepath.Dir(d) == d {
			t.Fatalf("no go.mod above %s: run the tests inside the repository", dir)
		}
	}
}

// screenshot writes a full-page PNG of the current page into
// test-artifacts/screenshots/<name>-<width>.png at the repository root.
func (b *tab) screenshot(name string, width int64) string {
	b.t.Helper()
	dir := filepath.Join(repoRoot(b.t), "test-artifacts", "screenshots")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.t.Fatal(err)
	}
	png := run(b, "screenshot "+name, chromedp.FullScreenshot(100))
	file := filepath.Join(dir, fmt.Sprintf("%s-%d.png", name, width))
	if err := os.WriteFile(file, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	return file
}

// overflowX reports elements wider than the viewport (a horizontal scroll
// bar on a phone), as "tag.class (width px)".
func (b *tab) overflowX() []string {
	b.t.Helper()
	return eval[[]string](b, "measure horizontal overflow", `(() => {
		const vw = document.documentElement.clientWidth, out = [];
		if (document.documentElement.scrollWidth <= vw) return out;
		for (const e of document.body.querySelectorAll("*")) {
			const r = e.getBoundingClientRect();
			if (r.right > vw + 1 && getComputedStyle(e).position !== "fixed") {
				out.push(e.tagName.toLowerCase() + (e.className && typeof e.className === "string" ? "." + e.className.trim().split(/\s+/).join(".") : "") + " (right edge " + Math.round(r.right) + " px)");
			}
		}
		return out.slice(0, 10);
	})()`)
}

func joinLines(s []string) string { return "\n  " + strings.Join(s, "\n  ") }

// waitFor evaluates the JavaScript condition js until it is true. Unlike
// chromedp.Poll it survives navigations (a form post that redirects), as
// each try is a fresh evaluation in whatever document is current.
func (b *tab) waitFor(what, js string) {
	b.t.Helper()
	deadline := time.Now().Add(stepTimeout)
	var last error
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(b.ctx, 2*time.Second)
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](js))
		cancel()
		if err == nil && ok {
			return
		}
		last = err
		time.Sleep(25 * time.Millisecond)
	}
	b.t.Fatalf("%s: %s stayed false for %s (last error: %v)", what, js, stepTimeout, last)
}
