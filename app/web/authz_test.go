package web

import (
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"
)

// The authorization matrix: every route × {anonymous, another user, the
// owner, support, admin} with the status each must get. A route registered
// without a row here fails TestAuthzMatrixCoversEveryRoute, so nobody can
// add an endpoint without deciding who may call it.

// Identities, in the order of the want arrays. For /me routes the owner is
// the caller themself; for routes with an {id} it is the user the id
// belongs to.
const (
	anon = iota
	other
	owner
	support
	admin
)

var identityNames = [...]string{"anonymous", "other", "owner", "support", "admin"}

// authzExempt are routes with no identity at all, and HTML pages that show
// the same to everyone. Add pages here only if they are public.
var authzExempt = map[string]bool{
	"GET /healthz":  true,
	"GET /readyz":   true,
	"GET /metrics":  true,
	"GET /static/*": true,
	"GET /":         true,
	// The privacy policy is public and the same for everyone.
	"GET /privacy":                   true,
	"GET /privacy/versions/:n":       true,
	"GET /api/v1/policy":             true,
	"GET /api/v1/policy/versions":    true,
	"GET /api/v1/policy/versions/:n": true,
}

type authzRow struct {
	route string // "METHOD /pattern" as registered
	path  string // with {owner}, {owner_session}, {owner_key}, {unknown}
	body  func(who int) string
	// prepare runs once before the cells, e.g. to put each identity in the
	// state the route needs.
	prepare func(t *testing.T, f *authzFixtures)
	// hdr are extra headers ("Content-Type", "application/x-www-form-urlencoded" for HTML forms).
	hdr  []string
	want [5]int
}

var formPost = []string{"Content-Type", "application/x-www-form-urlencoded"}

func fixed(s string) func(int) string { return func(int) string { return s } }

const unknownID = "01HZZZZZZZZZZZZZZZZZZZZZZZ"

var authzRows = []authzRow{
	// Public.
	{route: "POST /api/v1/auth/signup", body: func(who int) string {
		return signupBody(fmt.Sprintf("new%d@example.com", who), fmt.Sprintf("newcomer%d", who))
	}, want: [5]int{201, 201, 201, 201, 201}},
	{route: "POST /api/v1/auth/login", body: fixed(`{"login":"owner1","password":"` + testPassword + `"}`), want: [5]int{200, 200, 200, 200, 200}},
	{route: "POST /api/v1/auth/logout", want: [5]int{204, 204, 204, 204, 204}},
	{route: "POST /api/v1/auth/verify-email", body: fixed(`{"token":"zie_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}`), want: [5]int{400, 400, 400, 400, 400}},
	{route: "POST /api/v1/me/email", body: fixed(`{"email":"new@example.com","password":"` + testPassword + `"}`), want: [5]int{401, 503, 503, 503, 503}},
	{route: "POST /api/v1/auth/reset-request", body: fixed(`{"email":"someone@example.com"}`), want: [5]int{503, 503, 503, 503, 503}},
	{route: "POST /api/v1/auth/reset", body: fixed(`{"token":"zir_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","password":"a new and long passphrase"}`), want: [5]int{400, 400, 400, 400, 400}},

	// The caller's own account.
	{route: "GET /api/v1/me", want: [5]int{401, 200, 200, 200, 200}},
	{route: "PATCH /api/v1/me", body: fixed(`{"display_name":"Someone"}`), want: [5]int{401, 200, 200, 200, 200}},
	{route: "GET /api/v1/me/access-log", want: [5]int{401, 200, 200, 200, 200}},
	{route: "POST /api/v1/me/password", body: fixed(`{"current_password":"` + testPassword + `","new_password":"velvet lantern orbit meadow"}`), want: [5]int{401, 200, 200, 200, 200}},
	{route: "GET /api/v1/me/sessions", want: [5]int{401, 200, 200, 200, 200}},
	{route: "DELETE /api/v1/me/sessions", want: [5]int{401, 204, 204, 204, 204}},
	{route: "DELETE /api/v1/me/sessions/:id", path: "/api/v1/me/sessions/{owner_session}", want: [5]int{401, 404, 204, 404, 404}},
	{route: "DELETE /api/v1/me/sessions/:id", path: "/api/v1/me/sessions/{unknown}", want: [5]int{401, 404, 404, 404, 404}},
	{route: "POST /api/v1/me/2fa", want: [5]int{401, 200, 200, 200, 200}},
	{route: "GET /api/v1/me/2fa/qr.png", prepare: startTOTPForAll, want: [5]int{401, 200, 200, 200, 200}},
	{route: "GET /api/v1/me/2fa/qr.png", want: [5]int{401, 409, 409, 409, 409}}, // nothing to show before enrolment
	{route: "POST /api/v1/me/2fa/confirm", prepare: startTOTPForAll, body: fixed(`{"code":"000000"}`), want: [5]int{401, 400, 400, 400, 400}},
	{route: "DELETE /api/v1/me/2fa", body: fixed(`{"password":"` + testPassword + `","code":"000000"}`), want: [5]int{401, 409, 409, 409, 409}},
	{route: "GET /api/v1/me/api-keys", want: [5]int{401, 200, 200, 200, 200}},
	{route: "POST /api/v1/me/api-keys", body: fixed(`{"name":"laptop","scopes":["read"]}`), want: [5]int{401, 201, 201, 201, 201}},
	{route: "DELETE /api/v1/me/api-keys/:id", path: "/api/v1/me/api-keys/{owner_key}", want: [5]int{401, 404, 204, 404, 404}},

	// Generations and images: only the owner's own; everyone else gets
	// 404, never 403, so ids do not reveal that something exists.
	{route: "POST /api/v1/generations", body: fixed(`{"prompt":"a red fox in snow","width":64,"height":64,"steps":1}`), want: [5]int{401, 202, 202, 202, 202}},
	{route: "GET /api/v1/generations", want: [5]int{401, 200, 200, 200, 200}},
	{route: "GET /api/v1/generations/:id", path: "/api/v1/generations/{owner_gen}", want: [5]int{401, 404, 200, 404, 404}},
	{route: "GET /api/v1/generations/:id", path: "/api/v1/generations/{unknown}", want: [5]int{401, 404, 404, 404, 404}},
	{route: "POST /api/v1/generations/:id/cancel", path: "/api/v1/generations/{owner_gen}/cancel", want: [5]int{401, 404, 409, 404, 404}},
	{route: "GET /api/v1/events", want: [5]int{401, 200, 200, 200, 200}},
	{route: "GET /api/v1/images", want: [5]int{401, 200, 200, 200, 200}},
	{route: "GET /api/v1/images/:id", path: "/api/v1/images/{owner_image}", want: [5]int{401, 404, 200, 404, 404}},
	{route: "GET /api/v1/images/:id", path: "/api/v1/images/{unknown}", want: [5]int{401, 404, 404, 404, 404}},
	{route: "GET /api/v1/images/:id/file", path: "/api/v1/images/{owner_image}/file?format=png", want: [5]int{401, 404, 200, 404, 404}},
	{route: "GET /api/v1/images/:id/file", path: "/api/v1/images/{owner_image}/file?size=thumb", want: [5]int{401, 404, 200, 404, 404}},
	{route: "PATCH /api/v1/images/:id", path: "/api/v1/images/{owner_image}", body: fixed(`{"favourite":true}`), want: [5]int{401, 404, 200, 404, 404}},
	{route: "DELETE /api/v1/images/:id", path: "/api/v1/images/{owner_image}", want: [5]int{401, 404, 204, 404, 404}},
	{route: "POST /v1/images/generations", body: fixed(`{"prompt":"a red fox in snow","size":"64x64","steps":1}`), want: [5]int{401, 200, 200, 200, 200}},
	{route: "GET /v1/models", want: [5]int{401, 200, 200, 200, 200}},
	{route: "GET /v1/models/:id", path: "/v1/models/{unknown}", want: [5]int{401, 404, 404, 404, 404}},
	// An image link is its own credential: without a valid signature it
	// shows nothing to anybody, the owner included.
	{route: "GET /v1/images/files/:id", path: "/v1/images/files/{owner_image}?u={owner}&f=png&q=100&e=9999999999&s=AAAA", want: [5]int{404, 404, 404, 404, 404}},

	// Pages: anonymous visitors are sent to sign in.
	{route: "GET /generate", want: [5]int{303, 200, 200, 200, 200}},
	{route: "POST /generate", body: fixed("prompt=a+red+fox&size=64x64&steps=1&count=1"), hdr: formPost, want: [5]int{401, 303, 303, 303, 303}},
	{route: "POST /generations/:id/cancel", path: "/generations/{owner_gen}/cancel", hdr: formPost, body: fixed("x=1"), want: [5]int{401, 404, 303, 404, 404}},
	{route: "GET /gallery", want: [5]int{303, 200, 200, 200, 200}},
	{route: "POST /gallery/bulk", body: fixed("action=zip&id={owner_image}"), hdr: formPost, want: [5]int{401, 404, 200, 404, 404}},
	{route: "GET /images/:id", path: "/images/{owner_image}", want: [5]int{303, 404, 200, 404, 404}},
	{route: "POST /images/:id/delete", path: "/images/{owner_image}/delete", hdr: formPost, body: fixed("x=1"), want: [5]int{401, 404, 303, 404, 404}},
	{route: "POST /images/:id/favourite", path: "/images/{owner_image}/favourite", hdr: formPost, body: fixed("favourite=1"), want: [5]int{401, 404, 303, 404, 404}},

	// Account, settings and admin pages (page_auth.go, page_settings.go,
	// page_admin.go). Sign-up, sign-in and reset are for anyone; a
	// signed-in visitor of /signup or /login is sent on. Revoking a session
	// or key that is not one's own answers like an ended one (303 with a
	// notice), so the owner column is the one that changes state; the page
	// tests check that nothing of the owner's was touched.
	{route: "GET /signup", want: [5]int{200, 303, 303, 303, 303}},
	{route: "POST /signup", hdr: formPost, body: func(who int) string {
		return fmt.Sprintf("email=page%d%%40example.com&username=pagecomer%d&password=%s&age_confirmed=1", who, who, url.QueryEscape(testPassword))
	}, want: [5]int{303, 303, 303, 303, 303}},
	{route: "GET /login", want: [5]int{200, 303, 303, 303, 303}},
	{route: "POST /login", hdr: formPost, body: fixed("login=owner1&password=" + url.QueryEscape(testPassword)), want: [5]int{303, 303, 303, 303, 303}},
	{route: "POST /login/2fa", hdr: formPost, body: fixed("ticket=forged&code=123456"), want: [5]int{400, 400, 400, 400, 400}},
	{route: "POST /logout", hdr: formPost, body: fixed("x=1"), want: [5]int{303, 303, 303, 303, 303}},
	{route: "GET /verify-email", path: "/verify-email?token=zie_aaaaaaaa", want: [5]int{200, 200, 200, 200, 200}},
	{route: "POST /verify-email", hdr: formPost, body: fixed("token=zie_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"), want: [5]int{400, 400, 400, 400, 400}},
	{route: "GET /forgot", want: [5]int{200, 200, 200, 200, 200}},
	{route: "POST /forgot", hdr: formPost, body: fixed("email=someone%40example.com"), want: [5]int{503, 503, 503, 503, 503}},
	{route: "GET /reset", path: "/reset?token=zir_aaaaaaaa", want: [5]int{200, 200, 200, 200, 200}},
	{route: "GET /reset", want: [5]int{400, 400, 400, 400, 400}},
	{route: "POST /reset", hdr: formPost, body: fixed("token=zir_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa&password=a+new+and+long+passphrase&password_confirm=a+new+and+long+passphrase"), want: [5]int{400, 400, 400, 400, 400}},
	{route: "GET /settings", want: [5]int{303, 303, 303, 303, 303}},
	{route: "GET /settings/profile", want: [5]int{303, 200, 200, 200, 200}},
	{route: "POST /settings/profile", hdr: formPost, body: fixed("display_name=Someone"), want: [5]int{401, 303, 303, 303, 303}},
	{route: "GET /settings/password", want: [5]int{303, 200, 200, 200, 200}},
	{route: "POST /settings/password", hdr: formPost, body: fixed("current_password=" + url.QueryEscape(testPassword) + "&new_password=velvet+lantern+orbit+meadow&new_password_confirm=velvet+lantern+orbit+meadow"), want: [5]int{401, 303, 303, 303, 303}},
	{route: "GET /settings/security", want: [5]int{303, 200, 200, 200, 200}},
	{route: "POST /settings/security/2fa", hdr: formPost, body: fixed("x=1"), want: [5]int{401, 200, 200, 200, 200}},
	{route: "POST /settings/security/2fa/confirm", prepare: startTOTPForAll, hdr: formPost, body: fixed("code=000000"), want: [5]int{401, 400, 400, 400, 400}},
	{route: "POST /settings/security/2fa/disable", hdr: formPost, body: fixed("password=" + url.QueryEscape(testPassword) + "&code=000000"), want: [5]int{401, 303, 303, 303, 303}}, // already off
	{route: "POST /settings/security/sessions/:id/revoke", path: "/settings/security/sessions/{owner_session}/revoke", hdr: formPost, body: fixed("x=1"), want: [5]int{401, 303, 303, 303, 303}},
	{route: "POST /settings/security/sessions/revoke-others", hdr: formPost, body: fixed("x=1"), want: [5]int{401, 303, 303, 303, 303}},
	{route: "GET /settings/api-keys", want: [5]int{303, 200, 200, 200, 200}},
	{route: "POST /settings/api-keys", hdr: formPost, body: fixed("name=laptop&scope=read"), want: [5]int{401, 201, 201, 201, 201}},
	{route: "POST /settings/api-keys", hdr: formPost, body: fixed("name=laptop&scope=admin"), want: [5]int{401, 400, 400, 400, 201}},
	{route: "POST /settings/api-keys/:id/revoke", path: "/settings/api-keys/{owner_key}/revoke", hdr: formPost, body: fixed("x=1"), want: [5]int{401, 303, 303, 303, 303}},
	{route: "GET /admin", want: [5]int{303, 403, 403, 403, 303}},
	{route: "GET /admin/users", want: [5]int{303, 403, 403, 403, 200}},
	{route: "POST /admin/users/:id/role", path: "/admin/users/{owner}/role", hdr: formPost, body: fixed("role=support"), want: [5]int{401, 403, 403, 403, 303}},
	{route: "POST /admin/users/:id/role", path: "/admin/users/{unknown}/role", hdr: formPost, body: fixed("role=support"), want: [5]int{401, 403, 403, 403, 404}},
	{route: "POST /admin/users/:id/status", path: "/admin/users/{owner}/status", hdr: formPost, body: fixed("disabled=1"), want: [5]int{401, 403, 403, 403, 303}},
	{route: "POST /admin/users/:id/status", path: "/admin/users/{unknown}/status", hdr: formPost, body: fixed("disabled=1"), want: [5]int{401, 403, 403, 403, 404}},
	{route: "POST /admin/users/:id/reset-link", path: "/admin/users/{owner}/reset-link", hdr: formPost, body: fixed("x=1"), want: [5]int{401, 403, 403, 403, 201}},
	{route: "POST /admin/users/:id/reset-link", path: "/admin/users/{unknown}/reset-link", hdr: formPost, body: fixed("x=1"), want: [5]int{401, 403, 403, 403, 404}},
	{route: "POST /admin/invites", hdr: formPost, body: fixed("x=1"), want: [5]int{401, 403, 403, 403, 201}},
	{route: "POST /admin/signup-mode", hdr: formPost, body: fixed("mode=invite"), want: [5]int{401, 403, 403, 403, 303}},
	{route: "GET /admin/backends", want: [5]int{303, 403, 403, 403, 200}},
	{route: "GET /admin/audit", want: [5]int{303, 403, 403, 403, 200}},

	// Privacy & data, communications and support pages, and the admin
	// request queue (page_privacy.go, page_communications.go,
	// page_support.go, page_admin_requests.go). Each person acts on their
	// own account; another person's ticket is 404; the support queue is
	// for support and admins, the request queue for admins.
	{route: "GET /settings/privacy", want: [5]int{303, 200, 200, 200, 200}},
	{route: "POST /settings/privacy/exports", hdr: formPost, body: fixed("x=1"), want: [5]int{401, 303, 303, 303, 303}},
	{route: "POST /settings/privacy/consents", hdr: formPost, body: fixed("purpose=training&granted_training=1"), want: [5]int{401, 303, 303, 303, 303}},
	{route: "POST /settings/privacy/consents", hdr: formPost, body: fixed("purpose=everything&granted_everything=1"), want: [5]int{401, 400, 400, 400, 400}},
	{route: "POST /settings/privacy/restrict", hdr: formPost, body: fixed("restricted=1"), want: [5]int{401, 303, 303, 303, 303}},
	{route: "POST /settings/privacy/requests", hdr: formPost, body: fixed("kind=rectify&details=My+display+name+is+misspelt."), want: [5]int{401, 303, 303, 303, 303}},
	{route: "POST /settings/privacy/requests", hdr: formPost, body: fixed("kind=everything"), want: [5]int{401, 400, 400, 400, 400}},
	{route: "POST /settings/privacy/policy-ack", prepare: publishSignificantPolicy, hdr: formPost, body: fixed("version=1"), want: [5]int{401, 303, 303, 303, 303}},
	{route: "POST /settings/privacy/delete", hdr: formPost, body: fixed("password=" + url.QueryEscape(testPassword) + "&confirm=1"), want: [5]int{401, 303, 303, 303, 409}}, // the only admin stays
	{route: "POST /settings/privacy/delete", hdr: formPost, body: fixed("password=" + url.QueryEscape(testPassword)), want: [5]int{401, 400, 400, 400, 400}},
	{route: "GET /goodbye", want: [5]int{200, 200, 200, 200, 200}},
	{route: "GET /settings/communications", want: [5]int{303, 200, 200, 200, 200}},
	{route: "POST /settings/communications/consents", hdr: formPost, body: fixed("purpose=marketing&granted_marketing=1"), want: [5]int{401, 303, 303, 303, 303}},
	{route: "GET /support", want: [5]int{200, 200, 200, 200, 200}},
	{route: "POST /support/tickets", hdr: formPost, body: fixed("subject=Lost+image&body=It+vanished."), want: [5]int{401, 303, 303, 303, 303}},
	{route: "GET /support/tickets/:id", path: "/support/tickets/{owner_ticket}", prepare: ownerTicket, want: [5]int{303, 404, 200, 404, 404}},
	{route: "POST /support/tickets/:id/reply", path: "/support/tickets/{owner_ticket}/reply", prepare: ownerTicket, hdr: formPost, body: fixed("body=Any+news%3F"), want: [5]int{401, 404, 303, 404, 404}},
	{route: "GET /support/queue", want: [5]int{303, 403, 403, 200, 200}},
	{route: "GET /support/queue/:id", path: "/support/queue/{owner_ticket}", prepare: ownerTicket, want: [5]int{303, 403, 403, 200, 200}},
	{route: "GET /support/queue/:id", path: "/support/queue/{unknown}", want: [5]int{303, 403, 403, 404, 404}},
	{route: "POST /support/queue/:id/reply", path: "/support/queue/{owner_ticket}/reply", prepare: ownerTicket, hdr: formPost, body: fixed("body=Looking+into+it."), want: [5]int{401, 403, 403, 303, 303}},
	{route: "POST /support/queue/:id/close", path: "/support/queue/{owner_ticket}/close", prepare: ownerTicket, hdr: formPost, body: fixed("x=1"), want: [5]int{401, 403, 403, 303, 303}},
	{route: "GET /admin/requests", want: [5]int{303, 403, 403, 403, 200}},
	{route: "POST /admin/requests/:id/close", path: "/admin/requests/{owner_request}/close", prepare: ownerRequest, hdr: formPost, body: fixed("resolution=Corrected+the+display+name."), want: [5]int{401, 403, 403, 403, 303}},
	{route: "POST /admin/requests/:id/close", path: "/admin/requests/{unknown}/close", hdr: formPost, body: fixed("resolution=Done."), want: [5]int{401, 403, 403, 403, 404}},

	// Admins.
	{route: "GET /api/v1/admin/backends", want: [5]int{401, 403, 403, 403, 200}},
	{route: "GET /api/v1/admin/users", want: [5]int{401, 403, 403, 403, 200}},
	{route: "POST /api/v1/admin/users", body: func(who int) string {
		return `{"email":"made@example.com","username":"madebyadmin","role":"user","age_confirmed":true}`
	}, want: [5]int{401, 403, 403, 403, 201}},
	{route: "PATCH /api/v1/admin/users/:id", path: "/api/v1/admin/users/{owner}", body: fixed(`{"role":"support"}`), want: [5]int{401, 403, 403, 403, 200}},
	{route: "PATCH /api/v1/admin/users/:id", path: "/api/v1/admin/users/{unknown}", body: fixed(`{"disabled":true}`), want: [5]int{401, 403, 403, 403, 404}},
	{route: "POST /api/v1/admin/users/:id/access", path: "/api/v1/admin/users/{owner}/access", body: fixed(`{"reason":"Answering support ticket 42 about a lost image"}`), want: [5]int{401, 403, 403, 403, 201}},
	{route: "POST /api/v1/admin/users/:id/access", path: "/api/v1/admin/users/{unknown}/access", body: fixed(`{"reason":"Answering support ticket 42 about a lost image"}`), want: [5]int{401, 403, 403, 403, 404}},
	{route: "GET /api/v1/admin/users/:id/profile", path: "/api/v1/admin/users/{owner}/profile", prepare: grantAdminAccess, want: [5]int{401, 403, 403, 403, 200}},
	{route: "GET /api/v1/admin/users/:id/profile", path: "/api/v1/admin/users/{owner}/profile", want: [5]int{401, 403, 403, 403, 403}}, // no reason given: no access
	{route: "GET /api/v1/admin/users/:id/profile", path: "/api/v1/admin/users/{unknown}/profile", want: [5]int{401, 403, 403, 403, 404}},
	{route: "GET /api/v1/admin/users/:id/images", path: "/api/v1/admin/users/{owner}/images", prepare: grantAdminAccess, want: [5]int{401, 403, 403, 403, 200}},
	{route: "GET /api/v1/admin/users/:id/images", path: "/api/v1/admin/users/{owner}/images", want: [5]int{401, 403, 403, 403, 403}}, // no reason given: no access
	{route: "GET /api/v1/admin/users/:id/images/:image/file", path: "/api/v1/admin/users/{owner}/images/{owner_image}/file", prepare: grantAdminAccess, want: [5]int{401, 403, 403, 403, 200}},
	{route: "GET /api/v1/admin/users/:id/images/:image/file", path: "/api/v1/admin/users/{owner}/images/{owner_image}/file", want: [5]int{401, 403, 403, 403, 403}},
	{route: "GET /api/v1/admin/users/:id/images/:image/file", path: "/api/v1/admin/users/{unknown}/images/{owner_image}/file", prepare: grantAdminAccess, want: [5]int{401, 403, 403, 403, 404}},
	{route: "POST /api/v1/admin/users/:id/reset-link", path: "/api/v1/admin/users/{owner}/reset-link", want: [5]int{401, 403, 403, 403, 201}},
	{route: "POST /api/v1/admin/users/:id/reset-link", path: "/api/v1/admin/users/{unknown}/reset-link", want: [5]int{401, 403, 403, 403, 404}},
	{route: "POST /api/v1/admin/invites", want: [5]int{401, 403, 403, 403, 201}},
	{route: "PUT /api/v1/admin/settings/signup", body: fixed(`{"mode":"invite"}`), want: [5]int{401, 403, 403, 403, 200}},
	{route: "GET /api/v1/admin/audit", want: [5]int{401, 403, 403, 403, 200}},
	{route: "GET /api/v1/admin/mail", want: [5]int{401, 403, 403, 403, 200}},
	{route: "POST /api/v1/admin/mail/:id/retry", path: "/api/v1/admin/mail/01JUNKNOWNMAIL0000000000000/retry", want: [5]int{401, 403, 403, 403, 404}},

	// Privacy controls: deletion, consents, restriction, policy
	// acknowledgement (a session of one's own), legal holds and the
	// under-13 action (admins).
	{route: "DELETE /api/v1/me", body: fixed(`{"password":"` + testPassword + `"}`), want: [5]int{401, 204, 204, 204, 409}}, // the only admin stays
	{route: "DELETE /api/v1/me", body: fixed(`{"password":"not the password"}`), want: [5]int{401, 403, 403, 403, 403}},
	{route: "GET /api/v1/me/consents", want: [5]int{401, 200, 200, 200, 200}},
	{route: "POST /api/v1/me/consents", body: fixed(`{"purpose":"training","granted":true}`), want: [5]int{401, 200, 200, 200, 200}},
	{route: "POST /api/v1/me/restrict", body: fixed(`{"restricted":true}`), want: [5]int{401, 200, 200, 200, 200}},
	{route: "POST /api/v1/me/policy-ack", prepare: publishSignificantPolicy, body: fixed(`{"version":1}`), want: [5]int{401, 204, 204, 204, 204}},
	{route: "POST /api/v1/me/policy-ack", body: fixed(`{"version":7}`), want: [5]int{401, 404, 404, 404, 404}},
	{route: "GET /api/v1/admin/users/:id/hold", path: "/api/v1/admin/users/{owner}/hold", prepare: holdOwner, want: [5]int{401, 403, 403, 403, 200}},
	{route: "GET /api/v1/admin/users/:id/hold", path: "/api/v1/admin/users/{owner}/hold", want: [5]int{401, 403, 403, 403, 404}},
	{route: "POST /api/v1/admin/users/:id/hold", path: "/api/v1/admin/users/{owner}/hold", body: fixed(`{"reason":"Preservation order 2026-114"}`), want: [5]int{401, 403, 403, 403, 200}},
	{route: "POST /api/v1/admin/users/:id/hold", path: "/api/v1/admin/users/{unknown}/hold", body: fixed(`{"reason":"Preservation order 2026-114"}`), want: [5]int{401, 403, 403, 403, 404}},
	{route: "DELETE /api/v1/admin/users/:id/hold", path: "/api/v1/admin/users/{owner}/hold", prepare: holdOwner, want: [5]int{401, 403, 403, 403, 204}},
	{route: "DELETE /api/v1/admin/users/:id/hold", path: "/api/v1/admin/users/{unknown}/hold", want: [5]int{401, 403, 403, 403, 404}},
	{route: "POST /api/v1/admin/users/:id/under-13", path: "/api/v1/admin/users/{owner}/under-13", body: fixed(`{"note":"reported by a parent"}`), want: [5]int{401, 403, 403, 403, 204}},
	{route: "POST /api/v1/admin/users/:id/under-13", path: "/api/v1/admin/users/{unknown}/under-13", want: [5]int{401, 403, 403, 403, 404}},

	// Exports, data-rights requests and support tickets: one's own (a
	// session for anything that files or downloads); the staff queue for
	// support and admins only; the request queue for admins only.
	{route: "POST /api/v1/me/exports", want: [5]int{401, 202, 202, 202, 202}},
	{route: "GET /api/v1/me/exports", want: [5]int{401, 200, 200, 200, 200}},
	{route: "GET /api/v1/me/exports/:id", path: "/api/v1/me/exports/{owner_export}", prepare: ownerExportReady, want: [5]int{401, 404, 200, 404, 404}},
	{route: "GET /api/v1/me/exports/:id/download", path: "/api/v1/me/exports/{owner_export}/download", prepare: ownerExportReady, want: [5]int{401, 404, 200, 404, 404}},
	{route: "GET /api/v1/me/exports/:id/download", path: "/api/v1/me/exports/{unknown}/download", want: [5]int{401, 404, 404, 404, 404}},
	{route: "GET /api/v1/me/requests", want: [5]int{401, 200, 200, 200, 200}},
	{route: "POST /api/v1/me/requests", body: fixed(`{"kind":"rectify","details":"My display name is misspelt."}`), want: [5]int{401, 201, 201, 201, 201}},
	{route: "GET /api/v1/admin/requests", want: [5]int{401, 403, 403, 403, 200}},
	{route: "POST /api/v1/admin/requests/:id/close", path: "/api/v1/admin/requests/{owner_request}/close", prepare: ownerRequest, body: fixed(`{"resolution":"Corrected the display name."}`), want: [5]int{401, 403, 403, 403, 200}},
	{route: "POST /api/v1/admin/requests/:id/close", path: "/api/v1/admin/requests/{unknown}/close", body: fixed(`{"resolution":"Done."}`), want: [5]int{401, 403, 403, 403, 404}},
	{route: "GET /api/v1/tickets", want: [5]int{401, 200, 200, 200, 200}},
	{route: "POST /api/v1/tickets", body: fixed(`{"subject":"Lost image","body":"An image vanished from my gallery."}`), want: [5]int{401, 201, 201, 201, 201}},
	{route: "GET /api/v1/tickets/:id", path: "/api/v1/tickets/{owner_ticket}", prepare: ownerTicket, want: [5]int{401, 404, 200, 404, 404}},
	{route: "POST /api/v1/tickets/:id/messages", path: "/api/v1/tickets/{owner_ticket}/messages", prepare: ownerTicket, body: fixed(`{"body":"Any news?"}`), want: [5]int{401, 404, 201, 404, 404}},
	{route: "GET /api/v1/support/tickets", want: [5]int{401, 403, 403, 200, 200}},
	{route: "GET /api/v1/support/tickets/:id", path: "/api/v1/support/tickets/{owner_ticket}", prepare: ownerTicket, want: [5]int{401, 403, 403, 200, 200}},
	{route: "GET /api/v1/support/tickets/:id", path: "/api/v1/support/tickets/{unknown}", want: [5]int{401, 403, 403, 404, 404}},
	{route: "POST /api/v1/support/tickets/:id/messages", path: "/api/v1/support/tickets/{owner_ticket}/messages", prepare: ownerTicket, body: fixed(`{"body":"Looking into it."}`), want: [5]int{401, 403, 403, 201, 201}},
	{route: "POST /api/v1/support/tickets/:id/close", path: "/api/v1/support/tickets/{owner_ticket}/close", prepare: ownerTicket, want: [5]int{401, 403, 403, 204, 204}},
}

type authzFixtures struct {
	env          *authEnv
	who          [5]*client
	ownerSession string // a second session of the owner's
	ownerKey     string // an API key of the owner's
	ownerGen     string // a finished generation of the owner's
	ownerImage   string // its image
	// vars are placeholders prepare hooks add ("{owner_ticket}" → id).
	vars map[string]string
}

func startTOTPForAll(t *testing.T, f *authzFixtures) {
	for _, c := range f.who[other:] {
		if r := c.do("POST", "/api/v1/me/2fa", ""); r.Code != 200 {
			t.Fatalf("start 2fa: %d %s", r.Code, r.Body)
		}
	}
}

func grantAdminAccess(t *testing.T, f *authzFixtures) {
	r := f.who[admin].do("POST", "/api/v1/admin/users/"+f.who[owner].userID+"/access", `{"reason":"Answering support ticket 42 about a lost image"}`)
	if r.Code != 201 {
		t.Fatalf("grant: %d %s", r.Code, r.Body)
	}
}

// newAuthzFixtures makes the five identities on a fresh server: the first
// sign-up becomes admin, support is promoted by the admin and signs in
// again (a role change ends sessions).
func newAuthzFixtures(t *testing.T) *authzFixtures {
	t.Helper()
	env := newAuthEnv(t, authOptionsForTest(), Options{})
	f := &authzFixtures{env: env}
	f.who[anon] = env.anon()
	f.who[admin] = env.signup(t, "admin1")
	f.who[owner] = env.signup(t, "owner1")
	f.who[other] = env.signup(t, "other1")
	sup := env.signup(t, "support1")
	if r := f.who[admin].do("PATCH", "/api/v1/admin/users/"+sup.userID, `{"role":"support"}`); r.Code != 200 {
		t.Fatalf("make support: %d %s", r.Code, r.Body)
	}
	f.who[support] = env.login(t, "support1")
	second := env.login(t, "owner1")
	f.ownerSession = sessionIDOf(t, second)
	_, f.ownerKey = f.who[owner].apiKey(t, "read")
	f.ownerGen, f.ownerImage = generateAndWait(t, f.who[owner])
	return f
}

// generateAndWait makes one small image as c and returns the generation
// and image ids once it is stored (bounded wait).
func generateAndWait(t *testing.T, c *client) (genID, imageID string) {
	t.Helper()
	r := c.do("POST", "/api/v1/generations", `{"prompt":"a quiet harbour at dawn","width":64,"height":64,"steps":1}`)
	if r.Code != http.StatusAccepted {
		t.Fatalf("generate: %d %s", r.Code, r.Body)
	}
	return waitGeneration(t, c, r.json(t)["id"].(string))
}

// waitGeneration waits (bounded) for c's one-image generation to succeed
// and returns its id and its image's id.
func waitGeneration(t *testing.T, c *client, genID string) (string, string) {
	t.Helper()
	ids := waitImages(t, c, genID)
	if len(ids) != 1 {
		t.Fatalf("succeeded with %d images", len(ids))
	}
	return genID, ids[0]
}

// sessionIDOf returns the id of c's current session.
func sessionIDOf(t *testing.T, c *client) string {
	t.Helper()
	r := c.do("GET", "/api/v1/me/sessions", "")
	for _, x := range r.json(t)["sessions"].([]any) {
		if m := x.(map[string]any); m["current"] == true {
			return m["id"].(string)
		}
	}
	t.Fatalf("no current session in %s", r.Body)
	return ""
}

func (f *authzFixtures) fill(path string) string {
	for k, v := range f.vars {
		path = strings.ReplaceAll(path, k, v)
	}
	return strings.NewReplacer("{owner}", f.who[owner].userID, "{owner_session}", f.ownerSession,
		"{owner_key}", f.ownerKey, "{owner_gen}", f.ownerGen, "{owner_image}", f.ownerImage, "{unknown}", unknownID).Replace(path)
}

func TestAuthzMatrixCoversEveryRoute(t *testing.T) {
	env := newAuthEnv(t, authOptionsForTest(), Options{})
	covered := map[string]bool{}
	for _, r := range authzRows {
		covered[r.route] = true
	}
	var missing []string
	registered := map[string]bool{}
	for _, r := range env.s.e.Routes() {
		if r.Method == echo.RouteNotFound {
			continue
		}
		key := r.Method + " " + r.Path
		registered[key] = true
		if !covered[key] && !authzExempt[key] {
			missing = append(missing, key)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("routes without a row in authzRows (decide who may call them, then add a row per identity):\n  %s", strings.Join(missing, "\n  "))
	}
	for key := range covered {
		if !registered[key] {
			t.Errorf("authzRows has %q, which is not a registered route", key)
		}
	}
}

func TestAuthzMatrix(t *testing.T) {
	for _, row := range authzRows {
		path := row.path
		if path == "" {
			path = strings.SplitN(row.route, " ", 2)[1]
		}
		method := strings.SplitN(row.route, " ", 2)[0]
		t.Run(method+" "+path, func(t *testing.T) {
			// A fresh server per row: a cell that succeeds (a logout, a
			// role change) must not change what the next cell sees.
			f := newAuthzFixtures(t)
			if row.prepare != nil {
				row.prepare(t, f)
			}
			p := f.fill(path)
			for who, want := range row.want {
				body := ""
				if row.body != nil {
					body = f.fill(row.body(who))
				}
				r := f.who[who].do(method, p, body, row.hdr...)
				if r.Code != want {
					t.Errorf("%s: %s %s = %d, want %d; body %s", identityNames[who], method, p, r.Code, want, r.Body)
				}
				if r.Code >= 400 && r.Code != http.StatusMethodNotAllowed && isAPI(p) && r.errCode(t) == "" {
					t.Errorf("%s: error response without an error code: %s", identityNames[who], r.Body)
				}
			}
		})
	}
}
