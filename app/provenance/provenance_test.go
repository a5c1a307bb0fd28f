package provenance_test

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"slices"
	"strings"
	"testing"

	"github.com/chai2010/webp"

	"zimage/app/provenance"
	"zimage/app/provenance/provenancetest"
)

const secret = "SECRET a fox, seed 424242, user alice"

func picture(w, h int, alpha bool) *image.NRGBA {
	m := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			a := uint8(255)
			if alpha {
				a = uint8(x * 255 / w)
			}
			m.SetNRGBA(x, y, color.NRGBA{uint8(x * 4), uint8(y * 5), uint8((x ^ y) * 3), a})
		}
	}
	return m
}

func pngChunk(typ string, data []byte) []byte {
	c := binary.BigEndian.AppendUint32(nil, uint32(len(data)))
	c = append(append(c, typ...), data...)
	return binary.BigEndian.AppendUint32(c, crc32.ChecksumIEEE(c[4:]))
}

// dirtyPNG is a PNG as ComfyUI's SaveImage and A1111 write it, with every
// other kind of metadata chunk, a colour chunk to keep, and bytes after
// IEND.
func dirtyPNG(t *testing.T) (clean, dirty []byte) {
	var buf bytes.Buffer
	if err := png.Encode(&buf, picture(64, 48, false)); err != nil {
		t.Fatal(err)
	}
	clean = buf.Bytes()
	var extra []byte
	extra = append(extra, pngChunk("gAMA", []byte{0, 0, 0xB1, 0x8F})...)
	extra = append(extra, pngChunk("tEXt", []byte("prompt\x00{\"6\":{\"inputs\":{\"text\":\""+secret+"\"}}}"))...)
	extra = append(extra, pngChunk("tEXt", []byte("workflow\x00{\"nodes\":[\""+secret+"\"]}"))...)
	extra = append(extra, pngChunk("tEXt", []byte("parameters\x00"+secret+"\nSteps: 8, Seed: 424242"))...)
	extra = append(extra, pngChunk("zTXt", []byte("Comment\x00\x00"+secret))...)
	extra = append(extra, pngChunk("iTXt", []byte("XML:com.adobe.xmp\x00\x00\x00\x00\x00<x>"+secret+"</x>"))...)
	extra = append(extra, pngChunk("eXIf", []byte("MM\x00*"+secret))...)
	extra = append(extra, pngChunk("tIME", []byte{0x07, 0xEA, 12, 6, 16, 52, 0})...)
	extra = append(extra, pngChunk("prVt", []byte(secret))...)
	const ihdrEnd = 33
	dirty = append(append(append([]byte{}, clean[:ihdrEnd]...), extra...), clean[ihdrEnd:]...)
	return clean, append(dirty, secret...)
}

func jpegSegment(marker byte, payload string) []byte {
	n := len(payload) + 2
	return append([]byte{0xFF, marker, byte(n >> 8), byte(n)}, payload...)
}

// dirtyJPEG is a JPEG as A1111 writes it when samples_format is jpg (its
// parameters in EXIF's UserComment), with XMP, IPTC, a comment, an ICC
// profile to keep, and bytes after EOI.
func dirtyJPEG(t *testing.T) (clean, dirty []byte) {
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, picture(64, 48, false), &jpeg.Options{Quality: 90}); err != nil {
		t.Fatal(err)
	}
	clean = buf.Bytes()
	var extra []byte
	extra = append(extra, jpegSegment(0xE0, "JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00")...)
	extra = append(extra, jpegSegment(0xE1, "Exif\x00\x00MM\x00*UNICODE\x00"+secret)...)
	extra = append(extra, jpegSegment(0xE1, "http://ns.adobe.com/xap/1.0/\x00<x>"+secret+"</x>")...)
	extra = append(extra, jpegSegment(0xED, "Photoshop 3.0\x00"+secret)...)
	extra = append(extra, jpegSegment(0xFE, secret)...)
	extra = append(extra, jpegSegment(0xE2, "ICC_PROFILE\x00\x01\x01fake")...)
	dirty = append(append(append([]byte{}, clean[:2]...), extra...), clean[2:]...)
	return clean, append(dirty, secret...)
}

func riff(chunks ...provenancetest.Chunk) []byte {
	var body []byte
	for _, c := range chunks {
		body = append(body, c.Type...)
		body = binary.LittleEndian.AppendUint32(body, uint32(len(c.Data)))
		body = append(body, c.Data...)
		if len(c.Data)%2 == 1 {
			body = append(body, 0)
		}
	}
	out := append([]byte("RIFF"), binary.LittleEndian.AppendUint32(nil, uint32(4+len(body)))...)
	return append(append(out, "WEBP"...), body...)
}

// dirtyWebP is an extended WebP with EXIF and XMP (as A1111 writes with
// samples_format webp), an unknown chunk, and bytes after the RIFF.
func dirtyWebP(t *testing.T, lossless bool) (clean, dirty []byte) {
	var err error
	if lossless {
		clean, err = webp.EncodeLosslessRGBA(picture(64, 48, true))
	} else {
		clean, err = webp.EncodeRGB(picture(64, 48, false), 90)
	}
	if err != nil {
		t.Fatal(err)
	}
	chunks, _ := provenancetest.Chunks(t, clean)
	x := []byte{0x08 | 0x04, 0, 0, 0, 63, 0, 0, 47, 0, 0}
	if lossless {
		x[0] |= 0x10
	}
	dirty = riff(provenancetest.Chunk{Type: "VP8X", Data: x}, chunks[0],
		provenancetest.Chunk{Type: "EXIF", Data: []byte("MM\x00*" + secret)},
		provenancetest.Chunk{Type: "XMP ", Data: []byte("<x>" + secret + "</x>")},
		provenancetest.Chunk{Type: "prVt", Data: []byte(secret)})
	return clean, append(dirty, secret...)
}

// imageChunks are the chunks that hold pixels, which must come through
// byte for byte.
func imageChunks(t *testing.T, data []byte) [][]byte {
	var out [][]byte
	chunks, _ := provenancetest.Chunks(t, data)
	for _, c := range chunks {
		switch c.Type {
		case "IDAT", "VP8 ", "VP8L", "scan", "FFC0", "FFC4", "FFDB", "FFDA":
			out = append(out, c.Data)
		}
	}
	return out
}

func TestStripRemovesEveryMetadataChunkAndKeepsPixels(t *testing.T) {
	pngClean, pngDirty := dirtyPNG(t)
	jpgClean, jpgDirty := dirtyJPEG(t)
	vp8Clean, vp8Dirty := dirtyWebP(t, false)
	vp8lClean, vp8lDirty := dirtyWebP(t, true)
	tests := []struct {
		name         string
		clean, dirty []byte
		want         []string // chunk types after Strip, in order
	}{
		{name: "png", clean: pngClean, dirty: pngDirty, want: []string{"IHDR", "gAMA", "IDAT", "IEND"}},
		{name: "jpeg", clean: jpgClean, dirty: jpgDirty, want: []string{"FFE0", "FFE2", "FFDB", "FFC0", "FFC4", "FFDA", "scan"}},
		{name: "webp lossy", clean: vp8Clean, dirty: vp8Dirty, want: []string{"VP8X", "VP8 "}},
		{name: "webp lossless", clean: vp8lClean, dirty: vp8lDirty, want: []string{"VP8X", "VP8L"}},
		{name: "webp simple with trailing bytes", clean: vp8Clean, dirty: append(append([]byte{}, vp8Clean...), secret...), want: []string{"VP8 "}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := provenance.Strip(tt.dirty)
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Contains(got, []byte("SECRET")) {
				t.Errorf("stripped file still holds the secret")
			}
			chunks, trailing := provenancetest.Chunks(t, got)
			var types []string
			for _, c := range chunks {
				types = append(types, c.Type)
			}
			if !slices.Equal(types, tt.want) || len(trailing) != 0 {
				t.Errorf("chunks %q with %d trailing bytes, want %q and none", types, len(trailing), tt.want)
			}
			if !slices.EqualFunc(imageChunks(t, got), imageChunks(t, tt.clean), bytes.Equal) {
				t.Errorf("pixel data changed")
			}
			if !samePixels(t, got, tt.clean) {
				t.Errorf("decoded picture differs")
			}
			if strings.HasPrefix(tt.name, "webp") && types[0] == "VP8X" && chunks[0].Data[0]&(0x08|0x04) != 0 {
				t.Errorf("VP8X still flags EXIF or XMP: %#x", chunks[0].Data[0])
			}
		})
	}
}

func samePixels(t *testing.T, a, b []byte) bool {
	t.Helper()
	ma, _, err := image.Decode(bytes.NewReader(a))
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	mb, _, err := image.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	if ma.Bounds() != mb.Bounds() {
		return false
	}
	for y := ma.Bounds().Min.Y; y < ma.Bounds().Max.Y; y++ {
		for x := ma.Bounds().Min.X; x < ma.Bounds().Max.X; x++ {
			if ma.At(x, y) != mb.At(x, y) {
				return false
			}
		}
	}
	return true
}

func TestMarkIsReadByExiftool(t *testing.T) {
	pngClean, _ := dirtyPNG(t)
	jpgClean, _ := dirtyJPEG(t)
	vp8Clean, _ := dirtyWebP(t, false)
	vp8lClean, _ := dirtyWebP(t, true)
	_, vp8xDirty := dirtyWebP(t, false)
	vp8x, err := provenance.Strip(vp8xDirty)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		data   []byte
		source string
		ftype  string
	}{
		{name: "png model output", data: pngClean, source: provenance.TrainedAlgorithmicMedia, ftype: "PNG"},
		{name: "png builtin renderer", data: pngClean, source: provenance.AlgorithmicMedia, ftype: "PNG"},
		{name: "jpeg", data: jpgClean, source: provenance.TrainedAlgorithmicMedia, ftype: "JPEG"},
		{name: "webp simple lossy", data: vp8Clean, source: provenance.TrainedAlgorithmicMedia, ftype: "Extended WEBP"},
		{name: "webp simple lossless with alpha", data: vp8lClean, source: provenance.AlgorithmicMedia, ftype: "Extended WEBP"},
		{name: "webp extended", data: vp8x, source: provenance.TrainedAlgorithmicMedia, ftype: "Extended WEBP"},
	}
	m := provenance.Marker{Version: "v1.2.3 <test>"}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := m.Mark(tt.data, tt.source)
			if err != nil {
				t.Fatal(err)
			}
			tags := provenancetest.Exiftool(t, got)
			want := map[string]any{
				"XMP-iptcExt:DigitalSourceType": tt.source,
				"XMP-xmp:CreatorTool":           "Z Image v1.2.3 <test>",
				"File:FileType":                 tt.ftype,
			}
			for k, v := range want {
				if tags[k] != v {
					t.Errorf("exiftool %s = %v, want %v", k, tags[k], v)
				}
			}
			for k, v := range tags {
				if strings.HasSuffix(k, ":Warning") || strings.HasSuffix(k, ":Error") {
					t.Errorf("exiftool %s: %v", k, v)
				}
			}
			if !samePixels(t, got, tt.data) {
				t.Errorf("marking changed the picture")
			}
			if tt.ftype == "Extended WEBP" {
				chunks, _ := provenancetest.Chunks(t, got)
				x := chunks[0].Data
				w := int(x[4]) | int(x[5])<<8 | int(x[6])<<16 + 1
				h := int(x[7]) | int(x[8])<<8 | int(x[9])<<16 + 1
				if chunks[0].Type != "VP8X" || x[0]&0x04 == 0 || w != 64 || h != 48 || chunks[len(chunks)-1].Type != "XMP " {
					t.Errorf("WebP chunks %v: want VP8X with the XMP flag and canvas 64×48 (got %#x, %d×%d), XMP last", chunks, x[0], w, h)
				}
				if alpha := x[0]&0x10 != 0; alpha != strings.Contains(tt.name, "alpha") {
					t.Errorf("VP8X alpha flag %v", alpha)
				}
			}
		})
	}
}

func TestMarkOffLeavesFileAlone(t *testing.T) {
	pngClean, _ := dirtyPNG(t)
	got, err := provenance.Marker{Off: true}.Mark(pngClean, provenance.TrainedAlgorithmicMedia)
	if err != nil || !bytes.Equal(got, pngClean) {
		t.Fatalf("Mark with Off changed the file (err %v)", err)
	}
}

func TestStripRefusesBrokenFiles(t *testing.T) {
	pngClean, _ := dirtyPNG(t)
	tests := []struct {
		name string
		data []byte
	}{
		{name: "empty", data: nil},
		{name: "gif", data: []byte("GIF89a....")},
		{name: "png cut in a chunk", data: pngClean[:40]},
		{name: "png without IEND", data: pngClean[:len(pngClean)-12]},
		{name: "webp riff size too large", data: []byte("RIFF\xff\xff\x00\x00WEBPVP8 ")},
		{name: "jpeg without scan", data: []byte{0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x04, 0, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := provenance.Strip(tt.data); err == nil {
				t.Fatal("Strip accepted a broken file")
			}
		})
	}
}
