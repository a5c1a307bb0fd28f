package web

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"zimage/app"
	"zimage/app/auth"
	"zimage/app/sqlite"
)

// The sign-up, sign-in and password reset pages. They call the same
// service methods as the JSON handlers in auth_*.go and set the session
// cookie the same way; they work without JavaScript.

type signupPage struct {
	MinAge     int
	Mode       string // the sign-up mode in force
	NeedInvite bool
	Next       string
}

// signupForm shows the sign-up form; ?invite= fills the invite field from
// an admin's link.
func (s *Server) signupForm(c echo.Context) error {
	if signedIn(c) {
		return c.Redirect(http.StatusSeeOther, nextOr(c.QueryParam("next"), "/generate"))
	}
	d, err := s.signupPageData(c, c.QueryParam("invite"))
	if err != nil {
		return err
	}
	p := s.newPage(c, "signup", d)
	p.Form["invite"] = c.QueryParam("invite")
	return s.render(c, http.StatusOK, "signup", p)
}

func (s *Server) signupPageData(c echo.Context, invite string) (signupPage, error) {
	mode, err := s.auth.SignupMode(c.Request().Context())
	if err != nil {
		return signupPage{}, err
	}
	return signupPage{MinAge: s.auth.Options().MinAge, Mode: mode, NeedInvite: mode != app.SignupOpen || invite != "",
		Next: localNext(c.QueryParam("next"))}, nil
}

// signupSubmit creates the account and signs it in, as POST
// /api/v1/auth/signup does.
func (s *Server) signupSubmit(c echo.Context) error {
	values := formValues(c, "email", "username", "display_name", "age_confirmed", "invite", "next")
	ctx := c.Request().Context()
	u, err := s.auth.SignUp(ctx, auth.SignUpInput{Email: values["email"], Username: values["username"], Password: c.FormValue("password"),
		DisplayName: values["display_name"], AgeConfirmed: values["age_confirmed"] != "", Invite: strings.TrimSpace(values["invite"])})
	if err != nil {
		d, derr := s.signupPageData(c, values["invite"])
		if derr != nil {
			return derr
		}
		d.Next = localNext(values["next"])
		return s.refuse(c, "signup", "signup", d, values, err)
	}
	res, err := s.auth.StartSession(ctx, u.ID, clientIP(c), c.Request().UserAgent(), sessionCookieValue(c))
	if err != nil {
		return err
	}
	s.setSessionCookie(c, res.Token, res.Session.ExpiresAt)
	return c.Redirect(http.StatusSeeOther, nextOr(values["next"], "/generate"))
}

type loginPage struct {
	Mail   bool // whether "Forgot your password?" can mail a link
	Next   string
	Ticket string // the sealed first step, on the 2FA page only
}

// loginForm shows the sign-in form.
func (s *Server) loginForm(c echo.Context) error {
	next := c.QueryParam("next")
	if signedIn(c) {
		return c.Redirect(http.StatusSeeOther, nextOr(next, "/generate"))
	}
	p := s.newPage(c, "login", loginPage{Next: localNext(next), Mail: s.auth.MailEnabled()})
	p.Flash = doneFlash(c)
	return s.render(c, http.StatusOK, "login", p)
}

// loginSubmit is the first step: login and password. For an account with
// 2FA the service answers "code required" only once the password is
// right; the second step's page then carries a login ticket (see
// sealLoginTicket) instead of the password.
func (s *Server) loginSubmit(c echo.Context) error {
	values := formValues(c, "login", "next")
	password := c.FormValue("password")
	res, err := s.auth.Login(c.Request().Context(), s.loginInput(c, values["login"], password))
	switch {
	case err == nil:
		s.setSessionCookie(c, res.Token, res.Session.ExpiresAt)
		return c.Redirect(http.StatusSeeOther, nextOr(values["next"], "/generate"))
	case needsSecondFactor(err):
		return s.renderSecondFactor(c, http.StatusOK, s.sealLoginTicket(values["login"], password), values, nil)
	}
	return s.refuse(c, "login", "login", loginPage{Next: localNext(values["next"])}, values, err)
}

// loginSecondFactor is the second step: the ticket from the first, and a
// code from the authenticator app or a recovery code in one field.
func (s *Server) loginSecondFactor(c echo.Context) error {
	values := formValues(c, "code", "next", "ticket")
	t, err := s.openLoginTicket(values["ticket"])
	if err != nil {
		back := map[string]string{"login": t.Login, "next": values["next"]}
		return s.refuse(c, "login", "login", loginPage{Next: localNext(values["next"])}, back, err)
	}
	in := s.loginInput(c, t.Login, t.Password)
	code := strings.TrimSpace(values["code"])
	if digits := strings.ReplaceAll(code, " ", ""); len(digits) == 6 && strings.Trim(digits, "0123456789") == "" {
		in.TOTPCode = digits
	} else {
		in.RecoveryCode = code
	}
	if code == "" {
		err = app.FieldErrors{"code": "Enter the 6-digit code from your authenticator app, or one of your recovery codes."}.Err()
	} else {
		var res *auth.LoginResult
		if res, err = s.auth.Login(c.Request().Context(), in); err == nil {
			s.setSessionCookie(c, res.Token, res.Session.ExpiresAt)
			return c.Redirect(http.StatusSeeOther, nextOr(values["next"], "/generate"))
		}
	}
	var ae *app.Error
	if errors.As(err, &ae) && ae.Fields["totp_code"] == "" && ae.Fields["recovery_code"] == "" && ae.Fields["code"] == "" && ae.Code == app.EUNAUTHORIZED {
		// The password stopped working between the steps (changed, or the
		// account disabled): start again.
		return s.refuse(c, "login", "login", loginPage{Next: localNext(values["next"])}, map[string]string{"login": t.Login, "next": values["next"]}, err)
	}
	if app.ErrorCode(err) == app.EINTERNAL {
		return err
	}
	values["code"] = code
	return s.renderSecondFactor(c, statusOf[app.ErrorCode(err)], values["ticket"], values, err)
}

func (s *Server) renderSecondFactor(c echo.Context, status int, ticket string, values map[string]string, err error) error {
	// The ticket lets its holder try codes for a few minutes: keep the page
	// out of caches and history snapshots.
	c.Response().Header().Set("Cache-Control", "no-store")
	p := s.newPage(c, "login", loginPage{Next: localNext(values["next"]), Ticket: ticket})
	p.Form = map[string]string{"code": values["code"]}
	if err != nil {
		var ae *app.Error
		if errors.As(err, &ae) && ae.RetryAfterSeconds > 0 {
			c.Response().Header().Set("Retry-After", itoa(ae.RetryAfterSeconds))
		}
		p.formFailed(p.Form, err)
		for _, f := range []string{"totp_code", "recovery_code"} {
			if m := p.Errors[f]; m != "" {
				p.Errors["code"] = "This code is " + m + "."
			}
		}
	}
	return s.render(c, status, "login_2fa", p)
}

func (s *Server) loginInput(c echo.Context, login, password string) auth.LoginInput {
	return auth.LoginInput{Login: login, Password: password, IP: clientIP(c), UserAgent: c.Request().UserAgent(), ReplaceToken: sessionCookieValue(c)}
}

// needsSecondFactor reports the service's "enter your 2FA code" answer,
// which it gives only after the password was right.
func needsSecondFactor(err error) bool {
	return errors.Is(err, auth.ErrSecondFactorRequired)
}

// loginTicketTTL is how long the 2FA step may take.
const loginTicketTTL = 5 * time.Minute

// A login ticket carries the first step's login and password to the
// second, sealed (AES-GCM) with a key that exists only in this process's
// memory. The alternatives were worse: re-posting the password in a
// hidden field puts it in the page's HTML, and a server-side table of
// half-finished logins needs bounds and clean-up against someone who
// knows a password and floods step one. The second step calls Login again
// with the password and the code, so throttling, audit and the password
// check stay in one place. A restart invalidates tickets in flight: the
// person signs in again.
type loginTicket struct {
	Login    string `json:"l"`
	Password string `json:"p"`
	Expires  int64  `json:"e"` // Unix seconds
}

var loginTicketAEAD = sync.OnceValue(func() cipher.AEAD {
	key := make([]byte, 32)
	rand.Read(key)
	block, err := aes.NewCipher(key)
	if err != nil {
		panic(err) // a 32-byte key is always accepted
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		panic(err)
	}
	return aead
})

var loginTicketAAD = []byte("zimage login 2fa ticket v1")

func (s *Server) sealLoginTicket(login, password string) string {
	b, _ := json.Marshal(loginTicket{Login: login, Password: password, Expires: s.db.Now().Add(loginTicketTTL).Unix()})
	aead := loginTicketAEAD()
	nonce := make([]byte, aead.NonceSize())
	rand.Read(nonce)
	return base64.RawURLEncoding.EncodeToString(aead.Seal(nonce, nonce, b, loginTicketAAD))
}

// openLoginTicket returns the ticket's content, or an error saying to
// start again; an authentic but expired ticket still gives the login, to
// fill the form.
func (s *Server) openLoginTicket(ticket string) (loginTicket, error) {
	var t loginTicket
	again := app.Errorf(app.EINVALID, "The sign-in took too long or the page was out of date. Enter your password again.")
	raw, err := base64.RawURLEncoding.DecodeString(ticket)
	aead := loginTicketAEAD()
	if err != nil || len(raw) < aead.NonceSize() {
		return t, again
	}
	plain, err := aead.Open(nil, raw[:aead.NonceSize()], raw[aead.NonceSize():], loginTicketAAD)
	if err != nil || json.Unmarshal(plain, &t) != nil {
		return loginTicket{}, again
	}
	if s.db.Now().Unix() > t.Expires {
		t.Password = ""
		return t, again
	}
	return t, nil
}

// logoutSubmit ends the session. Without one it does nothing, so a second
// click or a stale tab lands on the same page.
func (s *Server) logoutSubmit(c echo.Context) error {
	if err := s.auth.Logout(c.Request().Context(), currentUser(c)); err != nil {
		return err
	}
	s.clearSessionCookie(c)
	return c.Redirect(http.StatusSeeOther, "/login?done=signed-out")
}

type resetPage struct {
	Token string
}

// resetForm shows the new-password form of an admin's reset link.
func (s *Server) resetForm(c echo.Context) error {
	token := c.QueryParam("token")
	return s.linkForm(c, "reset", resetPage{Token: token}, token,
		"This page needs the reset link an administrator gave you. Open the whole link, or ask for a new one.")
}

// linkForm renders a page opened from a link that carries a token (reset,
// email confirmation); a link that lost its token answers 400 with missing.
func (s *Server) linkForm(c echo.Context, page string, data any, token, missing string) error {
	p := s.newPage(c, "", data)
	status := http.StatusOK
	if token == "" {
		p.FormError = missing
		status = http.StatusBadRequest
	}
	return s.render(c, status, page, p)
}

// resetSubmit sets the new password; every session of the account ends,
// so the person signs in afresh.
func (s *Server) resetSubmit(c echo.Context) error {
	token, pw := c.FormValue("token"), c.FormValue("password")
	var revoked sqlite.Revoked
	var err error
	if pw != c.FormValue("password_confirm") {
		err = app.FieldErrors{"password_confirm": "The two passwords differ. Type the same new password in both fields."}.Err()
	} else {
		revoked, err = s.auth.ResetPassword(c.Request().Context(), token, pw)
	}
	if err != nil {
		return s.refuse(c, "reset", "", resetPage{Token: token}, map[string]string{}, err)
	}
	return c.Redirect(http.StatusSeeOther, "/login?done=password-reset"+revokedQuery(revoked))
}

// refuse shows a form again after the service refused it: what was typed
// (never passwords: callers leave them out of values), a message next to
// each field at fault and one above the form. Internal errors go to the
// error page instead.
func (s *Server) refuse(c echo.Context, name, nav string, data any, values map[string]string, err error) error {
	return s.refusePage(c, name, s.newPage(c, nav, data), values, err)
}

// refusePage is refuse for a page the caller has already filled.
func (s *Server) refusePage(c echo.Context, name string, p page, values map[string]string, err error) error {
	code := app.ErrorCode(err)
	if code == app.EINTERNAL {
		return err
	}
	var ae *app.Error
	if errors.As(err, &ae) && ae.Code == app.ERATELIMITED && ae.RetryAfterSeconds > 0 {
		c.Response().Header().Set("Retry-After", itoa(ae.RetryAfterSeconds))
	}
	p.Flash = ""
	p.formFailed(values, err)
	status := statusOf[code]
	if status == 0 {
		status = http.StatusBadRequest
	}
	return s.render(c, status, name, p)
}

// signedIn reports a browser session (an API key does not sign a page in).
func signedIn(c echo.Context) bool {
	p := currentUser(c)
	return p != nil && p.Session != nil
}

// localNext returns next if it is a path on this site, else "". Anything
// a browser could read as another host is refused: "//evil.example",
// "/\evil.example" (browsers treat \ as /), absolute URLs, and control
// characters (browsers drop tabs and newlines, turning "/\t/x" into "//x").
func localNext(next string) string {
	if next == "" || len(next) > 2048 || next[0] != '/' || strings.HasPrefix(next, "//") {
		return ""
	}
	for i := 0; i < len(next); i++ {
		if b := next[i]; b < 0x20 || b == 0x7f || b == '\\' {
			return ""
		}
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil {
		return ""
	}
	return next
}

func nextOr(next, fallback string) string {
	if n := localNext(next); n != "" {
		return n
	}
	return fallback
}

// revokedQuery carries what a password change ended to the page the
// browser is sent to; doneFlash turns it back into words.
func revokedQuery(r sqlite.Revoked) string {
	return "&sessions=" + itoa(r.Sessions) + "&keys=" + itoa(r.APIKeys)
}

// doneFlash is the confirmation for ?done=key. After a password change or
// reset it adds what ended; the counts are read as numbers, so no text from
// the URL reaches the page.
func doneFlash(c echo.Context) string {
	done := c.QueryParam("done")
	msg := doneMessages[done]
	if done != "password" && done != "password-reset" {
		return msg
	}
	sessions, serr := strconv.Atoi(c.QueryParam("sessions"))
	keys, kerr := strconv.Atoi(c.QueryParam("keys"))
	if serr != nil || kerr != nil || sessions < 0 || keys < 0 {
		return msg
	}
	return msg + " Sessions signed out: " + itoa(sessions) + ". API keys revoked: " + itoa(keys) + "."
}

// doneMessages are the confirmations a redirect may ask a page to show
// (?done=key). Only these fixed texts are shown, never text from the URL.
var doneMessages = map[string]string{
	"signed-out":       "You are signed out.",
	"password-reset":   "Your password is set. Sign in with the new one; every session and API key of your account has ended.",
	"profile":          "Your profile is saved.",
	"password":         "Your password is changed. Every other session of your account has ended.",
	"2fa-off":          "Two-factor authentication is off.",
	"2fa-already-on":   "Two-factor authentication is already on. If you did not save the recovery codes, turn it off and on again to get new ones.",
	"session-revoked":  "That session is signed out.",
	"session-gone":     "That session had already ended.",
	"sessions-revoked": "Every other session is signed out.",
	"key-revoked":      "The API key is revoked; programs using it can no longer sign in.",
	"key-gone":         "That API key was already revoked.",
	"role":             "The role is changed; the person's sessions have ended, so they sign in again with it.",
	"disabled":         "The account is disabled and signed out everywhere.",
	"enabled":          "The account is enabled again.",
	"signup-mode":      "The sign-up mode is changed.",
}
