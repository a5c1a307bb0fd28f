package cli

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"testing"
	"time"

	"zimage/app/config"
)

// TestServeBoundsSlowClients runs the real server with short limits and
// clients that trickle bytes on loopback: slow headers get the connection
// closed after server.read_header_timeout, a slow body a 408 and a close
// after server.body_timeout. The test's own bound (20 s) is far past both.
func TestServeBoundsSlowClients(t *testing.T) {
	cfg := testConfig(t)
	cfg.Server.ReadHeaderTimeout = config.Duration(time.Second)
	cfg.Server.BodyTimeout = config.Duration(time.Second)
	cfg.Server.BodyMinRate = 1 << 20
	srv := startServe(t, cfg, 20*time.Second, nil)
	addr := srv.addrs["http"]

	tests := []struct {
		name    string
		head    string // sent at once
		trickle string // then a byte every 100 ms
		want408 bool
	}{
		// The headers would be complete after about 3.4 s: past the 1 s
		// limit, before the 10 s the server used to allow, so the old
		// server answered them.
		{name: "slow headers", head: "GET /healthz HTTP/1.1\r\nHost: zimage.test\r\n", trickle: "X-Slow: aaaaaaaaaaaaaaaaaaaaaa\r\n\r\n"},
		{name: "slow body", head: "POST /api/v1/auth/login HTTP/1.1\r\nHost: zimage.test\r\nContent-Type: application/json\r\nContent-Length: 5000\r\n\r\n",
			trickle: `{"login":"nobody","password":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa`, want408: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			io.WriteString(conn, tt.head)
			stop := make(chan struct{})
			defer close(stop)
			go func() {
				tick := time.NewTicker(100 * time.Millisecond)
				defer tick.Stop()
				for i := 0; i < len(tt.trickle); i++ {
					select {
					case <-stop:
						return
					case <-tick.C:
					}
					if _, err := conn.Write([]byte{tt.trickle[i]}); err != nil {
						return
					}
				}
			}()
			conn.SetReadDeadline(time.Now().Add(20 * time.Second))
			br := bufio.NewReader(conn)
			if tt.want408 {
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					t.Fatalf("no answer while the body trickled in: %v", err)
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusRequestTimeout {
					t.Fatalf("status %d, want 408", resp.StatusCode)
				}
			}
			// The server closes the connection: a read ends with EOF or a
			// reset, not with the test's own deadline, and (for headers
			// cut off) without an answer.
			n, err := io.Copy(io.Discard, br)
			if errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("connection still open 20 s into a trickle: %v", err)
			}
			if !tt.want408 && n > 0 {
				t.Errorf("the server answered headers that took longer than read_header_timeout (%d bytes)", n)
			}
		})
	}
}
