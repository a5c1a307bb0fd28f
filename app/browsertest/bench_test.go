package browsertest

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
)

// seedImages makes n images for c through the real pipeline: generations
// of 4 images at side×side, submitted together, then every thumbnail
// fetched once so they exist before anything is measured.
func seedImages(tb testing.TB, c *apiClient, n, side int) []string {
	tb.Helper()
	var gens []string
	for made := 0; made < n; made += 4 {
		count := min(4, n-made)
		var g struct {
			ID string `json:"id"`
		}
		c.call(tb, "POST", "/api/v1/generations", map[string]any{"prompt": fmt.Sprintf("seeded picture %d, soft colours", made), "width": side, "height": side, "steps": 2, "count": count, "seed": made + 1}, http.StatusAccepted, &g)
		gens = append(gens, g.ID)
	}
	var ids []string
	for _, g := range gens {
		ids = append(ids, c.wait(tb, g)...)
	}
	for _, id := range ids {
		c.get(tb, "/api/v1/images/"+id+"/file?size=thumb")
	}
	return ids
}

// pageCost is what one first visit of a page costs: the HTML, the
// stylesheet, script and icon it links, and the thumbnails it shows.
type pageCost struct {
	html, assets, thumbs, total int
}

var linked = regexp.MustCompile(`(?:href|src)="(/static/[^"]+|/api/v1/images/[^"]+/file\?size=thumb)"`)

func firstLoad(tb testing.TB, c *apiClient, path string) pageCost {
	tb.Helper()
	body := c.get(tb, path)
	cost := pageCost{html: len(body)}
	seen := map[string]bool{}
	for _, m := range linked.FindAllSubmatch(body, -1) {
		u := string(m[1])
		if seen[u] {
			continue
		}
		seen[u] = true
		n := len(c.get(tb, u))
		if strings.HasPrefix(u, "/static/") {
			cost.assets += n
		} else {
			cost.thumbs += n
		}
	}
	cost.total = cost.html + cost.assets + cost.thumbs
	return cost
}

// serverTime times GET path through the handler itself, with the
// client's session cookie: server time only, no network.
func serverTime(b *testing.B, srv *server, c *apiClient, path string) {
	base, _ := url.Parse(srv.URL)
	cookies := c.hc.Jar.Cookies(base)
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		req := httptest.NewRequest("GET", path, nil)
		for _, ck := range cookies {
			req.AddCookie(ck)
		}
		rec := httptest.NewRecorder()
		srv.Handler.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("GET %s: status %d: %.200s", path, rec.Code, rec.Body)
		}
	}
	b.ReportMetric(float64(time.Since(start).Microseconds())/1000/float64(b.N), "ms/op")
}

// BenchmarkGalleryPage100 measures the gallery's first page when it holds
// 100 images (its page size): server time per request, and the bytes of
// a first visit (HTML + CSS/JS/icon + 100 thumbnails).
//
//	go test ./app/browsertest/ -run '^$' -bench GalleryPage100 -benchtime 200x
func BenchmarkGalleryPage100(b *testing.B) {
	srv := newServer(b, serverOptions{})
	c := srv.signupAPI(b, "bench")
	seedImages(b, c, 100, 512)
	cost := firstLoad(b, c, "/gallery")
	if n := thumbsOn(c, b, "/gallery"); n != 100 {
		b.Fatalf("the gallery shows %d thumbnails, want 100", n)
	}
	serverTime(b, srv, c, "/gallery")
	b.ReportMetric(float64(cost.html), "html-B")
	b.ReportMetric(float64(cost.thumbs), "thumbs-B")
	b.ReportMetric(float64(cost.total), "first-load-B")
}

// BenchmarkGeneratePage measures the generate page with ten finished jobs
// in its list.
//
//	go test ./app/browsertest/ -run '^$' -bench GeneratePage -benchtime 200x
func BenchmarkGeneratePage(b *testing.B) {
	srv := newServer(b, serverOptions{})
	c := srv.signupAPI(b, "bench")
	seedImages(b, c, 40, 256)
	cost := firstLoad(b, c, "/generate")
	serverTime(b, srv, c, "/generate")
	b.ReportMetric(float64(cost.html), "html-B")
	b.ReportMetric(float64(cost.total), "first-load-B")
}

var thumbRE = regexp.MustCompile(`src="/api/v1/images/[^"]+/file\?size=thumb"`)

func thumbsOn(c *apiClient, tb testing.TB, path string) int {
	return len(thumbRE.FindAll(c.get(tb, path), -1))
}

// TestGalleryPage100Budget holds the gallery's byte budget: a first visit
// of a page of 100 images (HTML, CSS, JS, icon and all 100 thumbnails,
// even those the browser would load lazily) moves under 1 MB.
func TestGalleryPage100Budget(t *testing.T) {
	srv := newServer(t, serverOptions{})
	c := srv.signupAPI(t, "budget")
	// 256 px originals give the same 256 px thumbnails as larger ones, for
	// a quarter of the drawing time.
	seedImages(t, c, 100, 256)
	if n := thumbsOn(c, t, "/gallery"); n != 100 {
		t.Fatalf("the gallery shows %d thumbnails, want 100", n)
	}
	cost := firstLoad(t, c, "/gallery")
	t.Logf("gallery of 100: html=%dB assets=%dB thumbs=%dB total=%dB", cost.html, cost.assets, cost.thumbs, cost.total)
	if cost.total >= 1<<20 {
		t.Errorf("a first visit of a 100-image gallery moves %d bytes, over the 1 MB budget (html %d, assets %d, thumbnails %d)", cost.total, cost.html, cost.assets, cost.thumbs)
	}
}
