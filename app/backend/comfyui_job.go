package backend

// Following one ComfyUI job after it is posted: the websocket events, the
// /history fallback, and fetching the finished images through /view.

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/coder/websocket"
)

// Binary websocket event types (ComfyUI server.py BinaryEventTypes).
const (
	comfyBinPreview             = 1
	comfyBinPreviewWithMetadata = 4
)

// comfyEvent is one websocket message, reduced to what a job needs.
type comfyEvent struct {
	Type     string
	PromptID string
	Data     json.RawMessage
	// Set for binary preview frames only.
	Preview     []byte
	PreviewType string
}

// comfySocket reads one client_id's websocket on its own goroutine; events
// is closed when the socket ends for any reason.
type comfySocket struct {
	conn   *websocket.Conn
	events chan comfyEvent
	quit   chan struct{}
}

func (s *comfySocket) close() {
	close(s.quit)
	s.conn.CloseNow()
}

// listen opens /ws for clientID. A server that does not answer at all is
// unavailable; one that answers but will not upgrade (a proxy without
// websocket support) gets a nil socket, and the job is followed by polling.
// comfyHelloTimeout bounds the wait for ComfyUI's first websocket message.
const comfyHelloTimeout = 5 * time.Second

func (c *comfyUI) listen(ctx context.Context, clientID string) (*comfySocket, error) {
	u := c.base.JoinPath("ws")
	switch u.Scheme {
	case "https":
		u.Scheme = "wss"
	default:
		u.Scheme = "ws"
	}
	u.RawQuery = url.Values{"clientId": {clientID}}.Encode()
	// coder/websocket sends no Origin header unless told to, which keeps
	// ComfyUI's origin check quiet.
	conn, resp, err := websocket.Dial(ctx, u.String(), &websocket.DialOptions{HTTPClient: c.client})
	if err != nil {
		if resp == nil {
			return nil, c.unavailable(err)
		}
		return nil, nil
	}
	conn.SetReadLimit(comfyWSReadLimit)
	// ComfyUI registers the socket, then sends a status message with its
	// sid. Posting the prompt before that message arrives races the
	// registration: a fast job's events would go nowhere. Wait for it
	// (bounded); without it, the job is followed by polling /history.
	first, cancel := context.WithTimeout(ctx, comfyHelloTimeout)
	_, _, err = conn.Read(first)
	cancel()
	if err != nil {
		conn.CloseNow()
		return nil, nil
	}
	// Ask for previews that carry their prompt_id (event 4); builds that do
	// not know the flag ignore it and keep sending event 1.
	_ = conn.Write(ctx, websocket.MessageText, []byte(`{"type":"feature_flags","data":{"supports_preview_metadata":true}}`))
	s := &comfySocket{conn: conn, events: make(chan comfyEvent, 64), quit: make(chan struct{})}
	go s.read(ctx)
	return s, nil
}

func (s *comfySocket) read(ctx context.Context) {
	defer close(s.events)
	for {
		typ, data, err := s.conn.Read(ctx)
		if err != nil {
			return
		}
		ev, ok := comfyParseFrame(typ, data)
		if !ok {
			continue
		}
		select {
		case s.events <- ev:
		case <-s.quit:
			return
		}
	}
}

func comfyParseFrame(typ websocket.MessageType, data []byte) (comfyEvent, bool) {
	if typ == websocket.MessageText {
		var ev comfyEvent
		if json.Unmarshal(data, &ev) != nil {
			return ev, false
		}
		var ids struct {
			PromptID string `json:"prompt_id"`
		}
		_ = json.Unmarshal(ev.Data, &ids)
		ev.PromptID = ids.PromptID
		return ev, true
	}
	if len(data) < 8 {
		return comfyEvent{}, false
	}
	kind, payload := binary.BigEndian.Uint32(data), data[4:]
	switch kind {
	case comfyBinPreview:
		mime := "image/jpeg"
		if binary.BigEndian.Uint32(payload) == 2 {
			mime = "image/png"
		}
		return comfyEvent{Type: "preview", Preview: payload[4:], PreviewType: mime}, true
	case comfyBinPreviewWithMetadata:
		n := int(binary.BigEndian.Uint32(payload))
		if n > len(payload)-4 {
			return comfyEvent{}, false
		}
		var meta struct {
			PromptID  string `json:"prompt_id"`
			ImageType string `json:"image_type"`
		}
		_ = json.Unmarshal(payload[4:4+n], &meta)
		img := payload[4+n:]
		if !strings.HasPrefix(meta.ImageType, "image/") {
			meta.ImageType = http.DetectContentType(img)
		}
		return comfyEvent{Type: "preview", PromptID: meta.PromptID, Preview: img, PreviewType: meta.ImageType}, true
	}
	return comfyEvent{}, false
}

// comfyHistory is one prompt's entry in GET /history/{id}.
type comfyHistory struct {
	Outputs map[string]map[string]json.RawMessage `json:"outputs"`
	Status  *struct {
		StatusStr string            `json:"status_str"`
		Completed bool              `json:"completed"`
		Messages  []json.RawMessage `json:"messages"`
	} `json:"status"`
}

// comfyExecError is the data of an execution_error event or history message.
type comfyExecError struct {
	NodeID           string `json:"node_id"`
	NodeType         string `json:"node_type"`
	ExceptionType    string `json:"exception_type"`
	ExceptionMessage string `json:"exception_message"`
}

// wait follows the job until /history holds its result. The websocket only
// tells us when to look: the history entry is written after
// execution_success is sent, so the entry, not the event, is the result.
//
// nodes is the size of the submitted graph: a workflow without a sampler
// reports its progress as nodes finished out of nodes.
func (c *comfyUI) wait(ctx context.Context, req Request, promptID string, nodes int, sock *comfySocket, progress func(Progress)) (*comfyHistory, error) {
	var (
		events <-chan comfyEvent
		tick   <-chan time.Time
		ticker *time.Ticker
		last   Progress
		failed int
	)
	startPolling := func() {
		if ticker == nil {
			ticker = time.NewTicker(c.pollEvery)
			tick = ticker.C
		}
	}
	defer func() {
		if ticker != nil {
			ticker.Stop()
		}
	}()
	if sock != nil {
		events = sock.events
	} else {
		startPolling()
	}
	// Even with a live socket, look at /history now and then: a proxy that
	// swallows frames, or a server that hangs with the socket open, must not
	// leave the job waiting for the timeout.
	safety := time.NewTicker(c.pollEvery * 10)
	defer safety.Stop()
	// The stall watchdog runs from the first sampling step: every message
	// about our prompt after it is a sign of life; none for c.stall while
	// ComfyUI says it executes our prompt is reported once (the job goes
	// on: the caller decides whether to move it).
	var (
		stallTimer *time.Timer
		stallC     <-chan time.Time
		stalled    bool
		lastSign   time.Time
	)
	alive := func() {
		if c.stall <= 0 {
			return
		}
		lastSign = time.Now()
		if stallTimer == nil {
			stallTimer = time.NewTimer(c.stall)
			stallC = stallTimer.C
		} else {
			stallTimer.Reset(c.stall)
		}
		if stalled {
			stalled = false
			progress(last) // reporting again
		}
	}
	defer func() {
		if stallTimer != nil {
			stallTimer.Stop()
		}
	}()
	poll := func() (*comfyHistory, error) {
		entry, err := c.history(ctx, promptID)
		if err == nil {
			failed = 0
			if entry != nil {
				return entry, c.outcome(entry, req)
			}
			return nil, nil
		}
		if Reason(err) != ReasonUnavailable || ctx.Err() != nil {
			return nil, err
		}
		if failed++; failed < comfyPollFailures {
			return nil, nil
		}
		return nil, c.fail(ReasonUnavailable, err, "%s stopped answering while making the image; check that it is still running, then try again", c.where())
	}
	// A workflow without a sampler counts nodes, and nodes that are cached
	// or unused never report: the finished job says its last step.
	finished := func(entry *comfyHistory, err error) (*comfyHistory, error) {
		if err == nil && last.Steps > 0 && last.Step < last.Steps {
			last.Step = last.Steps
			progress(last)
		}
		return entry, err
	}
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-tick:
			if entry, err := poll(); entry != nil || err != nil {
				return finished(entry, err)
			}
		case <-safety.C:
			if entry, err := poll(); entry != nil || err != nil {
				return finished(entry, err)
			}
			// A prompt in neither the queue nor the history was removed
			// there (an operator cleared the queue): its history stays
			// empty for ever, so waiting would last the whole timeout.
			if queued, err := c.inQueue(ctx, promptID); err == nil && !queued {
				if entry, err := poll(); entry != nil || err != nil {
					return finished(entry, err) // it finished between the two looks
				}
				return nil, c.fail(ReasonCanceled, nil, "the job was removed from the queue of %s before it ran (someone cleared it there); try again", c.where())
			}
		case <-stallC:
			if !stalled {
				stalled = true
				p := last
				p.Stalled = max(time.Since(lastSign), c.stall)
				progress(p)
			}
		case ev, ok := <-events:
			if !ok {
				events = nil
				startPolling()
				continue
			}
			if ev.PromptID != "" && ev.PromptID != promptID {
				continue
			}
			// Broadcasts (status, other prompts' interrupts) say nothing
			// about our prompt; previews and progress on our own client_id
			// are ours even from builds that send no prompt_id.
			if ours := ev.PromptID == promptID || ev.Type == "preview" || ev.Type == "progress"; ours && (stallTimer != nil || ev.Type == "progress") {
				alive()
			}
			switch ev.Type {
			case "progress_state", "progress":
				// Builds since 0.3.44 send progress_state, then the step's
				// preview, then progress for the same step; older ones send
				// progress, then the preview. Each step is reported once.
				if p, ok := c.stepOf(ev, nodes); ok && (p.Step != last.Step || p.Steps != last.Steps) {
					last = p
					progress(last)
				}
			case "preview":
				// Event-1 previews carry no prompt_id; this socket's client_id
				// is ours alone, so they are ours. A preview before any step
				// (Steps 0) is still worth showing.
				progress(Progress{Step: last.Step, Steps: last.Steps, Preview: ev.Preview, PreviewType: ev.PreviewType})
			case "execution_error", "execution_interrupted":
				if ev.PromptID == promptID {
					return nil, c.execFailure(ev.Type, ev.Data, req)
				}
			case "execution_success", "executing":
				var d struct {
					Node *string `json:"node"`
				}
				_ = json.Unmarshal(ev.Data, &d)
				if ev.PromptID == promptID && (ev.Type == "execution_success" || d.Node == nil) {
					if entry, err := poll(); entry != nil || err != nil {
						return finished(entry, err)
					}
					startPolling()
				}
			}
		}
	}
}

// inQueue reports whether GET /queue lists the prompt as running or
// pending. Items are [number, prompt_id, …] arrays; builds that strip the
// graph from them keep the id second.
func (c *comfyUI) inQueue(ctx context.Context, promptID string) (bool, error) {
	var q struct {
		Running [][]json.RawMessage `json:"queue_running"`
		Pending [][]json.RawMessage `json:"queue_pending"`
	}
	if err := c.getJSON(ctx, "queue", nil, &q); err != nil {
		return false, err
	}
	for _, item := range append(q.Running, q.Pending...) {
		var id string
		if len(item) > 1 && json.Unmarshal(item[1], &id) == nil && id == promptID {
			return true, nil
		}
	}
	return false, nil
}

// stepOf reads the step a progress or progress_state event reports. The
// sampler's steps win: a node running with more than one step is the
// sampler (value/max). A workflow the map gives no steps input has no
// sampler; its progress is the count of finished nodes.
func (c *comfyUI) stepOf(ev comfyEvent, nodes int) (Progress, bool) {
	if ev.Type == "progress" {
		var p struct{ Value, Max int }
		// Builds before 2024 sent progress without a prompt_id; on our own
		// client_id it can only be ours.
		if json.Unmarshal(ev.Data, &p) != nil || p.Max <= 0 {
			return Progress{}, false
		}
		return Progress{Step: p.Value, Steps: p.Max}, true
	}
	var d struct {
		Nodes map[string]struct {
			Value, Max float64
			State      string
		} `json:"nodes"`
	}
	if json.Unmarshal(ev.Data, &d) != nil {
		return Progress{}, false
	}
	finished := 0
	for _, n := range d.Nodes {
		if n.State == "running" && n.Max > 1 {
			return Progress{Step: int(n.Value), Steps: int(n.Max)}, true
		}
		if n.State == "finished" {
			finished++
		}
	}
	if _, sampler := c.targets["steps"]; sampler || nodes <= 0 || finished == 0 {
		return Progress{}, false
	}
	return Progress{Step: min(finished, nodes), Steps: nodes}, true
}

// history returns the prompt's entry, or nil while it is still queued or
// running: ComfyUI answers {} until the prompt has finished.
func (c *comfyUI) history(ctx context.Context, promptID string) (*comfyHistory, error) {
	var all map[string]*comfyHistory
	if err := c.getJSON(ctx, "history/"+url.PathEscape(promptID), nil, &all); err != nil {
		return nil, err
	}
	return all[promptID], nil
}

// outcome reads a finished history entry: nil for success, else the error
// recorded in its messages.
func (c *comfyUI) outcome(entry *comfyHistory, req Request) error {
	if entry.Status == nil || entry.Status.StatusStr != "error" {
		return nil
	}
	for _, raw := range entry.Status.Messages {
		var msg []json.RawMessage
		var name string
		if json.Unmarshal(raw, &msg) != nil || len(msg) != 2 || json.Unmarshal(msg[0], &name) != nil {
			continue
		}
		if name == "execution_error" || name == "execution_interrupted" {
			return c.execFailure(name, msg[1], req)
		}
	}
	return c.fail(ReasonFailed, nil, "%s reported the job as failed without saying why; check the ComfyUI console", c.where())
}

// execFailure maps execution_error and execution_interrupted to an *Error.
func (c *comfyUI) execFailure(kind string, data json.RawMessage, req Request) *Error {
	var e comfyExecError
	_ = json.Unmarshal(data, &e)
	if kind == "execution_interrupted" {
		return c.fail(ReasonCanceled, nil, "the job was interrupted on %s (someone stopped it there); try again", c.where())
	}
	cause := fmt.Errorf("execution_error in node %s (%s): %s: %s", e.NodeID, e.NodeType, e.ExceptionType, e.ExceptionMessage)
	if comfyIsOOM(e.ExceptionType + " " + e.ExceptionMessage) {
		return c.fail(ReasonOutOfMemory, cause, "backend %s ran out of GPU memory making %d image(s) of %dx%d; try a smaller size or fewer images at once",
			c.name, max(req.Count, 1), req.Width, req.Height)
	}
	first, _, _ := strings.Cut(strings.TrimSpace(e.ExceptionMessage), "\n")
	return c.fail(ReasonFailed, cause, "%s failed in node %s (%s): %s; check the ComfyUI console for details", c.where(), e.NodeID, e.NodeType, first)
}

func comfyIsOOM(text string) bool {
	t := strings.ToLower(text)
	return strings.Contains(t, "outofmemoryerror") || strings.Contains(t, "out of memory") || strings.Contains(t, "allocation on device")
}

// comfyFile is one image reference in a history output.
type comfyFile struct {
	Filename  string `json:"filename"`
	Subfolder string `json:"subfolder"`
	Type      string `json:"type"`
}

// download fetches every saved image of the job. Preview nodes also list
// "temp" images; when saved "output" images exist, those are the result.
func (c *comfyUI) download(ctx context.Context, entry *comfyHistory, seed int64) ([]Image, error) {
	ids := make([]string, 0, len(entry.Outputs))
	for id := range entry.Outputs {
		ids = append(ids, id)
	}
	comfySortIDs(ids)
	var files, saved []comfyFile
	for _, id := range ids {
		var imgs []comfyFile
		if raw, ok := entry.Outputs[id]["images"]; ok {
			if err := json.Unmarshal(raw, &imgs); err != nil {
				return nil, c.fail(ReasonBadResponse, err, "%s listed the job's images in a form Z Image cannot read", c.where())
			}
		}
		for _, f := range imgs {
			files = append(files, f)
			if f.Type == "output" {
				saved = append(saved, f)
			}
		}
	}
	if len(saved) > 0 {
		files = saved
	}
	if len(files) == 0 {
		return nil, c.fail(ReasonFailed, nil, "%s finished the job but it produced no images; check that the backend's workflow ends in a SaveImage node", c.where())
	}
	images := make([]Image, 0, len(files))
	for _, f := range files {
		img, err := c.view(ctx, f)
		if err != nil {
			return nil, err
		}
		img.Seed = seed // a ComfyUI batch shares one seed
		images = append(images, img)
	}
	return images, nil
}

func (c *comfyUI) view(ctx context.Context, f comfyFile) (Image, error) {
	q := url.Values{"filename": {f.Filename}, "subfolder": {f.Subfolder}, "type": {f.Type}}
	resp, err := c.send(ctx, http.MethodGet, "view", q, nil)
	if err != nil {
		return Image{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		e := c.statusError(resp, "/view")
		if resp.StatusCode == http.StatusNotFound {
			e.Reason = ReasonBadResponse
			e.Message = fmt.Sprintf("%s listed image %s but /view cannot find it; check ComfyUI's output folder", c.where(), f.Filename)
		}
		return Image{}, e
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, comfyMaxImageBytes))
	if err != nil {
		return Image{}, c.fail(ReasonUnavailable, err, "%s stopped answering while sending image %s; is it still running?", c.where(), f.Filename)
	}
	mime := resp.Header.Get("Content-Type")
	if !strings.HasPrefix(mime, "image/") {
		mime = http.DetectContentType(data)
	}
	if !strings.HasPrefix(mime, "image/") {
		return Image{}, c.fail(ReasonBadResponse, nil, "%s sent %s for image %s instead of an image", c.where(), mime, f.Filename)
	}
	return Image{Data: data, ContentType: mime}, nil
}
