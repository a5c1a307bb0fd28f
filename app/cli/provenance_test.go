package cli

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"zimage/app/backend/backendfake"
	"zimage/app/config"
	"zimage/app/media"
	"zimage/app/provenance"
	"zimage/app/provenance/provenancetest"
	"zimage/app/sqlite"
	"zimage/app/vault"
)

// What the person typed and who they are: none of it may reach a served
// file unless they chose to embed their parameters, and then only the
// original PNG's one "parameters" chunk.
const (
	provPrompt   = "zqlighthouse7731 at dusk"
	provNegative = "zqnegative5512"
	provUser     = "zqalice"
)

// TestServedFilesCarryMarksAndNoPrompt runs the whole server against each
// kind of model server (the fakes write their metadata as the real ones
// do: ComfyUI its prompt graph, A1111 its parameters) and reads every
// chunk of every file a person can get: the PNG, WebP and thumbnail over
// HTTP, the same files decrypted from the store, the gallery ZIP, the
// data export and the OpenAI-compatible answer. Each carries the IPTC
// marks, read back by exiftool, and no prompt, seed, username or host.
func TestServedFilesCarryMarksAndNoPrompt(t *testing.T) {
	kinds := []struct {
		kind    string
		backend func(t *testing.T) config.Backend
		source  string
	}{
		{"comfyui", func(t *testing.T) config.Backend {
			return config.Backend{Kind: "comfyui", URL: backendfake.NewComfyUI(t, backendfake.ComfyUIConfig{}).URL}
		}, provenance.TrainedAlgorithmicMedia},
		{"a1111", func(t *testing.T) config.Backend {
			return config.Backend{Kind: "a1111", URL: backendfake.NewA1111(t, backendfake.A1111Config{}).URL}
		}, provenance.TrainedAlgorithmicMedia},
		// Forge set to save JPEG or WebP: the prompt goes into EXIF.
		{"a1111 jpg", func(t *testing.T) config.Backend {
			return config.Backend{Kind: "a1111", URL: backendfake.NewA1111(t, backendfake.A1111Config{SamplesFormat: "jpg"}).URL}
		}, provenance.TrainedAlgorithmicMedia},
		{"a1111 webp", func(t *testing.T) config.Backend {
			return config.Backend{Kind: "a1111", URL: backendfake.NewA1111(t, backendfake.A1111Config{SamplesFormat: "webp"}).URL}
		}, provenance.TrainedAlgorithmicMedia},
		{"openai", func(t *testing.T) config.Backend {
			return config.Backend{Kind: "openai", URL: backendfake.NewOpenAI(t, backendfake.OpenAIConfig{}).URL, Model: "z-image-turbo"}
		}, provenance.TrainedAlgorithmicMedia},
		{"builtin", func(t *testing.T) config.Backend { return config.Backend{Kind: "builtin"} }, provenance.AlgorithmicMedia},
	}
	for _, k := range kinds {
		t.Run(k.kind, func(t *testing.T) {
			cfg := testConfig(t)
			b := k.backend(t)
			b.Name, b.Slots, b.Timeout = "gpu0", 1, config.Duration(time.Minute)
			b.Models, b.WorkflowMap = []string{}, map[string]string{}
			cfg.Backends = []config.Backend{b}
			zi := startProvServer(t, cfg)
			served := map[string][]byte{} // "<image id>.<variant>" → bytes served
			marked := map[string][]byte{} // every file checked, for exiftool
			for _, embed := range []bool{false, true} {
				zi.do(t, "PATCH", "/api/v1/me", fmt.Sprintf(`{"embed_parameters":%v}`, embed), 200)
				seed := int64(918273645)
				if embed {
					seed++
				}
				id := zi.generate(t, seed)
				for _, v := range []struct{ variant, query string }{{"png", "format=png"}, {"webp", "format=webp"}, {"thumb", "size=thumb"}} {
					data := zi.file(t, id, v.query)
					served[id+"."+v.variant] = data
					checkFile(t, marked, fmt.Sprintf("%s (embed %v)", v.variant, embed), data, embed && v.variant == "png", seed)
				}
			}
			zi.checkZipAndExport(t, marked)
			var api struct {
				Data []struct {
					B64JSON string `json:"b64_json"`
				}
			}
			json.Unmarshal(zi.do(t, "POST", "/v1/images/generations", `{"prompt":"`+provPrompt+`","size":"256x256","seed":918273600,"response_format":"b64_json"}`, 200), &api)
			if len(api.Data) != 1 {
				t.Fatalf("OpenAI-compatible answer holds %d images", len(api.Data))
			}
			png, _ := base64.StdEncoding.DecodeString(api.Data[0].B64JSON)
			checkFile(t, marked, "openai b64_json", png, true, 918273600) // embed is still on
			checkMarks(t, marked, k.source)
			checkCredentials(t, served, k.source)
			zi.stop()

			// The files as stored, decrypted with the store's own keys, are
			// the files served.
			keys, err := vault.Open(cfg.Server.DataDir, "")
			if err != nil {
				t.Fatal(err)
			}
			defer keys.Close()
			db, err := sqlite.Open(context.Background(), cfg.Server.DataDir+"/zimage.db")
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			store, err := media.New(cfg.Server.DataDir, db, keys, media.Options{})
			if err != nil {
				t.Fatal(err)
			}
			for key, want := range served {
				id, variant, _ := strings.Cut(key, ".")
				format, size := variant, "full"
				if variant == "thumb" {
					format, size = "webp", "thumb"
				}
				rc, _, _, err := store.Open(context.Background(), zi.userID, id, format, size)
				if err != nil {
					t.Fatal(err)
				}
				got, _ := io.ReadAll(rc)
				if !bytes.Equal(got, want) {
					t.Errorf("stored %s differs from the file served", key)
				}
			}
		})
	}
}

// checkFile reads every chunk of one served file. Metadata: exactly the
// XMP packet, plus one "parameters" chunk when the person chose to embed
// and the file is an original PNG (embedded); no EXIF, no timestamps,
// nothing after the end. The person's data appears only inside that
// parameters chunk, in any encoding (A1111 writes EXIF in UTF-16).
// exiftool must read the marks.
func checkFile(t *testing.T, marked map[string][]byte, what string, data []byte, embedded bool, seed int64) {
	t.Helper()
	marked[what] = data
	withParameters := embedded && provenance.Format(data) == provenance.PNG
	chunks, trailing := provenancetest.Chunks(t, data)
	if len(trailing) > 0 {
		t.Errorf("%s: %d bytes after the end of the image", what, len(trailing))
	}
	var params, xmp int
	rest := append([]byte{}, data...)
	for _, c := range chunks {
		switch c.Type {
		case "tEXt", "iTXt", "zTXt":
			keyword, _, _ := bytes.Cut(c.Data, []byte{0})
			switch string(keyword) {
			case "XML:com.adobe.xmp":
				xmp++
			case "parameters":
				params++
				// Blank the one place the person asked their data to be.
				rest = bytes.Replace(rest, c.Data, bytes.Repeat([]byte{'-'}, len(c.Data)), 1)
			default:
				t.Errorf("%s: text chunk %q", what, keyword)
			}
		case "XMP ":
			xmp++
		case "FFE1":
			if !bytes.HasPrefix(c.Data, []byte("http://ns.adobe.com/xap/1.0/\x00")) {
				t.Errorf("%s: APP1 segment %q", what, c.Data[:min(len(c.Data), 12)])
			}
			xmp++
		case "eXIf", "tIME", "EXIF", "FFED", "FFFE":
			t.Errorf("%s: metadata chunk %s", what, c.Type)
		}
	}
	wantParams := 0
	if withParameters {
		wantParams = 1
	}
	if params != wantParams || xmp != 1 {
		t.Errorf("%s: %d parameters chunks and %d XMP packets, want %d and 1", what, params, xmp, wantParams)
	}
	secrets := []string{provPrompt, "zqlighthouse", provNegative, provUser, strconv.FormatInt(seed, 10), "127.0.0.1"}
	if h, err := os.Hostname(); err == nil && len(h) >= 6 {
		secrets = append(secrets, h)
	}
	for _, s := range secrets {
		var utf16be []byte
		for _, r := range s {
			utf16be = append(utf16be, byte(r>>8), byte(r))
		}
		if bytes.Contains(rest, []byte(s)) || bytes.Contains(rest, utf16be) {
			t.Errorf("%s holds %q outside the parameters the person chose to embed", what, s)
		}
	}
}

// checkMarks reads the marks of every file with exiftool, in one run.
func checkMarks(t *testing.T, marked map[string][]byte, source string) {
	t.Helper()
	for what, tags := range provenancetest.ExiftoolFiles(t, marked) {
		if got := tags["XMP-iptcExt:DigitalSourceType"]; got != source {
			t.Errorf("%s: exiftool reads DigitalSourceType %v, want %s", what, got, source)
		}
		if got, _ := tags["XMP-xmp:CreatorTool"].(string); !strings.HasPrefix(got, "Z Image ") {
			t.Errorf("%s: exiftool reads CreatorTool %q, want Z Image and its version", what, got)
		}
	}
}

type provServer struct {
	base   string
	client *http.Client
	csrf   string
	userID string
	stop   func()
}

func startProvServer(t *testing.T, cfg config.Config) *provServer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan map[string]string, 1)
	done := make(chan error, 1)
	go func() { done <- serve(ctx, cfg, nil, discardLogger(), func(a map[string]string) { ready <- a }) }()
	stopped := false
	s := &provServer{stop: func() {
		if !stopped {
			stopped = true
			cancel()
			<-done
		}
	}}
	t.Cleanup(s.stop)
	select {
	case a := <-ready:
		s.base = "http://" + a["http"]
	case err := <-done:
		t.Fatalf("serve: %v", err)
	}
	jar, _ := cookiejar.New(nil)
	s.client = &http.Client{Jar: jar}
	var su struct {
		CSRF string `json:"csrf_token"`
	}
	json.Unmarshal(s.do(t, "POST", "/api/v1/auth/signup", `{"email":"`+provUser+`@example.com","username":"`+provUser+`","password":"velvet lantern orbit meadow","age_confirmed":true}`, 201), &su)
	s.csrf = su.CSRF
	var me struct{ ID string }
	json.Unmarshal(s.do(t, "GET", "/api/v1/me", "", 200), &me)
	s.userID = me.ID
	return s
}

func (s *provServer) do(t *testing.T, method, path, body string, want int) []byte {
	t.Helper()
	req, _ := http.NewRequest(method, s.base+path, strings.NewReader(body))
	ct := "application/json"
	if body != "" && !strings.HasPrefix(body, "{") {
		ct = "application/x-www-form-urlencoded"
	}
	req.Header.Set("Content-Type", ct)
	req.Header.Set("X-CSRF-Token", s.csrf)
	resp, err := s.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("%s %s: %d %s, want %d", method, path, resp.StatusCode, out, want)
	}
	return out
}

// generate makes one 256×256 image and returns its id, waiting for its
// WebP copy too.
func (s *provServer) generate(t *testing.T, seed int64) string {
	t.Helper()
	var g struct{ ID string }
	json.Unmarshal(s.do(t, "POST", "/api/v1/generations", fmt.Sprintf(`{"prompt":%q,"negative_prompt":%q,"width":256,"height":256,"steps":2,"seed":%d}`, provPrompt, provNegative, seed), 202), &g)
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		var st struct {
			Status   string
			ImageIDs []string `json:"image_ids"`
			Error    any
		}
		json.Unmarshal(s.do(t, "GET", "/api/v1/generations/"+g.ID, "", 200), &st)
		switch st.Status {
		case "succeeded":
			return st.ImageIDs[0]
		case "failed", "canceled":
			t.Fatalf("generation %s: %v", st.Status, st.Error)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("generation did not finish in 30 s")
	return ""
}

// file downloads one file of an image, waiting while its WebP copy is
// still being made.
func (s *provServer) file(t *testing.T, id, query string) []byte {
	t.Helper()
	for range 500 {
		resp, err := s.client.Get(s.base + "/api/v1/images/" + id + "/file?" + query)
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == 200 {
			return data
		}
		if resp.StatusCode != 503 {
			t.Fatalf("GET file?%s: %d %s", query, resp.StatusCode, data)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("file?%s never became ready", query)
	return nil
}

// checkZipAndExport checks the images inside the gallery ZIP (the first
// image, saved with embed off) and inside the person's data export.
func (s *provServer) checkZipAndExport(t *testing.T, marked map[string][]byte) {
	t.Helper()
	var list struct{ Images []struct{ ID string } }
	json.Unmarshal(s.do(t, "GET", "/api/v1/images", "", 200), &list)
	first := list.Images[len(list.Images)-1].ID
	zipped := s.do(t, "POST", "/gallery/bulk", url.Values{"id": {first}, "action": {"zip"}}.Encode(), 200)
	for name, data := range zipFiles(t, zipped) {
		checkFile(t, marked, "zip "+name, data, false, 918273645)
	}
	var e struct{ ID string }
	json.Unmarshal(s.do(t, "POST", "/api/v1/me/exports", "", 202), &e)
	var st struct {
		Status      string
		DownloadURL string `json:"download_url"`
	}
	for range 500 {
		json.Unmarshal(s.do(t, "GET", "/api/v1/me/exports/"+e.ID, "", 200), &st)
		if st.Status != "pending" && st.Status != "running" {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if st.DownloadURL == "" {
		t.Fatalf("export ended %q without a download", st.Status)
	}
	images := 0
	for name, data := range zipFiles(t, s.do(t, "GET", st.DownloadURL, "", 200)) {
		if !strings.HasPrefix(name, "images/") || strings.HasSuffix(name, ".json") {
			continue
		}
		images++
		marked["export "+name] = data
	}
	if images != 2 {
		t.Errorf("export holds %d images, want 2", images)
	}
}

func zipFiles(t *testing.T, data []byte) map[string][]byte {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatalf("not a ZIP: %v", err)
	}
	out := map[string][]byte{}
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		out[f.Name], _ = io.ReadAll(rc)
		rc.Close()
	}
	return out
}

// Turning the marks off is the operator's call, but it must not go
// unnoticed: every start says what it may breach.
func TestMarksOffWarnsAtStart(t *testing.T) {
	for _, marks := range []bool{true, false} {
		t.Run(fmt.Sprint("marks=", marks), func(t *testing.T) {
			cfg := testConfig(t)
			cfg.Provenance.Marks = marks
			var logs syncBuffer
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			ready := make(chan struct{})
			go func() {
				done <- serve(ctx, cfg, nil, slog.New(slog.NewTextHandler(&logs, nil)), func(map[string]string) { close(ready) })
			}()
			select {
			case <-ready:
			case err := <-done:
				t.Fatalf("serve: %v", err)
			}
			cancel()
			<-done
			warned := strings.Contains(logs.String(), "level=WARN") && strings.Contains(logs.String(), "Article 50(2) of the EU AI Act")
			if warned == marks {
				t.Errorf("marks = %v: warning logged %v\n%s", marks, warned, logs.String())
			}
		})
	}
}

// checkCredentials reads every served original (PNG, or the JPEG or WebP
// the server returned), WebP copy and thumbnail with the reference C2PA
// reader: signed by the self-signed certificate serve made
// at its first start (so untrusted, and nothing else wrong), bound to the
// file's bytes, created by Z Image from the digital source type.
func checkCredentials(t *testing.T, served map[string][]byte, source string) {
	t.Helper()
	files := map[string][]byte{}
	for key, data := range served {
		name := key
		switch provenance.Format(data) {
		case provenance.JPEG: // A1111 set to save jpg: the original
			name += ".jpg"
		case provenance.WebP:
			name += ".webp"
		}
		files[name] = data
	}
	for name, r := range provenancetest.C2PAReadFiles(t, files) {
		t.Logf("C2PA reader on %s: state %s, failures %v, actions %v", name, r.ValidationState, r.FailureCodes(), r.DigitalSourceTypes())
		if r.ValidationState != "Valid" || !r.Succeeded("claimSignature.validated") || !r.Succeeded("assertion.dataHash.match") ||
			len(r.FailureCodes()) != 1 || !r.Failed("signingCredential.untrusted") {
			t.Errorf("%s: reader says %s with failures %v, want Valid, signature and data hash matched, only signingCredential.untrusted\n%s", name, r.ValidationState, r.FailureCodes(), r.Raw)
		}
		if got := r.DigitalSourceTypes(); len(got) != 1 || got[0] != "c2pa.created "+source {
			t.Errorf("%s: actions %v, want c2pa.created %s", name, got, source)
		}
	}
}
