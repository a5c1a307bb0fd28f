package web

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"image"
	_ "image/jpeg"
	_ "image/png"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"zimage/app"
	"zimage/app/backend"
)

// openAIEnv is a real Z Image on loopback with one person and an API key
// with the generate scope, and the official OpenAI Go SDK pointed at it.
type openAIEnv struct {
	*authEnv
	srv    *httptest.Server
	owner  *client
	key    string
	keyID  string
	client openai.Client
}

func newOpenAIEnv(t *testing.T) *openAIEnv {
	t.Helper()
	env := newAuthEnv(t, authOptionsForTest(), Options{OpenAIAliases: map[string]string{
		"dall-e-2": backend.BuiltinModel, "dall-e-3": backend.BuiltinModel}})
	srv := httptest.NewServer(env.s.Handler())
	t.Cleanup(srv.Close)
	owner := env.signup(t, "ada")
	kc, keyID := owner.apiKey(t, app.ScopeGenerate)
	return &openAIEnv{authEnv: env, srv: srv, owner: owner, key: kc.bearer, keyID: keyID,
		client: openai.NewClient(option.WithBaseURL(srv.URL+"/v1/"), option.WithAPIKey(kc.bearer), option.WithMaxRetries(0))}
}

// generations counts the person's generations: bad requests must queue
// nothing.
func (e *openAIEnv) generations(t *testing.T) int {
	t.Helper()
	gs, err := e.queue.List(context.Background(), e.owner.userID, "", 100)
	if err != nil {
		t.Fatal(err)
	}
	return len(gs)
}

func decodeImage(t *testing.T, data []byte) (string, image.Point) {
	t.Helper()
	cfg, format, err := image.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("not an image: %v (%d bytes)", err, len(data))
	}
	return format, image.Pt(cfg.Width, cfg.Height)
}

func TestOpenAISDKGeneratesImages(t *testing.T) {
	e := newOpenAIEnv(t)
	ctx := context.Background()
	tests := []struct {
		name       string
		params     openai.ImageGenerateParams
		wantFormat string // as image.DecodeConfig names it ("" for WebP, not registered)
		wantMagic  string
		wantN      int
	}{
		{"b64 png, served model name", openai.ImageGenerateParams{Prompt: "a red fox in snow", Model: openai.ImageModel(backend.BuiltinModel),
			Size: "64x64", ResponseFormat: openai.ImageGenerateParamsResponseFormatB64JSON}, "png", "\x89PNG", 1},
		{"b64 jpeg, alias, two images, low quality", openai.ImageGenerateParams{Prompt: "a lighthouse", Model: openai.ImageModelDallE3, N: openai.Int(2),
			Size: "128x64", OutputFormat: openai.ImageGenerateParamsOutputFormatJPEG, OutputCompression: openai.Int(60), Quality: openai.ImageGenerateParamsQualityLow,
			Background: openai.ImageGenerateParamsBackgroundOpaque, User: openai.String("end-user-42")}, "jpeg", "\xff\xd8\xff", 2},
		{"url webp, default model", openai.ImageGenerateParams{Prompt: "a blue door", Size: "64x64",
			ResponseFormat: openai.ImageGenerateParamsResponseFormatURL, OutputFormat: openai.ImageGenerateParamsOutputFormatWebP}, "", "RIFF", 1},
		{"url png", openai.ImageGenerateParams{Prompt: "a green hill", Size: "64x64", ResponseFormat: openai.ImageGenerateParamsResponseFormatURL}, "png", "\x89PNG", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := e.generations(t)
			res, err := e.client.Images.Generate(ctx, tt.params)
			if err != nil {
				t.Fatalf("generate: %v", err)
			}
			if len(res.Data) != tt.wantN {
				t.Fatalf("got %d images, want %d", len(res.Data), tt.wantN)
			}
			if res.Created == 0 || string(res.OutputFormat) == "" || string(res.Size) == "" || res.Background != "opaque" || res.Quality == "" {
				t.Errorf("response lacks OpenAI's fields: %s", res.RawJSON())
			}
			if got := e.generations(t); got != before+1 {
				t.Errorf("generations: %d, want %d: the job must go through the queue", got, before+1)
			}
			for _, d := range res.Data {
				var data []byte
				if d.URL != "" {
					// The link works without the key (a plain client).
					r, err := http.Get(d.URL)
					if err != nil {
						t.Fatal(err)
					}
					data, _ = io.ReadAll(r.Body)
					r.Body.Close()
					if r.StatusCode != http.StatusOK {
						t.Fatalf("link: %d %s", r.StatusCode, data)
					}
				} else {
					if data, err = base64.StdEncoding.DecodeString(d.B64JSON); err != nil {
						t.Fatal(err)
					}
				}
				if !strings.HasPrefix(string(data), tt.wantMagic) {
					t.Fatalf("image starts %q, want %q", data[:min(len(data), 4)], tt.wantMagic)
				}
				if tt.wantFormat != "" {
					if f, _ := decodeImage(t, data); f != tt.wantFormat {
						t.Errorf("format %s, want %s", f, tt.wantFormat)
					}
				}
				if !bytes.Contains(data, []byte("algorithmicMedia")) {
					t.Errorf("the image is not marked as AI-generated (IPTC digital source type)")
				}
			}
		})
	}
	// The images are in the person's gallery.
	r := e.owner.do("GET", "/api/v1/images", "")
	var page struct {
		Images []json.RawMessage `json:"images"`
	}
	json.Unmarshal(r.Body.Bytes(), &page)
	if len(page.Images) != 5 {
		t.Errorf("gallery holds %d images, want 5: %s", len(page.Images), r.Body)
	}
	// Each is marked with the API key that asked for it: its id in the
	// gallery, its name on the image.
	for _, raw := range page.Images {
		var img struct {
			ID       string `json:"id"`
			APIKeyID string `json:"api_key_id"`
		}
		json.Unmarshal(raw, &img)
		if img.APIKeyID != e.keyID {
			t.Errorf("gallery image %s: api_key_id %q, want %q", img.ID, img.APIKeyID, e.keyID)
		}
		if page := e.owner.do("GET", "/images/"+img.ID, ""); !strings.Contains(page.Body.String(), "API key “test key”") {
			t.Errorf("the image page does not name the API key: %d", page.Code)
		}
		one := e.owner.do("GET", "/api/v1/images/"+img.ID, "").json(t)
		if one["api_key_id"] != e.keyID || one["api_key_name"] != "test key" {
			t.Errorf("image %s: api key %v %v, want %s \"test key\"", img.ID, one["api_key_id"], one["api_key_name"], e.keyID)
		}
	}
	// Images made from the pages carry no key.
	r = e.owner.do("POST", "/api/v1/generations", `{"prompt":"by hand","width":64,"height":64,"steps":1}`)
	if g := r.json(t); r.Code != http.StatusAccepted || g["api_key_id"] != nil {
		t.Errorf("native generation from a session: %d %s", r.Code, r.Body)
	}
}

func TestOpenAISDKErrors(t *testing.T) {
	e := newOpenAIEnv(t)
	ctx := context.Background()
	revoked, revokedID := e.owner.apiKey(t, app.ScopeGenerate)
	if r := e.owner.do("DELETE", "/api/v1/me/api-keys/"+revokedID, ""); r.Code != http.StatusNoContent {
		t.Fatalf("revoke: %d %s", r.Code, r.Body)
	}
	ok := openai.ImageGenerateParams{Prompt: "a red fox", Size: "64x64"}
	with := func(f func(*openai.ImageGenerateParams)) openai.ImageGenerateParams { p := ok; f(&p); return p }
	tests := []struct {
		name       string
		params     openai.ImageGenerateParams
		opts       []option.RequestOption
		wantStatus int
		wantType   string
		wantCode   string
		wantParam  string
	}{
		{"unknown model", with(func(p *openai.ImageGenerateParams) { p.Model = "gpt-image-1" }), nil, 404, "invalid_request_error", "model_not_found", "model"},
		{"bad size", with(func(p *openai.ImageGenerateParams) { p.Size = "huge" }), nil, 400, "invalid_request_error", "invalid_value", "size"},
		{"size not a multiple of 16", with(func(p *openai.ImageGenerateParams) { p.Size = "100x100" }), nil, 400, "invalid_request_error", "invalid_value", "size"},
		{"n zero", with(func(p *openai.ImageGenerateParams) { p.N = openai.Int(0) }), []option.RequestOption{option.WithJSONSet("n", 0)}, 400, "invalid_request_error", "invalid_value", "n"},
		{"n too many", with(func(p *openai.ImageGenerateParams) { p.N = openai.Int(10) }), nil, 400, "invalid_request_error", "invalid_value", "n"},
		{"unsupported output format", ok, []option.RequestOption{option.WithJSONSet("output_format", "gif")}, 400, "invalid_request_error", "invalid_value", "output_format"},
		{"unsupported response format", ok, []option.RequestOption{option.WithJSONSet("response_format", "svg")}, 400, "invalid_request_error", "invalid_value", "response_format"},
		{"transparent background", with(func(p *openai.ImageGenerateParams) { p.Background = openai.ImageGenerateParamsBackgroundTransparent }), nil, 400, "invalid_request_error", "invalid_value", "background"},
		{"compression out of range", with(func(p *openai.ImageGenerateParams) { p.OutputCompression = openai.Int(101) }), nil, 400, "invalid_request_error", "invalid_value", "output_compression"},
		{"revoked key", ok, []option.RequestOption{option.WithAPIKey(revoked.bearer)}, 401, "invalid_request_error", "invalid_api_key", ""},
		{"no such key", ok, []option.RequestOption{option.WithAPIKey("zik_not-a-real-key")}, 401, "invalid_request_error", "invalid_api_key", ""},
		{"malformed body", ok, []option.RequestOption{option.WithRequestBody("application/json", []byte(`{"prompt": "a fox",`))}, 400, "invalid_request_error", "", ""},
		{"unknown field", ok, []option.RequestOption{option.WithJSONSet("colour", "red")}, 400, "invalid_request_error", "invalid_value", "colour"},
		{"empty prompt", with(func(p *openai.ImageGenerateParams) { p.Prompt = " " }), nil, 400, "invalid_request_error", "invalid_value", "prompt"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := e.generations(t)
			_, err := e.client.Images.Generate(ctx, tt.params, tt.opts...)
			var apiErr *openai.Error
			if !errors.As(err, &apiErr) {
				t.Fatalf("want an OpenAI API error, got %v", err)
			}
			if apiErr.StatusCode != tt.wantStatus || apiErr.Type != tt.wantType || apiErr.Code != tt.wantCode || apiErr.Param != tt.wantParam {
				t.Errorf("got %d type=%q code=%q param=%q, want %d %q %q %q\n%s", apiErr.StatusCode, apiErr.Type, apiErr.Code, apiErr.Param,
					tt.wantStatus, tt.wantType, tt.wantCode, tt.wantParam, apiErr.RawJSON())
			}
			if apiErr.Message == "" {
				t.Error("the error has no message")
			}
			if got := e.generations(t); got != before {
				t.Errorf("generations: %d, want %d: a bad request must queue nothing", got, before)
			}
		})
	}
}

func TestOpenAISDKModels(t *testing.T) {
	e := newOpenAIEnv(t)
	ctx := context.Background()
	page, err := e.client.Models.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, m := range page.Data {
		ids = append(ids, m.ID)
		if m.Object != "model" || m.OwnedBy == "" {
			t.Errorf("model %+v lacks OpenAI's fields", m)
		}
	}
	want := []string{backend.BuiltinModel, "dall-e-2", "dall-e-3"}
	if strings.Join(ids, "|") != strings.Join(want, "|") {
		t.Errorf("models %q, want %q", ids, want)
	}
	for _, id := range want {
		m, err := e.client.Models.Get(ctx, id)
		if err != nil || m.ID != id {
			t.Errorf("get %q: %v %+v", id, err, m)
		}
	}
	_, err = e.client.Models.Get(ctx, "gpt-image-1")
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 404 || apiErr.Code != "model_not_found" {
		t.Errorf("unknown model: %v", err)
	}
}

// Open WebUI's OpenAI image engine (backend/open_webui/routers/images.py)
// posts this body with these headers, from aiohttp; it must work as sent.
func TestOpenWebUIRequestWorksUnchanged(t *testing.T) {
	e := newOpenAIEnv(t)
	body := `{"model": "dall-e-2", "prompt": "A watercolour of a harbour at dawn", "n": 1, "size": "512x512", "response_format": "b64_json"}`
	req, _ := http.NewRequest("POST", e.srv.URL+"/v1/images/generations", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+e.key)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Python/3.11 aiohttp/3.11.18")
	req.Header.Set("Accept", "*/*")
	req.Header.Set("Accept-Encoding", "gzip, deflate")
	// With ENABLE_FORWARD_USER_INFO_HEADERS on, it adds who asked.
	req.Header.Set("X-OpenWebUI-User-Name", "Ada")
	req.Header.Set("X-OpenWebUI-User-Id", "8d2c")
	req.Header.Set("X-OpenWebUI-User-Email", "ada@example.com")
	req.Header.Set("X-OpenWebUI-User-Role", "user")
	r, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	var res struct {
		Data []struct {
			B64JSON string `json:"b64_json"`
			URL     string `json:"url"`
		} `json:"data"`
	}
	raw, _ := io.ReadAll(r.Body)
	if r.StatusCode != http.StatusOK || json.Unmarshal(raw, &res) != nil || len(res.Data) != 1 {
		t.Fatalf("%d %s", r.StatusCode, raw)
	}
	// Open WebUI reads image["b64_json"] and decodes it.
	data, err := base64.StdEncoding.DecodeString(res.Data[0].B64JSON)
	if err != nil {
		t.Fatal(err)
	}
	if f, size := decodeImage(t, data); f != "png" || size != image.Pt(512, 512) {
		t.Errorf("got %s %v, want png 512×512", f, size)
	}
}

func TestOpenAIImageLinks(t *testing.T) {
	e := newOpenAIEnv(t)
	res, err := e.client.Images.Generate(context.Background(), openai.ImageGenerateParams{Prompt: "a fox", Size: "64x64",
		ResponseFormat: openai.ImageGenerateParamsResponseFormatURL})
	if err != nil {
		t.Fatal(err)
	}
	link := res.Data[0].URL
	get := func(u string) int {
		r, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		return r.StatusCode
	}
	u, _ := url.Parse(link)
	q := u.Query()
	tampered := *u
	q2 := url.Values{}
	for k, v := range q {
		q2[k] = v
	}
	q2.Set("e", "9999999999")
	tampered.RawQuery = q2.Encode()
	other := *u
	other.Path = "/v1/images/files/01JAAAAAAAAAAAAAAAAAAAAAAA"
	tests := []struct {
		name    string
		link    string
		advance time.Duration
		want    int
	}{
		{"fresh", link, 0, 200},
		{"expiry changed", tampered.String(), 0, 404},
		{"another image", other.String(), 0, 404},
		{"expired", link, time.Hour, 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.clock.Advance(tt.advance)
			if got := get(tt.link); got != tt.want {
				t.Errorf("%s: %d, want %d", tt.link, got, tt.want)
			}
		})
	}
}

// Errors the middleware answers before any handler runs come in OpenAI's
// shape too under /v1: rate limits, oversized bodies, no key at all.
func TestOpenAIErrorShapeFromMiddleware(t *testing.T) {
	env := newAuthEnv(t, authOptionsForTest(), Options{APIRatePerKey: 1, MaxBodyBytes: 4096})
	kc, _ := env.signup(t, "bob").apiKey(t, app.ScopeGenerate)
	tests := []struct {
		name       string
		c          *client
		body       string
		wantStatus int
		wantType   string
		wantCode   string
	}{
		{"no key", env.anon(), `{"prompt":"x"}`, 401, "invalid_request_error", "invalid_api_key"},
		{"body too large", kc, `{"prompt":"` + strings.Repeat("x", 8000) + `"}`, 413, "invalid_request_error", "request_too_large"},
		{"rate limited", kc, `{"prompt":"x","n":0}`, 429, "requests", "rate_limit_exceeded"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.c.do("POST", "/v1/images/generations", tt.body)
			for i := 0; i < 10 && tt.wantStatus == 429 && r.Code != 429; i++ {
				r = tt.c.do("POST", "/v1/images/generations", tt.body) // past the burst
			}
			var got openAIErrorBody
			if err := json.Unmarshal(r.Body.Bytes(), &got); err != nil || r.Code != tt.wantStatus || got.Error.Type != tt.wantType ||
				got.Error.Code == nil || *got.Error.Code != tt.wantCode || got.Error.Message == "" {
				t.Errorf("got %d %s", r.Code, r.Body)
			}
			if !strings.Contains(r.Body.String(), `"param":`) {
				t.Errorf("param must be present (null when there is none): %s", r.Body)
			}
		})
	}
}
