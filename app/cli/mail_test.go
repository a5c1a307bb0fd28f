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
	csrf string
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
	if c.csrf != "" {
		req.Header.Set("X-CSRF-Token", c.csrf)
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
	msg := waitSubject(t, mp, 2, "Reset your Z Image password")
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
	notice := waitSubject(t, mp, 3, "Security change on your Z Image account")
	if notice.To[0].Address != "ada@example.test" || !strings.Contains(notice.Text, "password") {
		t.Errorf("security notice after the reset: %+v", notice)
	}
	if n := len(mp.Messages(t)); n != 3 {
		t.Errorf("mailpit holds %d messages, want Ada's confirmation, reset and security notice; the unknown address must get none", n)
	}
}

// waitSubject waits for n messages and returns the one with subject.
func waitSubject(t *testing.T, mp *mailpittest.Server, n int, subject string) mailpittest.Message {
	t.Helper()
	for _, m := range mp.WaitMessages(t, n, 30*time.Second) {
		if m.Subject == subject {
			return m
		}
	}
	t.Fatalf("no message %q among the first %d", subject, n)
	return mailpittest.Message{}
}

var verifyLink = regexp.MustCompile(`http://[^\s"<>]+/verify-email\?token=zie_[A-Za-z0-9_-]+`)

// confirm follows a confirmation mail's link like a person: the page, then
// its button (here through the API).
func confirm(t *testing.T, c *client, base string, msg mailpittest.Message) string {
	t.Helper()
	link := verifyLink.FindString(msg.Text)
	if link == "" || !strings.Contains(msg.HTML, link) {
		t.Fatalf("no confirmation link in both parts:\ntext %s\nhtml %s", msg.Text, msg.HTML)
	}
	if code, body := c.do("GET", strings.TrimPrefix(link, base), ""); code != http.StatusOK || !strings.Contains(body, "Confirm my email address") {
		t.Fatalf("confirmation page: %d %.300s", code, body)
	}
	token := link[strings.Index(link, "token=")+len("token="):]
	body := `{"token":"` + token + `"}`
	if code, resp := c.do("POST", "/api/v1/auth/verify-email", body); code != http.StatusOK {
		t.Fatalf("confirming: %d %s", code, resp)
	}
	return body
}

func TestEmailVerificationAtSignupAndOnChange(t *testing.T) {
	base, mp := mailServe(t)
	ada := newClient(t, base)
	code, body := ada.do("POST", "/api/v1/auth/signup", `{"email":"ada@example.test","username":"ada","password":"a long and unusual passphrase 42","age_confirmed":true}`)
	if code != http.StatusCreated {
		t.Fatalf("sign-up: %d %s", code, body)
	}
	var su struct {
		CSRFToken string `json:"csrf_token"`
	}
	json.Unmarshal([]byte(body), &su)
	ada.csrf = su.CSRFToken
	msg := waitSubject(t, mp, 1, "Confirm your email address for Z Image")
	if msg.To[0].Address != "ada@example.test" {
		t.Fatalf("confirmation went to %+v", msg.To)
	}
	used := confirm(t, newClient(t, base), base, msg)
	if code, resp := newClient(t, base).do("POST", "/api/v1/auth/verify-email", used); code != http.StatusBadRequest || !strings.Contains(resp, "already used") {
		t.Errorf("second use of the confirmation link: %d %s; want 400 saying it is used", code, resp)
	}

	// A change: the new address confirms, then the old one is told.
	if code, resp := ada.do("POST", "/api/v1/me/email", `{"email":"ada@new.example.test","password":"wrong password"}`); code != http.StatusForbidden {
		t.Fatalf("change with a wrong password: %d %s; want 403", code, resp)
	}
	if code, resp := ada.do("POST", "/api/v1/me/email", `{"email":"ada@new.example.test","password":"a long and unusual passphrase 42"}`); code != http.StatusAccepted {
		t.Fatalf("change: %d %s", code, resp)
	}
	var change mailpittest.Message
	for _, m := range mp.WaitMessages(t, 2, 30*time.Second) {
		if m.To[0].Address == "ada@new.example.test" {
			change = m
		}
	}
	if code, resp := newClient(t, base).do("POST", "/api/v1/auth/login", `{"login":"ada@new.example.test","password":"a long and unusual passphrase 42"}`); code == http.StatusOK {
		t.Fatalf("the new address signs in before it is confirmed: %s", resp)
	}
	confirm(t, newClient(t, base), base, change)
	told := waitSubject(t, mp, 3, "The email address of your Z Image account changed")
	if told.To[0].Address != "ada@example.test" {
		t.Errorf("the change notice went to %+v, want the old address", told.To)
	}
	if code, resp := newClient(t, base).do("POST", "/api/v1/auth/login", `{"login":"ada@new.example.test","password":"a long and unusual passphrase 42"}`); code != http.StatusOK {
		t.Errorf("sign-in with the new address: %d %s", code, resp)
	}
}

// TestMailDeadLetterSeenAndRetriedByAdmin: with the relay down and one try
// allowed, the sign-up's confirmation is dead-lettered; `zimage mail` shows
// it with the relay's answer (and no address), and `zimage mail retry`
// brings it back once.
func TestMailDeadLetterSeenAndRetriedByAdmin(t *testing.T) {
	cfg := testConfig(t)
	port := freePort(t)
	cfg.Server.Listen = loopback(port)
	cfg.Server.BaseURL = "http://" + loopback(port)
	cfg.Mail.Host, cfg.Mail.Port, cfg.Mail.TLS = "127.0.0.1", freePort(t), "none" // nothing listens there
	cfg.Mail.From, cfg.Mail.MaxTries = "images@example.test", 1
	// The sender runs at start and when woken by a queued message: no
	// poll may try the retried message between the two retries below.
	cfg.Mail.Poll = config.Duration(time.Hour)
	startServe(t, cfg, 60*time.Second, nil)
	c := newClient(t, cfg.Server.BaseURL)
	if code, body := c.do("POST", "/api/v1/auth/signup", `{"email":"ada@example.test","username":"ada","password":"a long and unusual passphrase 42","age_confirmed":true}`); code != http.StatusCreated {
		t.Fatalf("sign-up: %d %s", code, body)
	}
	env := []string{"ZIMAGE_SERVER_DATA_DIR=" + cfg.Server.DataDir}
	var out string
	deadline := time.Now().Add(30 * time.Second)
	for {
		var code int
		var errs string
		code, out, errs = run(t, env, "mail")
		if code != 0 {
			t.Fatalf("zimage mail: %d %s", code, errs)
		}
		if strings.Contains(out, "dead-lettered  1") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no dead letter within 30 s:\n%s", out)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !strings.Contains(out, "verify_email") || !strings.Contains(out, "connection refused") || strings.Contains(out, "ada@example.test") {
		t.Fatalf("zimage mail must show the kind and the relay's answer, never the address:\n%s", out)
	}
	id := regexp.MustCompile(`(?m)^([0-9A-Z]{26})\s+verify_email`).FindStringSubmatch(out)
	if id == nil {
		t.Fatalf("no dead letter id in:\n%s", out)
	}
	// The admin API shows the same dead letter (Ada, the first account,
	// is the admin).
	if code, body := c.do("GET", "/api/v1/admin/mail", ""); code != http.StatusOK || !strings.Contains(body, id[1]) || strings.Contains(body, "ada@example.test") {
		t.Fatalf("admin mail API: %d %s", code, body)
	}
	if code, out, errs := run(t, env, "mail", "retry", id[1]); code != 0 || !strings.Contains(out, "tried again") {
		t.Fatalf("retry: %d %s %s", code, out, errs)
	}
	if code, _, errs := run(t, env, "mail", "retry", id[1]); code == 0 || !strings.Contains(errs, "no undelivered message") {
		t.Errorf("a second retry of the same message: %d %s; want a refusal", code, errs)
	}
}
