package media

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"image"
	"image/jpeg"
	"testing"

	"zimage/app/backend"
	"zimage/app/provenance"
)

const backendSecret = "SECRET backend metadata"

func riffChunk(typ string, data []byte) []byte {
	c := append([]byte(typ), binary.LittleEndian.AppendUint32(nil, uint32(len(data)))...)
	c = append(c, data...)
	if len(data)%2 == 1 {
		c = append(c, 0)
	}
	return c
}

// dirtyWebPOriginal is a WebP as A1111 returns it with samples_format
// webp: extended format, the infotext in EXIF, plus XMP.
func dirtyWebPOriginal(t *testing.T, w, h int) []byte {
	m, err := decode(testPNG(t, w, h, 3))
	if err != nil {
		t.Fatal(err)
	}
	simple, err := encodeWebP(m, 80)
	if err != nil {
		t.Fatal(err)
	}
	x := []byte{0x08 | 0x04, 0, 0, 0, byte(w - 1), byte((w - 1) >> 8), 0, byte(h - 1), byte((h - 1) >> 8), 0}
	body := append([]byte("WEBP"), riffChunk("VP8X", x)...)
	body = append(body, simple[12:]...) // the VP8 chunk
	body = append(body, riffChunk("EXIF", []byte("MM\x00*"+backendSecret))...)
	body = append(body, riffChunk("XMP ", []byte("<x>"+backendSecret+"</x>"))...)
	return append(append([]byte("RIFF"), binary.LittleEndian.AppendUint32(nil, uint32(len(body)))...), body...)
}

// dirtyJPEGOriginal is a JPEG with the infotext in EXIF, as A1111 writes
// with samples_format jpg.
func dirtyJPEGOriginal(t *testing.T, w, h int) []byte {
	m, err := decode(testPNG(t, w, h, 4))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, m, nil); err != nil {
		t.Fatal(err)
	}
	exif := "Exif\x00\x00MM\x00*UNICODE\x00" + backendSecret
	seg := append([]byte{0xFF, 0xE1, byte((len(exif) + 2) >> 8), byte(len(exif) + 2)}, exif...)
	return append(append([]byte{0xFF, 0xD8}, seg...), buf.Bytes()[2:]...)
}

// TestSaveStripsAndMarksEveryFile saves originals in each format a
// backend may return, with the backend's own metadata, and checks the
// original, the WebP copy and the thumbnail: no backend metadata, and
// exactly one mark with the right source type (none with marks off).
func TestSaveStripsAndMarksEveryFile(t *testing.T) {
	ctx := context.Background()
	pngDirty, err := provenance.InsertPNGText(testPNG(t, 96, 64, 1), "prompt", backendSecret)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		marks  provenance.Marker
		data   []byte
		ct     string
		model  string
		source string // "" for no marks
	}{
		{name: "png from a model", data: pngDirty, ct: "image/png", model: "z-image-turbo", source: provenance.TrainedAlgorithmicMedia},
		{name: "png from the builtin renderer", data: pngDirty, ct: "image/png", model: backend.BuiltinModel, source: provenance.AlgorithmicMedia},
		{name: "webp with exif and xmp", data: dirtyWebPOriginal(t, 96, 64), ct: "image/webp", model: "z-image-turbo", source: provenance.TrainedAlgorithmicMedia},
		{name: "jpeg with exif", data: dirtyJPEGOriginal(t, 96, 64), ct: "image/jpeg", model: "z-image-turbo", source: provenance.TrainedAlgorithmicMedia},
		{name: "marks off", marks: provenance.Marker{Off: true}, data: pngDirty, ct: "image/png", model: "z-image-turbo"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newTestEnv(t, Options{Marks: tt.marks})
			e.store.Start(ctx)
			g := testGeneration(fmt.Sprintf("gen%d", i), "alice", "a prompt")
			res := testResult(tt.data)
			res.Model = tt.model
			ids, err := e.store.Save(ctx, g, res, SaveOptions{})
			if err != nil {
				t.Fatal(err)
			}
			e.waitDerivatives(t, "alice", ids[0])
			files := map[string][]byte{}
			for _, v := range []struct{ name, format, size string }{{"original", "png", "full"}, {"webp", "webp", "full"}, {"thumb", "webp", "thumb"}} {
				rc, ct, _, err := e.store.Open(ctx, "alice", ids[0], v.format, v.size)
				if err != nil {
					t.Fatal(err)
				}
				data := readAll(t, rc)
				files[v.name] = data
				if v.name == "original" && ct != tt.ct {
					t.Errorf("original served as %s, want %s", ct, tt.ct)
				}
				if bytes.Contains(data, []byte("SECRET")) {
					t.Errorf("%s carries the backend's metadata", v.name)
				}
				if _, _, err := image.Decode(bytes.NewReader(data)); err != nil {
					t.Errorf("%s does not decode: %v", v.name, err)
				}
				marks := bytes.Count(data, []byte("Iptc4xmpExt:DigitalSourceType="))
				if tt.source == "" {
					if marks != 0 {
						t.Errorf("%s has %d marks with marks off", v.name, marks)
					}
					continue
				}
				if marks != 1 || !bytes.Contains(data, []byte(`Iptc4xmpExt:DigitalSourceType="`+tt.source+`"`)) {
					t.Errorf("%s: %d marks, want one saying %s", v.name, marks, tt.source)
				}
			}
			if tt.ct == "image/webp" && !bytes.Equal(files["webp"], files["original"]) {
				t.Error("a WebP original is its own WebP copy, as stored")
			}
			if len(files["thumb"]) > ThumbMaxBytes {
				t.Errorf("marked thumbnail is %d bytes, over the %d cap", len(files["thumb"]), ThumbMaxBytes)
			}
		})
	}
}
