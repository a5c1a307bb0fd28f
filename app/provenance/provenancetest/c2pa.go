package provenancetest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"testing"
)

// C2PAReport is what the reference C2PA reader (c2pa-rs as WebAssembly,
// from the npm package @contentauth/c2pa-wasm) says about a file.
type C2PAReport struct {
	// Error is set when the reader found no manifest or could not parse it.
	Error          string `json:"error"`
	ActiveManifest string `json:"active_manifest"`
	Manifests      map[string]struct {
		Assertions []struct {
			Label string          `json:"label"`
			Data  json.RawMessage `json:"data"`
		} `json:"assertions"`
		SignatureInfo struct {
			Alg        string `json:"alg"`
			CommonName string `json:"common_name"`
		} `json:"signature_info"`
		ClaimVersion int `json:"claim_version"`
	} `json:"manifests"`
	ValidationResults struct {
		ActiveManifest struct {
			Success []C2PAStatus `json:"success"`
			Failure []C2PAStatus `json:"failure"`
		} `json:"activeManifest"`
	} `json:"validation_results"`
	// ValidationState is "Invalid", "Valid" (signature and bindings
	// check out, signer unknown) or "Trusted".
	ValidationState string `json:"validation_state"`
	// Raw is the reader's whole JSON answer, for the test log.
	Raw string `json:"-"`
}

// C2PAStatus is one validation status code (C2PA 2.1, "Validation").
type C2PAStatus struct {
	Code        string `json:"code"`
	Explanation string `json:"explanation"`
}

// Succeeded reports whether the reader logged code as a success.
func (r C2PAReport) Succeeded(code string) bool {
	return slices.ContainsFunc(r.ValidationResults.ActiveManifest.Success, func(s C2PAStatus) bool { return s.Code == code })
}

// Failed reports whether the reader logged code as a failure.
func (r C2PAReport) Failed(code string) bool {
	return slices.ContainsFunc(r.ValidationResults.ActiveManifest.Failure, func(s C2PAStatus) bool { return s.Code == code })
}

// FailureCodes lists the failure codes.
func (r C2PAReport) FailureCodes() []string {
	var out []string
	for _, s := range r.ValidationResults.ActiveManifest.Failure {
		out = append(out, s.Code)
	}
	return out
}

// DigitalSourceTypes lists every action's digitalSourceType in the active
// manifest's c2pa.actions.v2 assertion.
func (r C2PAReport) DigitalSourceTypes() []string {
	var out []string
	for _, a := range r.Manifests[r.ActiveManifest].Assertions {
		if a.Label != "c2pa.actions.v2" {
			continue
		}
		var v struct {
			Actions []struct {
				Action            string `json:"action"`
				DigitalSourceType string `json:"digitalSourceType"`
			} `json:"actions"`
		}
		_ = json.Unmarshal(a.Data, &v)
		for _, act := range v.Actions {
			out = append(out, act.Action+" "+act.DigitalSourceType)
		}
	}
	return out
}

var readerDir struct {
	sync.Once
	dir, err string
}

// C2PARead runs the reference C2PA reader on data (a PNG, WebP or JPEG,
// by ext ".png", ".webp" or ".jpg"). A missing node or npm fails the test: the
// credentials must be proven by the implementation no one here wrote.
func C2PARead(t testing.TB, data []byte, ext string) C2PAReport {
	t.Helper()
	return C2PAReadFiles(t, map[string][]byte{"file" + ext: data})["file"+ext]
}

// C2PAReadFiles reads several files in one run of the reader (it takes
// about three seconds to start), keyed by name; a name ending in ".webp"
// is read as WebP, ".jpg" as JPEG, any other as PNG. The reader is installed once with
// npm ci from the lock file in testdata/c2pa-reader into the user's cache
// folder.
func C2PAReadFiles(t testing.TB, files map[string][]byte) map[string]C2PAReport {
	t.Helper()
	dir := c2paReader(t)
	tmp := t.TempDir()
	args := []string{filepath.Join(dir, "reader.mjs")}
	var keys []string
	for key, data := range files {
		ext := ".png"
		if e := filepath.Ext(key); e == ".webp" || e == ".jpg" {
			ext = e
		}
		name := filepath.Join(tmp, fmt.Sprintf("f%d%s", len(keys), ext))
		if err := os.WriteFile(name, data, 0o600); err != nil {
			t.Fatal(err)
		}
		keys = append(keys, key)
		args = append(args, name)
	}
	cmd := exec.Command("node", args...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		t.Fatalf("c2pa reader: %v: %s", err, errOut.String())
	}
	var raw []json.RawMessage
	if err := json.Unmarshal(out.Bytes(), &raw); err != nil || len(raw) != len(keys) {
		t.Fatalf("c2pa reader output is not %d JSON reports (%v): %s", len(keys), err, out.String())
	}
	res := map[string]C2PAReport{}
	for i, key := range keys {
		var r C2PAReport
		if err := json.Unmarshal(raw[i], &r); err != nil {
			t.Fatalf("c2pa reader report: %v", err)
		}
		r.Raw = string(raw[i])
		res[key] = r
	}
	return res
}

func c2paReader(t testing.TB) string {
	t.Helper()
	readerDir.Do(func() { readerDir.dir, readerDir.err = installReader() })
	if readerDir.err != "" {
		t.Fatal(readerDir.err)
	}
	return readerDir.dir
}

func installReader() (dir, problem string) {
	if _, err := exec.LookPath("node"); err != nil {
		return "", "node is not installed, and these tests check the Content Credentials with the reference C2PA reader run by node: install Debian's nodejs and npm (apt-get install -y nodejs npm)"
	}
	if _, err := exec.LookPath("npm"); err != nil {
		return "", "npm is not installed, and these tests install the reference C2PA reader with it: install Debian's npm (apt-get install -y npm)"
	}
	_, self, _, _ := runtime.Caller(0)
	src := filepath.Join(filepath.Dir(self), "..", "testdata", "c2pa-reader")
	files := []string{"package.json", "package-lock.json", "reader.mjs"}
	h := sha256.New()
	contents := map[string][]byte{}
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(src, f))
		if err != nil {
			return "", "c2pa reader: " + err.Error()
		}
		contents[f] = b
		h.Write(b)
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	dir = filepath.Join(cache, "zimage", "c2pa-reader-"+hex.EncodeToString(h.Sum(nil))[:12])
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "@contentauth", "c2pa-wasm", "package.json")); err == nil {
		return dir, ""
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return "", "c2pa reader: " + err.Error()
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), "install-")
	if err != nil {
		return "", "c2pa reader: " + err.Error()
	}
	defer os.RemoveAll(tmp)
	for f, b := range contents {
		if err := os.WriteFile(filepath.Join(tmp, f), b, 0o644); err != nil {
			return "", "c2pa reader: " + err.Error()
		}
	}
	cmd := exec.Command("npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund")
	cmd.Dir = tmp
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", "c2pa reader: npm ci of @contentauth/c2pa-wasm failed (" + err.Error() + "): " + string(out)
	}
	if err := os.Rename(tmp, dir); err != nil && !os.IsExist(err) {
		if _, statErr := os.Stat(dir); statErr != nil {
			return "", "c2pa reader: " + err.Error()
		}
	}
	return dir, ""
}
