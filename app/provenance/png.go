package provenance

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"strings"
)

var pngSignature = []byte("\x89PNG\r\n\x1a\n")

// xmpKeyword is the iTXt keyword of an XMP packet in PNG (XMP
// specification part 3).
const xmpKeyword = "XML:com.adobe.xmp"

// pngKeep lists the ancillary chunks a picture needs to look right:
// transparency, colour space, bit depths, background, pixel density, HDR
// and animation. Every other ancillary chunk goes — text (tEXt, zTXt,
// iTXt), eXIf, tIME, and private ones, which may carry anything. Critical
// chunks (IHDR, PLTE, IDAT, IEND, and any unknown one a decoder must
// understand) are always kept.
var pngKeep = map[string]bool{
	"tRNS": true, "gAMA": true, "cHRM": true, "sRGB": true, "iCCP": true, "cICP": true, "mDCV": true, "cLLI": true,
	"sBIT": true, "bKGD": true, "hIST": true, "sPLT": true, "pHYs": true,
	"acTL": true, "fcTL": true, "fdAT": true,
}

// pngChunks calls fn with each chunk's type and its whole bytes (length,
// type, data, CRC), up to and including IEND.
func pngChunks(png []byte, fn func(typ string, chunk []byte)) error {
	if len(png) < len(pngSignature) || string(png[:8]) != string(pngSignature) {
		return ErrFormat
	}
	for off := len(pngSignature); ; {
		if len(png)-off < 12 {
			return fmt.Errorf("%w: PNG ends without IEND", ErrFormat)
		}
		n := binary.BigEndian.Uint32(png[off:])
		if n > 1<<31-1 || uint64(len(png)-off-12) < uint64(n) {
			return fmt.Errorf("%w: PNG chunk at byte %d runs past the end", ErrFormat, off)
		}
		end := off + 12 + int(n)
		typ := string(png[off+4 : off+8])
		fn(typ, png[off:end])
		if typ == "IEND" {
			return nil
		}
		off = end
	}
}

func stripPNG(png []byte) ([]byte, error) {
	out := make([]byte, 0, len(png))
	out = append(out, pngSignature...)
	first, ihdr := true, false
	err := pngChunks(png, func(typ string, chunk []byte) {
		if first {
			first, ihdr = false, typ == "IHDR"
		}
		critical := typ[0]&0x20 == 0
		if critical || pngKeep[typ] {
			out = append(out, chunk...)
		}
	})
	if err != nil {
		return nil, err
	}
	if !ihdr {
		return nil, fmt.Errorf("%w: PNG does not start with IHDR", ErrFormat)
	}
	return out, nil
}

// pngChunk encodes one chunk with its CRC.
func pngChunk(typ string, data []byte) []byte {
	c := make([]byte, 0, 12+len(data))
	c = binary.BigEndian.AppendUint32(c, uint32(len(data)))
	c = append(c, typ...)
	c = append(c, data...)
	return binary.BigEndian.AppendUint32(c, crc32.ChecksumIEEE(c[4:]))
}

// iTXtData is an uncompressed iTXt chunk's data: keyword, NUL,
// compression flag 0, method 0, empty language tag and translated keyword
// (each NUL-terminated), then the UTF-8 text.
func iTXtData(keyword string, text []byte) []byte {
	d := make([]byte, 0, len(keyword)+5+len(text))
	d = append(d, keyword...)
	d = append(d, 0, 0, 0, 0, 0)
	return append(d, text...)
}

// insertPNGChunk returns png with a chunk right after IHDR, where readers
// that stop at the first IDAT still find it.
func insertPNGChunk(png []byte, typ string, data []byte) ([]byte, error) {
	const ihdrEnd = 8 + 4 + 4 + 13 + 4
	if len(png) < ihdrEnd || string(png[:8]) != string(pngSignature) || string(png[12:16]) != "IHDR" || binary.BigEndian.Uint32(png[8:12]) != 13 {
		return nil, fmt.Errorf("%w: not a PNG with a standard IHDR chunk", ErrFormat)
	}
	chunk := pngChunk(typ, data)
	out := make([]byte, 0, len(png)+len(chunk))
	out = append(out, png[:ihdrEnd]...)
	out = append(out, chunk...)
	return append(out, png[ihdrEnd:]...), nil
}

// InsertPNGText returns png with one text chunk keyword=text after IHDR.
// Text that Latin-1 can carry goes in tEXt (what most readers look at);
// anything else in an uncompressed iTXt, which is UTF-8.
func InsertPNGText(png []byte, keyword, text string) ([]byte, error) {
	text = strings.ToValidUTF8(strings.ReplaceAll(text, "\x00", " "), "\uFFFD")
	latin1 := make([]byte, 0, len(text))
	for _, r := range text {
		if r > 0xFF {
			return insertPNGChunk(png, "iTXt", iTXtData(keyword, []byte(text)))
		}
		latin1 = append(latin1, byte(r))
	}
	return insertPNGChunk(png, "tEXt", append(append([]byte(keyword), 0), latin1...))
}
