package web

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"zimage/app"
	"zimage/app/privacy"
)

// The "Privacy & data" settings page: exports, consents and restriction,
// data-rights requests, the policy acknowledgement and account deletion.
// Each section shows only when its service is wired, so a server built
// without one never offers a form that would answer 503.

type exportView struct {
	ID, Status, Size, Created, Expires, Error, DownloadURL string
	Expired                                                bool
}

type purposeView struct {
	Purpose, Label, About string
	Granted               bool // the recorded choice (or the default)
	Default               bool // never decided
	LastChange            string
	PolicyVersion         int
}

type consentHistoryView struct {
	Purpose, At, Method string
	Granted             bool
	PolicyVersion       int
}

type consentsView struct {
	Purposes   []purposeView
	History    []consentHistoryView
	Restricted bool
	GPC        bool
	GPCNotice  string
}

type requestView struct {
	ID, Kind, KindLabel, Status, Created, Due, Closed, Resolution, Details string
	Overdue                                                                bool
}

type kindOption struct{ Value, Label string }

type policyView struct {
	Version   int
	Published string
	Summary   string
	AckNeeded bool
}

type deleteView struct {
	TOTP          bool
	Held          bool
	HoldNotice    string
	DeletedWindow string
}

type privacyPage struct {
	// Failed names the section whose form was refused, so its message
	// shows beside that form rather than at the top of a long page.
	Failed string

	ExportsOn     bool
	Exports       []exportView
	ExportBusy    bool
	ExportsWindow string
	ExportFiles   []struct{ Name, About string }

	Consents *consentsView

	RequestsOn bool
	Requests   []requestView
	Kinds      []kindOption

	Policy *policyView
	Delete *deleteView
}

// purposeLabels say what each consent purpose means, in the order shown.
var purposeLabels = map[string][2]string{
	privacy.PurposeTraining: {"Use my images and prompts to train AI models",
		"Off unless you turn it on. When on, your images and their prompts may be included when the administrator exports training data. Turning it off keeps them out of every later export."},
	privacy.PurposeMarketing: {"Send me news and offers",
		"Off unless you turn it on. Every marketing message carries a one-click unsubscribe link."},
	privacy.PurposeAnalytics: {"Count my use of the site in first-party statistics",
		"On unless you object. Counts which pages and features are used, to keep the server working well; never prompts, images or addresses, and never shared."},
}

var requestKindLabels = map[string]string{
	app.RequestAccess:    "Access: a copy of the data held on me",
	app.RequestErase:     "Erasure: delete my data",
	app.RequestRectify:   "Rectification: correct something wrong",
	app.RequestRestrict:  "Restriction: stop using my data for now",
	app.RequestObject:    "Objection: stop a particular use of my data",
	app.RequestPort:      "Portability: my data in a machine-readable form",
	app.RequestDoNotSell: "Do not sell or share my data",
}

// requestDone are the confirmations after filing, per kind: what happens
// next, in words for the page (the API's text names API routes).
var requestDone = map[string]string{
	"request-export": "Your request is filed. An archive of your data is being made: it appears under \"Your data\" when it is ready, and the request closes itself.",
	"request-erase":  "Your request is filed. You can delete your account yourself at once under \"Delete account\" below; the request closes when you do. Otherwise an administrator answers it by its due date.",
	"request":        "Your request is filed. An administrator answers it by the due date shown below.",
	"consents":       "Your choices are saved and apply from now on.",
	"restricted":     "Processing is restricted: your data is used only to run your account until you lift the restriction.",
	"unrestricted":   "The restriction is lifted; your consent choices apply again.",
	"export":         "Your export is being made; it appears below when ready. This page does not refresh by itself: reload it in a moment.",
	"policy-ack":     "Thank you: your acknowledgement of the privacy policy is recorded.",
}

func (s *Server) privacyPage(c echo.Context, d privacyPage) page {
	p := s.settingsPage(c, "privacy", d)
	if m, ok := requestDone[c.QueryParam("done")]; ok {
		p.Flash = m
	}
	return p
}

// policyWindows returns the exports and deleted-accounts windows the
// policy in force states, "" when no policy is published.
func (s *Server) policyWindows(c echo.Context) (exports, deleted string) {
	if s.policies == nil {
		return "", ""
	}
	cur, err := s.policies.Current(c.Request().Context())
	if err != nil {
		if app.ErrorCode(err) != app.ENOTFOUND {
			s.log.Warn("privacy page: read privacy policy", "err", err)
		}
		return "", ""
	}
	return privacy.HumanWindow(cur.Values.Exports), privacy.HumanWindow(cur.Values.DeletedAccounts)
}

func (s *Server) privacyPageData(c echo.Context) (privacyPage, error) {
	ctx, u := c.Request().Context(), currentUser(c).User
	now := s.db.Now()
	var d privacyPage
	var deletedWindow string
	d.ExportsWindow, deletedWindow = s.policyWindows(c)
	if s.exports != nil {
		list, err := s.exports.List(ctx, u.ID)
		if err != nil {
			return d, err
		}
		d.ExportsOn, d.ExportFiles = true, privacy.ExportFiles
		for _, e := range list {
			j := toExportJSON(e, now)
			v := exportView{ID: e.ID, Status: e.Status, Created: when(e.CreatedAt), Error: e.Error, DownloadURL: j.DownloadURL, Expired: j.Expired}
			if e.Status == app.ExportReady {
				v.Size, v.Expires = archiveSize(e.Bytes), when(e.ExpiresAt)
			}
			d.ExportBusy = d.ExportBusy || e.Status == app.ExportPending || e.Status == app.ExportRunning
			d.Exports = append(d.Exports, v)
		}
	}
	if s.rights != nil {
		cv, err := s.consentsData(c)
		if err != nil {
			return d, err
		}
		d.Consents = cv
		held, err := s.rights.IsHeld(ctx, u.ID)
		if err != nil {
			return d, err
		}
		d.Delete = &deleteView{TOTP: u.TOTPEnabled, Held: held, DeletedWindow: deletedWindow}
		if held {
			d.Delete.HoldNotice = privacy.HoldNotice
		}
	}
	if s.requests != nil {
		list, err := s.requests.List(ctx, u.ID)
		if err != nil {
			return d, err
		}
		d.RequestsOn = true
		for _, k := range app.RequestKinds {
			d.Kinds = append(d.Kinds, kindOption{k, requestKindLabels[k]})
		}
		for _, r := range list {
			d.Requests = append(d.Requests, toRequestView(r, now))
		}
	}
	if s.policies != nil {
		cur, err := s.policies.Current(ctx)
		switch {
		case err == nil:
			d.Policy = &policyView{Version: cur.Version, Published: cur.PublishedAt.UTC().Format("2 January 2006"), Summary: cur.Summary}
			_, need, err := s.policies.NeedsAcceptance(ctx, u.ID)
			if err != nil {
				return d, err
			}
			d.Policy.AckNeeded = need
		case app.ErrorCode(err) != app.ENOTFOUND:
			return d, err
		}
	}
	return d, nil
}

func toRequestView(r app.DataRequest, now time.Time) requestView {
	v := requestView{ID: r.ID, Kind: r.Kind, KindLabel: requestKindLabels[r.Kind], Status: r.Status, Created: when(r.CreatedAt),
		Due: r.DueAt.UTC().Format("2 Jan 2006"), Resolution: r.Resolution, Details: r.Details, Overdue: r.Overdue(now)}
	if v.KindLabel == "" {
		v.KindLabel = r.Kind
	}
	if !r.ClosedAt.IsZero() {
		v.Closed = when(r.ClosedAt)
	}
	return v
}

// consentsData is the consent section of the privacy and communications
// pages. The boxes show what the person recorded (or the default): the
// restriction and the browser's signal override it, and the page says so
// rather than hiding the choice.
func (s *Server) consentsData(c echo.Context) (*consentsView, error) {
	st, err := s.rights.Consents(c.Request().Context(), currentUser(c).User.ID)
	if err != nil {
		return nil, err
	}
	v := &consentsView{Restricted: st.Restricted, GPC: browserObjects(c)}
	if v.GPC {
		v.GPCNotice = GPCNotice
	}
	latest := map[string]privacy.Consent{}
	for _, h := range st.History { // newest first
		if _, ok := latest[h.Purpose]; !ok {
			latest[h.Purpose] = h
		}
		v.History = append(v.History, consentHistoryView{Purpose: purposeLabels[h.Purpose][0], At: when(h.At), Method: h.Method,
			Granted: h.Granted, PolicyVersion: h.PolicyVersion})
	}
	for _, p := range privacy.Purposes {
		pv := purposeView{Purpose: p, Label: purposeLabels[p][0], About: purposeLabels[p][1], Granted: privacy.DefaultGranted[p], Default: true}
		if h, ok := latest[p]; ok {
			pv.Granted, pv.Default, pv.LastChange, pv.PolicyVersion = h.Granted, false, when(h.At), h.PolicyVersion
		}
		v.Purposes = append(v.Purposes, pv)
	}
	return v, nil
}

// archiveSize rounds a size for people ("12.3 MB").
func archiveSize(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f kB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}

func (s *Server) settingsPrivacy(c echo.Context) error {
	d, err := s.privacyPageData(c)
	if err != nil {
		return err
	}
	return s.render(c, http.StatusOK, "settings_privacy", s.privacyPage(c, d))
}

// refusePrivacy shows the page again with the refused form's values and
// its message beside the section named by failed.
func (s *Server) refusePrivacy(c echo.Context, failed string, values map[string]string, err error) error {
	d, derr := s.privacyPageData(c)
	if derr != nil {
		return derr
	}
	d.Failed = failed
	return s.refusePage(c, "settings_privacy", s.privacyPage(c, d), values, err)
}

// settingsExportCreate starts an export. One at a time per person: a
// second ask while one is being made is refused with a calm message
// pointing at the one already listed.
func (s *Server) settingsExportCreate(c echo.Context) error {
	if s.exports == nil {
		return unavailable("Data export")
	}
	_, err := s.exports.Request(c.Request().Context(), currentUser(c).User.ID)
	if app.ErrorCode(err) == app.ECONFLICT {
		err = app.Errorf(app.ECONFLICT, "An export of yours is still being made (it is listed below). Wait for it to finish before asking for another: one at a time keeps the server quick for everyone.")
	}
	if err != nil {
		return s.refusePrivacy(c, "export", map[string]string{}, err)
	}
	return c.Redirect(http.StatusSeeOther, "/settings/privacy?done=export#data")
}

// consentsSave records the boxes of a consent form. The form names the
// purposes it shows (hidden "purpose" fields), so a form showing only
// marketing never touches the others; only changed choices are written,
// so the ledger records decisions, not page saves.
func (s *Server) consentsSave(section string) echo.HandlerFunc {
	return func(c echo.Context) error {
		r, err := s.rightsOrUnavailable()
		if err != nil {
			return err
		}
		form, err := c.FormParams()
		if err != nil {
			return app.Errorf(app.EINVALID, "The form could not be read; reload the page and try again.")
		}
		cv, err := s.consentsData(c)
		if err != nil {
			return err
		}
		recorded := map[string]bool{}
		for _, p := range cv.Purposes {
			recorded[p.Purpose] = p.Granted
		}
		ctx, id := c.Request().Context(), currentUser(c).User.ID
		for _, p := range form["purpose"] {
			want := form.Get("granted_"+p) == "1"
			if have, known := recorded[p]; known && have == want {
				continue
			}
			if err := r.SetConsent(ctx, id, p, want, privacy.MethodForm); err != nil {
				return err
			}
		}
		return c.Redirect(http.StatusSeeOther, "/settings/"+section+"?done=consents#consents")
	}
}

func (s *Server) settingsRestrict(c echo.Context) error {
	r, err := s.rightsOrUnavailable()
	if err != nil {
		return err
	}
	on := c.FormValue("restricted") == "1"
	if err := r.SetRestricted(c.Request().Context(), currentUser(c).User.ID, on); err != nil {
		return err
	}
	if on {
		return c.Redirect(http.StatusSeeOther, "/settings/privacy?done=restricted#consents")
	}
	return c.Redirect(http.StatusSeeOther, "/settings/privacy?done=unrestricted#consents")
}

func (s *Server) settingsRequestFile(c echo.Context) error {
	if s.requests == nil {
		return unavailable("Data requests")
	}
	values := formValues(c, "kind", "details")
	f, err := s.requests.File(c.Request().Context(), currentUser(c).User.ID, values["kind"], values["details"])
	if err != nil {
		return s.refusePrivacy(c, "request", values, err)
	}
	done := "request"
	switch {
	case f.Kind == app.RequestErase:
		done = "request-erase"
	case (f.Kind == app.RequestAccess || f.Kind == app.RequestPort) && s.exports != nil:
		done = "request-export"
	}
	return c.Redirect(http.StatusSeeOther, "/settings/privacy?done="+done+"#requests")
}

func (s *Server) settingsPolicyAck(c echo.Context) error {
	p, err := s.policiesOrUnavailable()
	if err != nil {
		return err
	}
	v, err := strconv.Atoi(c.FormValue("version"))
	if err != nil || v < 1 {
		return app.Errorf(app.EINVALID, "The form named no policy version; reload the page and try again.")
	}
	if err := p.Accept(c.Request().Context(), currentUser(c).User.ID, v); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, "/settings/privacy?done=policy-ack#policy")
}

// settingsAccountDelete deletes the account after the password (and 2FA
// code) and the "cannot be undone" box; the session is gone with it, so
// the answer clears the cookie and says goodbye.
func (s *Server) settingsAccountDelete(c echo.Context) error {
	r, err := s.rightsOrUnavailable()
	if err != nil {
		return err
	}
	// Neither the password nor a code is shown again: a refused code is
	// wrong or used up.
	values := formValues(c, "confirm")
	if values["confirm"] != "1" {
		fe := app.FieldErrors{"confirm": "Tick this box to confirm you understand that deleting your account cannot be undone."}
		if c.FormValue("password") == "" {
			fe.Add("password", "Enter your password to confirm the deletion.")
		}
		return s.refusePrivacy(c, "delete", values, fe.Err())
	}
	if err := r.DeleteAccount(c.Request().Context(), currentUser(c).User.ID, c.FormValue("password"), c.FormValue("totp_code")); err != nil {
		return s.refusePrivacy(c, "delete", values, err)
	}
	s.clearSessionCookie(c)
	return c.Redirect(http.StatusSeeOther, "/goodbye")
}

type goodbyePage struct {
	DeletedWindow string
}

// goodbyeView is where a deleted account lands. It is public: the person
// is signed out by then, and it says nothing about anyone.
func (s *Server) goodbyeView(c echo.Context) error {
	_, deleted := s.policyWindows(c)
	return s.render(c, http.StatusOK, "goodbye", s.newPage(c, "", goodbyePage{DeletedWindow: deleted}))
}
