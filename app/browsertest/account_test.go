package browsertest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/pquerna/otp/totp"
)

// fetchResult is what fetchJSON returns from the page.
type fetchResult struct {
	Status int             `json:"status"`
	Body   json.RawMessage `json:"body"`
}

// fetchJSON sends a JSON request from inside the page, so the browser
// itself keeps the session cookie the answer sets, exactly as app.js does.
func (b *tab) fetchJSON(what, method, path string, body any) fetchResult {
	b.t.Helper()
	payload := "undefined"
	if body != nil {
		data, _ := json.Marshal(body)
		payload = fmt.Sprintf("JSON.stringify(%s)", data)
	}
	js := fmt.Sprintf(`(async () => {
		const meta = document.querySelector('meta[name="csrf-token"]');
		const headers = {"Content-Type": "application/json"};
		if (meta) headers["X-CSRF-Token"] = meta.content;
		const r = await fetch(%q, {method: %q, credentials: "same-origin", headers, body: %s});
		const text = await r.text();
		let parsed = null;
		try { parsed = JSON.parse(text); } catch (_) { parsed = text; }
		return {status: r.status, body: parsed};
	})()`, path, method, payload)
	return eval[fetchResult](b, what, js)
}

// signUpAPI creates the account through the JSON API from inside the
// browser; used while the sign-up page does not exist yet.
func (b *tab) signUpAPI(base, username string) {
	b.t.Helper()
	b.navigate(base + "/privacy")
	r := b.fetchJSON("sign up through the API", "POST", "/api/v1/auth/signup", map[string]any{
		"email": username + "@example.com", "username": username, "password": testPassword, "age_confirmed": true,
	})
	if r.Status != http.StatusCreated {
		b.t.Fatalf("sign up through the API: status %d: %s", r.Status, r.Body)
	}
}

// enable2FAAPI enrols an authenticator through the JSON API from inside
// the browser and returns the recovery codes.
func (b *tab) enable2FAAPI(base string) (secret string, codes []string) {
	b.t.Helper()
	// A signed-in page carries the CSRF token the API needs.
	b.navigate(base + "/generate")
	r := b.fetchJSON("start 2FA enrolment", "POST", "/api/v1/me/2fa", nil)
	var start struct {
		Secret string `json:"secret"`
	}
	if r.Status != http.StatusOK || json.Unmarshal(r.Body, &start) != nil || start.Secret == "" {
		b.t.Fatalf("start 2FA enrolment: status %d: %s", r.Status, r.Body)
	}
	code, err := totp.GenerateCode(start.Secret, time.Now())
	if err != nil {
		b.t.Fatalf("compute a TOTP code from the secret %q: %v", start.Secret, err)
	}
	r = b.fetchJSON("confirm 2FA", "POST", "/api/v1/me/2fa/confirm", map[string]string{"code": code})
	var done struct {
		Codes []string `json:"recovery_codes"`
	}
	if r.Status != http.StatusOK || json.Unmarshal(r.Body, &done) != nil {
		b.t.Fatalf("confirm 2FA with code %s: status %d: %s", code, r.Status, r.Body)
	}
	return start.Secret, done.Codes
}

// signUp creates the account "username" in the browser: through the
// sign-up page once it exists, else through the JSON API. It returns
// which way it went, for the log.
func (b *tab) signUp(srv *server, username string) string {
	b.t.Helper()
	if !srv.pageExists("/signup") {
		b.signUpAPI(srv.URL, username)
		return "JSON API (no /signup page yet)"
	}
	b.signUpUI(srv.URL, username)
	return "sign-up page"
}

// enable2FA turns on 2FA for the signed-in account and returns the TOTP
// key and the recovery codes shown.
func (b *tab) enable2FA(srv *server) (how, secret string, codes []string) {
	b.t.Helper()
	if !b.pageExistsSignedIn(srv.URL + "/settings/security") {
		secret, codes = b.enable2FAAPI(srv.URL)
		return "JSON API (no /settings/security page yet)", secret, codes
	}
	secret, codes = b.enable2FAUI(srv.URL)
	return "settings page", secret, codes
}

// pageExistsSignedIn tells whether path answers 200 to the signed-in
// browser (the page is then left open).
func (b *tab) pageExistsSignedIn(url string) bool {
	b.t.Helper()
	res := run(b, "open "+url, chromedp.NavigateResponse(url))
	return res != nil && res.Status == http.StatusOK
}

// signUpUI fills in the sign-up page as a person would.
func (b *tab) signUpUI(base, username string) {
	b.t.Helper()
	b.navigate(base + "/signup")
	b.do("fill in the sign-up form",
		chromedp.SendKeys(chromedp.CSS(`form input[name=email]`), username+"@example.com"),
		chromedp.SendKeys(chromedp.CSS(`form input[name=username]`), username),
		chromedp.SendKeys(chromedp.CSS(`form input[name=password]`), testPassword),
		chromedp.Click(chromedp.CSS(`form input[name=age_confirmed]`)),
		chromedp.Click(chromedp.CSS(`main form button[type=submit]`)),
	)
	b.waitFor("wait to leave the sign-up page", `location.pathname !== "/signup" && document.readyState === "complete"`)
}

// enable2FAUI turns 2FA on in the settings page: it reads the key shown
// under the QR code, computes the code an authenticator app would show,
// confirms it and returns the recovery codes the page then lists.
func (b *tab) enable2FAUI(base string) (secret string, codes []string) {
	b.t.Helper()
	b.navigate(base + "/settings/security")
	b.do("start 2FA enrolment", chromedp.Click(chromedp.CSS(`form[action="/settings/security/2fa"] button[type=submit]`)))
	b.waitFor("wait for the 2FA key", `!!document.querySelector("#totp-secret") && document.readyState === "complete"`)
	secret = strings.ReplaceAll(run(b, "read the 2FA key", chromedp.Text(chromedp.CSS("#totp-secret"))), " ", "")
	if w := eval[int](b, "check the QR code", `(() => { const i = document.querySelector("img.qr"); return i && i.complete ? i.naturalWidth : 0; })()`); w == 0 {
		b.t.Error("the 2FA QR code image did not load")
	}
	code, err := totp.GenerateCode(secret, time.Now())
	if err != nil {
		b.t.Fatalf("compute a TOTP code from the key %q shown on the page: %v", secret, err)
	}
	b.do("confirm 2FA with code "+code,
		chromedp.SendKeys(chromedp.CSS("#code"), code),
		chromedp.Click(chromedp.CSS(`form[action="/settings/security/2fa/confirm"] button[type=submit]`)),
	)
	b.waitFor("wait for the recovery codes", `document.querySelectorAll("ol.codes li").length > 0 && document.readyState === "complete"`)
	codes = eval[[]string](b, "read the recovery codes", `[...document.querySelectorAll("ol.codes li")].map(li => li.textContent.trim())`)
	return secret, codes
}

// signOut uses the header's sign-out button.
func (b *tab) signOut() {
	b.t.Helper()
	b.do("sign out", chromedp.Click(chromedp.CSS(`form[action="/logout"] button[type=submit]`)))
	b.waitFor("wait for the sign-in page", `location.pathname === "/login" && document.readyState === "complete"`)
}

// signInUI signs in with the password and, when asked, the code of the
// next 30-second step (the current one was spent confirming enrolment,
// and a code is never accepted twice).
func (b *tab) signInUI(base, login, secret string) {
	b.t.Helper()
	b.navigate(base + "/login")
	b.do("fill in the sign-in form",
		chromedp.SendKeys(chromedp.CSS("#login"), login),
		chromedp.SendKeys(chromedp.CSS("#password"), testPassword),
		chromedp.Click(chromedp.CSS(`form[action="/login"] button[type=submit]`)),
	)
	b.waitFor("wait for the code step", `location.pathname !== "/login" || !!document.querySelector('form[action="/login/2fa"]')`)
	if secret == "" {
		return
	}
	if p := b.path(); !strings.HasPrefix(p, "/login") {
		b.t.Fatalf("signed in without the 2FA step (now at %s)", p)
	}
	code, err := totp.GenerateCode(secret, time.Now().Add(30*time.Second))
	if err != nil {
		b.t.Fatal(err)
	}
	b.do("enter the 2FA code",
		chromedp.SendKeys(chromedp.CSS("#code"), code),
		chromedp.Click(chromedp.CSS(`form[action="/login/2fa"] button[type=submit]`)),
	)
	b.waitFor("wait to be signed in", `!location.pathname.startsWith("/login") && document.readyState === "complete"`)
}
