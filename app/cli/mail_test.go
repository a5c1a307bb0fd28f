package cli

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"zimage/app/config"
	"zimage/app/mail/mailpittest"
)

// mailServe runs the real server with [mail] pointed at a Mailpit that
// requires STARTTLS, trusted through mail.ca_file, with the relay password
// in mail.password_file.
func mailServe(t *testing.T) (base string, mp *mailpittest.Server) {
	t.Helper()
	mp = mailpittest.Start(t, "starttls")
	cfg := testConfig(t)
	port := freePort(t)
	cfg.Server.Listen = loopback(port)
	cfg.Server.BaseURL = "http://" + loopback(port)
	pw := filepath.Join(t.TempDir(), "relay-password")
	if err := os.WriteFile(pw, []byte("relay secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg.Mail.Host, cfg.Mail.Port, cfg.Mail.TLS = "127.0.0.1", mp.SMTPPort, "starttls"
	cfg.Mail.Username, cfg.Mail.PasswordFile, cfg.Mail.CAFile = "zimage", pw, mp.CAFile
	cfg.Mail.From = "Z Image <images@example.test>"
	cfg.Mail.Poll = config.Duration(time.Second)
	startServe(t, cfg, 60*time.Second, nil)
	return cfg.Server.BaseURL, mp
}

type client struct {
	t    *testing.T
	base string
	http *http.Client
}

func newClient(t *testing.T, base string) *client {
	jar, _ := cookiejar.New(nil)
	return &client{t: t, base: base, http: &http.Client{Jar: jar, Timeout: 30 * time.Second}}
}

func (c *client) do(method, path, body string) (int, string) {
	c.t.Helper()
	req, err := http.NewRequest(method, c.base+path, strings.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

var resetLink = regexp.MustCompile(`http://[^\s"<>]+/reset\?token=zir_[A-Za-z0-9_-]+`)

func TestPasswordResetByEmail(t *testing.T) {
	base, mp := mailServe(t)
	ada := newClient(t, base)
	if code, body := ada.do("POST", "/api/v1/auth/signup", `{"email":"ada@example.test","username":"ada","password":"a long and unusual passphrase 42","age_confirmed":true}`); code != http.StatusCreated {
		t.Fatalf("sign-up: %d %s", code, body)
	}
	stranger := newClient(t, base)
	// Known and unknown addresses get the same answer.
	codeKnown, bodyKnown := stranger.do("POST", "/api/v1/auth/reset-request", `{"email":"Ada@Example.test"}`)
	codeUnknown, bodyUnknown := stranger.do("POST", "/api/v1/auth/reset-request", `{"email":"nobody@example.test"}`)
	if codeKnown != http.StatusAccepted || codeKnown != codeUnknown || bodyKnown != bodyUnknown {
		t.Fatalf("answers differ: known %d %s, unknown %d %s", codeKnown, bodyKnown, codeUnknown, bodyUnknown)
	}
	msgs := mp.WaitMessages(t, 1, 30*time.Second)
	msg := msgs[0]
	if len(msg.To) != 1 || msg.To[0].Address != "ada@example.test" || msg.Subject != "Reset your Z Image password" {
		t.Fatalf("unexpected message %+v", msg)
	}
	link := resetLink.FindString(msg.Text)
	if link == "" || !strings.Contains(msg.HTML, `href="`+strings.ReplaceAll(link, "&", "&amp;")+`"`) {
		t.Fatalf("no reset link in both parts:\ntext %s\nhtml %s", msg.Text, msg.HTML)
	}
	// Follow the link: the page offers the form.
	if code, body := stranger.do("GET", strings.TrimPrefix(link, base), ""); code != http.StatusOK || !strings.Contains(body, `name="password"`) {
		t.Fatalf("reset page: %d %.300s", code, body)
	}
	token := link[strings.Index(link, "token=")+len("token="):]
	reset := `{"token":"` + token + `","password":"another long passphrase 77"}`
	code, body := stranger.do("POST", "/api/v1/auth/reset", reset)
	if code != http.StatusOK {
		t.Fatalf("reset: %d %s", code, body)
	}
	var got struct{ Revoked struct{ Sessions int } }
	json.Unmarshal([]byte(body), &got)
	if got.Revoked.Sessions != 1 {
		t.Errorf("reset ended %d sessions, want Ada's one: %s", got.Revoked.Sessions, body)
	}
	if code, _ := ada.do("GET", "/api/v1/me", ""); code != http.StatusUnauthorized {
		t.Errorf("Ada's old session answered %d after the reset, want 401", code)
	}
	if code, body := stranger.do("POST", "/api/v1/auth/reset", reset); code != http.StatusBadRequest || !strings.Contains(body, "already used") {
		t.Errorf("second use of the link: %d %s; want 400 saying it is used", code, body)
	}
	if code, _ := newClient(t, base).do("POST", "/api/v1/auth/login", `{"login":"ada","password":"another long passphrase 77"}`); code != http.StatusOK {
		t.Errorf("sign-in with the new password: %d", code)
	}
	if n := len(mp.Messages(t)); n != 1 {
		t.Errorf("mailpit holds %d messages; the unknown address must get none", n)
	}
}
