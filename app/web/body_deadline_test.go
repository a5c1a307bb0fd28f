package web

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestSlowRequestBodyIsCutOff sends a request body one byte at a time on a
// real loopback connection: once the body deadline passes, the server
// answers 408 and closes the connection, instead of waiting for as long as
// the client cares to trickle. Both a JSON call and a page's form post.
func TestSlowRequestBodyIsCutOff(t *testing.T) {
	const bodyTimeout = 300 * time.Millisecond
	env := newAuthEnv(t, authOptionsForTest(), Options{BodyTimeout: bodyTimeout, BodyMinRate: 1 << 20})
	alice := env.signup(t, "alice")
	srv := httptest.NewServer(env.s.Handler())
	defer srv.Close()
	tests := []struct {
		name, path, ctype, cookie, body string
	}{
		{name: "JSON login", path: "/api/v1/auth/login", ctype: "application/json",
			body: `{"login":"alice","password":"` + testPassword + `"}`},
		{name: "settings form", path: "/settings/profile", ctype: "application/x-www-form-urlencoded", cookie: alice.cookie,
			body: "_csrf=" + alice.csrf + "&display_name=Alice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", srv.Listener.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			head := fmt.Sprintf("POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n",
				tt.path, srv.Listener.Addr(), tt.ctype, len(tt.body)+1000)
			if tt.cookie != "" {
				head += "Cookie: " + SessionCookie + "=" + tt.cookie + "\r\n"
			}
			io.WriteString(conn, head+"\r\n")
			// Trickle the body, a byte every 50 ms, until the server
			// answers (or the test's own bound of 20 s, far past the
			// 300 ms deadline).
			stop := make(chan struct{})
			defer close(stop)
			go func() {
				tick := time.NewTicker(50 * time.Millisecond)
				defer tick.Stop()
				for i := 0; i < 400; i++ {
					select {
					case <-stop:
						return
					case <-tick.C:
					}
					if _, err := conn.Write([]byte{tt.body[i%len(tt.body)]}); err != nil {
						return
					}
				}
			}()
			conn.SetReadDeadline(time.Now().Add(20 * time.Second))
			br := bufio.NewReader(conn)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("no answer while the body trickled in: %v", err)
			}
			msg, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusRequestTimeout || !strings.Contains(string(msg), "too slowly") {
				t.Fatalf("status %d %s, want 408 saying the body was too slow", resp.StatusCode, msg)
			}
			// The connection is closed: nothing more can be read from it.
			if n, err := br.Read(make([]byte, 1)); err == nil {
				t.Errorf("connection still open after the 408 (read %d bytes)", n)
			}
		})
	}
}

// TestBodyDeadlineSparesNormalRequestsAndStreams: a body sent at once is
// served, and the event stream (no body) outlives the body deadline.
func TestBodyDeadlineSparesNormalRequestsAndStreams(t *testing.T) {
	const bodyTimeout = 200 * time.Millisecond
	env := newAuthEnv(t, authOptionsForTest(), Options{BodyTimeout: bodyTimeout, BodyMinRate: 1 << 20})
	alice := env.signup(t, "alice")
	key, _ := alice.apiKey(t, "generate", "read")
	srv := httptest.NewServer(env.s.Handler())
	defer srv.Close()

	req, _ := http.NewRequest("GET", srv.URL+"/api/v1/events", nil)
	req.Header.Set("Authorization", "Bearer "+key.bearer)
	stream, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Body.Close()
	if stream.StatusCode != 200 {
		t.Fatalf("event stream: %d", stream.StatusCode)
	}
	time.Sleep(3 * bodyTimeout) // the stream must not be bound by the body deadline

	post, _ := http.NewRequest("POST", srv.URL+"/api/v1/generations", strings.NewReader(`{"prompt":"a quiet harbour at dawn","width":64,"height":64,"steps":1}`))
	post.Header.Set("Authorization", "Bearer "+key.bearer)
	post.Header.Set("Content-Type", "application/json")
	resp, err := srv.Client().Do(post)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("generation with a prompt body: %d", resp.StatusCode)
	}
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(stream.Body)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("the event stream ended before the generation's event")
			}
			if strings.HasPrefix(l, "event: ") {
				return
			}
		case <-timeout:
			t.Fatal("no event on the stream within 20 s")
		}
	}
}
