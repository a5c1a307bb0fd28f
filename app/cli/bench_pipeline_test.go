package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"zimage/app/backend/backendfake"
	"zimage/app/config"
	zembed "zimage/embed"
)

// The pipeline benchmarks measure what Z Image adds between a person and
// their GPU, against the ComfyUI fake (real HTTP and websocket on loopback):
//
//	go test ./app/cli -run '^$' -bench Pipeline -benchtime 5x
//
// BenchmarkPipelineOverhead reports the end-to-end latency through Z Image
// (POST /api/v1/generations → "succeeded" event on /api/v1/events → the PNG
// downloaded) divided by the latency of the same fake called directly by a
// minimal ComfyUI client, at 8 steps × 250 ms (2 s per image), 1024×1024.
// BenchmarkPipelineReady reports p50/p99 of the time from the backend's last
// byte to the person's "succeeded" event, with a zero-time backend.

func BenchmarkPipelineOverhead(b *testing.B) {
	fake := backendfake.NewComfyUI(b, backendfake.ComfyUIConfig{StepDelay: 250 * time.Millisecond})
	zi := startBenchServer(b, fake.URL)
	var direct, through time.Duration
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		comfyDirect(b, fake.URL, int64(i+1))
		direct += time.Since(t0)
		t1 := time.Now()
		zi.generate(b, int64(i+1))
		through += time.Since(t1)
	}
	b.ReportMetric(float64(direct.Milliseconds())/float64(b.N), "direct-ms/op")
	b.ReportMetric(float64(through.Milliseconds())/float64(b.N), "zimage-ms/op")
	b.ReportMetric(float64(through)/float64(direct), "ratio")
}

func BenchmarkPipelineReady(b *testing.B) {
	fake := backendfake.NewComfyUI(b, backendfake.ComfyUIConfig{})
	zi := startBenchServer(b, fake.URL)
	var ready []time.Duration
	for i := 0; i < b.N; i++ {
		ready = append(ready, zi.generate(b, int64(i+1)))
	}
	sort.Slice(ready, func(i, j int) bool { return ready[i] < ready[j] })
	p := func(q float64) float64 { return float64(ready[int(q*float64(len(ready)-1))].Microseconds()) / 1000 }
	b.ReportMetric(p(.5), "ready-p50-ms")
	b.ReportMetric(p(.99), "ready-p99-ms")
}

type benchServer struct {
	base   string
	client *http.Client
	csrf   string
	events *bufio.Reader
}

func startBenchServer(b *testing.B, comfyURL string) *benchServer {
	b.Helper()
	cfg := config.Default()
	cfg.Server.DataDir = b.TempDir() + "/data"
	cfg.Server.Listen = "127.0.0.1:0"
	cfg.Backends = []config.Backend{{Name: "gpu0", Kind: "comfyui", URL: comfyURL, Slots: 1, Timeout: config.Duration(time.Minute)}}
	cfg.Queue.MaxQueuedPerUser = 1000
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan map[string]string, 1)
	done := make(chan error, 1)
	go func() { done <- serve(ctx, cfg, nil, discardLogger(), func(a map[string]string) { ready <- a }) }()
	b.Cleanup(func() { cancel(); <-done })
	var addrs map[string]string
	select {
	case addrs = <-ready:
	case err := <-done:
		b.Fatalf("serve: %v", err)
	}
	jar, _ := cookiejar.New(nil)
	s := &benchServer{base: "http://" + addrs["http"], client: &http.Client{Jar: jar}}
	body := `{"email":"bench@example.com","username":"bench","password":"velvet lantern orbit meadow","age_confirmed":true}`
	resp, err := s.client.Post(s.base+"/api/v1/auth/signup", "application/json", strings.NewReader(body))
	if err != nil || resp.StatusCode != 201 {
		b.Fatalf("signup: %v %v", err, resp)
	}
	var su struct {
		CSRF string `json:"csrf_token"`
	}
	json.NewDecoder(resp.Body).Decode(&su)
	resp.Body.Close()
	s.csrf = su.CSRF
	ev, err := s.client.Get(s.base + "/api/v1/events")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ev.Body.Close() })
	s.events = bufio.NewReader(ev.Body)
	return s
}

// generate makes one 1024×1024 image through Z Image and downloads it. It
// returns the time from the backend's last byte (the image's recorded
// finish) to the succeeded event's arrival.
func (s *benchServer) generate(b *testing.B, seed int64) time.Duration {
	req, _ := http.NewRequest("POST", s.base+"/api/v1/generations", strings.NewReader(fmt.Sprintf(`{"prompt":"a lighthouse at dusk","width":1024,"height":1024,"steps":8,"seed":%d}`, seed)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-CSRF-Token", s.csrf)
	resp, err := s.client.Do(req)
	if err != nil || resp.StatusCode != 202 {
		b.Fatalf("submit: %v %v", err, resp)
	}
	var g struct{ ID string }
	json.NewDecoder(resp.Body).Decode(&g)
	resp.Body.Close()
	var imageID string
	var arrived time.Time
	for imageID == "" {
		line, err := s.events.ReadString('\n')
		if err != nil {
			b.Fatalf("events: %v", err)
		}
		data, ok := strings.CutPrefix(line, "data: ")
		if !ok {
			continue
		}
		var e struct {
			Type, GenerationID, Message string
			ImageIDs                    []string `json:"image_ids"`
		}
		json.Unmarshal([]byte(data), &e)
		var raw map[string]any
		json.Unmarshal([]byte(data), &raw)
		if raw["generation_id"] != g.ID {
			continue
		}
		switch raw["type"] {
		case "succeeded":
			arrived = time.Now()
			imageID = e.ImageIDs[0]
		case "failed", "canceled":
			b.Fatalf("generation %v: %s", raw["type"], data)
		}
	}
	resp, err = s.client.Get(s.base + "/api/v1/images/" + imageID + "/file?format=png")
	if err != nil || resp.StatusCode != 200 {
		b.Fatalf("download: %v %v", err, resp)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	resp, err = s.client.Get(s.base + "/api/v1/images/" + imageID)
	if err != nil {
		b.Fatal(err)
	}
	var img struct {
		BackendFinishedAt time.Time `json:"backend_finished_at"`
	}
	json.NewDecoder(resp.Body).Decode(&img)
	resp.Body.Close()
	if img.BackendFinishedAt.IsZero() {
		b.Fatal("image has no backend_finished_at")
	}
	return arrived.Sub(img.BackendFinishedAt)
}

// comfyDirect runs one job against ComfyUI the way a minimal client would:
// websocket open, POST /prompt, wait for execution_success, /history, /view.
func comfyDirect(b *testing.B, base string, seed int64) {
	raw, err := zembed.FS.ReadFile("comfyui/z-image-turbo.json")
	if err != nil {
		b.Fatal(err)
	}
	var graph map[string]map[string]any
	json.Unmarshal(raw, &graph)
	graph["27"]["inputs"].(map[string]any)["text"] = "a lighthouse at dusk"
	graph["3"]["inputs"].(map[string]any)["seed"] = seed
	ctx := context.Background()
	clientID := fmt.Sprintf("bench-%d", seed)
	ws, _, err := websocket.Dial(ctx, strings.Replace(base, "http", "ws", 1)+"/ws?clientId="+clientID, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer ws.CloseNow()
	ws.SetReadLimit(64 << 20)
	body, _ := json.Marshal(map[string]any{"prompt": graph, "client_id": clientID})
	resp, err := http.Post(base+"/prompt", "application/json", bytes.NewReader(body))
	if err != nil || resp.StatusCode != 200 {
		b.Fatalf("prompt: %v %v", err, resp)
	}
	var pr struct {
		PromptID string `json:"prompt_id"`
	}
	json.NewDecoder(resp.Body).Decode(&pr)
	resp.Body.Close()
	for {
		typ, msg, err := ws.Read(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if typ == websocket.MessageText && bytes.Contains(msg, []byte(`"execution_success"`)) && bytes.Contains(msg, []byte(pr.PromptID)) {
			break
		}
	}
	resp, err = http.Get(base + "/history/" + pr.PromptID)
	if err != nil {
		b.Fatal(err)
	}
	var hist map[string]struct {
		Outputs map[string]struct {
			Images []struct{ Filename, Subfolder, Type string }
		}
	}
	json.NewDecoder(resp.Body).Decode(&hist)
	resp.Body.Close()
	for _, out := range hist[pr.PromptID].Outputs {
		for _, im := range out.Images {
			q := url.Values{"filename": {im.Filename}, "subfolder": {im.Subfolder}, "type": {im.Type}}
			resp, err := http.Get(base + "/view?" + q.Encode())
			if err != nil || resp.StatusCode != 200 {
				b.Fatalf("view: %v %v", err, resp)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}
}
