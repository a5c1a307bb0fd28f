package mail

import (
	"bytes"
	"fmt"
	htmltemplate "html/template"
	"io/fs"
	"net/url"
	"sort"
	"strings"
	"text/template"

	"github.com/pelletier/go-toml/v2"

	"zimage/app"
	zembed "zimage/embed"
)

// Site is what every message says about the service, from the config.
type Site struct {
	Name    string // e.g. "Z Image" or the controller's name
	BaseURL string // absolute, without a trailing slash
	Contact string // the contact address people can write to
}

// Message is a rendered mail.
type Message struct {
	Subject string
	Text    string
	HTML    string
	Link    string // the absolute address of the message's action, if any
}

// kindStrings are one kind's catalog entries, parsed.
type kindStrings struct {
	subject *template.Template
	body    []*template.Template
	action  *template.Template
}

// Templates renders messages. It is built once at start: a missing or
// broken template or catalog string fails the start, not a send.
type Templates struct {
	site   Site
	lang   string
	common map[string]*template.Template
	kinds  map[string]*kindStrings
	text   *template.Template
	html   *htmltemplate.Template
}

// commonKeys must be in every catalog's [common] section.
var commonKeys = []string{"greeting", "footer", "contact", "link_hint"}

// NewTemplates parses the layouts and the English catalog.
func NewTemplates(site Site) (*Templates, error) {
	return newTemplates(zembed.FS, "en", site)
}

func newTemplates(fsys fs.FS, lang string, site Site) (*Templates, error) {
	site.BaseURL = strings.TrimRight(site.BaseURL, "/")
	raw, err := fs.ReadFile(fsys, "mail/"+lang+".toml")
	if err != nil {
		return nil, fmt.Errorf("mail: catalog: %w", err)
	}
	var cat map[string]map[string]any
	if err := toml.Unmarshal(raw, &cat); err != nil {
		return nil, fmt.Errorf("mail: catalog %s: %w", lang, err)
	}
	t := &Templates{site: site, lang: lang, common: map[string]*template.Template{}, kinds: map[string]*kindStrings{}}
	parse := func(key string, v any) (*template.Template, error) {
		s, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("mail: catalog %s: %s must be a string", lang, key)
		}
		tt, err := template.New(key).Option("missingkey=error").Parse(s)
		if err != nil {
			return nil, fmt.Errorf("mail: catalog %s: %w", lang, err)
		}
		return tt, nil
	}
	for _, k := range commonKeys {
		if t.common[k], err = parse("common."+k, cat["common"][k]); err != nil {
			return nil, err
		}
	}
	for kind, sec := range cat {
		if kind == "common" {
			continue
		}
		ks := &kindStrings{}
		if ks.subject, err = parse(kind+".subject", sec["subject"]); err != nil {
			return nil, err
		}
		if ks.action, err = parse(kind+".action", sec["action"]); err != nil {
			return nil, err
		}
		body, ok := sec["body"].([]any)
		if !ok || len(body) == 0 {
			return nil, fmt.Errorf("mail: catalog %s: %s.body must be a list of paragraphs", lang, kind)
		}
		for i, p := range body {
			pt, err := parse(fmt.Sprintf("%s.body[%d]", kind, i), p)
			if err != nil {
				return nil, err
			}
			ks.body = append(ks.body, pt)
		}
		t.kinds[kind] = ks
	}
	if t.text, err = template.ParseFS(fsys, "mail/message.txt.tmpl"); err != nil {
		return nil, fmt.Errorf("mail: %w", err)
	}
	if t.html, err = htmltemplate.ParseFS(fsys, "mail/message.html.tmpl"); err != nil {
		return nil, fmt.Errorf("mail: %w", err)
	}
	return t, nil
}

// Kinds lists the kinds of message the catalog has.
func (t *Templates) Kinds() []string {
	out := make([]string, 0, len(t.kinds))
	for k := range t.kinds {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Site returns the site the messages speak for.
func (t *Templates) Site() Site { return t.site }

// Render writes a message of kind with fields. A "link" field is a path on
// the site (it must start with "/"), made absolute with the base URL.
func (t *Templates) Render(kind string, fields map[string]any) (*Message, error) {
	ks, ok := t.kinds[kind]
	if !ok {
		return nil, fmt.Errorf("mail: no template for %q", kind)
	}
	data := map[string]any{}
	for k, v := range fields {
		data[k] = v
	}
	data["Site"] = t.site
	exec := func(tt *template.Template) (string, error) {
		var b bytes.Buffer
		if err := tt.Execute(&b, data); err != nil {
			return "", fmt.Errorf("mail: render %s: %w", kind, err)
		}
		return b.String(), nil
	}
	var view struct {
		Lang, Subject, Greeting, Action, Link, LinkHint, Footer, Contact string
		Body                                                             []string
	}
	view.Lang = t.lang
	var err error
	if view.Subject, err = exec(ks.subject); err != nil {
		return nil, err
	}
	// A subject is one header line: a line break in it would start another
	// header, so it is refused, never sent.
	if msg := app.CheckText("subject", view.Subject, app.OneLine); msg != "" {
		return nil, fmt.Errorf("mail: render %s: %s", kind, msg)
	}
	for _, f := range []struct {
		dst *string
		tt  *template.Template
	}{{&view.Greeting, t.common["greeting"]}, {&view.Footer, t.common["footer"]}, {&view.Contact, t.common["contact"]},
		{&view.LinkHint, t.common["link_hint"]}, {&view.Action, ks.action}} {
		if *f.dst, err = exec(f.tt); err != nil {
			return nil, err
		}
	}
	for _, p := range ks.body {
		s, err := exec(p)
		if err != nil {
			return nil, err
		}
		view.Body = append(view.Body, s)
	}
	if l, ok := fields["link"].(string); ok && l != "" {
		if !strings.HasPrefix(l, "/") || strings.HasPrefix(l, "//") {
			return nil, fmt.Errorf("mail: render %s: link %q is not a path on the site", kind, l)
		}
		if _, err := url.Parse(l); err != nil {
			return nil, fmt.Errorf("mail: render %s: link: %w", kind, err)
		}
		view.Link = t.site.BaseURL + l
	}
	var text, html bytes.Buffer
	if err := t.text.Execute(&text, view); err != nil {
		return nil, fmt.Errorf("mail: render %s: %w", kind, err)
	}
	if err := t.html.Execute(&html, view); err != nil {
		return nil, fmt.Errorf("mail: render %s: %w", kind, err)
	}
	return &Message{Subject: view.Subject, Text: text.String(), HTML: html.String(), Link: view.Link}, nil
}
