package browsertest

import (
	"context"
	"image/png"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// TestBrowserJourney walks the path a new person takes: sign up, turn on
// 2FA, generate an image and watch its progress, find it in the gallery,
// open it, download it and delete it.
func TestBrowserJourney(t *testing.T) {
	// 8 steps × 60 ms keeps the job running for about half a second, long
	// enough for the page to show intermediate steps over the event stream.
	srv := newServer(t, serverOptions{PerStep: 60 * time.Millisecond})
	b := newTab(t)
	b.viewport(1280)

	// Account.
	how := b.signUp(srv, "journey")
	t.Logf("sign-up: through the %s", how)
	how, secret, codes := b.enable2FA(srv)
	t.Logf("2FA enrolment: through the %s; %d recovery codes shown", how, len(codes))
	if len(codes) == 0 {
		t.Fatal("2FA was confirmed but no recovery codes were shown")
	}
	// 2FA is only on if the next sign-in asks for a code.
	if srv.pageExists("/login") {
		b.signOut()
		b.signInUI(srv.URL, "journey", secret)
		t.Log("sign-in with the 2FA code: through the sign-in pages")
	}

	// Generate, and watch the progress arrive over Server-Sent Events.
	b.navigate(srv.URL + "/generate")
	b.do("watch the job cards", chromedp.Evaluate[chromedp.Void](watchJobsJS))
	const prompt = "A lighthouse on a cliff at dusk, browser test"
	b.do("fill the generate form",
		chromedp.SendKeys(chromedp.CSS("#prompt"), prompt),
		chromedp.Click(chromedp.CSS(`input[name=size][value="512x512"]`)),
		chromedp.SetValue(chromedp.CSS("#steps"), "8"),
		chromedp.SetValue(chromedp.CSS("#count"), "1"),
		chromedp.Click(chromedp.CSS("form[data-generate] button[type=submit]")),
	)
	status := run(b, "wait for the job to end", chromedp.Poll[string](`(() => {
		const s = document.querySelector("[data-job] [data-status]");
		return s && ["succeeded", "failed", "canceled"].includes(s.textContent) ? s.textContent : "";
	})()`, chromedp.WithPollingInterval(20*time.Millisecond), chromedp.WithPollingTimeout(stepTimeout)))
	seen := eval[jobTrace](b, "read what the job card showed", `window.__jobTrace`)
	if status != "succeeded" {
		t.Fatalf("the job card ended %q, want succeeded; it showed %q", status, seen.Details)
	}
	// The event stream may create the card before the submit's answer
	// names its prompt, so only the final text is checked.
	if p := run(b, "read the job's prompt", chromedp.Text(chromedp.CSS("[data-job] .job-prompt"))); p != prompt {
		t.Errorf("the job card shows prompt %q, want %q", p, prompt)
	}
	assertProgress(t, seen, 8)
	imageHref := run(b, "read the new image's link", chromedp.AttributeValue(chromedp.CSS("[data-job] [data-images] a"), "href"))
	if !imageHref.Exists || !strings.HasPrefix(imageHref.Value, "/images/") {
		t.Fatalf("the finished job card has no link to its image (got %+v)", imageHref)
	}
	imageID := strings.TrimPrefix(imageHref.Value, "/images/")

	// Gallery.
	b.navigate(srv.URL + "/gallery")
	tiles := eval[[]string](b, "list gallery tiles", `[...document.querySelectorAll(".gallery .tile a.thumb")].map(a => a.getAttribute("href"))`)
	if len(tiles) != 1 || tiles[0] != "/images/"+imageID {
		t.Fatalf("gallery tiles = %q, want the one new image /images/%s", tiles, imageID)
	}
	thumbW := run(b, "wait for the thumbnail to load", chromedp.Poll[int](`(() => { const i = document.querySelector(".tile img"); return i && i.complete ? i.naturalWidth : 0; })()`,
		chromedp.WithPollingTimeout(stepTimeout)))
	if thumbW != 256 {
		t.Errorf("the gallery thumbnail is %d px wide, want 256", thumbW)
	}

	// Open it.
	b.do("open the image from the gallery", chromedp.Click(chromedp.CSS(".tile a.thumb")), chromedp.WaitVisible(chromedp.CSS("figure img")))
	if p := b.path(); p != "/images/"+imageID {
		t.Fatalf("after clicking the thumbnail the page is %s, want /images/%s", p, imageID)
	}
	full := run(b, "wait for the full image", chromedp.Poll[int](`(() => { const i = document.querySelector("figure img"); return i && i.complete ? i.naturalWidth : 0; })()`,
		chromedp.WithPollingTimeout(stepTimeout)))
	if full != 512 {
		t.Errorf("the detail page shows an image %d px wide, want 512", full)
	}
	if text := run(b, "read the parameters", chromedp.Text(chromedp.CSS("dl.params"))); !strings.Contains(text, prompt) || !strings.Contains(text, "512×512") {
		t.Errorf("the parameters list lacks the prompt or the size:\n%s", text)
	}

	// Download the PNG.
	file := b.download(`a[download][href*="format=png"]`)
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := png.DecodeConfig(f)
	f.Close()
	if err != nil {
		t.Fatalf("the downloaded file %s is not a PNG: %v", filepath.Base(file), err)
	}
	if cfg.Width != 512 || cfg.Height != 512 {
		t.Errorf("the downloaded PNG is %d×%d, want 512×512", cfg.Width, cfg.Height)
	}

	// Delete it; the page asks for confirmation first.
	msgs := b.acceptDialogs()
	b.do("delete the image", chromedp.Click(chromedp.CSS(`form[action$="/delete"] button.danger`)))
	b.waitFor("wait for the gallery after the delete", `location.pathname === "/gallery" && document.readyState === "complete" && !!document.querySelector(".empty")`)
	if m := msgs(); len(m) != 1 || !strings.Contains(m[0], "Delete this image?") {
		t.Errorf("confirmation dialogs shown = %q, want one asking to delete the image", m)
	}
	if text := run(b, "read the empty gallery", chromedp.Text(chromedp.CSS(".empty"))); !strings.Contains(text, "Your gallery is empty") {
		t.Errorf("the gallery after the delete says %q, want its empty state", text)
	}
	if _, err := srv.Media.Get(context.Background(), userIDOf(t, srv, "journey"), imageID); err == nil {
		t.Error("the image is still in the store after the delete")
	}
}

// watchJobsJS records every state the job cards pass through, since the
// builtin job ends in well under a second and a poll could miss steps.
const watchJobsJS = `(() => {
	const trace = window.__jobTrace = {details: [], bars: []};
	const jobs = document.querySelector("[data-jobs]");
	const record = () => {
		const card = jobs.querySelector("[data-job]");
		if (!card) return;
		const d = card.querySelector("[data-detail]").textContent;
		if (trace.details[trace.details.length - 1] !== d) trace.details.push(d);
		const bar = card.querySelector("progress");
		if (bar) {
			const v = bar.value + "/" + bar.max;
			if (trace.bars[trace.bars.length - 1] !== v) trace.bars.push(v);
		}
	};
	new MutationObserver(record).observe(jobs, {subtree: true, childList: true, characterData: true, attributes: true});
})()`

type jobTrace struct {
	Details []string `json:"details"`
	Bars    []string `json:"bars"`
}

var stepText = regexp.MustCompile(`^Step (\d+) of (\d+)$`)

// assertProgress checks the card showed at least one intermediate step
// of n, in order, and ended full and "Done".
func assertProgress(t *testing.T, tr jobTrace, n int) {
	t.Helper()
	last, intermediate := 0, 0
	for _, d := range tr.Details {
		m := stepText.FindStringSubmatch(d)
		if m == nil {
			continue
		}
		k, _ := strconv.Atoi(m[1])
		if total, _ := strconv.Atoi(m[2]); total != n {
			t.Errorf("progress text %q counts %d steps, want %d", d, total, n)
		}
		if k < last {
			t.Errorf("progress went backwards: %q", tr.Details)
		}
		last = k
		if k < n {
			intermediate++
		}
	}
	if intermediate == 0 {
		t.Errorf("the job card never showed an intermediate step; it showed %q", tr.Details)
	}
	if len(tr.Details) == 0 || tr.Details[len(tr.Details)-1] != "Done" {
		t.Errorf("the job card's last text is not Done: %q", tr.Details)
	}
	if len(tr.Bars) == 0 || tr.Bars[len(tr.Bars)-1] != "1/1" {
		t.Errorf("the progress bar did not end full: %q", tr.Bars)
	}
	t.Logf("job card showed: %s", strings.Join(tr.Details, " → "))
}

// download clicks the link sel and waits for the browser to save the
// file into a temporary folder; it returns the file's path.
func (b *tab) download(sel string) string {
	b.t.Helper()
	dir := b.t.TempDir()
	b.do("allow downloads", chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := chromedp.CallBrowser(ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
			Behavior: browser.SetDownloadBehaviorBehaviorAllowAndName, DownloadPath: dir, EventsEnabled: new(true),
		})
		return err
	}))
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	begins := chromedp.BrowserEvents(ctx, browser.DownloadWillBegin)
	progress := chromedp.BrowserEvents(ctx, browser.DownloadProgress)
	b.do("click "+sel, chromedp.Click(chromedp.CSS(sel)))
	var guid, suggested string
	for ev, err := range begins {
		if err != nil {
			b.t.Fatalf("no download started after clicking %s: %v", sel, err)
		}
		guid, suggested = ev.GUID, ev.SuggestedFilename
		break
	}
	for ev, err := range progress {
		if err != nil {
			b.t.Fatalf("download %s did not finish: %v", suggested, err)
		}
		if ev.GUID != guid {
			continue
		}
		if ev.State == browser.DownloadProgressStateCanceled {
			b.t.Fatalf("the browser canceled the download of %s", suggested)
		}
		if ev.State == browser.DownloadProgressStateCompleted {
			break
		}
	}
	if !strings.HasSuffix(suggested, ".png") {
		b.t.Errorf("the download is named %q, want a .png name", suggested)
	}
	b.t.Logf("downloaded %s", suggested)
	// allowAndName saves the file under its GUID.
	return filepath.Join(dir, guid)
}

// acceptDialogs accepts every JavaScript dialog (confirm()) from now on,
// and returns a func listing the messages seen.
func (b *tab) acceptDialogs() func() []string {
	var mu sync.Mutex
	var msgs []string
	ctx, cancel := context.WithCancel(b.ctx)
	b.t.Cleanup(cancel)
	dialogs := chromedp.Events(ctx, page.JavascriptDialogOpening)
	go func() {
		for ev, err := range dialogs {
			if err != nil {
				return
			}
			mu.Lock()
			msgs = append(msgs, ev.Message)
			mu.Unlock()
			if _, err := chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: true}); err != nil {
				return
			}
		}
	}()
	return func() []string { mu.Lock(); defer mu.Unlock(); return append([]string(nil), msgs...) }
}

// userIDOf looks an account up by username in the store.
func userIDOf(t *testing.T, srv *server, username string) string {
	t.Helper()
	u, err := srv.DB.UserByUsername(context.Background(), username)
	if err != nil {
		t.Fatalf("look up %s: %v", username, err)
	}
	return u.ID
}
