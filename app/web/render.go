package web

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"path"
	"strings"

	"github.com/labstack/echo/v4"

	"zimage/app"
	"zimage/ui"
)

// assets gives every static file a content-hashed name, so browsers may
// cache it forever and a new release is fetched at once.
type assets struct {
	byName   map[string]string // "app.css" → "app.1a2b3c4d.css"
	byHashed map[string]string // and back
}

func loadAssets(fsys fs.FS) (*assets, error) {
	a := &assets{byName: map[string]string{}, byHashed: map[string]string{}}
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(data)
		ext := path.Ext(p)
		hashed := strings.TrimSuffix(p, ext) + "." + hex.EncodeToString(sum[:4]) + ext
		a.byName[p] = hashed
		a.byHashed[hashed] = p
		return nil
	})
	return a, err
}

func (a *assets) url(name string) (string, error) {
	h, ok := a.byName[name]
	if !ok {
		return "", fmt.Errorf("no static file %q", name)
	}
	return "/static/" + h, nil
}

// handleStatic serves hashed names with immutable caching and plain names
// with revalidation (for links that cannot know the hash).
func (s *Server) handleStatic(c echo.Context) error {
	name := c.Param("*")
	cache := "public, max-age=31536000, immutable"
	orig, ok := s.assets.byHashed[name]
	if !ok {
		if _, plain := s.assets.byName[name]; !plain {
			return echo.ErrNotFound
		}
		orig, cache = name, "public, max-age=300"
	}
	c.Response().Header().Set("Cache-Control", cache)
	http.ServeFileFS(c.Response(), c.Request(), ui.Static, orig)
	return nil
}

// pages are parsed once at start: a broken template fails the start, not a
// request.
func loadPages(a *assets) (map[string]*template.Template, error) {
	// visible shows people's free text with any control or bidi override
	// character replaced, so old text cannot reorder the page around it.
	funcs := template.FuncMap{"asset": a.url, "visible": app.VisibleText}
	layout, err := template.New("layout.html").Funcs(funcs).ParseFS(ui.Templates, "layout.html")
	if err != nil {
		return nil, fmt.Errorf("web: parse layout: %w", err)
	}
	names, err := fs.Glob(ui.Templates, "*.html")
	if err != nil {
		return nil, err
	}
	pages := map[string]*template.Template{}
	for _, n := range names {
		if n == "layout.html" {
			continue
		}
		t, err := template.Must(layout.Clone()).ParseFS(ui.Templates, n)
		if err != nil {
			return nil, fmt.Errorf("web: parse %s: %w", n, err)
		}
		pages[strings.TrimSuffix(n, ".html")] = t
	}
	return pages, nil
}

// render writes page with data, buffering so a template error becomes a
// clean 500 rather than half a page.
func (s *Server) render(c echo.Context, status int, page string, data any) error {
	t, ok := s.pages[page]
	if !ok {
		return fmt.Errorf("web: no page %q", page)
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", data); err != nil {
		return fmt.Errorf("web: render %s: %w", page, err)
	}
	return c.HTMLBlob(status, buf.Bytes())
}

// page is what every HTML template gets: the layout's needs (who is signed
// in, the CSRF token for forms, which nav item is current) plus the page's
// own Data, and for forms the values typed and the message per field, so a
// refused form comes back with nothing lost.
type page struct {
	User         *app.User
	CSRF         string
	Nav          string
	Section      string // the current item of a sub-menu (settings, admin)
	Flash        string
	Version      string
	PolicyNotice *policyNotice
	Form         map[string]string
	Errors       map[string]string
	FormError    string
	Data         any
}

type policyNotice struct {
	Date    string
	Summary string
}

// newPage fills the layout's fields for the request.
func (s *Server) newPage(c echo.Context, nav string, data any) page {
	p := page{Nav: nav, Version: s.opts.Version, Data: data, Form: map[string]string{}, Errors: map[string]string{}}
	if s.pageHook != nil {
		s.pageHook(c, &p)
	}
	return p
}

// formFailed puts a refused form's values and the error's per-field
// messages into p.
func (p *page) formFailed(values map[string]string, err error) {
	p.Form = values
	var ae *app.Error
	if errors.As(err, &ae) {
		p.FormError = app.ErrorMessage(err)
		for k, v := range ae.Fields {
			p.Errors[k] = v
		}
		return
	}
	p.FormError = app.ErrorMessage(err)
}

type errorPage struct {
	Status    int
	Title     string
	Message   string
	RequestID string
}

func (s *Server) renderError(c echo.Context, status int, d errorDetail) error {
	title := http.StatusText(status)
	switch status {
	case http.StatusNotFound:
		title = "Page not found"
	case http.StatusForbidden:
		title = "Not allowed"
	case http.StatusUnauthorized:
		title = "Please sign in"
	case http.StatusTooManyRequests:
		title = "Slow down"
	case http.StatusInternalServerError:
		title = "Something went wrong"
	}
	return s.render(c, status, "error", s.newPage(c, "", errorPage{Status: status, Title: title, Message: d.Message, RequestID: d.RequestID}))
}
