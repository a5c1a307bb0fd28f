package web

import (
	"net/http"
	"net/url"
	"strconv"

	"github.com/labstack/echo/v4"

	"zimage/app"
	"zimage/app/backend"
)

// The admin pages: users (roles, disabling, reset links, invites, the
// sign-up mode), backends and queue, and the audit log. requireAdminPage
// guards them all.

func (s *Server) adminPage(c echo.Context, section string, data any) page {
	p := s.newPage(c, "admin", data)
	p.Section = section
	p.Flash = doneMessages[c.QueryParam("done")]
	return p
}

func (s *Server) adminHome(c echo.Context) error {
	return c.Redirect(http.StatusSeeOther, "/admin/users")
}

type adminUserView struct {
	ID, Username, Role, Created string
	TOTP, Disabled, Self        bool
	// Deleted is when the account was deleted ("" while it lives): it
	// waits for its purge and no action applies to it any more.
	Deleted string
}

// oneTimeLink is a reset or invite link, shown on the answer that makes
// it and never again.
type oneTimeLink struct {
	What, URL, Expires, For string
}

type adminUsersPage struct {
	Users      []adminUserView
	Roles      []string
	Mode       string
	Modes      []string
	Next       string // ?after= of the next page, "" on the last
	First      bool
	Link       *oneTimeLink
	RequireTFA bool
}

const adminUsersPageSize = 50

func (s *Server) adminUsersData(c echo.Context) (adminUsersPage, error) {
	ctx := c.Request().Context()
	after := c.QueryParam("after")
	users, err := s.auth.ListUsers(ctx, after, adminUsersPageSize+1)
	if err != nil {
		return adminUsersPage{}, err
	}
	mode, err := s.auth.SignupMode(ctx)
	if err != nil {
		return adminUsersPage{}, err
	}
	d := adminUsersPage{Roles: []string{app.RoleUser, app.RoleSupport, app.RoleAdmin}, Mode: mode,
		Modes: []string{app.SignupOpen, app.SignupInvite, app.SignupClosed}, First: after == "", RequireTFA: s.auth.Options().RequireAdmin2FA}
	if len(users) > adminUsersPageSize {
		users = users[:adminUsersPageSize]
		d.Next = users[len(users)-1].ID
	}
	me := currentUser(c).User.ID
	for _, u := range users {
		d.Users = append(d.Users, adminUserView{ID: u.ID, Username: u.Username, Role: u.Role, Created: when(u.CreatedAt),
			TOTP: u.TOTPEnabled, Disabled: !u.DisabledAt.IsZero(), Self: u.ID == me})
		if !u.DeletedAt.IsZero() {
			d.Users[len(d.Users)-1].Deleted = when(u.DeletedAt)
		}
	}
	return d, nil
}

func (s *Server) adminUsersView(c echo.Context) error {
	d, err := s.adminUsersData(c)
	if err != nil {
		return err
	}
	return s.render(c, http.StatusOK, "admin_users", s.adminPage(c, "users", d))
}

// refuseAdminUsers shows the users page with what went wrong.
func (s *Server) refuseAdminUsers(c echo.Context, err error) error {
	if app.ErrorCode(err) == app.EINTERNAL {
		return err
	}
	d, derr := s.adminUsersData(c)
	if derr != nil {
		return derr
	}
	return s.refusePage(c, "admin_users", s.adminPage(c, "users", d), map[string]string{}, err)
}

func (s *Server) adminUserRole(c echo.Context) error {
	ctx, id := c.Request().Context(), c.Param("id")
	if _, err := s.auth.User(ctx, id); err != nil {
		return s.refuseAdminUsers(c, err)
	}
	if err := s.auth.SetRole(ctx, currentUser(c).User.ID, id, c.FormValue("role")); err != nil {
		return s.refuseAdminUsers(c, err)
	}
	return c.Redirect(http.StatusSeeOther, "/admin/users?done=role")
}

// adminUserStatus disables (disabled=1) or enables (disabled=0) an account.
func (s *Server) adminUserStatus(c echo.Context) error {
	ctx, id := c.Request().Context(), c.Param("id")
	var disabled bool
	switch c.FormValue("disabled") {
	case "1":
		disabled = true
	case "0":
	default:
		return s.refuseAdminUsers(c, app.Errorf(app.EINVALID, "Choose Disable or Enable."))
	}
	if err := s.auth.SetDisabled(ctx, currentUser(c).User.ID, id, disabled); err != nil {
		return s.refuseAdminUsers(c, err)
	}
	if disabled {
		return c.Redirect(http.StatusSeeOther, "/admin/users?done=disabled")
	}
	return c.Redirect(http.StatusSeeOther, "/admin/users?done=enabled")
}

// adminUserResetLink makes a one-time reset link and shows it once.
func (s *Server) adminUserResetLink(c echo.Context) error {
	ctx, id := c.Request().Context(), c.Param("id")
	u, err := s.auth.User(ctx, id)
	if err != nil {
		return s.refuseAdminUsers(c, err)
	}
	token, expires, err := s.auth.CreateResetLink(ctx, currentUser(c).User.ID, id)
	if err != nil {
		return s.refuseAdminUsers(c, err)
	}
	return s.showOneTimeLink(c, oneTimeLink{What: "Password reset link", For: u.Username,
		URL: s.absoluteURL(c, "/reset?token="+url.QueryEscape(token)), Expires: when(expires)})
}

// adminInviteCreate makes a one-time invite link and shows it once.
func (s *Server) adminInviteCreate(c echo.Context) error {
	token, expires, err := s.auth.CreateInvite(c.Request().Context(), currentUser(c).User.ID)
	if err != nil {
		return s.refuseAdminUsers(c, err)
	}
	return s.showOneTimeLink(c, oneTimeLink{What: "Invite link", URL: s.absoluteURL(c, "/signup?invite="+url.QueryEscape(token)), Expires: when(expires)})
}

func (s *Server) showOneTimeLink(c echo.Context, l oneTimeLink) error {
	d, err := s.adminUsersData(c)
	if err != nil {
		return err
	}
	d.Link = &l
	c.Response().Header().Set("Cache-Control", "no-store")
	return s.render(c, http.StatusCreated, "admin_users", s.adminPage(c, "users", d))
}

func (s *Server) adminSignupModeSave(c echo.Context) error {
	if err := s.auth.SetSignupMode(c.Request().Context(), currentUser(c).User.ID, c.FormValue("mode")); err != nil {
		return s.refuseAdminUsers(c, err)
	}
	return c.Redirect(http.StatusSeeOther, "/admin/users?done=signup-mode")
}

type backendView struct {
	Name, Kind, DownSince, LastError string
	Healthy, NoAI                    bool
	Busy, Slots                      int
	// State is the pool's word for it: healthy, down, no models, missing
	// files or stalled; Missing and Stalled say what is wrong.
	State, Stalled string
	Models         []string
	Missing        []string
}

type adminBackendsPage struct {
	Queued, Running, Users int
	Backends               []backendView
	Signing                Signing
	SigningUntil           string
}

func (s *Server) adminBackendsView(c echo.Context) error {
	st := s.queue.Stats()
	d := adminBackendsPage{Queued: st.Queued, Running: st.Running, Users: st.Users, Signing: s.opts.Signing}
	if !s.opts.Signing.NotAfter.IsZero() {
		d.SigningUntil = s.opts.Signing.NotAfter.Format("2 Jan 2006")
	}
	for _, b := range s.queue.Pool().Status() {
		v := backendView{Name: b.Name, Kind: b.Kind, Healthy: b.Healthy, NoAI: b.Kind == backend.KindBuiltin,
			Busy: b.Busy, Slots: b.Slots, LastError: b.LastError, Models: b.Models,
			State: b.State(), Stalled: b.Stalled, Missing: b.Missing}
		if !b.DownSince.IsZero() {
			v.DownSince = when(b.DownSince)
		}
		d.Backends = append(d.Backends, v)
	}
	return s.render(c, http.StatusOK, "admin_backends", s.adminPage(c, "backends", d))
}

type auditView struct {
	Seq                                int64
	At, Actor, Subject, Action, Detail string
}

type adminAuditPage struct {
	Entries []auditView
	Next    string // ?after= of the next page, "" on the last
	First   bool
}

const adminAuditPageSize = 100

// adminAuditView pages through the audit log newest first (?before=SEQ).
func (s *Server) adminAuditView(c echo.Context) error {
	before, _ := strconv.ParseInt(c.QueryParam("before"), 10, 64)
	entries, err := s.auth.AuditNewest(c.Request().Context(), before, adminAuditPageSize+1)
	if err != nil {
		return err
	}
	d := adminAuditPage{First: before <= 0}
	if len(entries) > adminAuditPageSize {
		entries = entries[:adminAuditPageSize]
		d.Next = strconv.FormatInt(entries[len(entries)-1].Seq, 10)
	}
	for _, e := range entries {
		detail := e.Detail
		if detail == "{}" {
			detail = ""
		}
		d.Entries = append(d.Entries, auditView{Seq: e.Seq, At: when(e.At), Actor: e.ActorID, Subject: e.SubjectID, Action: e.Action, Detail: detail})
	}
	return s.render(c, http.StatusOK, "admin_audit", s.adminPage(c, "audit", d))
}
