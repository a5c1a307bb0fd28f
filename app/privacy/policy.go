// Package privacy holds the privacy promises' machinery: the policy page
// rendered from the values in force, and its versions and acknowledgements.
// It depends on the store, never on the config: callers map config into
// PolicyValues.
package privacy

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"math"
	"net/mail"
	"strings"
	"text/template"
	"time"

	"zimage/app"
	zembed "zimage/embed"
)

// PolicyValues are the facts of this installation the policy states. Each
// change of them that changes the rendered text makes a new version.
type PolicyValues struct {
	Controller   string `json:"controller"`
	ContactEmail string `json:"contact_email"`
	DPOEmail     string `json:"dpo_email"`
	Address      string `json:"address"`
	MinAge       int    `json:"min_age"`
	// TLS is true when the server terminates TLS itself (TLS 1.3 only);
	// false when it serves plain HTTP behind the operator's proxy.
	TLS             bool          `json:"tls"`
	Images          time.Duration `json:"images"`
	DeletedAccounts time.Duration `json:"deleted_accounts"`
	Usage           time.Duration `json:"usage"`
	Support         time.Duration `json:"support"`
	Exports         time.Duration `json:"exports"`
	KeyringBackups  time.Duration `json:"keyring_backups"`
	// NoAIMarks is true when the operator turned off the AI-generated
	// marks in image files (provenance.marks = false); the zero value is
	// the default, marks on.
	NoAIMarks bool `json:"no_ai_marks,omitempty"`
	// NoCredentials is true when the operator turned off the signed C2PA
	// Content Credentials (provenance.sign = false); the zero value is the
	// default, signing on.
	NoCredentials bool `json:"no_credentials,omitempty"`
}

// Validate refuses values the policy cannot state truthfully.
func (v PolicyValues) Validate() error {
	fe := app.FieldErrors{}
	for _, w := range v.windows() {
		if *w.d <= 0 {
			fe.Add(w.key, fmt.Sprintf("The %s retention window must be longer than zero (it is %s).", w.label, *w.d))
		}
	}
	if v.MinAge < 1 {
		fe.Add("min_age", fmt.Sprintf("The minimum age must be at least 1 (it is %d).", v.MinAge))
	}
	return fe.Err()
}

type windowField struct {
	key, label string
	d          *time.Duration
}

func (v *PolicyValues) windows() []windowField {
	return []windowField{
		{"images", "images", &v.Images},
		{"deleted_accounts", "deleted accounts", &v.DeletedAccounts},
		{"usage", "usage data", &v.Usage},
		{"support", "support messages", &v.Support},
		{"exports", "export archives", &v.Exports},
		{"keyring_backups", "key backups", &v.KeyringBackups},
	}
}

// policyTemplate is parsed once; a broken template fails the first use
// at start (Sync runs before the server listens), never a request.
var policyTemplate = template.Must(template.New("privacy.md.tmpl").Funcs(template.FuncMap{
	"window": HumanWindow,
	"orelse": func(v, fallback string) string {
		if strings.TrimSpace(v) == "" {
			return fallback
		}
		return escapeMarkdown(v)
	},
	"email": emailLink,
}).ParseFS(zembed.FS, "policy/privacy.md.tmpl"))

// RenderPolicy renders the policy for values: the page's HTML and the
// Markdown text it came from (the text is what versions are compared by).
func RenderPolicy(values PolicyValues) (htmlText string, text string, err error) {
	if err := values.Validate(); err != nil {
		return "", "", err
	}
	var buf bytes.Buffer
	if err := policyTemplate.Execute(&buf, values); err != nil {
		return "", "", app.Wrap(err, "Could not render the privacy policy template.")
	}
	text = buf.String()
	return markdownToHTML(text), text, nil
}

func textHash(text string) []byte {
	h := sha256.Sum256([]byte(text))
	return h[:]
}

// emailLink makes v a mailto link when it is a plain address, literal text
// when it is something else, and fallback when it is empty.
func emailLink(v, fallback string) string {
	v = strings.TrimSpace(v)
	if v == "" {
		return fallback
	}
	if a, err := mail.ParseAddress(v); err == nil && a.Address == v && !strings.ContainsAny(v, `()[]<>\"' `) {
		return "[" + escapeMarkdown(v) + "](mailto:" + v + ")"
	}
	return escapeMarkdown(v)
}

// HumanWindow writes a retention window the way the policy speaks: whole
// years as months ("12 months", "24 months"), whole days as days
// ("90 days"), anything else rounded up to whole hours: data is then
// deleted no later than the policy says, at most an hour earlier.
func HumanWindow(d time.Duration) string {
	const day = 24 * time.Hour
	switch {
	case d > 0 && d%(365*day) == 0:
		return plural(int64(d/(365*day))*12, "month")
	case d > 0 && d%day == 0:
		return plural(int64(d/day), "day")
	}
	return plural(int64(math.Ceil(d.Hours())), "hour")
}

func plural(n int64, unit string) string {
	if n == 1 {
		return "1 " + unit
	}
	return fmt.Sprintf("%d %ss", n, unit)
}
