package backendfake

import (
	"bytes"
	"encoding/binary"
	"image"
	"image/jpeg"
	"image/png"
	"unicode/utf16"

	"github.com/chai2010/webp"
)

// a1111Encode is modules/api/api.py encode_pil_to_base64 (before the
// base64): PNG with the infotext as a "parameters" text chunk; JPEG or
// WebP (quality opts.jpeg_quality, 80) with an EXIF block that piexif
// makes of {"Exif": {UserComment: UserComment.dump(text, "unicode")}}.
func a1111Encode(format string, img *image.NRGBA, infotext string) []byte {
	var buf bytes.Buffer
	switch format {
	case "jpg", "jpeg":
		_ = jpeg.Encode(&buf, img, &jpeg.Options{Quality: 80})
		exif := append([]byte("Exif\x00\x00"), a1111EXIF(infotext)...)
		seg := []byte{0xFF, 0xE1, byte((len(exif) + 2) >> 8), byte(len(exif) + 2)}
		out := append([]byte{0xFF, 0xD8}, append(seg, exif...)...)
		return append(out, buf.Bytes()[2:]...)
	case "webp":
		// Pillow writes the extended format: VP8X with the EXIF flag, the
		// VP8 bitstream, then the EXIF chunk (without "Exif\0\0").
		simple, _ := webp.EncodeRGBA(img, 80)
		w, h := img.Rect.Dx()-1, img.Rect.Dy()-1
		x := []byte{0x08, 0, 0, 0, byte(w), byte(w >> 8), byte(w >> 16), byte(h), byte(h >> 8), byte(h >> 16)}
		body := append([]byte("WEBP"), riffChunk("VP8X", x)...)
		body = append(body, simple[12:]...)
		body = append(body, riffChunk("EXIF", a1111EXIF(infotext))...)
		return append(append([]byte("RIFF"), binary.LittleEndian.AppendUint32(nil, uint32(len(body)))...), body...)
	}
	_ = (&png.Encoder{CompressionLevel: png.BestSpeed}).Encode(&buf, img)
	return pngWithText(buf.Bytes(), [2]string{"parameters", infotext})
}

// a1111EXIF is the TIFF structure piexif.dump writes (big-endian): IFD0
// with only the Exif IFD pointer, and the Exif IFD with UserComment, whose
// value is "UNICODE\0" and the text in UTF-16 big-endian.
func a1111EXIF(text string) []byte {
	comment := []byte("UNICODE\x00")
	for _, u := range utf16.Encode([]rune(text)) {
		comment = binary.BigEndian.AppendUint16(comment, u)
	}
	const ifd0, exifIFD, data = 8, 8 + 2 + 12 + 4, 8 + 2 + 12 + 4 + 2 + 12 + 4
	t := []byte("MM\x00\x2a")
	t = binary.BigEndian.AppendUint32(t, ifd0)
	t = binary.BigEndian.AppendUint16(t, 1)
	t = append(t, 0x87, 0x69, 0, 4) // ExifIFD pointer, LONG
	t = binary.BigEndian.AppendUint32(t, 1)
	t = binary.BigEndian.AppendUint32(t, exifIFD)
	t = binary.BigEndian.AppendUint32(t, 0)
	t = binary.BigEndian.AppendUint16(t, 1)
	t = append(t, 0x92, 0x86, 0, 7) // UserComment, UNDEFINED
	t = binary.BigEndian.AppendUint32(t, uint32(len(comment)))
	t = binary.BigEndian.AppendUint32(t, data)
	t = binary.BigEndian.AppendUint32(t, 0)
	return append(t, comment...)
}

func riffChunk(fourCC string, data []byte) []byte {
	c := append([]byte(fourCC), binary.LittleEndian.AppendUint32(nil, uint32(len(data)))...)
	c = append(c, data...)
	if len(data)%2 == 1 {
		c = append(c, 0)
	}
	return c
}
