package web

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"zimage/app"
	"zimage/app/sqlite"
)

// The settings pages: profile, password, security (2FA and sessions) and
// API keys. Each section is its own template sharing the "settings-nav"
// menu from layout.html; p.Section marks the current one.

func (s *Server) settingsPage(c echo.Context, section string, data any) page {
	p := s.newPage(c, "settings", data)
	p.Section = section
	p.Flash = doneFlash(c)
	return p
}

// refuseSettings shows a settings section again with the refused values.
func (s *Server) refuseSettings(c echo.Context, section string, data any, values map[string]string, err error) error {
	return s.refusePage(c, "settings_"+section, s.settingsPage(c, section, data), values, err)
}

// when formats a time for people; the zero time is "never".
func when(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.UTC().Format("2 Jan 2006 15:04 UTC")
}

func (s *Server) settingsHome(c echo.Context) error {
	return c.Redirect(http.StatusSeeOther, "/settings/profile")
}

type profilePage struct {
	Username, Email, Created, Role string
	MaxDisplayName                 int
}

func (s *Server) profilePageData(c echo.Context) (profilePage, *app.User, error) {
	u, err := s.auth.Profile(c.Request().Context(), currentUser(c).User.ID)
	if err != nil {
		return profilePage{}, nil, err
	}
	return profilePage{Username: u.Username, Email: u.Email, Created: when(u.CreatedAt), Role: u.Role, MaxDisplayName: 100}, u, nil
}

func (s *Server) settingsProfile(c echo.Context) error {
	d, u, err := s.profilePageData(c)
	if err != nil {
		return err
	}
	p := s.settingsPage(c, "profile", d)
	p.Form["display_name"] = u.DisplayName
	if on, err := s.db.EmbedParameters(c.Request().Context(), u.ID); err != nil {
		return err
	} else if on {
		p.Form["embed_parameters"] = "1"
	}
	return s.render(c, http.StatusOK, "settings_profile", p)
}

func (s *Server) settingsProfileSave(c echo.Context) error {
	values := formValues(c, "display_name", "embed_parameters")
	ctx, uid := c.Request().Context(), currentUser(c).User.ID
	_, err := s.auth.UpdateProfile(ctx, uid, values["display_name"])
	if err == nil {
		err = s.db.SetEmbedParameters(ctx, uid, values["embed_parameters"] == "1")
	}
	if err != nil {
		d, _, derr := s.profilePageData(c)
		if derr != nil {
			return derr
		}
		return s.refuseSettings(c, "profile", d, values, err)
	}
	return c.Redirect(http.StatusSeeOther, "/settings/profile?done=profile")
}

func (s *Server) settingsPassword(c echo.Context) error {
	p := s.settingsPage(c, "password", nil)
	p.Form = map[string]string{"revoke_api_keys": "1"} // revoking is the default
	return s.render(c, http.StatusOK, "settings_password", p)
}

// settingsPasswordSave changes the password; the service ends every other
// session, this one stays, and revokes the API keys when the box is ticked.
// The confirmation says how many of each ended.
func (s *Server) settingsPasswordSave(c echo.Context) error {
	next := c.FormValue("new_password")
	revokeKeys := c.FormValue("revoke_api_keys") == "1"
	var revoked sqlite.Revoked
	var err error
	if next != c.FormValue("new_password_confirm") {
		err = app.FieldErrors{"new_password_confirm": "The two new passwords differ. Type the same new password in both fields."}.Err()
	} else {
		revoked, err = s.auth.ChangePassword(c.Request().Context(), currentUser(c), c.FormValue("current_password"), next, revokeKeys)
	}
	if err != nil {
		values := map[string]string{}
		if revokeKeys {
			values["revoke_api_keys"] = "1"
		}
		return s.refuseSettings(c, "password", nil, values, err)
	}
	return c.Redirect(http.StatusSeeOther, "/settings/password?done=password"+revokedQuery(revoked))
}

type sessionView struct {
	ID, Device, Place, Created, LastSeen string
	Current                              bool
}

type securityPage struct {
	TOTPEnabled bool
	// Secret is set while enrolling: the key to type in if the QR code
	// cannot be scanned.
	Enrolling     bool
	Secret        string
	RecoveryCodes []string
	Sessions      []sessionView
}

func (s *Server) securityPageData(c echo.Context) (securityPage, error) {
	p := currentUser(c)
	u, err := s.auth.User(c.Request().Context(), p.User.ID)
	if err != nil {
		return securityPage{}, err
	}
	list, err := s.auth.ListSessions(c.Request().Context(), p.User.ID)
	if err != nil {
		return securityPage{}, err
	}
	d := securityPage{TOTPEnabled: u.TOTPEnabled}
	for _, x := range list {
		d.Sessions = append(d.Sessions, sessionView{ID: x.ID, Device: x.Device, Place: x.Place, Created: when(x.CreatedAt),
			LastSeen: when(x.LastSeenAt), Current: x.ID == p.Session.ID})
	}
	return d, nil
}

func (s *Server) settingsSecurity(c echo.Context) error {
	d, err := s.securityPageData(c)
	if err != nil {
		return err
	}
	return s.render(c, http.StatusOK, "settings_security", s.settingsPage(c, "security", d))
}

// settings2FAStart makes a new pending secret and shows its QR code and
// text. It answers with the page rather than a redirect: the secret is
// shown now or never.
func (s *Server) settings2FAStart(c echo.Context) error {
	en, err := s.auth.StartTOTP(c.Request().Context(), currentUser(c).User.ID)
	d, derr := s.securityPageData(c)
	if derr != nil {
		return derr
	}
	if err != nil {
		return s.refuseSettings(c, "security", d, map[string]string{}, err)
	}
	d.Enrolling, d.Secret = true, en.Secret
	c.Response().Header().Set("Cache-Control", "no-store")
	return s.render(c, http.StatusOK, "settings_security", s.settingsPage(c, "security", d))
}

// settings2FAConfirm turns 2FA on and shows the recovery codes, once.
func (s *Server) settings2FAConfirm(c echo.Context) error {
	values := formValues(c, "code", "secret")
	codes, err := s.auth.ConfirmTOTP(c.Request().Context(), currentUser(c).User.ID, values["code"])
	d, derr := s.securityPageData(c)
	if derr != nil {
		return derr
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	if err != nil {
		if app.ErrorCode(err) == app.ECONFLICT && d.TOTPEnabled {
			// A second submit after the first turned it on: the codes were
			// on the first answer.
			return c.Redirect(http.StatusSeeOther, "/settings/security?done=2fa-already-on")
		}
		// The secret field only re-shows what the person was shown; the
		// service checks the code against the stored pending secret.
		d.Enrolling, d.Secret = app.ErrorCode(err) != app.ECONFLICT, values["secret"]
		return s.refuseSettings(c, "security", d, values, err)
	}
	d.RecoveryCodes = codes
	p := s.settingsPage(c, "security", d)
	p.Flash = "Two-factor authentication is on."
	return s.render(c, http.StatusOK, "settings_security", p)
}

// settings2FADisable turns 2FA off with the password and a code.
func (s *Server) settings2FADisable(c echo.Context) error {
	values := formValues(c, "code")
	err := s.auth.DisableTOTP(c.Request().Context(), currentUser(c).User.ID, c.FormValue("password"), values["code"])
	if app.ErrorCode(err) == app.ECONFLICT { // already off: a second submit
		err = nil
	}
	if err != nil {
		d, derr := s.securityPageData(c)
		if derr != nil {
			return derr
		}
		return s.refuseSettings(c, "security", d, values, err)
	}
	return c.Redirect(http.StatusSeeOther, "/settings/security?done=2fa-off")
}

// settingsSessionRevoke signs one session out; ending the current one is
// signing out.
func (s *Server) settingsSessionRevoke(c echo.Context) error {
	p, id := currentUser(c), c.Param("id")
	err := s.auth.RevokeSession(c.Request().Context(), p.User.ID, id)
	switch {
	case app.ErrorCode(err) == app.ENOTFOUND:
		return c.Redirect(http.StatusSeeOther, "/settings/security?done=session-gone")
	case err != nil:
		return err
	case id == p.Session.ID:
		s.clearSessionCookie(c)
		return c.Redirect(http.StatusSeeOther, "/login?done=signed-out")
	}
	return c.Redirect(http.StatusSeeOther, "/settings/security?done=session-revoked")
}

func (s *Server) settingsSessionsRevokeOthers(c echo.Context) error {
	p := currentUser(c)
	if err := s.auth.RevokeOtherSessions(c.Request().Context(), p.User.ID, p.Session.ID); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, "/settings/security?done=sessions-revoked")
}

type apiKeyView struct {
	ID, Name, Prefix, Created, LastUsed string
	Scopes                              []string
	Revoked                             string // "" while valid
}

type scopeOption struct {
	Value, Label string
}

type apiKeysPage struct {
	Keys   []apiKeyView
	Scopes []scopeOption
	// NewKey and NewKeyName are set on the answer that creates a key: the
	// only time it is shown.
	NewKey, NewKeyName string
}

func (s *Server) apiKeysPageData(c echo.Context) (apiKeysPage, error) {
	p := currentUser(c)
	keys, err := s.auth.ListAPIKeys(c.Request().Context(), p.User.ID)
	if err != nil {
		return apiKeysPage{}, err
	}
	d := apiKeysPage{Scopes: []scopeOption{
		{app.ScopeGenerate, "generate — make images"},
		{app.ScopeRead, "read — list and download your images"},
	}}
	if p.User.Role == app.RoleAdmin {
		d.Scopes = append(d.Scopes, scopeOption{app.ScopeAdmin, "admin — the admin API"})
	}
	for _, k := range keys {
		v := apiKeyView{ID: k.ID, Name: k.Name, Prefix: k.Prefix, Created: when(k.CreatedAt), LastUsed: when(k.LastUsedAt), Scopes: k.Scopes}
		if !k.RevokedAt.IsZero() {
			v.Revoked = when(k.RevokedAt)
		}
		d.Keys = append(d.Keys, v)
	}
	return d, nil
}

func (s *Server) settingsAPIKeys(c echo.Context) error {
	d, err := s.apiKeysPageData(c)
	if err != nil {
		return err
	}
	p := s.settingsPage(c, "api-keys", d)
	p.Form = map[string]string{"scope_generate": "1", "scope_read": "1"}
	return s.render(c, http.StatusOK, "settings_api-keys", p)
}

// settingsAPIKeyCreate makes a key and shows it this once. Two submits
// make two keys, both listed and revocable: harmless.
func (s *Server) settingsAPIKeyCreate(c echo.Context) error {
	form, err := c.FormParams()
	if err != nil {
		return app.Errorf(app.EINVALID, "The form could not be read; reload the page and try again.")
	}
	values := map[string]string{"name": form.Get("name")}
	scopes := form["scope"]
	for _, sc := range scopes {
		values["scope_"+sc] = "1"
	}
	k, token, err := s.auth.CreateAPIKey(c.Request().Context(), currentUser(c), values["name"], scopes)
	d, derr := s.apiKeysPageData(c)
	if derr != nil {
		return derr
	}
	if err != nil {
		return s.refuseSettings(c, "api-keys", d, values, err)
	}
	d.NewKey, d.NewKeyName = token, k.Name
	c.Response().Header().Set("Cache-Control", "no-store")
	p := s.settingsPage(c, "api-keys", d)
	p.Form = map[string]string{"scope_generate": "1", "scope_read": "1"}
	return s.render(c, http.StatusCreated, "settings_api-keys", p)
}

// settingsAPIKeyRevoke revokes a key. A key already revoked, or not the
// caller's, gets the same calm answer: a second click is not an error, and
// another person's key ids reveal nothing.
func (s *Server) settingsAPIKeyRevoke(c echo.Context) error {
	err := s.auth.RevokeAPIKey(c.Request().Context(), currentUser(c).User.ID, c.Param("id"))
	switch {
	case app.ErrorCode(err) == app.ENOTFOUND:
		return c.Redirect(http.StatusSeeOther, "/settings/api-keys?done=key-gone")
	case err != nil:
		return err
	}
	return c.Redirect(http.StatusSeeOther, "/settings/api-keys?done=key-revoked")
}
