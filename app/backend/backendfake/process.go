package backendfake

import (
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"
)

// process is what every fake shares with a real server process: a port on
// loopback served over HTTP, a count of the requests it saw, and a way to
// die (Kill: the port refuses connections and open ones drop).
type process struct {
	URL string

	ln   net.Listener
	srv  *http.Server
	dead chan struct{} // closed by Kill
	kill sync.Once

	reqMu    sync.Mutex
	requests map[string]int
}

// listen takes a free port on 127.0.0.1; serve starts answering on it.
func listen() (*process, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("backendfake: listen: %w", err)
	}
	return &process{URL: "http://" + ln.Addr().String(), ln: ln, dead: make(chan struct{}), requests: map[string]int{}}, nil
}

func (p *process) serve(h http.Handler) {
	p.srv = &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = p.srv.Serve(p.ln) }()
}

// Kill makes the fake behave like a server process that died.
func (p *process) Kill() {
	p.kill.Do(func() {
		close(p.dead)
		// Close the listener too: if Serve has not started yet, srv.Close
		// does not know it, and the port would keep accepting.
		_ = p.ln.Close()
		_ = p.srv.Close()
	})
}

// Close kills the fake.
func (p *process) Close() { p.Kill() }

// count records one request as "METHOD /route".
func (p *process) count(key string) {
	p.reqMu.Lock()
	p.requests[key]++
	p.reqMu.Unlock()
}

// Requests returns how many requests the fake saw per "METHOD /route".
func (p *process) Requests() map[string]int {
	p.reqMu.Lock()
	defer p.reqMu.Unlock()
	out := make(map[string]int, len(p.requests))
	for k, v := range p.requests {
		out[k] = v
	}
	return out
}

// answerWriter calls done once, just before the first byte of the answer
// goes out, so a fake stops counting itself busy before its client can
// see the answer (as a real server has finished its work by then).
type answerWriter struct {
	http.ResponseWriter
	once       sync.Once
	done       func()
	generating bool // for the fake's own use in done
}

func (w *answerWriter) WriteHeader(code int) {
	w.once.Do(w.done)
	w.ResponseWriter.WriteHeader(code)
}

func (w *answerWriter) Write(b []byte) (int, error) {
	w.once.Do(w.done)
	return w.ResponseWriter.Write(b)
}
