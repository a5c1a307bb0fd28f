package provenance_test

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chai2010/webp"

	"zimage/app/provenance"
	"zimage/app/provenance/c2pa"
	"zimage/app/provenance/provenancetest"
)

// testSigner is a signer with a fresh self-signed certificate, as
// "zimage provenance init" makes it.
func testSigner(t testing.TB) *c2pa.Signer {
	t.Helper()
	key, cert, err := c2pa.SelfSigned("Z Image test signer", time.Now(), 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	keyFile, certFile := filepath.Join(dir, "key.pem"), filepath.Join(dir, "cert.pem")
	if err := os.WriteFile(keyFile, key, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certFile, cert, 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := c2pa.LoadSigner(keyFile, certFile, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// manifestStore returns the bytes of the C2PA chunk (caBX in PNG, C2PA in
// WebP, APP11 in JPEG), failing unless there is exactly one.
func manifestStore(t *testing.T, data []byte) []byte {
	t.Helper()
	chunks, _ := provenancetest.Chunks(t, data)
	var found [][]byte
	for _, c := range chunks {
		if c.Type == "caBX" || c.Type == "C2PA" || c.Type == "FFEB" {
			found = append(found, c.Data)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d C2PA chunks, want 1", len(found))
	}
	return found[0]
}

// credentialed strips, marks and signs a file the way media stores it.
func credentialed(t *testing.T, cr provenance.Credentials, dirty []byte, source, model string) []byte {
	t.Helper()
	out, err := provenance.Strip(dirty)
	if err != nil {
		t.Fatal(err)
	}
	if out, err = (provenance.Marker{Version: "1.2.3"}).Mark(out, source); err != nil {
		t.Fatal(err)
	}
	if out, err = cr.Sign(out, source, model); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestCredentialsAreValidForTheReferenceReader(t *testing.T) {
	signer := testSigner(t)
	_, dirtyPNGFile := dirtyPNG(t)
	_, lossy := dirtyWebP(t, false)
	_, lossless := dirtyWebP(t, true)
	_, dirtyJPEGFile := dirtyJPEG(t)
	simple, err := webp.EncodeRGB(picture(64, 48, false), 90)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, ext    string
		data         []byte
		source       string
		includeModel bool
	}{
		{"png from a model", ".png", dirtyPNGFile, provenance.TrainedAlgorithmicMedia, false},
		{"png from the builtin renderer", ".png", dirtyPNGFile, provenance.AlgorithmicMedia, false},
		{"png with the model's name", ".png", dirtyPNGFile, provenance.TrainedAlgorithmicMedia, true},
		{"lossy webp", ".webp", lossy, provenance.TrainedAlgorithmicMedia, false},
		{"lossless webp with alpha", ".webp", lossless, provenance.TrainedAlgorithmicMedia, false},
		{"simple-format webp", ".webp", simple, provenance.AlgorithmicMedia, false},
		{"jpeg", ".jpg", dirtyJPEGFile, provenance.TrainedAlgorithmicMedia, false},
	}
	const model = "z-image-turbo-v7"
	files := map[string][]byte{}
	for _, tt := range tests {
		cr := provenance.Credentials{Signer: signer, Version: "1.2.3", IncludeModel: tt.includeModel}
		files[tt.name+tt.ext] = credentialed(t, cr, tt.data, tt.source, model)
	}
	reports := provenancetest.C2PAReadFiles(t, files)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, r := files[tt.name+tt.ext], reports[tt.name+tt.ext]
			t.Logf("reader verdict: state %s, failures %v, actions %v", r.ValidationState, r.FailureCodes(), r.DigitalSourceTypes())
			if r.Error != "" {
				t.Fatalf("reader error: %s", r.Error)
			}
			if r.ValidationState != "Valid" {
				t.Errorf("validation state %q, want Valid (signature and binding right, signer unknown)\n%s", r.ValidationState, r.Raw)
			}
			for _, code := range []string{"claimSignature.validated", "claimSignature.insideValidity", "assertion.dataHash.match", "assertion.hashedURI.match"} {
				if !r.Succeeded(code) {
					t.Errorf("no %s from the reader\n%s", code, r.Raw)
				}
			}
			// A self-signed signer is untrusted, and that is the only failure.
			if got := r.FailureCodes(); !slices.Equal(got, []string{"signingCredential.untrusted"}) {
				t.Errorf("failures %v, want only signingCredential.untrusted", got)
			}
			if got, want := r.DigitalSourceTypes(), []string{"c2pa.created " + tt.source}; !slices.Equal(got, want) {
				t.Errorf("actions %v, want %v", got, want)
			}
			info := r.Manifests[r.ActiveManifest].SignatureInfo
			if info.Alg != "Es256" || info.CommonName != "Z Image test signer" {
				t.Errorf("signature info %+v, want Es256 by Z Image test signer", info)
			}
			store := manifestStore(t, out)
			for _, leak := range []string{"SECRET", "fox", "424242", "alice", "seed", "prompt"} {
				if bytes.Contains(bytes.ToLower(out), bytes.ToLower([]byte(leak))) {
					t.Errorf("the file holds %q", leak)
				}
			}
			if got := bytes.Contains(store, []byte(model)); got != tt.includeModel {
				t.Errorf("manifest names the model: %v, want %v", got, tt.includeModel)
			}
			if !bytes.Contains(store, []byte("Z Image")) || !bytes.Contains(store, []byte("1.2.3")) {
				t.Error("manifest does not name Z Image 1.2.3 as the software agent")
			}
		})
	}
}

// changePixels flips one byte in the first image-data chunk (IDAT, VP8 or
// VP8L) or the JPEG scan, keeping the container well-formed (PNG CRC
// fixed).
func changePixels(t *testing.T, data []byte) []byte {
	t.Helper()
	out := bytes.Clone(data)
	if provenance.Format(out) == provenance.PNG {
		off := bytes.Index(out, []byte("IDAT")) - 4
		n := int(binary.BigEndian.Uint32(out[off:]))
		out[off+8+n/2] ^= 0x55
		binary.BigEndian.PutUint32(out[off+8+n:], crc32.ChecksumIEEE(out[off+4:off+8+n]))
		return out
	}
	if provenance.Format(out) == provenance.JPEG {
		// A byte in the middle of the entropy-coded scan, after SOS.
		sos := bytes.LastIndex(out, []byte{0xFF, 0xDA})
		out[sos+(len(out)-sos)/2] ^= 0x01
		return out
	}
	for _, tag := range []string{"VP8 ", "VP8L"} {
		if i := bytes.Index(out, []byte(tag)); i > 0 {
			n := int(binary.LittleEndian.Uint32(out[i+4:]))
			out[i+8+n-3] ^= 0x55
			return out
		}
	}
	t.Fatal("no image data chunk")
	return nil
}

func TestCredentialsFailWhenPixelsChange(t *testing.T) {
	signer := testSigner(t)
	_, dirtyPNGFile := dirtyPNG(t)
	_, lossy := dirtyWebP(t, false)
	_, dirtyJPEGFile := dirtyJPEG(t)
	cr := provenance.Credentials{Signer: signer, Version: "1.2.3"}
	files := map[string][]byte{
		"changed.png":  changePixels(t, credentialed(t, cr, dirtyPNGFile, provenance.TrainedAlgorithmicMedia, "")),
		"changed.webp": changePixels(t, credentialed(t, cr, lossy, provenance.TrainedAlgorithmicMedia, "")),
		"changed.jpg":  changePixels(t, credentialed(t, cr, dirtyJPEGFile, provenance.TrainedAlgorithmicMedia, "")),
	}
	for name, r := range provenancetest.C2PAReadFiles(t, files) {
		t.Logf("reader verdict on %s: state %s, failures %v", name, r.ValidationState, r.FailureCodes())
		if !r.Failed("assertion.dataHash.mismatch") || r.ValidationState != "Invalid" {
			t.Errorf("%s: state %s, failures %v; want Invalid with assertion.dataHash.mismatch", name, r.ValidationState, r.FailureCodes())
		}
	}
}

func TestCredentialsWithoutSignerLeaveFileAlone(t *testing.T) {
	clean, _ := dirtyPNG(t)
	out, err := provenance.Credentials{}.Sign(clean, provenance.TrainedAlgorithmicMedia, "m")
	if err != nil || !bytes.Equal(out, clean) {
		t.Fatalf("Sign without signer changed the file (err %v)", err)
	}
	if strings.Contains(string(out), "caBX") {
		t.Fatal("caBX chunk without a signer")
	}
}

func TestCarriesSaysWhatTheFileHolds(t *testing.T) {
	signer := testSigner(t)
	clean, _ := dirtyPNG(t)
	marked, err := provenance.Marker{}.Mark(clean, provenance.AlgorithmicMedia)
	if err != nil {
		t.Fatal(err)
	}
	signed, err := provenance.Credentials{Signer: signer}.Sign(marked, provenance.AlgorithmicMedia, "")
	if err != nil {
		t.Fatal(err)
	}
	_, dirtyJPEGFile := dirtyJPEG(t)
	jpg := credentialed(t, provenance.Credentials{Signer: signer}, dirtyJPEGFile, provenance.TrainedAlgorithmicMedia, "")
	tests := []struct {
		name string
		data []byte
		want provenance.Carried
	}{
		{"jpeg marked and signed", jpg, provenance.Carried{SourceType: provenance.TrainedAlgorithmicMedia, Credentials: true, Signer: "Z Image test signer"}},
		{"plain", clean, provenance.Carried{}},
		{"marked", marked, provenance.Carried{SourceType: provenance.AlgorithmicMedia}},
		{"marked and signed", signed, provenance.Carried{SourceType: provenance.AlgorithmicMedia, Credentials: true, Signer: "Z Image test signer"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := provenance.Carries(tt.data); got != tt.want {
				t.Errorf("Carries = %+v, want %+v", got, tt.want)
			}
		})
	}
}
