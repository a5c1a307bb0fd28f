package web

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"

	"zimage/app"
)

// decodeTargets are request bodies the API decodes with decodeJSON, each
// made fresh for every decode.
var decodeTargets = []struct {
	name string
	new  func() any
}{
	{"generation", func() any { return &generationRequest{} }},
	{"openai", func() any { return &openAIImageRequest{} }},
	{"signup", func() any { return &signupRequest{} }},
	{"login", func() any { return &loginRequest{} }},
	{"api key", func() any { return &apiKeyRequest{} }},
	{"me update", func() any { return &meUpdateRequest{} }},
	{"image patch", func() any { return &imagePatch{} }},
	{"consent", func() any { return &consentRequest{} }},
	{"ticket", func() any { return &ticketRequest{} }},
	{"data request", func() any { return &dataRequestRequest{} }},
	{"admin create user", func() any { return &adminCreateUserRequest{} }},
}

// generationFields are the JSON names a generation error may point at.
var generationFields = map[string]bool{"prompt": true, "negative_prompt": true, "width": true, "height": true, "steps": true,
	"guidance": true, "seed": true, "count": true, "backend": true, "model": true, "size": true}

func decodeBody(contentType string, body []byte, v any) error {
	r := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
	r.Header.Set(echo.HeaderContentType, contentType)
	return decodeJSON(echo.New().NewContext(r, httptest.NewRecorder()), v)
}

// FuzzDecodeJSON: for every request type, a body either decodes into a
// value that reads back the same once encoded again, or is refused with
// an EINVALID app.Error whose message a person can read and whose field
// names (when given) are real names. A decoded generation request either
// validates — and then its size is within the limits and a multiple of
// 16 — or is refused field by field with the request's own field names.
func FuzzDecodeJSON(f *testing.F) {
	const js = "application/json"
	for _, s := range []struct{ ct, body string }{
		{js, `{"prompt":"a red fox in snow","width":1024,"height":768,"steps":8,"seed":42,"count":2}`},
		{js, `{"prompt":"a fox","size":"1024x1024","n":1,"response_format":"b64_json"}`},
		{js, `{"email":"a@example.com","username":"alice","password":"correct horse battery staple","age_confirmed":true}`},
		{js, `{"name":"laptop","scopes":["images:read","generate"]}`},
		{"application/json; charset=utf-8", `{"login":"alice","password":"x"}`},
		{js, `{"prompt":"x","width":1e400}`}, {js, `{"prompt":"x","width":"1024"}`}, {js, `{"prompt":"x","seed":9007199254740993}`},
		{js, `{"prompt":"x","guidance":-0}`}, {js, `{"prompt":"\ud800"}`}, {js, `{"prompt":"x","prompt":"y"}`},
		{js, `{"unknown":1}`}, {js, `{"Prompt":"case"}`}, {js, `{} {}`}, {js, `{}x`}, {js, `{"prompt":`}, {js, ``},
		{js, `[]`}, {js, `"text"`}, {js, `1`}, {js, `null`}, {js, `{"scopes":[1]}`}, {js, `{"scopes":{"a":1}}`},
		{"text/plain", `{"prompt":"x"}`}, {"", `{}`}, {"application/json;;", `{}`},
	} {
		f.Add(s.ct, []byte(s.body))
	}
	limits := app.DefaultGenerationLimits()
	f.Fuzz(func(t *testing.T, contentType string, body []byte) {
		for _, target := range decodeTargets {
			v := target.new()
			err := decodeBody(contentType, body, v)
			if err != nil {
				checkInvalid(t, target.name, body, err, nil)
				continue
			}
			again, err := jsonRoundTrip(v, target.new())
			if err != nil || !reflect.DeepEqual(again, v) {
				t.Fatalf("%s: %q decodes to %+v, which encoded and decoded again is %+v (%v)", target.name, body, v, again, err)
			}
			req, ok := v.(*generationRequest)
			if !ok {
				continue
			}
			p := req.params(8)
			if err := p.Validate(limits); err != nil {
				checkInvalid(t, target.name, body, err, generationFields)
				continue
			}
			if p.Width%16 != 0 || p.Height%16 != 0 || p.Width > limits.MaxSide || p.Height > limits.MaxSide || p.Width*p.Height > limits.MaxPixels {
				t.Fatalf("%q validates with a size of %dx%d", body, p.Width, p.Height)
			}
		}
	})
}

func jsonRoundTrip(v, into any) (any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return into, decodeBody("application/json", b, into)
}

// checkInvalid fails t unless err is an EINVALID *app.Error with a message
// that does not start or end in a blank (a missing name) and field names that are not empty (and among
// known, when given).
func checkInvalid(t *testing.T, target string, body []byte, err error, known map[string]bool) {
	t.Helper()
	var e *app.Error
	if !errors.As(err, &e) || e.Code != app.EINVALID {
		t.Fatalf("%s: %q refused with %T %v, want an EINVALID app.Error", target, body, err, err)
	}
	if e.Message == "" || strings.TrimSpace(e.Message) != e.Message {
		t.Fatalf("%s: %q refused with the message %q, which misses a word", target, body, e.Message)
	}
	for field, msg := range e.Fields {
		if field == "" || msg == "" || (known != nil && !known[field]) {
			t.Fatalf("%s: %q refused with field %q: %q; want a field the request has, with a message", target, body, field, msg)
		}
	}
}

// FuzzParamsFromForm: the generate form either refuses a field it cannot
// read, naming that field, or gives parameters that validate or are
// refused by Validate field by field; parameters that pass keep the size
// inside the limits and on the 16-pixel grid.
func FuzzParamsFromForm(f *testing.F) {
	for _, s := range [][6]string{
		{"a red fox in snow", "1024x1024", "8", "1", "", ""},
		{"a fox", "832x1216", "", "", "42", "1"},
		{"a fox", "+64x64", " 8 ", "4", "-1", "1"},
		{"a fox", "1000x1000", "0", "5", "9007199254740992", "1"},
		{"", "x", "eight", "1.5", "seed", "1"},
		{"\x00", "99999999999999999999x1", "9999999999999999999", "-1", "99999999999999999999", "on"},
	} {
		f.Add(s[0], s[1], s[2], s[3], s[4], s[5])
	}
	limits := app.DefaultGenerationLimits()
	formFields := map[string]bool{"size": true, "steps": true, "count": true, "seed": true}
	f.Fuzz(func(t *testing.T, prompt, size, steps, count, seed, seedLock string) {
		v := map[string]string{"prompt": prompt, "size": size, "steps": steps, "count": count, "seed": seed, "seed_lock": seedLock}
		p, err := paramsFromForm(v, 8)
		if err != nil {
			checkInvalid(t, "generate form", []byte(size), err, formFields)
			return
		}
		if err := p.Validate(limits); err != nil {
			checkInvalid(t, "generate form", []byte(size), err, generationFields)
			return
		}
		if p.Width%16 != 0 || p.Height%16 != 0 || p.Width > limits.MaxSide || p.Height > limits.MaxSide || p.Width*p.Height > limits.MaxPixels {
			t.Fatalf("size %q validates as %dx%d", size, p.Width, p.Height)
		}
		if size != "" && app.FormatSize(p.Width, p.Height) != size {
			t.Fatalf("size %q is read as %dx%d: the menu would not show it selected again", size, p.Width, p.Height)
		}
	})
}

// FuzzFormPost sends arbitrary urlencoded and multipart bodies to the
// generate form of a signed-in browser that sends no CSRF header. The
// server never fails (5xx) on a body, and it only ever accepts a post
// (303) whose form, read by the standard library, carries the session's
// CSRF token: no malformed body slips past the cross-site check.
func FuzzFormPost(f *testing.F) {
	env := newAuthEnv(f, authOptionsForTest(), Options{})
	c := env.signup(f, "fuzzer")
	browser := *c
	browser.csrf = "" // the token travels only in the body under test
	const boundary = "zimageboundary"
	multipart := func(fields ...string) string {
		var b strings.Builder
		for i := 0; i+1 < len(fields); i += 2 {
			b.WriteString("--" + boundary + "\r\nContent-Disposition: form-data; name=\"" + fields[i] + "\"\r\n\r\n" + fields[i+1] + "\r\n")
		}
		return b.String() + "--" + boundary + "--\r\n"
	}
	const form, mp = "application/x-www-form-urlencoded", "multipart/form-data; boundary=" + boundary
	for _, s := range []struct{ ct, body string }{
		{form, "_csrf=" + c.csrf + "&prompt=a+red+fox&size=1024x1024&steps=1&count=1"},
		{form, "_csrf=" + c.csrf + "&prompt=&size=1000x1000&steps=x"},
		{form, "prompt=a+fox&size=64x64"},
		{form, "_csrf=wrong&prompt=a+fox"},
		{form, "_csrf=" + c.csrf + "%zz&prompt=a"},
		{form, "_csrf=" + c.csrf + ";prompt=a"},
		{mp, multipart("_csrf", c.csrf, "prompt", "a red fox", "size", "64x64", "steps", "1")},
		{mp, multipart("prompt", "a red fox", "_csrf", c.csrf)},
		{mp, multipart("_csrf", "x")},
		{mp, "--" + boundary + "\r\nContent-Disposition: form-data; name=\"_csrf\"\r\n\r\n" + c.csrf},
		{"multipart/form-data", multipart("_csrf", c.csrf)},
		{"multipart/form-data; boundary=\"\"", "--\r\n"},
		{"application/json", `{"_csrf":"` + c.csrf + `"}`},
	} {
		f.Add(s.ct, []byte(s.body))
	}
	f.Fuzz(func(t *testing.T, contentType string, body []byte) {
		r := browser.do(http.MethodPost, "/generate", string(body), "Content-Type", contentType)
		if r.Code >= 500 {
			t.Fatalf("%q %q: status %d: %s", contentType, body, r.Code, r.Body)
		}
		if r.Code == http.StatusSeeOther {
			std := httptest.NewRequest(http.MethodPost, "/generate", bytes.NewReader(body))
			std.Header.Set("Content-Type", contentType)
			if got := std.FormValue(csrfField); got != c.csrf {
				t.Fatalf("%q %q: accepted though the form's _csrf is %q", contentType, body, got)
			}
		}
	})
}
