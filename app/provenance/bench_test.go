package provenance_test

import (
	"bytes"
	"image"
	"image/png"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/chai2010/webp"

	"zimage/app/provenance"
)

// What stripping, marking and signing add to storing one 1024² image, as the
// backend returns it (a noisy PNG of ~3 MB with ComfyUI's prompt and
// workflow chunks) and as its WebP copy (q90):
//
//	go test ./app/provenance -run '^$' -bench . -benchtime 20x
//
// bytes-added is the marked file's size minus the stripped one's.
func BenchmarkProvenance1024(b *testing.B) {
	m := image.NewNRGBA(image.Rect(0, 0, 1024, 1024))
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range m.Pix {
		m.Pix[i] = uint8(rng.IntN(256))
		if i%4 == 3 {
			m.Pix[i] = 255
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, m); err != nil {
		b.Fatal(err)
	}
	graph := `{"27": {"class_type": "CLIPTextEncode", "inputs": {"text": "` + strings.Repeat("a lighthouse at dusk, ", 20) + `"}}}`
	dirty, err := provenance.InsertPNGText(buf.Bytes(), "prompt", graph)
	if err != nil {
		b.Fatal(err)
	}
	if dirty, err = provenance.InsertPNGText(dirty, "workflow", strings.Repeat(graph, 10)); err != nil {
		b.Fatal(err)
	}
	clean, err := provenance.Strip(dirty)
	if err != nil {
		b.Fatal(err)
	}
	lossy, err := webp.EncodeRGBA(m, 90)
	if err != nil {
		b.Fatal(err)
	}
	var marker provenance.Marker
	run := func(name string, in []byte, f func([]byte) ([]byte, error)) {
		b.Run(name, func(b *testing.B) {
			var out []byte
			b.SetBytes(int64(len(in)))
			for b.Loop() {
				if out, err = f(in); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(out)-len(in)), "bytes-added")
		})
	}
	mark := func(data []byte) ([]byte, error) { return marker.Mark(data, provenance.TrainedAlgorithmicMedia) }
	// copy is the floor: one allocation and copy of the file.
	run("copy", dirty, func(data []byte) ([]byte, error) { return append([]byte(nil), data...), nil })
	run("strip png", dirty, provenance.Strip)
	run("mark png", clean, mark)
	run("mark webp", lossy, mark)
	// The signature: Content Credentials over the marked file (hashing the
	// whole file once, one ES256 signature, a copy to insert the chunk).
	signer := testSigner(b)
	creds := provenance.Credentials{Signer: signer, Version: "1.2.3"}
	sign := func(data []byte) ([]byte, error) { return creds.Sign(data, provenance.TrainedAlgorithmicMedia, "") }
	markedPNG, err := mark(clean)
	if err != nil {
		b.Fatal(err)
	}
	markedWebP, err := mark(lossy)
	if err != nil {
		b.Fatal(err)
	}
	run("sign png", markedPNG, sign)
	run("sign webp", markedWebP, sign)
	run("strip+mark png", dirty, func(data []byte) ([]byte, error) {
		s, err := provenance.Strip(data)
		if err != nil {
			return nil, err
		}
		return mark(s)
	})
}
