package backendfake

// Running queued prompts one at a time, with the websocket events, history
// entries and saved images of main.py prompt_worker and execution.py.

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"image"
	"image/jpeg"
	"image/png"
	"path"
	"sort"
	"strconv"
	"time"

	"github.com/coder/websocket"
)

// comfyOutcome is how a prompt's execution ended.
type comfyOutcome int

const (
	comfySucceeded comfyOutcome = iota
	comfyInterrupted
	comfyErrored
	comfyDied
)

func (f *ComfyUI) work() {
	defer close(f.done)
	for {
		if p := f.next(); p != nil {
			f.run(p)
			continue
		}
		select {
		case <-f.wake:
		case <-f.dead:
			return
		}
	}
}

func (f *ComfyUI) next() *comfyPrompt {
	f.mu.Lock()
	defer f.mu.Unlock()
	select {
	case <-f.dead:
		return nil
	default:
	}
	if len(f.pending) == 0 {
		return nil
	}
	p := f.pending[0]
	f.pending = f.pending[1:]
	f.running = p
	return p
}

// pause waits d, or less if the prompt is interrupted or the server dies.
func (f *ComfyUI) pause(p *comfyPrompt, d time.Duration) comfyOutcome {
	var t <-chan time.Time
	if d > 0 {
		timer := time.NewTimer(d)
		defer timer.Stop()
		t = timer.C
	}
	select {
	case <-p.stop:
		return comfyInterrupted
	case <-f.dead:
		return comfyDied
	default:
	}
	if t == nil {
		return comfySucceeded
	}
	select {
	case <-p.stop:
		return comfyInterrupted
	case <-f.dead:
		return comfyDied
	case <-t:
		return comfySucceeded
	}
}

// run executes one prompt: events to its client, then the history entry
// (task_done), then the final executing{node:null}, in ComfyUI's order.
func (f *ComfyUI) run(p *comfyPrompt) {
	cfg := f.config()
	messages := []any{}
	event := func(typ string, data map[string]any) {
		data["prompt_id"] = p.id
		data["timestamp"] = comfyNow()
		messages = append(messages, []any{typ, data})
		f.send(p.clientID, typ, data)
	}
	f.broadcastStatus()
	event("execution_start", map[string]any{})
	event("execution_cached", map[string]any{"nodes": []string{}})

	outputs := map[string]any{}
	outcome := comfySucceeded
	var failure map[string]any
	executed := []string{}
	f.mu.Lock()
	load := !f.loaded
	f.loaded = true
	f.mu.Unlock()
	if load {
		outcome = f.pause(p, cfg.LoadDelay)
	}
	order := comfyOrder(p.graph, p.outputs)
	progress := &comfyProgress{f: f, p: p, off: cfg.OldProgress, nodes: map[string]map[string]any{}}
	for _, id := range order {
		if outcome != comfySucceeded {
			break
		}
		if outcome = f.pause(p, 0); outcome != comfySucceeded {
			failure = map[string]any{"node_id": id, "node_type": p.graph[id].ClassType}
			break
		}
		f.send(p.clientID, "executing", map[string]any{"node": id, "display_node": id, "prompt_id": p.id})
		progress.start(id)
		switch p.graph[id].ClassType {
		case "KSampler":
			outcome = f.sample(p, id, cfg, progress)
			failure = map[string]any{"node_id": id, "node_type": "KSampler"}
		case "SaveImage", "PreviewImage":
			out := map[string]any{"images": f.save(p, id)}
			outputs[id] = out
			f.send(p.clientID, "executed", map[string]any{"node": id, "display_node": id, "output": out, "prompt_id": p.id})
		}
		if outcome == comfySucceeded {
			executed = append(executed, id)
			progress.finish(id)
		}
	}

	if failure == nil { // stopped while loading the model, before any node ran
		failure = map[string]any{"node_id": nil, "node_type": nil}
	}
	status := "success"
	switch outcome {
	case comfyDied:
		f.mu.Lock()
		f.running = nil
		f.mu.Unlock()
		return
	case comfySucceeded:
		event("execution_success", map[string]any{})
	case comfyInterrupted:
		status = "error"
		failure["executed"] = executed
		failure["prompt_id"] = p.id
		failure["timestamp"] = comfyNow()
		messages = append(messages, []any{"execution_interrupted", failure})
		f.send("", "execution_interrupted", failure) // broadcast, as in ComfyUI
	case comfyErrored:
		status = "error"
		failure["executed"] = executed
		failure["exception_message"] = "Allocation on device \nThis error means you ran out of memory on your GPU.\n\nTIPS: If the workflow worked before you might have accidentally set the batch_size to a large number."
		failure["exception_type"] = "torch.OutOfMemoryError"
		failure["traceback"] = []string{"  File \"comfy/k_diffusion/sampling.py\", line 161, in sample_res_multistep\n", "torch.OutOfMemoryError: Allocation on device \n"}
		failure["current_inputs"] = map[string]any{}
		failure["current_outputs"] = map[string]any{}
		event("execution_error", failure)
	}
	meta := map[string]any{}
	for id := range outputs {
		meta[id] = map[string]any{"node_id": id, "display_node": id, "parent_node": nil, "real_node_id": id}
	}
	f.mu.Lock()
	f.history[p.id] = map[string]any{
		"prompt":  []any{p.number, p.id, p.graph, p.extra, p.outputs},
		"outputs": outputs,
		"status":  map[string]any{"status_str": status, "completed": outcome == comfySucceeded, "messages": messages},
		"meta":    meta,
	}
	f.order = append(f.order, p.id)
	f.running = nil
	f.mu.Unlock()
	f.send(p.clientID, "executing", map[string]any{"node": nil, "prompt_id": p.id})
	f.broadcastStatus()
}

// sample plays the sampler's steps, with the failure knobs striking after
// the progress of step FailAtStep.
func (f *ComfyUI) sample(p *comfyPrompt, id string, cfg ComfyUIConfig, progress *comfyProgress) comfyOutcome {
	steps := int(comfyInputInt(p.graph[id], "steps", 20))
	failAt := max(cfg.FailAtStep, 1)
	var preview []byte
	if cfg.Previews {
		w, h, _ := comfyLatent(p.graph)
		preview = comfyRenderJPEG(max(w/16, 8), max(h/16, 8), comfySeed(p.graph), 0)
	}
	for i := 1; i <= steps; i++ {
		if o := f.pause(p, cfg.StepDelay); o != comfySucceeded {
			return o
		}
		// main.py hook: the progress registry first (progress_state, then
		// the preview with metadata to clients that asked for it), then
		// progress, then the old-style preview to the other clients.
		progress.update(id, i, steps, preview)
		f.send(p.clientID, "progress", map[string]any{"value": i, "max": steps, "prompt_id": p.id, "node": id})
		if preview != nil {
			f.sendPreview(p, id, preview, false)
		}
		if i != failAt {
			continue
		}
		switch cfg.Fail {
		case ComfyOOM:
			return comfyErrored
		case ComfyHang:
			select {
			case <-p.stop:
				return comfyInterrupted
			case <-f.dead:
				return comfyDied
			}
		case ComfyDie:
			f.Kill()
			return comfyDied
		case ComfyDropWebsocket:
			for _, s := range f.socketsFor(p.clientID) {
				s.conn.CloseNow()
			}
		}
	}
	return comfySucceeded
}

// sendPreview sends a binary preview frame: event 1 [u32 type][u32 1=JPEG]
// [bytes], or event 4 with a JSON header to clients that asked for metadata.
//
// withMeta says which clients this call serves: those that asked for
// metadata (sent from the progress registry) or the others (from main.py's
// hook, after progress).
func (f *ComfyUI) sendPreview(p *comfyPrompt, node string, jpg []byte, withMeta bool) {
	for _, s := range f.socketsFor(p.clientID) {
		f.mu.Lock()
		meta := s.metadata
		f.mu.Unlock()
		if meta != withMeta {
			continue
		}
		var frame []byte
		if withMeta {
			meta, _ := json.Marshal(map[string]any{"node_id": node, "prompt_id": p.id, "display_node_id": node,
				"parent_node_id": nil, "real_node_id": node, "image_type": "image/jpeg"})
			frame = binary.BigEndian.AppendUint32(frame, 4)
			frame = binary.BigEndian.AppendUint32(frame, uint32(len(meta)))
			frame = append(frame, meta...)
		} else {
			frame = binary.BigEndian.AppendUint32(frame, 1)
			frame = binary.BigEndian.AppendUint32(frame, 1)
		}
		f.write(s, websocket.MessageBinary, append(frame, jpg...))
	}
}

// save is SaveImage: one PNG per latent in the batch, named
// {prefix}_{counter:05}_.png, the prefix's folder part as subfolder. Like
// SaveImage (without --disable-metadata) each file carries the whole
// prompt graph as a "prompt" text chunk, prompt text included, and one
// chunk per extra_data.extra_pnginfo key (the UI sends "workflow" there).
func (f *ComfyUI) save(p *comfyPrompt, id string) []map[string]any {
	meta := [][2]string{{"prompt", pythonJSON(p.graph)}}
	if info, ok := p.extra["extra_pnginfo"].(map[string]any); ok {
		keys := make([]string, 0, len(info))
		for k := range info {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			meta = append(meta, [2]string{k, pythonJSON(info[k])})
		}
	}
	prefix, _ := p.graph[id].Inputs["filename_prefix"].(string)
	if prefix == "" {
		prefix = "ComfyUI"
	}
	// PreviewImage is SaveImage into temp/ (which ComfyUI empties at every
	// start and exit), with a random suffix on the prefix.
	folder := "output"
	if p.graph[id].ClassType == "PreviewImage" {
		folder, prefix = "temp", "ComfyUI_temp_"+comfyNewUUID()[:5]
	}
	sub, base := path.Split(prefix)
	sub = path.Clean("/" + sub)[1:]
	w, h, batch := comfyLatent(p.graph)
	seed := comfySeed(p.graph)
	images := []map[string]any{}
	for i := range batch {
		data := pngWithText(comfyRenderPNG(w, h, seed, i), meta...)
		f.mu.Lock()
		f.counter++
		name := fmt.Sprintf("%s_%05d_.png", base, f.counter)
		f.files[folder+"/"+path.Join(sub, name)] = data
		f.mu.Unlock()
		images = append(images, map[string]any{"filename": name, "subfolder": sub, "type": folder})
	}
	return images
}

// comfyOrder lists the nodes the outputs need, dependencies first.
func comfyOrder(graph map[string]comfyNode, outputs []string) []string {
	seen := map[string]bool{}
	var order []string
	var visit func(id string)
	visit = func(id string) {
		if seen[id] {
			return
		}
		seen[id] = true
		names := make([]string, 0, len(graph[id].Inputs))
		for name := range graph[id].Inputs {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			if link, ok := graph[id].Inputs[name].([]any); ok && len(link) == 2 {
				if src := fmt.Sprint(link[0]); graph[src].ClassType != "" {
					visit(src)
				}
			}
		}
		order = append(order, id)
	}
	for _, id := range outputs {
		visit(id)
	}
	return order
}

func comfyInputInt(n comfyNode, name string, def int64) int64 {
	v, err := comfyNumber(n.Inputs[name])
	if err != nil {
		return def
	}
	return int64(v)
}

func comfyFirst(graph map[string]comfyNode, class string) (comfyNode, bool) {
	ids := make([]string, 0, len(graph))
	for id, n := range graph {
		if n.ClassType == class {
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return comfyNode{}, false
	}
	sort.Strings(ids)
	return graph[ids[0]], true
}

func comfyLatent(graph map[string]comfyNode) (w, h, batch int) {
	n, ok := comfyFirst(graph, "EmptySD3LatentImage")
	if !ok {
		if n, ok = comfyFirst(graph, "EmptyImage"); !ok { // the model-free workflow
			return 1024, 1024, 1
		}
	}
	return int(comfyInputInt(n, "width", 1024)), int(comfyInputInt(n, "height", 1024)), int(comfyInputInt(n, "batch_size", 1))
}

func comfySeed(graph map[string]comfyNode) uint64 {
	n, ok := comfyFirst(graph, "KSampler")
	if !ok {
		n, _ = comfyFirst(graph, "ImageAddNoise")
	}
	if num, ok := n.Inputs["seed"].(json.Number); ok {
		if s, err := strconv.ParseUint(num.String(), 10, 64); err == nil {
			return s
		}
	}
	return uint64(comfyInputInt(n, "seed", 0))
}

// comfyRender draws a picture that depends only on its size, the seed and
// the image's index in the batch, so tests can compare results.
func comfyRender(w, h int, seed uint64, index int) *image.NRGBA {
	x := seed + uint64(index)*0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	x ^= x >> 31
	r0, g0, b0 := byte(x), byte(x>>8), byte(x>>16)
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for py := range h {
		row := img.Pix[py*img.Stride:]
		gy := g0 + byte(py*256/h)
		for px := range w {
			row[px*4] = r0 + byte(px*256/w)
			row[px*4+1] = gy
			row[px*4+2] = b0 + byte((px^py)&0x3f)
			row[px*4+3] = 0xff
		}
	}
	return img
}

func comfyRenderPNG(w, h int, seed uint64, index int) []byte {
	var buf bytes.Buffer
	enc := png.Encoder{CompressionLevel: png.BestSpeed}
	_ = enc.Encode(&buf, comfyRender(w, h, seed, index))
	return buf.Bytes()
}

func comfyRenderJPEG(w, h int, seed uint64, index int) []byte {
	var buf bytes.Buffer
	_ = jpeg.Encode(&buf, comfyRender(w, h, seed, index), &jpeg.Options{Quality: 70})
	return buf.Bytes()
}

// comfyProgress is comfy_execution/progress.py's ProgressRegistry with its
// WebUIProgressHandler: every node start, step and finish sends
// progress_state with every node that is not pending, and a step with a
// preview sends it (event 4) to clients that asked for metadata. off plays
// a build from before the registry (0.3.43 and older): nothing is sent, and
// every client gets event-1 previews.
type comfyProgress struct {
	f     *ComfyUI
	p     *comfyPrompt
	off   bool
	nodes map[string]map[string]any
}

func (r *comfyProgress) set(node string, value, maxValue float64, state string) {
	r.nodes[node] = map[string]any{"value": value, "max": maxValue, "state": state, "node_id": node, "prompt_id": r.p.id,
		"display_node_id": node, "parent_node_id": nil, "real_node_id": node}
	r.f.send(r.p.clientID, "progress_state", map[string]any{"prompt_id": r.p.id, "nodes": r.nodes})
}

func (r *comfyProgress) start(node string) {
	if !r.off {
		r.set(node, 0, 1, "running")
	}
}

func (r *comfyProgress) update(node string, value, maxValue int, preview []byte) {
	if r.off {
		return
	}
	r.set(node, float64(value), float64(maxValue), "running")
	if preview != nil {
		r.f.sendPreview(r.p, node, preview, true)
	}
}

func (r *comfyProgress) finish(node string) {
	if !r.off {
		m, _ := r.nodes[node]["max"].(float64)
		r.set(node, max(m, 1), max(m, 1), "finished")
	}
}
