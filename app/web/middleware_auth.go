package web

import (
	"errors"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"zimage/app"
	"zimage/app/auth"
)

// SessionCookie is the name of the session cookie.
const SessionCookie = "zimage_session"

// Context keys of the auth middleware.
const (
	principalKey = "zimage.principal"
	authErrKey   = "zimage.auth_err"
)

// CSRF token carriers: a header for scripts, a form field for HTML forms.
const (
	csrfHeader = "X-CSRF-Token"
	csrfField  = "_csrf"
)

// currentUser returns the signed-in principal, or nil for an anonymous
// request.
func currentUser(c echo.Context) *auth.Principal {
	p, _ := c.Get(principalKey).(*auth.Principal)
	return p
}

func isUnsafe(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return false
	}
	return true
}

// skipAuth lists what needs no identity and must not be refused for a stale
// cookie: ops endpoints (/metrics has its own bearer token) and files.
func skipAuth(path string) bool {
	return path == "/healthz" || path == "/readyz" || path == "/metrics" || strings.HasPrefix(path, "/static/")
}

// authenticate loads who is calling, from an API key (Authorization:
// Bearer) or the session cookie, and enforces CSRF protection. It refuses
// nothing else: routes say who may call them with the require* guards.
//
// Cookie-authenticated state changes must carry a CSRF token derived from
// the session; bearer requests are exempt (another site cannot make a
// browser send an Authorization header). Unauthenticated state changes
// (sign-up, login, reset) are refused when the browser says they come from
// another site, which stops login CSRF.
func (s *Server) authenticate(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		if skipAuth(r.URL.Path) {
			return next(c)
		}
		ctx := r.Context()
		if h := r.Header.Get(echo.HeaderAuthorization); h != "" {
			token, ok := bearerToken(h)
			if !ok {
				return app.Errorf(app.EUNAUTHORIZED, "Send an API key as the header Authorization: Bearer zik_…")
			}
			p, err := s.auth.AuthenticateAPIKey(ctx, token)
			if err != nil {
				return err
			}
			c.Set(principalKey, p)
			return next(c)
		}
		if ck, err := r.Cookie(SessionCookie); err == nil && ck.Value != "" {
			p, err := s.auth.Authenticate(ctx, ck.Value)
			switch {
			case err == nil:
				if !isUnsafe(r.Method) {
					c.Set(principalKey, p)
					return next(c)
				}
				token, err := csrfToken(c)
				if err != nil {
					return err
				}
				if !auth.CheckCSRF([]byte(p.Token), token) {
					return app.Errorf(app.EFORBIDDEN, "This request is missing a valid CSRF token, so it was refused to protect your account. Reload the page and try again; scripts send the csrf_token from GET /api/v1/me in the %s header.", csrfHeader)
				}
				c.Set(principalKey, p)
				return next(c)
			case app.ErrorCode(err) == app.EUNAUTHORIZED:
				// The cookie is stale: public routes treat the request as
				// anonymous, guarded ones answer with this error.
				c.Set(authErrKey, err)
				s.clearSessionCookie(c)
			default:
				return err
			}
		}
		if isUnsafe(r.Method) && s.crossSite(r) {
			return app.Errorf(app.EFORBIDDEN, "This request came from another website and was refused. Open Z Image at its own address and try again.")
		}
		return next(c)
	}
}

// csrfToken returns the token a request carries: the header, or the form
// field of an HTML form post. Reading the form reads the body, so a body
// that is too large or too slow is reported here, as itself, rather than
// as a missing token.
func csrfToken(c echo.Context) (string, error) {
	r := c.Request()
	if t := r.Header.Get(csrfHeader); t != "" {
		return t, nil
	}
	mt, _, _ := mime.ParseMediaType(r.Header.Get(echo.HeaderContentType))
	var err error
	switch mt {
	case echo.MIMEApplicationForm:
		err = r.ParseForm()
	case echo.MIMEMultipartForm:
		err = r.ParseMultipartForm(32 << 20) // echo's default, so FormValue reuses the parse
	default:
		return "", nil
	}
	if errors.Is(err, errBodyTooLarge) || errors.Is(err, errBodyTooSlow) {
		return "", err
	}
	return c.FormValue(csrfField), nil
}

// bearerToken returns the token of an Authorization header of the bearer
// scheme, which is case-insensitive (RFC 9110 §11.1): "bearer", "Bearer"
// and "BEARER" all name it.
func bearerToken(header string) (string, bool) {
	scheme, token, ok := strings.Cut(header, " ")
	token = strings.TrimSpace(token)
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return "", false
	}
	return token, true
}

// crossSite reports a request a browser marked as sent by another site.
// Browsers send Sec-Fetch-Site (all current ones) or at least Origin on
// POSTs; clients that send neither (curl, scripts) are not browsers and
// cannot carry someone else's cookies.
func (s *Server) crossSite(r *http.Request) bool {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "same-origin", "none":
		return false
	case "cross-site", "same-site":
		return true
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		return false
	}
	got, ok := originOf(origin)
	if !ok {
		return true // "null" and other opaque origins
	}
	// An origin is scheme, host and port: http://host is another site than
	// https://host (a network attacker can answer for it), so all three
	// must match this server's address as configured, or as this request
	// reached it. A request's own scheme is known only from its
	// connection, and a plain one may come from a TLS-terminating proxy:
	// with base_url set, a plain connection's address is not trusted as an
	// origin, only base_url is.
	base, hasBase := originOf(s.opts.BaseURL)
	if hasBase && got == base {
		return false
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	if own, ok := originOf(scheme + "://" + r.Host); ok && got == own && (!hasBase || r.TLS != nil) {
		return false
	}
	return true
}

// originOf returns the web origin of an absolute URL, "scheme://host:port"
// in lower case with the default port made explicit, so that
// https://Example.test and https://example.test:443 compare equal.
func originOf(raw string) (string, bool) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.Opaque != "" {
		return "", false
	}
	scheme := strings.ToLower(u.Scheme)
	port := u.Port()
	switch {
	case port != "":
	case scheme == "https":
		port = "443"
	case scheme == "http":
		port = "80"
	default:
		return "", false
	}
	return scheme + "://" + net.JoinHostPort(strings.ToLower(u.Hostname()), port), true
}

// secureCookies reports whether the session cookie must be Secure.
func (s *Server) secureCookies(c echo.Context) bool {
	return c.Request().TLS != nil || strings.HasPrefix(strings.ToLower(s.opts.BaseURL), "https://")
}

func (s *Server) setSessionCookie(c echo.Context, token string, expires time.Time) {
	c.SetCookie(&http.Cookie{Name: SessionCookie, Value: token, Path: "/", Expires: expires,
		HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: s.secureCookies(c)})
}

func (s *Server) clearSessionCookie(c echo.Context) {
	c.SetCookie(&http.Cookie{Name: SessionCookie, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: s.secureCookies(c)})
}

// clientIP is the caller's address as the IP extractor trusts it.
func clientIP(c echo.Context) netip.Addr {
	a, _ := netip.ParseAddr(c.RealIP())
	return a
}

// errSignIn is what a guarded route answers an anonymous caller.
func errSignIn(c echo.Context) error {
	if err, ok := c.Get(authErrKey).(error); ok {
		return err
	}
	return app.Errorf(app.EUNAUTHORIZED, "Sign in first, or send an API key as Authorization: Bearer zik_…")
}

// requireSession admits a signed-in browser session only. Account security
// (password, 2FA, sessions, API keys) is not for API keys: a leaked key
// must not be able to lock its owner out.
func (s *Server) requireSession(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		p := currentUser(c)
		if p == nil {
			return errSignIn(c)
		}
		if p.Session == nil {
			return app.Errorf(app.EFORBIDDEN, "This needs a signed-in browser session; API keys can't change account security settings.")
		}
		return next(c)
	}
}

// requireUser admits a session, or an API key that carries scope.
func (s *Server) requireUser(scope string) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			p := currentUser(c)
			if p == nil {
				return errSignIn(c)
			}
			if p.APIKey != nil && !p.APIKey.HasScope(scope) {
				return app.Errorf(app.EFORBIDDEN, "This API key lacks the %q scope this needs. Create a key with that scope.", scope)
			}
			return next(c)
		}
	}
}

// requireAdmin admits admins: through a session, or an API key with the
// admin scope. With auth.require_admin_2fa on, an admin without 2FA is
// sent to turn it on first.
func (s *Server) requireAdmin(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		p := currentUser(c)
		if p == nil {
			return errSignIn(c)
		}
		if p.User.Role != app.RoleAdmin {
			return app.Errorf(app.EFORBIDDEN, "Admins only.")
		}
		if p.APIKey != nil && !p.APIKey.HasScope(app.ScopeAdmin) {
			return app.Errorf(app.EFORBIDDEN, "This API key lacks the \"admin\" scope admin routes need.")
		}
		if s.auth.Options().RequireAdmin2FA && !p.User.TOTPEnabled {
			return app.Errorf(app.EFORBIDDEN, "This server requires admins to use two-factor authentication. Turn it on in your security settings (POST /api/v1/me/2fa), then try again.")
		}
		return next(c)
	}
}

// requireLiveAccount answers 404 for an admin route whose :id names an
// unknown or deleted account, before its handler runs: between deletion
// and purge the account is gone for every route at once, whichever
// service the handler calls.
func (s *Server) requireLiveAccount(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if _, err := s.auth.User(c.Request().Context(), c.Param("id")); err != nil {
			return err
		}
		return next(c)
	}
}

// requireAccessGrant admits an admin to the content of the person named by
// the :id parameter only while they hold an access grant, which needs a
// reason the person will see. An unknown id is 404.
func (s *Server) requireAccessGrant(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		p := currentUser(c)
		id := c.Param("id")
		if _, err := s.auth.User(c.Request().Context(), id); err != nil {
			return err
		}
		if err := s.auth.CheckAccessGrant(c.Request().Context(), p.User.ID, id); err != nil {
			return err
		}
		return next(c)
	}
}

// fillPage gives HTML pages the signed-in user and a CSRF token for forms.
func (s *Server) fillPage(c echo.Context, p *page) {
	pr := currentUser(c)
	if pr == nil {
		return
	}
	p.User = pr.User
	if pr.Session != nil {
		p.CSRF = auth.CSRFToken([]byte(pr.Token))
	}
	// One indexed query per page; the banner disappears with the
	// acknowledgement.
	p.PolicyNotice = s.pendingPolicyNotice(c.Request().Context(), pr.User.ID)
}

// requirePage admits a signed-in browser session to an HTML page, and sends
// anyone else to the sign-in page, which returns them here afterwards.
func (s *Server) requirePage(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		p := currentUser(c)
		if p == nil || p.Session == nil {
			if c.Request().Method != http.MethodGet {
				return errSignIn(c)
			}
			return c.Redirect(http.StatusSeeOther, "/login?next="+url.QueryEscape(c.Request().URL.RequestURI()))
		}
		return next(c)
	}
}

// requireAdminPage admits admins to the HTML admin pages: anyone not signed
// in is sent to sign in as requirePage does, anyone else gets the 403 page.
// With auth.require_admin_2fa on, an admin without 2FA is told where to
// turn it on.
func (s *Server) requireAdminPage(next echo.HandlerFunc) echo.HandlerFunc {
	return s.requirePage(func(c echo.Context) error {
		u := currentUser(c).User
		if u.Role != app.RoleAdmin {
			return app.Errorf(app.EFORBIDDEN, "This page is for the administrators of this server. If you need something changed, see the support page.")
		}
		if s.auth.Options().RequireAdmin2FA && !u.TOTPEnabled {
			return app.Errorf(app.EFORBIDDEN, "This server requires admins to use two-factor authentication. Turn it on under Settings → Security (/settings/security), then come back.")
		}
		return next(c)
	})
}
