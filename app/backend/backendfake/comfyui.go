package backendfake

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"path"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// ComfyFailure selects a failure the fake ComfyUI shows.
type ComfyFailure string

const (
	ComfyOK            ComfyFailure = ""
	ComfyHTTP500       ComfyFailure = "http500"        // every route answers aiohttp's bare 500
	ComfyGarbage       ComfyFailure = "garbage"        // every route answers 200 with an HTML page
	ComfyOOM           ComfyFailure = "oom"            // execution_error with torch.OutOfMemoryError at FailAtStep
	ComfyHang          ComfyFailure = "hang"           // stops at FailAtStep until interrupted
	ComfyDie           ComfyFailure = "die"            // the process dies at FailAtStep: listener and all connections close
	ComfyDropWebsocket ComfyFailure = "drop_websocket" // the prompt's websocket closes at FailAtStep; the job goes on
)

// Files the fake's loaders have installed unless the config says otherwise.
const (
	ComfyDefaultUNet = "z_image_turbo_bf16.safetensors"
	ComfyDefaultCLIP = "qwen_3_4b.safetensors"
	ComfyDefaultVAE  = "ae.safetensors"
)

// ComfyUIConfig holds the fake's knobs. Change them while it runs with Set.
type ComfyUIConfig struct {
	StepDelay time.Duration // time per sampler step
	LoadDelay time.Duration // model load before the first prompt after start runs
	Models    []string      // installed diffusion models (UNETLoader.unet_name); nil means ComfyDefaultUNet, empty none
	CLIPs     []string      // installed text encoders (CLIPLoader.clip_name); nil means ComfyDefaultCLIP, empty none
	VAEs      []string      // installed VAEs (VAELoader.vae_name); nil means ComfyDefaultVAE, empty none
	Previews  bool          // send a binary preview frame after every step, as with --preview-method auto
	Fail      ComfyFailure
	// FailAtStep is the sampler step (1-based) at which Fail strikes; 0 means 1.
	FailAtStep int
	// OldProgress plays a build from before the progress registry (0.3.43
	// and older): no progress_state, and previews only as event 1, sent
	// after the step's progress.
	OldProgress bool
	// GlobalInterrupt plays a build before 0.3.57: POST /interrupt ignores
	// prompt_id and stops whatever prompt runs.
	GlobalInterrupt bool
	// OldErrorSchema answers 400s as pre-2025 builds did: "error" is a bare
	// string and an empty node_errors is [].
	OldErrorSchema bool
}

// ComfyUI is a fake ComfyUI server on a loopback port.
type ComfyUI struct {
	// process counts requests as "METHOD /route" with any /api prefix
	// removed.
	*process
	wake chan struct{} // a prompt was queued
	done chan struct{} // the worker has returned

	mu         sync.Mutex
	cfg        ComfyUIConfig
	origins    []string
	interrupts []string
	deleted    []string
	forgotten  []string // prompt ids POST /history {"delete":[…]} named
	sockets    map[string]*comfySocket
	pending    []*comfyPrompt
	running    *comfyPrompt
	history    map[string]map[string]any
	order      []string // history ids, oldest first
	files      map[string][]byte
	counter    int // SaveImage's file counter
	number     int // queue number counter
	loaded     bool
}

type comfySocket struct {
	conn *websocket.Conn
	// metadata is set when the client sent feature_flags supports_preview_metadata.
	metadata bool
}

type comfyPrompt struct {
	id       string
	number   int
	graph    map[string]comfyNode
	clientID string
	extra    map[string]any
	outputs  []string
	stop     chan struct{} // closed by /interrupt
	stopOnce sync.Once
}

func (p *comfyPrompt) interrupt() { p.stopOnce.Do(func() { close(p.stop) }) }

// StartComfyUI starts a fake ComfyUI on 127.0.0.1 with a free port.
func StartComfyUI(cfg ComfyUIConfig) (*ComfyUI, error) {
	p, err := listen()
	if err != nil {
		return nil, err
	}
	f := &ComfyUI{
		process: p,
		wake:    make(chan struct{}, 1),
		done:    make(chan struct{}),
		cfg:     cfg,
		sockets: map[string]*comfySocket{},
		history: map[string]map[string]any{},
		files:   map[string][]byte{},
	}
	p.serve(f)
	go f.work()
	return f, nil
}

// NewComfyUI starts a fake for a test and closes it when the test ends.
func NewComfyUI(tb testing.TB, cfg ComfyUIConfig) *ComfyUI {
	tb.Helper()
	f, err := StartComfyUI(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(f.Close)
	return f
}

// Set changes knobs while the fake runs.
func (f *ComfyUI) Set(change func(*ComfyUIConfig)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	change(&f.cfg)
}

func (f *ComfyUI) config() ComfyUIConfig {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.cfg
}

// Kill makes the fake behave like a ComfyUI process that died: the port
// refuses connections and open connections, websockets included, drop.
func (f *ComfyUI) Kill() {
	f.kill.Do(func() {
		f.mu.Lock()
		close(f.dead)
		f.mu.Unlock()
		_ = f.ln.Close() // in case Serve has not started yet
		_ = f.srv.Close()
		f.mu.Lock()
		socks := f.sockets
		f.sockets = map[string]*comfySocket{}
		f.mu.Unlock()
		for _, s := range socks {
			s.conn.CloseNow()
		}
	})
}

// Close kills the fake and waits for its worker to stop.
func (f *ComfyUI) Close() {
	f.Kill()
	<-f.done
}

// Origins returns the Origin header of every request that carried one.
func (f *ComfyUI) Origins() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.origins...)
}

// Interrupts returns the prompt_id of every POST /interrupt ("" for a global one).
func (f *ComfyUI) Interrupts() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.interrupts...)
}

// Files returns the path of every image the server keeps on disk, as
// "output/…" or "temp/…".
func (f *ComfyUI) Files() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]string, 0, len(f.files))
	for k := range f.files {
		out = append(out, k)
	}
	return out
}

// Deleted returns every prompt_id a POST /queue {"delete":[…]} named.
func (f *ComfyUI) Deleted() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.deleted...)
}

// Status says where a prompt is: "pending", "running", the history
// status_str ("success" or "error"), or "unknown".
func (f *ComfyUI) Status(promptID string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.running != nil && f.running.id == promptID {
		return "running"
	}
	for _, p := range f.pending {
		if p.id == promptID {
			return "pending"
		}
	}
	if h, ok := f.history[promptID]; ok {
		return h["status"].(map[string]any)["status_str"].(string)
	}
	return "unknown"
}

// ServeHTTP applies ComfyUI's middleware (the /api alias and the origin
// check), then the failure knobs, then the route.
func (f *ComfyUI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	route := r.URL.Path
	if strings.HasPrefix(route, "/api/") {
		route = route[len("/api"):]
	}
	f.mu.Lock()
	f.count(r.Method + " " + route)
	if o := r.Header.Get("Origin"); o != "" {
		f.origins = append(f.origins, o)
	}
	fail := f.cfg.Fail
	f.mu.Unlock()

	if comfyOriginRejected(r.Host, r.Header.Get("Origin")) {
		w.WriteHeader(http.StatusForbidden)
		return
	}
	switch fail {
	case ComfyHTTP500:
		http.Error(w, "500 Internal Server Error\n\nServer got itself in trouble", http.StatusInternalServerError)
		return
	case ComfyGarbage:
		w.Header().Set("Content-Type", "text/html")
		_, _ = io.WriteString(w, "<html><body><h1>It works!</h1></body></html>")
		return
	}
	switch {
	case route == "/ws" && r.Method == http.MethodGet:
		f.serveWS(w, r)
	case route == "/prompt" && r.Method == http.MethodPost:
		f.postPrompt(w, r)
	case route == "/prompt" && r.Method == http.MethodGet:
		f.writeJSON(w, 200, map[string]any{"exec_info": map[string]any{"queue_remaining": f.remaining()}})
	case route == "/history" && r.Method == http.MethodPost:
		f.postHistory(w, r)
	case route == "/history" && r.Method == http.MethodGet:
		f.getHistory(w, r, "")
	case strings.HasPrefix(route, "/history/") && r.Method == http.MethodGet:
		f.getHistory(w, r, strings.TrimPrefix(route, "/history/"))
	case route == "/view" && r.Method == http.MethodGet:
		f.view(w, r)
	case route == "/queue" && r.Method == http.MethodGet:
		f.getQueue(w)
	case route == "/queue" && r.Method == http.MethodPost:
		f.postQueue(w, r)
	case route == "/interrupt" && r.Method == http.MethodPost:
		f.postInterrupt(w, r)
	case route == "/system_stats" && r.Method == http.MethodGet:
		f.writeJSON(w, 200, comfySystemStats)
	case route == "/object_info" && r.Method == http.MethodGet:
		f.writeJSON(w, 200, f.objectInfo(""))
	case strings.HasPrefix(route, "/object_info/") && r.Method == http.MethodGet:
		f.writeJSON(w, 200, f.objectInfo(strings.TrimPrefix(route, "/object_info/")))
	default:
		http.Error(w, "404: Not Found", http.StatusNotFound)
	}
}

// comfyOriginRejected mirrors server.py create_origin_only_middleware: a
// loopback Host with an Origin naming another host is refused, which stops
// web pages from queueing prompts on a local ComfyUI.
func comfyOriginRejected(host, origin string) bool {
	if host == "" || origin == "" {
		return false
	}
	o, err := url.Parse(origin)
	if err != nil {
		return false
	}
	h, err := url.Parse("//" + strings.ToLower(host))
	if err != nil {
		return false
	}
	hostDomain, originDomain := strings.ToLower(host), strings.ToLower(o.Host)
	if o.Port() == "" {
		hostDomain = h.Hostname()
	}
	if h.Port() == "" {
		originDomain = strings.ToLower(o.Hostname())
	}
	ip := net.ParseIP(h.Hostname())
	loopback := h.Hostname() == "localhost" || (ip != nil && ip.IsLoopback())
	return loopback && hostDomain != "" && originDomain != "" && hostDomain != originDomain
}

func (f *ComfyUI) writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (f *ComfyUI) remaining() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := len(f.pending)
	if f.running != nil {
		n++
	}
	return n
}

var comfyUUIDPattern = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

func comfyNewUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// postPrompt is server.py post_prompt plus execution.py validate_prompt.
func (f *ComfyUI) postPrompt(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Prompt    map[string]json.RawMessage `json:"prompt"`
		ClientID  string                     `json:"client_id"`
		PromptID  *string                    `json:"prompt_id"`
		Number    *float64                   `json:"number"`
		Front     bool                       `json:"front"`
		ExtraData map[string]any             `json:"extra_data"`
	}
	// aiohttp's request.json() raising is an unhandled exception: a bare 500.
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		http.Error(w, "500 Internal Server Error\n\nServer got itself in trouble", http.StatusInternalServerError)
		return
	}
	cfg := f.config()
	if body.Prompt == nil {
		f.reject(w, cfg, comfyErr("no_prompt", "No prompt provided", "No prompt provided"), nil)
		return
	}
	id := comfyNewUUID()
	if body.PromptID != nil {
		if !comfyUUIDPattern.MatchString(*body.PromptID) {
			f.reject(w, cfg, comfyErr("invalid_prompt_id", "Invalid prompt_id: must be a canonical lowercase UUID", *body.PromptID), nil)
			return
		}
		id = *body.PromptID
	}
	graph, outputs, topErr, nodeErrs := f.validate(body.Prompt, cfg)
	if topErr != nil {
		f.reject(w, cfg, topErr, nodeErrs)
		return
	}
	extra := body.ExtraData
	if extra == nil {
		extra = map[string]any{}
	}
	if body.ClientID != "" {
		extra["client_id"] = body.ClientID
	}
	f.mu.Lock()
	number := f.number
	f.number++
	if body.Number != nil {
		number = int(*body.Number)
	}
	if body.Front {
		number = -number
	}
	p := &comfyPrompt{id: id, number: number, graph: graph, clientID: body.ClientID, extra: extra, outputs: outputs, stop: make(chan struct{})}
	f.pending = append(f.pending, p)
	f.mu.Unlock()
	select {
	case f.wake <- struct{}{}:
	default:
	}
	f.broadcastStatus()
	if nodeErrs == nil {
		nodeErrs = map[string]any{}
	}
	f.writeJSON(w, 200, map[string]any{"prompt_id": id, "number": number, "node_errors": nodeErrs})
}

func comfyErr(typ, message, details string) map[string]any {
	return map[string]any{"type": typ, "message": message, "details": details, "extra_info": map[string]any{}}
}

// reject answers 400 in the schema the fake is set to speak.
func (f *ComfyUI) reject(w http.ResponseWriter, cfg ComfyUIConfig, top map[string]any, nodeErrs map[string]any) {
	var errValue, nodes any = top, nodeErrs
	if nodes == nil {
		nodes = map[string]any{}
	}
	if cfg.OldErrorSchema {
		errValue = top["message"]
		if top["type"] == "no_prompt" {
			errValue = "no prompt"
		}
		if len(nodeErrs) == 0 {
			nodes = []any{}
		}
	}
	f.writeJSON(w, http.StatusBadRequest, map[string]any{"error": errValue, "node_errors": nodes})
}

func (f *ComfyUI) getHistory(w http.ResponseWriter, r *http.Request, id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]any{}
	if id != "" {
		if h, ok := f.history[id]; ok {
			out[id] = h
		}
	} else {
		ids := f.order
		if n, err := strconv.Atoi(r.URL.Query().Get("max_items")); err == nil && n >= 0 && n < len(ids) {
			ids = ids[len(ids)-n:]
		}
		for _, id := range ids {
			out[id] = f.history[id]
		}
	}
	f.writeJSON(w, 200, out)
}

// view is server.py's /view: 400 for a filename that climbs out, 403 for a
// subfolder that does, 404 for a missing file.
func (f *ComfyUI) view(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	name, sub, typ := q.Get("filename"), q.Get("subfolder"), q.Get("type")
	if typ == "" {
		typ = "output"
	}
	if name == "" || strings.HasPrefix(name, "/") || strings.Contains(name, "..") {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	if typ != "output" && typ != "input" && typ != "temp" {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	if strings.Contains(sub, "..") || path.IsAbs(sub) {
		w.WriteHeader(http.StatusForbidden)
		return
	}
	f.mu.Lock()
	data, ok := f.files[typ+"/"+path.Join(sub, name)]
	f.mu.Unlock()
	if !ok {
		w.WriteHeader(http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "image/png")
	w.Header().Set("Content-Disposition", fmt.Sprintf("filename=%q", name))
	_, _ = w.Write(data)
}

func (f *ComfyUI) getQueue(w http.ResponseWriter) {
	f.mu.Lock()
	defer f.mu.Unlock()
	item := func(p *comfyPrompt) []any { return []any{p.number, p.id, p.graph, p.extra, p.outputs} }
	running, pending := []any{}, []any{}
	if f.running != nil {
		running = append(running, item(f.running))
	}
	for _, p := range f.pending {
		pending = append(pending, item(p))
	}
	f.writeJSON(w, 200, map[string]any{"queue_running": running, "queue_pending": pending})
}

func (f *ComfyUI) postQueue(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Delete []string `json:"delete"`
		Clear  bool     `json:"clear"`
	}
	_ = json.NewDecoder(r.Body).Decode(&body)
	f.mu.Lock()
	f.deleted = append(f.deleted, body.Delete...)
	kept := f.pending[:0]
	for _, p := range f.pending {
		if !body.Clear && !contains(body.Delete, p.id) {
			kept = append(kept, p)
		}
	}
	f.pending = kept
	f.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}

// postHistory is server.py post_history: {"delete":[ids]} drops those
// entries, {"clear":true} all of them.
func (f *ComfyUI) postHistory(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Delete []string `json:"delete"`
		Clear  bool     `json:"clear"`
	}
	_ = json.NewDecoder(r.Body).Decode(&body)
	f.mu.Lock()
	f.forgotten = append(f.forgotten, body.Delete...)
	kept := f.order[:0]
	for _, id := range f.order {
		if body.Clear || contains(body.Delete, id) {
			delete(f.history, id)
			continue
		}
		kept = append(kept, id)
	}
	f.order = kept
	f.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}

// HistoryDeleted returns every prompt_id a POST /history {"delete":[…]} named.
func (f *ComfyUI) HistoryDeleted() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.forgotten...)
}

// postInterrupt stops the running prompt; with a prompt_id, only if it is
// that one (the targeted form, since 2025-09).
func (f *ComfyUI) postInterrupt(w http.ResponseWriter, r *http.Request) {
	var body struct {
		PromptID string `json:"prompt_id"`
	}
	_ = json.NewDecoder(r.Body).Decode(&body)
	f.mu.Lock()
	f.interrupts = append(f.interrupts, body.PromptID)
	if p := f.running; p != nil && (body.PromptID == "" || body.PromptID == p.id || f.cfg.GlobalInterrupt) {
		p.interrupt()
	}
	f.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

var comfySystemStats = map[string]any{
	"system": map[string]any{
		"os": "posix", "ram_total": 67108864000, "ram_free": 50000000000,
		"comfyui_version": "0.3.75", "required_frontend_version": "1.32.9",
		"python_version": "3.12.3 (main) [GCC 13.2.0]", "pytorch_version": "2.9.1+cu128",
		"embedded_python": false, "argv": []string{"main.py"},
	},
	"devices": []map[string]any{{
		"name": "cuda:0 Fake GPU : cudaMallocAsync", "type": "cuda", "index": 0,
		"vram_total": 25769803776, "vram_free": 24000000000,
		"torch_vram_total": 0, "torch_vram_free": 0,
	}},
}

// serveWS is server.py websocket_handler: status with sid on connect, then
// the client's events; feature_flags from the client switches previews to
// the metadata form.
func (f *ComfyUI) serveWS(w http.ResponseWriter, r *http.Request) {
	sid := r.URL.Query().Get("clientId")
	if sid == "" {
		sid = strings.ReplaceAll(comfyNewUUID(), "-", "")
	}
	// The origin check already ran in ServeHTTP, with ComfyUI's own rules.
	conn, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
	if err != nil {
		return
	}
	sock := &comfySocket{conn: conn}
	f.mu.Lock()
	select {
	case <-f.dead: // killed while this socket was being upgraded
		f.mu.Unlock()
		conn.CloseNow()
		return
	default:
	}
	if old := f.sockets[sid]; old != nil {
		old.conn.CloseNow()
	}
	f.sockets[sid] = sock
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		if f.sockets[sid] == sock {
			delete(f.sockets, sid)
		}
		f.mu.Unlock()
		conn.CloseNow()
	}()
	f.send(sid, "status", map[string]any{"status": map[string]any{"exec_info": map[string]any{"queue_remaining": f.remaining()}}, "sid": sid})
	for {
		typ, data, err := conn.Read(context.Background())
		if err != nil {
			return
		}
		var msg struct {
			Type string `json:"type"`
			Data struct {
				SupportsPreviewMetadata bool `json:"supports_preview_metadata"`
			} `json:"data"`
		}
		if typ != websocket.MessageText || json.Unmarshal(data, &msg) != nil || msg.Type != "feature_flags" || f.config().OldProgress {
			continue
		}
		f.mu.Lock()
		sock.metadata = msg.Data.SupportsPreviewMetadata
		f.mu.Unlock()
		f.send(sid, "feature_flags", map[string]any{"supports_preview_metadata": true, "max_upload_size": 104857600})
	}
}

// send writes one {"type","data"} frame to a client, or to every client
// when sid is "". A client that is not connected misses it, as in ComfyUI.
func (f *ComfyUI) send(sid, typ string, data any) {
	frame, err := json.Marshal(map[string]any{"type": typ, "data": data})
	if err != nil {
		return
	}
	for _, s := range f.socketsFor(sid) {
		f.write(s, websocket.MessageText, frame)
	}
}

func (f *ComfyUI) socketsFor(sid string) []*comfySocket {
	f.mu.Lock()
	defer f.mu.Unlock()
	if sid != "" {
		if s := f.sockets[sid]; s != nil {
			return []*comfySocket{s}
		}
		return nil
	}
	all := make([]*comfySocket, 0, len(f.sockets))
	for _, s := range f.sockets {
		all = append(all, s)
	}
	return all
}

func (f *ComfyUI) write(s *comfySocket, typ websocket.MessageType, frame []byte) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.conn.Write(ctx, typ, frame); err != nil && !errors.Is(err, net.ErrClosed) {
		s.conn.CloseNow()
	}
}

func (f *ComfyUI) broadcastStatus() {
	f.send("", "status", map[string]any{"status": map[string]any{"exec_info": map[string]any{"queue_remaining": f.remaining()}}})
}

func comfyNow() int64 { return time.Now().UnixMilli() }
