package browsertest

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// widths are the viewports every main page is checked at: a small phone
// and a laptop.
var widths = []int64{390, 1280}

// TestPages opens every main page as a visitor and as a signed-in person
// with a few images, at both widths: it saves full-page screenshots, fails
// on horizontal overflow at phone width and on serious or critical axe-core
// findings (light and dark colour schemes), and logs paint timings and
// transfer sizes of the generate and gallery pages.
func TestPages(t *testing.T) {
	srv := newServer(t, serverOptions{})
	b := newTab(t)
	b.allow(http.StatusNotFound, "/no-such-page")

	type pg struct{ name, path string }
	visitor := []pg{{"home-visitor", "/"}, {"login", "/login"}, {"signup", "/signup"}, {"privacy", "/privacy"}, {"404-visitor", "/no-such-page"}}
	b.navigate(srv.URL + "/privacy")
	for _, p := range visitor {
		b.checkPage(srv, p.name, p.path)
	}

	how := b.signUp(srv, "pages")
	t.Logf("sign-up: through the %s", how)
	ids := b.generateAPI("A quiet harbour at dawn, pages test", 512, 4)
	member := []pg{{"generate", "/generate"}, {"gallery", "/gallery"}, {"image", "/images/" + ids[0]}, {"404", "/no-such-page"}}
	for _, s := range []string{"profile", "password", "security", "api-keys", "privacy", "communications"} {
		member = append(member, pg{"settings-" + s, "/settings/" + s})
	}
	// The first account of a server is its admin. A ticket, a data-rights
	// request and an export fill the tables of the privacy, support and
	// request pages.
	ticket := b.fetchJSON("open a ticket", "POST", "/api/v1/tickets", map[string]any{"subject": "Lost image", "body": "It vanished from my gallery."})
	var tk struct {
		ID string `json:"id"`
	}
	if ticket.Status != http.StatusCreated || json.Unmarshal(ticket.Body, &tk) != nil {
		t.Fatalf("open a ticket: status %d: %s", ticket.Status, ticket.Body)
	}
	if r := b.fetchJSON("file a request", "POST", "/api/v1/me/requests", map[string]any{"kind": "access", "details": "Everything, please."}); r.Status != http.StatusCreated {
		t.Fatalf("file a request: status %d: %s", r.Status, r.Body)
	}
	member = append(member, pg{"support", "/support"}, pg{"support-ticket", "/support/tickets/" + tk.ID}, pg{"support-queue", "/support/queue"},
		pg{"support-queue-ticket", "/support/queue/" + tk.ID}, pg{"admin-users", "/admin/users"}, pg{"admin-backends", "/admin/backends"},
		pg{"admin-audit", "/admin/audit"}, pg{"admin-requests", "/admin/requests?status=all"})
	for _, p := range member {
		b.checkPage(srv, p.name, p.path)
	}

	b.viewport(1280)
	b.disableCache()
	for _, p := range []string{"/generate", "/gallery"} {
		m := b.measure(srv.URL + p)
		t.Logf("perf %-9s server=%.1fms html_transfer=%dB html_body=%dB first_load_transfer=%dB resources=%d first_paint=%.0fms fcp=%.0fms lcp=%.0fms",
			p, m.ServerMs, m.HTMLTransfer, m.HTMLBody, m.TotalTransfer, m.Resources, m.FirstPaint, m.FCP, m.LCP)
		if m.FCP <= 0 || m.LCP <= 0 {
			t.Errorf("%s: chromium reported no first contentful paint (%.0f) or largest contentful paint (%.0f)", p, m.FCP, m.LCP)
		}
		if p == "/gallery" && m.TotalTransfer > 1<<20 {
			t.Errorf("/gallery moved %d bytes on first load, more than the 1 MB budget", m.TotalTransfer)
		}
	}
}

// checkPage screenshots, overflow-checks and axe-checks one page. A page
// that does not exist yet (404 where a page is expected) is logged and
// left out, so the suite follows pages still being built.
func (b *tab) checkPage(srv *server, name, path string) {
	b.t.Helper()
	want404 := strings.HasPrefix(name, "404")
	for _, w := range widths {
		b.viewport(w)
		res := run(b, "open "+path, chromedp.NavigateResponse(srv.URL+path))
		if res == nil {
			b.t.Fatalf("%s: no response", path)
		}
		if got := int(res.Status); want404 != (got == http.StatusNotFound) || (!want404 && got != http.StatusOK) {
			if !want404 && got == http.StatusNotFound {
				b.t.Logf("page %s (%s) does not exist yet: not checked", name, path)
				return
			}
			b.t.Errorf("%s answered %d", path, got)
			return
		}
		b.waitFor("wait for the images of "+path, `[...document.images].every(i => i.loading === "lazy" || i.complete)`)
		// A full-page capture does not scroll, so lazy images below the
		// fold would show as holes.
		b.do("load lazy images", chromedp.Evaluate[chromedp.Void](`document.querySelectorAll('img[loading="lazy"]').forEach(i => i.loading = "eager")`))
		b.waitFor("wait for every image of "+path, `[...document.images].every(i => i.complete)`)
		file := b.screenshot(name, w)
		if w == 390 {
			if over := b.overflowX(); len(over) > 0 {
				b.t.Errorf("%s is wider than a 390 px phone (see %s); too wide:%s", path, filepath.Base(file), joinLines(over))
			}
		}
	}
	for _, scheme := range []string{"light", "dark"} {
		b.colorScheme(scheme)
		for _, v := range b.axe() {
			if v.Impact == "serious" || v.Impact == "critical" {
				b.t.Errorf("axe (%s, %s): %s [%s] %s (%s)%s", path, scheme, v.ID, v.Impact, v.Help, v.HelpURL, joinLines(v.targets()))
			}
		}
	}
	b.colorScheme("light")
}

type axeViolation struct {
	ID      string `json:"id"`
	Impact  string `json:"impact"`
	Help    string `json:"help"`
	HelpURL string `json:"helpUrl"`
	Nodes   []struct {
		Target  string `json:"target"`
		Summary string `json:"summary"`
	} `json:"nodes"`
}

func (v axeViolation) targets() []string {
	var out []string
	for _, n := range v.Nodes {
		out = append(out, n.Target+": "+strings.ReplaceAll(n.Summary, "\n", " "))
	}
	return out
}

var (
	axeOnce   sync.Once
	axeSource string
	axeErr    error
)

// axe runs the vendored axe-core in the current page against WCAG 2.x A
// and AA. It goes in through DevTools' Runtime.evaluate, which the page's
// CSP (no inline or foreign scripts) does not apply to.
func (b *tab) axe() []axeViolation {
	b.t.Helper()
	axeOnce.Do(func() {
		var data []byte
		data, axeErr = os.ReadFile(filepath.Join("testdata", "axe", "axe.min.js"))
		axeSource = string(data)
	})
	if axeErr != nil {
		b.t.Fatalf("read the vendored axe-core: %v", axeErr)
	}
	if !eval[bool](b, "look for axe", `typeof window.axe === "object"`) {
		b.do("inject axe-core", chromedp.Evaluate[chromedp.Void](axeSource))
	}
	return eval[[]axeViolation](b, "run axe-core", `axe.run(document, {
		runOnly: {type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]},
		resultTypes: ["violations"],
	}).then(r => r.violations.map(v => ({id: v.id, impact: v.impact || "", help: v.help, helpUrl: v.helpUrl,
		nodes: v.nodes.map(n => ({target: n.target.join(" "), summary: n.failureSummary || ""}))})))`)
}

// pageMetrics are the figures the browser reports for one page load.
type pageMetrics struct {
	ServerMs      float64 `json:"serverMs"`
	HTMLTransfer  int64   `json:"htmlTransfer"`
	HTMLBody      int64   `json:"htmlBody"`
	TotalTransfer int64   `json:"totalTransfer"`
	Resources     int     `json:"resources"`
	FirstPaint    float64 `json:"fp"`
	FCP           float64 `json:"fcp"`
	LCP           float64 `json:"lcp"`
}

// measure loads url and reads its navigation, resource, paint and
// largest-contentful-paint entries.
func (b *tab) measure(url string) pageMetrics {
	b.t.Helper()
	b.navigate(url)
	b.waitFor("wait for the images of "+url, `[...document.images].every(i => i.loading === "lazy" || i.complete)`)
	return eval[pageMetrics](b, "read performance entries of "+url, `(async () => {
		const nav = performance.getEntriesByType("navigation")[0];
		// Paint entries arrive once the frame is presented, which can be
		// after the load event.
		const paints = await new Promise(resolve => {
			const got = () => performance.getEntriesByType("paint");
			if (got().length >= 2) return resolve(got());
			new PerformanceObserver(() => { if (got().length >= 2) resolve(got()); }).observe({type: "paint", buffered: true});
			setTimeout(() => resolve(got()), 2000);
		});
		const paint = Object.fromEntries(paints.map(e => [e.name, e.startTime]));
		const lcp = await new Promise(resolve => {
			let last = 0;
			new PerformanceObserver(l => { for (const e of l.getEntries()) last = e.startTime; })
				.observe({type: "largest-contentful-paint", buffered: true});
			setTimeout(() => resolve(last), 300);
		});
		const res = performance.getEntriesByType("resource");
		return {
			serverMs: nav.responseStart - nav.requestStart,
			htmlTransfer: nav.transferSize, htmlBody: nav.encodedBodySize,
			totalTransfer: nav.transferSize + res.reduce((s, r) => s + r.transferSize, 0),
			resources: res.length,
			fp: paint["first-paint"] || 0, fcp: paint["first-contentful-paint"] || 0, lcp,
		};
	})()`)
}

// generateAPI makes images through the JSON API from inside the signed-in
// browser and waits for them.
func (b *tab) generateAPI(prompt string, side, count int) []string {
	b.t.Helper()
	b.navigate(b.origin() + "/generate")
	r := b.fetchJSON("submit a generation", "POST", "/api/v1/generations", map[string]any{"prompt": prompt, "width": side, "height": side, "steps": 4, "count": count, "seed": 7})
	var g struct {
		ID string `json:"id"`
	}
	if r.Status != http.StatusAccepted || json.Unmarshal(r.Body, &g) != nil {
		b.t.Fatalf("submit a generation: status %d: %s", r.Status, r.Body)
	}
	deadline := time.Now().Add(stepTimeout)
	for time.Now().Before(deadline) {
		r := b.fetchJSON("read the generation", "GET", "/api/v1/generations/"+g.ID, nil)
		var st struct {
			Status   string   `json:"status"`
			ImageIDs []string `json:"image_ids"`
		}
		json.Unmarshal(r.Body, &st)
		switch st.Status {
		case "succeeded":
			return st.ImageIDs
		case "failed", "canceled":
			b.t.Fatalf("generation %s ended %s: %s", g.ID, st.Status, r.Body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	b.t.Fatalf("generation %s did not end within %s", g.ID, stepTimeout)
	return nil
}

func (b *tab) origin() string {
	b.t.Helper()
	return eval[string](b, "read the origin", `location.origin`)
}
