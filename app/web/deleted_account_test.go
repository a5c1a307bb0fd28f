package web

import (
	"net/http"
	"strings"
	"testing"
)

// deletedAccountRows are every admin and staff route that names a person
// by id or touches their data, called after that person deleted their
// account and before the purge. {victim} is the deleted account's id,
// {ticket} their support ticket. Each must answer 404: the account is
// gone for every route at once. A route of those shapes registered without
// a row here fails the test.
var deletedAccountRows = []struct {
	route, path, body string
	form              bool
}{
	{route: "PATCH /api/v1/admin/users/:id", path: "/api/v1/admin/users/{victim}", body: `{"role":"support"}`},
	{route: "PATCH /api/v1/admin/users/:id", path: "/api/v1/admin/users/{victim}", body: `{"disabled":true}`},
	{route: "POST /api/v1/admin/users/:id/access", path: "/api/v1/admin/users/{victim}/access", body: `{"reason":"Answering the ticket about a lost image"}`},
	{route: "GET /api/v1/admin/users/:id/profile", path: "/api/v1/admin/users/{victim}/profile"},
	{route: "GET /api/v1/admin/users/:id/images", path: "/api/v1/admin/users/{victim}/images"},
	{route: "GET /api/v1/admin/users/:id/images/:image/file", path: "/api/v1/admin/users/{victim}/images/01HZZZZZZZZZZZZZZZZZZZZZZZ/file"},
	{route: "POST /api/v1/admin/users/:id/reset-link", path: "/api/v1/admin/users/{victim}/reset-link"},
	{route: "GET /api/v1/admin/users/:id/hold", path: "/api/v1/admin/users/{victim}/hold"},
	{route: "POST /api/v1/admin/users/:id/hold", path: "/api/v1/admin/users/{victim}/hold", body: `{"reason":"Court order 42 of the district court"}`},
	{route: "DELETE /api/v1/admin/users/:id/hold", path: "/api/v1/admin/users/{victim}/hold"},
	{route: "POST /api/v1/admin/users/:id/under-13", path: "/api/v1/admin/users/{victim}/under-13"},
	{route: "POST /admin/users/:id/role", path: "/admin/users/{victim}/role", body: "role=support", form: true},
	{route: "POST /admin/users/:id/status", path: "/admin/users/{victim}/status", body: "disabled=1", form: true},
	{route: "POST /admin/users/:id/reset-link", path: "/admin/users/{victim}/reset-link", body: "x=1", form: true},
	{route: "GET /api/v1/support/tickets/:id", path: "/api/v1/support/tickets/{ticket}"},
	{route: "POST /api/v1/support/tickets/:id/messages", path: "/api/v1/support/tickets/{ticket}/messages", body: `{"body":"Looking into it."}`},
	{route: "POST /api/v1/support/tickets/:id/close", path: "/api/v1/support/tickets/{ticket}/close"},
	{route: "GET /support/queue/:id", path: "/support/queue/{ticket}"},
	{route: "POST /support/queue/:id/reply", path: "/support/queue/{ticket}/reply", body: "body=Looking+into+it.", form: true},
	{route: "POST /support/queue/:id/close", path: "/support/queue/{ticket}/close", body: "x=1", form: true},
}

// TestDeletedAccountIsGoneForEveryAdminRoute: between deletion and purge,
// admin and staff routes answer 404 for the deleted account (never 500,
// never a success), lists show it as deleted, its reset links are dead and
// its open data-rights requests are closed.
func TestDeletedAccountIsGoneForEveryAdminRoute(t *testing.T) {
	e := newAuthEnv(t, authOptionsForTest(), Options{})
	adm := e.signup(t, "boss")
	victim := e.signup(t, "victim")

	r := victim.do("POST", "/api/v1/tickets", `{"subject":"Lost image","body":"It vanished."}`)
	if r.Code != http.StatusCreated {
		t.Fatalf("ticket: %d %s", r.Code, r.Body)
	}
	ticket := r.json(t)["id"].(string)
	if r := victim.do("POST", "/api/v1/me/requests", `{"kind":"rectify","details":"My display name is misspelled."}`); r.Code != http.StatusCreated {
		t.Fatalf("data request: %d %s", r.Code, r.Body)
	}
	if r := adm.do("POST", "/api/v1/admin/users/"+victim.userID+"/access", `{"reason":"Answering the ticket about a lost image"}`); r.Code != http.StatusCreated && r.Code != http.StatusOK {
		t.Fatalf("access grant: %d %s", r.Code, r.Body)
	}
	link := adm.do("POST", "/api/v1/admin/users/"+victim.userID+"/reset-link", "").json(t)["token"].(string)

	if r := victim.do("DELETE", "/api/v1/me", `{"password":"`+testPassword+`"}`); r.Code/100 != 2 {
		t.Fatalf("delete: %d %s", r.Code, r.Body)
	}

	for _, row := range deletedAccountRows {
		path := strings.NewReplacer("{victim}", victim.userID, "{ticket}", ticket).Replace(row.path)
		t.Run(row.route+" "+row.body, func(t *testing.T) {
			var hdr []string
			if row.form {
				hdr = formPost
			}
			r := adm.do(strings.Fields(row.route)[0], path, row.body, hdr...)
			if r.Code != http.StatusNotFound {
				t.Errorf("%s %s: %d, want 404\n%.300s", strings.Fields(row.route)[0], path, r.Code, r.Body)
			}
		})
	}

	// A reset link made before the deletion is dead, not a server error.
	r = e.anon().do("POST", "/api/v1/auth/reset", `{"token":"`+link+`","password":"a new and long passphrase"}`)
	if r.Code != http.StatusBadRequest {
		t.Errorf("reset link of a deleted account: %d %s, want 400", r.Code, r.Body)
	}
	// Lists still answer, and say what became of the account.
	if r := adm.do("GET", "/admin/users", ""); r.Code != http.StatusOK || !strings.Contains(r.Body.String(), "deleted") {
		t.Errorf("admin users page: %d, want 200 marking the account deleted", r.Code)
	}
	r = adm.do("GET", "/api/v1/admin/users", "")
	if r.Code != http.StatusOK || !strings.Contains(r.Body.String(), `"deleted_at"`) {
		t.Errorf("admin users API: %d %.300s, want the account with its deleted_at", r.Code, r.Body)
	}
	for _, path := range []string{"/api/v1/support/tickets", "/support/queue"} {
		if r := adm.do("GET", path, ""); r.Code != http.StatusOK || strings.Contains(r.Body.String(), ticket) {
			t.Errorf("%s: %d; want 200 without the deleted account's ticket", path, r.Code)
		}
	}
	r = adm.do("GET", "/api/v1/admin/requests?status=open", "")
	if r.Code != http.StatusOK || strings.Contains(r.Body.String(), victim.userID) {
		t.Errorf("open requests: %d %.300s; want none of the deleted account", r.Code, r.Body)
	}
	if r := adm.do("GET", "/admin/requests", ""); r.Code != http.StatusOK {
		t.Errorf("admin requests page: %d", r.Code)
	}
}

// TestDeletedAccountRowsCoverEveryRoute fails when an admin or staff route
// that takes a person's or ticket's id has no row above.
func TestDeletedAccountRowsCoverEveryRoute(t *testing.T) {
	e := newAuthEnv(t, authOptionsForTest(), Options{})
	have := map[string]bool{}
	for _, row := range deletedAccountRows {
		have[row.route] = true
	}
	for _, r := range e.s.e.Routes() {
		if !strings.Contains(r.Path, "/admin/users/:id") && !strings.Contains(r.Path, "/support/tickets/:id") && !strings.Contains(r.Path, "/support/queue/:id") {
			continue
		}
		if strings.HasPrefix(r.Path, "/support/tickets/") || strings.HasPrefix(r.Path, "/api/v1/tickets/") {
			continue // the owner's own ticket pages: the deleted owner cannot sign in
		}
		if key := r.Method + " " + r.Path; !have[key] {
			t.Errorf("%s has no row in deletedAccountRows", key)
		}
	}
}
