package provenance

import (
	"encoding/binary"
	"fmt"
)

// VP8X flag bits (WebP container specification, "Extended file format").
const (
	vp8xAlpha = 0x10
	vp8xEXIF  = 0x08
	vp8xXMP   = 0x04
)

// webpKeep lists the chunks that make up the picture: everything but
// EXIF, XMP and unknown chunks, which may carry anything.
var webpKeep = map[string]bool{"VP8X": true, "VP8 ": true, "VP8L": true, "ALPH": true, "ICCP": true, "ANIM": true, "ANMF": true}

type riffChunk struct {
	fourCC  string
	payload []byte
}

// webpChunks parses a WebP file's chunks. Bytes past the RIFF size are
// ignored.
func webpChunks(data []byte) ([]riffChunk, error) {
	if len(data) < 12 || string(data[:4]) != "RIFF" || string(data[8:12]) != "WEBP" {
		return nil, ErrFormat
	}
	size := int64(binary.LittleEndian.Uint32(data[4:]))
	if size < 4 || size+8 > int64(len(data)) {
		return nil, fmt.Errorf("%w: WebP RIFF size runs past the end", ErrFormat)
	}
	data = data[:8+size]
	var out []riffChunk
	for off := 12; off < len(data); {
		if len(data)-off < 8 {
			return nil, fmt.Errorf("%w: WebP chunk header cut off at byte %d", ErrFormat, off)
		}
		n := int64(binary.LittleEndian.Uint32(data[off+4:]))
		if n > int64(len(data)-off-8) {
			return nil, fmt.Errorf("%w: WebP chunk at byte %d runs past the end", ErrFormat, off)
		}
		out = append(out, riffChunk{string(data[off : off+4]), data[off+8 : off+8+int(n)]})
		off += 8 + int(n) + int(n&1)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: WebP without chunks", ErrFormat)
	}
	return out, nil
}

// encodeWebP writes chunks into a RIFF container, padding odd payloads.
func encodeWebP(chunks []riffChunk) []byte {
	size := 4
	for _, c := range chunks {
		size += 8 + len(c.payload) + len(c.payload)&1
	}
	out := make([]byte, 0, 8+size)
	out = append(out, "RIFF"...)
	out = binary.LittleEndian.AppendUint32(out, uint32(size))
	out = append(out, "WEBP"...)
	for _, c := range chunks {
		out = append(out, c.fourCC...)
		out = binary.LittleEndian.AppendUint32(out, uint32(len(c.payload)))
		out = append(out, c.payload...)
		if len(c.payload)&1 == 1 {
			out = append(out, 0)
		}
	}
	return out
}

func stripWebP(data []byte) ([]byte, error) {
	chunks, err := webpChunks(data)
	if err != nil {
		return nil, err
	}
	switch chunks[0].fourCC {
	case "VP8 ", "VP8L":
		// The simple format is one image chunk and nothing else.
		return encodeWebP(chunks[:1]), nil
	case "VP8X":
		if len(chunks[0].payload) < 10 {
			return nil, fmt.Errorf("%w: WebP VP8X chunk too short", ErrFormat)
		}
	default:
		return nil, fmt.Errorf("%w: WebP starts with chunk %q", ErrFormat, chunks[0].fourCC)
	}
	kept := make([]riffChunk, 0, len(chunks))
	for _, c := range chunks {
		if webpKeep[c.fourCC] {
			kept = append(kept, c)
		}
	}
	x := append([]byte(nil), kept[0].payload...)
	x[0] &^= vp8xEXIF | vp8xXMP
	kept[0].payload = x
	return encodeWebP(kept), nil
}

// webpCanvas reads the picture size, and whether it has alpha, from a
// simple-format image chunk.
func webpCanvas(c riffChunk) (w, h int, alpha bool, err error) {
	p := c.payload
	switch c.fourCC {
	case "VP8 ":
		// Frame tag (3 bytes, key frame when bit 0 is clear), start code
		// 9d 01 2a, then 14-bit width and height with 2 scale bits each.
		if len(p) < 10 || p[0]&1 != 0 || p[3] != 0x9d || p[4] != 0x01 || p[5] != 0x2a {
			return 0, 0, false, fmt.Errorf("%w: VP8 key frame header missing", ErrFormat)
		}
		return int(binary.LittleEndian.Uint16(p[6:]) & 0x3fff), int(binary.LittleEndian.Uint16(p[8:]) & 0x3fff), false, nil
	case "VP8L":
		// Signature 0x2f, then 14 bits width-1, 14 bits height-1, 1 bit
		// alpha_is_used.
		if len(p) < 5 || p[0] != 0x2f {
			return 0, 0, false, fmt.Errorf("%w: VP8L header missing", ErrFormat)
		}
		bits := binary.LittleEndian.Uint32(p[1:])
		return int(bits&0x3fff) + 1, int(bits>>14&0x3fff) + 1, bits>>28&1 == 1, nil
	}
	return 0, 0, false, fmt.Errorf("%w: WebP image chunk %q", ErrFormat, c.fourCC)
}

// setWebPXMP adds an XMP chunk. A simple-format file (what libwebp writes
// for a still picture) is first turned into the extended format, whose
// VP8X header carries the canvas size and the flag that says XMP follows.
func setWebPXMP(data, packet []byte) ([]byte, error) {
	chunks, err := webpChunks(data)
	if err != nil {
		return nil, err
	}
	if chunks, err = extendedWebP(chunks); err != nil {
		return nil, err
	}
	chunks[0].payload[0] |= vp8xXMP
	return encodeWebP(append(chunks, riffChunk{"XMP ", packet})), nil
}

// extendedWebP returns chunks in the extended format: a copy of the VP8X
// header first (made from the image chunk's size for a simple-format
// file), then the rest. Only the extended format may hold chunks besides
// the picture.
func extendedWebP(chunks []riffChunk) ([]riffChunk, error) {
	var x []byte
	switch chunks[0].fourCC {
	case "VP8X":
		if len(chunks[0].payload) < 10 {
			return nil, fmt.Errorf("%w: WebP VP8X chunk too short", ErrFormat)
		}
		x = append([]byte(nil), chunks[0].payload...)
		chunks = chunks[1:]
	default:
		w, h, alpha, err := webpCanvas(chunks[0])
		if err != nil {
			return nil, err
		}
		if w < 1 || h < 1 {
			return nil, fmt.Errorf("%w: WebP of %d×%d", ErrFormat, w, h)
		}
		x = make([]byte, 10)
		if alpha {
			x[0] |= vp8xAlpha
		}
		x[4], x[5], x[6] = byte(w-1), byte((w-1)>>8), byte((w-1)>>16)
		x[7], x[8], x[9] = byte(h-1), byte((h-1)>>8), byte((h-1)>>16)
		chunks = chunks[:1]
	}
	out := make([]riffChunk, 0, len(chunks)+2)
	out = append(out, riffChunk{"VP8X", x})
	return append(out, chunks...), nil
}
