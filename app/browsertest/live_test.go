package browsertest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"zimage/app/backend"
)

// TestGenerateCardsGoLive loads the generate page while one job has
// finished, one runs and three wait, then — without a reload — cancels
// one waiting job from its card, lets two run and one fail: every card
// must reach its final state, and every finished card must show its
// thumbnails, loaded. Whatever state the server rendered a card in, the
// live updates must carry it to the end.
func TestGenerateCardsGoLive(t *testing.T) {
	gate := make(chan error)
	srv := newServer(t, serverOptions{PerStep: 30 * time.Millisecond, Gate: gate})
	b := newTab(t)
	b.viewport(1280)
	b.signUp(srv, "live")
	b.navigate(srv.URL + "/generate")

	release := func(what string) {
		t.Helper()
		select {
		case gate <- nil:
		case <-time.After(stepTimeout):
			t.Fatalf("%s: no job came to the backend within %s", what, stepTimeout)
		}
	}
	submit := func(prompt string, count int) string {
		t.Helper()
		r := b.fetchJSON("submit "+prompt, "POST", "/api/v1/generations", map[string]any{
			"prompt": prompt, "width": 256, "height": 256, "steps": 4, "count": count, "seed": 3})
		var g struct {
			ID string `json:"id"`
		}
		if r.Status != http.StatusAccepted || json.Unmarshal(r.Body, &g) != nil {
			t.Fatalf("submit %s: status %d: %s", prompt, r.Status, r.Body)
		}
		return g.ID
	}
	// A finishes before the page loads; B runs (held at the backend's
	// door); C and D wait behind it, as one person runs one job at a time.
	done := submit("Live card A, finished before the page loaded", 1)
	release("let A run")
	b.waitStatus(done, "succeeded")
	running := submit("Live card B, running when the page loaded", 1)
	queued := submit("Live card C, waiting when the page loaded", 2)
	canceled := submit("Live card D, canceled from the page", 1)
	failed := submit("Live card E, failing on the backend", 1)
	b.waitStatus(running, "running")

	b.navigate(srv.URL + "/generate")
	rendered := eval[map[string]string](b, "read the cards as rendered", cardStatusesJS)
	want := map[string]string{done: "succeeded", running: "running", queued: "queued", canceled: "queued", failed: "queued"}
	if fmt.Sprint(rendered) != fmt.Sprint(want) {
		t.Fatalf("the page rendered the cards as %v, want %v", rendered, want)
	}

	b.do("cancel D from its card", chromedp.Click(chromedp.CSS(fmt.Sprintf(`[data-job=%q] [data-cancel]`, canceled))))
	b.waitUntil("D's card shows it canceled", fmt.Sprintf(`(() => {
		const c = document.querySelector('[data-job=%q]');
		const s = c && c.querySelector("[data-status]");
		return s && s.textContent.trim() === "canceled" ? "" : "D shows " + (s ? s.textContent : "no status");
	})()`, canceled))

	const failure = "stopped by the browser test: the server reported an error."
	released := make(chan struct{})
	go func() {
		defer close(released)
		// One person's jobs run in the order they were asked for: B, C, E.
		for _, err := range []error{nil, nil, &backend.Error{Backend: "builtin", Reason: backend.ReasonFailed, Message: failure}} {
			select {
			case gate <- err:
			case <-time.After(stepTimeout):
				return
			}
		}
	}()
	t.Cleanup(func() { <-released })

	wantImages := map[string]int{done: 1, running: 1, queued: 2}
	data, _ := json.Marshal(wantImages)
	b.waitUntil("every card ends with its thumbnails shown", fmt.Sprintf(`(() => {
		const want = %s, problems = [];
		for (const [id, n] of Object.entries(want)) {
			const c = document.querySelector('[data-job="' + id + '"]');
			if (!c) { problems.push(id + ": no card"); continue; }
			const s = c.querySelector("[data-status]"), d = c.querySelector("[data-detail]");
			const status = s ? s.textContent.trim() : "(no status)";
			if (status !== "succeeded") { problems.push(id + ": " + status + " · " + (d ? d.textContent : "")); continue; }
			const imgs = [...c.querySelectorAll("[data-images] img")];
			if (imgs.length !== n) problems.push(id + ": " + imgs.length + " thumbnails, want " + n);
			for (const i of imgs) if (!i.complete || i.naturalWidth === 0) problems.push(id + ": thumbnail not shown: " + i.getAttribute("src"));
			if (c.querySelector("[data-cancel]")) problems.push(id + ": still offers Cancel");
		}
		return problems.join("; ");
	})()`, data))

	b.waitUntil("E's card shows it failed", fmt.Sprintf(`(() => {
		const c = document.querySelector('[data-job=%q]');
		const s = c && c.querySelector("[data-status]");
		return s && s.textContent.trim() === "failed" ? "" : "E shows " + (s ? s.textContent : "no status");
	})()`, failed))
	final := eval[map[string]string](b, "read the final cards", cardStatusesJS)
	wantFinal := map[string]string{done: "succeeded", running: "succeeded", queued: "succeeded", canceled: "canceled", failed: "failed"}
	if fmt.Sprint(final) != fmt.Sprint(wantFinal) {
		t.Errorf("the cards ended as %v, want %v", final, wantFinal)
	}
	details := eval[map[string]string](b, "read the final details", `Object.fromEntries([...document.querySelectorAll("[data-job]")].map(c =>
		[c.dataset.job, (c.querySelector("[data-detail]") || {}).textContent + " · bar " + (c.querySelector("progress:not([hidden])") ? c.querySelector("progress").value + "/" + c.querySelector("progress").max : "hidden")]))`)
	for _, id := range []string{done, running, queued} {
		if details[id] != "Done · bar 1/1" {
			t.Errorf("card %s ends with %q, want \"Done · bar 1/1\"", id, details[id])
		}
	}
	for id, what := range map[string]string{canceled: "Canceled", failed: failure} {
		if !strings.Contains(details[id], what) || !strings.HasSuffix(details[id], "bar hidden") {
			t.Errorf("card %s ends with %q, want %q and no progress bar", id, details[id], what)
		}
		if c := eval[bool](b, "look for a Cancel button", fmt.Sprintf(`!!document.querySelector('[data-job=%q] [data-cancel]')`, id)); c {
			t.Errorf("the card %s that ended %s still offers Cancel", id, final[id])
		}
	}
}

// cardStatusesJS maps each job card's id to the status it shows.
const cardStatusesJS = `Object.fromEntries([...document.querySelectorAll("[data-job]")].map(c =>
	[c.dataset.job, (c.querySelector("[data-status]") || {textContent: "(no status)"}).textContent.trim()]))`

// waitStatus polls the API from the page until generation id has status.
func (b *tab) waitStatus(id, status string) {
	b.t.Helper()
	deadline := time.Now().Add(stepTimeout)
	last := ""
	for time.Now().Before(deadline) {
		r := b.fetchJSON("read generation "+id, "GET", "/api/v1/generations/"+id, nil)
		var g struct {
			Status string `json:"status"`
		}
		json.Unmarshal(r.Body, &g)
		if last = g.Status; last == status {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	b.t.Fatalf("generation %s is %q after %s, want %s", id, last, stepTimeout, status)
}

// waitUntil evaluates js until it returns "" (done); any other string
// says what is still missing, and the last one is the failure message.
func (b *tab) waitUntil(what, js string) {
	b.t.Helper()
	deadline := time.Now().Add(stepTimeout)
	last := "(never evaluated)"
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(b.ctx, 2*time.Second)
		got, err := chromedp.Run(ctx, chromedp.Evaluate[string](js))
		cancel()
		if err == nil && got == "" {
			return
		}
		if err != nil {
			last = err.Error()
		} else {
			last = got
		}
		time.Sleep(25 * time.Millisecond)
	}
	b.t.Fatalf("%s: still not so after %s: %s", what, stepTimeout, last)
}

// TestGenerateCardCatchesUpAfterMissedEvents: events sent while the page
// had no stream open (between rendering the page and opening the stream,
// or while the network was away) are never sent again; the card must
// still reach the job's final state once the stream is back.
func TestGenerateCardCatchesUpAfterMissedEvents(t *testing.T) {
	gate := make(chan error)
	srv := newServer(t, serverOptions{Gate: gate})
	b := newTab(t)
	b.allow(0, "/api/v1/events") // blocked below on purpose
	b.signUp(srv, "catchup")
	b.navigate(srv.URL + "/generate")
	r := b.fetchJSON("submit a generation", "POST", "/api/v1/generations", map[string]any{
		"prompt": "Missed events", "width": 256, "height": 256, "steps": 2, "count": 1, "seed": 5})
	var g struct {
		ID string `json:"id"`
	}
	if r.Status != http.StatusAccepted || json.Unmarshal(r.Body, &g) != nil {
		t.Fatalf("submit: status %d: %s", r.Status, r.Body)
	}
	b.waitStatus(g.ID, "running")

	b.blockURL(srv.URL + "/api/v1/events")
	b.navigate(srv.URL + "/generate")
	select {
	case gate <- nil:
	case <-time.After(stepTimeout):
		t.Fatal("the job never reached the backend")
	}
	b.waitStatus(g.ID, "succeeded")
	if s := eval[map[string]string](b, "read the card", cardStatusesJS)[g.ID]; s != "running" {
		t.Fatalf("with the event stream blocked the card shows %q, want it still running (the test cannot tell catching up from live events)", s)
	}

	b.blockURL() // the stream reconnects by itself
	b.waitUntil("the card catches up to succeeded with its thumbnail", fmt.Sprintf(`(() => {
		const c = document.querySelector('[data-job=%q]');
		const s = c && c.querySelector("[data-status]");
		if (!s || s.textContent.trim() !== "succeeded") return "card shows " + (s ? s.textContent : "nothing");
		const i = c.querySelector("[data-images] img");
		return i && i.complete && i.naturalWidth > 0 ? "" : "no thumbnail shown";
	})()`, g.ID))
}

// blockURL makes the tab's requests to each of urls fail as if the network
// were down; with none, it lifts every block.
func (b *tab) blockURL(urls ...string) {
	b.t.Helper()
	var patterns []*network.BlockPattern
	for _, u := range urls {
		patterns = append(patterns, &network.BlockPattern{URLPattern: u, Block: true})
	}
	b.do(fmt.Sprintf("block %q", urls), chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := chromedp.Call(ctx, network.SetBlockedURLs, network.SetBlockedURLsParams{URLPatterns: patterns})
		return err
	}))
}
