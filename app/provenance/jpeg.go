package provenance

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// xmpJPEGHeader starts an APP1 segment that holds XMP (XMP specification
// part 3).
const xmpJPEGHeader = "http://ns.adobe.com/xap/1.0/\x00"

// jpegKeep says whether a marker segment before the first scan stays:
// frame and table segments, JFIF (APP0), the ICC profile (APP2
// "ICC_PROFILE") and Adobe's colour transform (APP14), which decoders
// need. EXIF and XMP (APP1), Photoshop/IPTC (APP13), comments (COM) and
// every other application segment go: A1111 writes its parameters into
// EXIF's UserComment.
func jpegKeep(marker byte, payload []byte) bool {
	switch {
	case marker == 0xE0: // APP0 JFIF/JFXX
		return true
	case marker == 0xE2:
		return bytes.HasPrefix(payload, []byte("ICC_PROFILE\x00"))
	case marker == 0xEE: // APP14 Adobe
		return true
	case marker >= 0xE1 && marker <= 0xEF, marker == 0xFE:
		return false
	}
	return true
}

// jpegSegments walks the segments before the first scan (SOS) and calls fn
// with each marker, its payload and its whole bytes; it returns the offset
// of the SOS marker.
func jpegSegments(jpg []byte, fn func(marker byte, payload, seg []byte)) (int, error) {
	off := 2
	for {
		for off < len(jpg) && jpg[off] == 0xFF && off+1 < len(jpg) && jpg[off+1] == 0xFF {
			off++ // fill bytes
		}
		if len(jpg)-off < 4 || jpg[off] != 0xFF {
			return 0, fmt.Errorf("%w: JPEG ends before its first scan", ErrFormat)
		}
		marker := jpg[off+1]
		if marker == 0xDA {
			return off, nil
		}
		if marker == 0x01 || (marker >= 0xD0 && marker <= 0xD8) {
			return 0, fmt.Errorf("%w: JPEG marker %#x out of place", ErrFormat, marker)
		}
		n := int(binary.BigEndian.Uint16(jpg[off+2:]))
		if n < 2 || off+2+n > len(jpg) {
			return 0, fmt.Errorf("%w: JPEG segment at byte %d runs past the end", ErrFormat, off)
		}
		fn(marker, jpg[off+4:off+2+n], jpg[off:off+2+n])
		off += 2 + n
	}
}

// stripJPEG keeps the segments jpegKeep allows, then the scans verbatim up
// to the last EOI. Segments between the scans of a progressive JPEG are
// copied as they are: writers put metadata before the first scan.
func stripJPEG(jpg []byte) ([]byte, error) {
	out := make([]byte, 0, len(jpg))
	out = append(out, 0xFF, 0xD8)
	sos, err := jpegSegments(jpg, func(marker byte, payload, seg []byte) {
		if jpegKeep(marker, payload) {
			out = append(out, seg...)
		}
	})
	if err != nil {
		return nil, err
	}
	end := bytes.LastIndex(jpg[sos:], []byte{0xFF, 0xD9})
	if end < 0 {
		return nil, fmt.Errorf("%w: JPEG without an end marker", ErrFormat)
	}
	return append(out, jpg[sos:sos+end+2]...), nil
}

// insertJPEGXMP puts an APP1 XMP segment after SOI and any APP0, which
// JFIF wants first.
func insertJPEGXMP(jpg []byte, packet []byte) ([]byte, error) {
	n := 2 + len(xmpJPEGHeader) + len(packet)
	if n > 0xFFFF {
		return nil, fmt.Errorf("provenance: XMP packet of %d bytes does not fit a JPEG segment", len(packet))
	}
	at, err := jpegAfterAPP0(jpg)
	if err != nil {
		return nil, err
	}
	seg := []byte{0xFF, 0xE1, byte(n >> 8), byte(n)}
	seg = append(seg, xmpJPEGHeader...)
	seg = append(seg, packet...)
	out := make([]byte, 0, len(jpg)+len(seg))
	out = append(out, jpg[:at]...)
	out = append(out, seg...)
	return append(out, jpg[at:]...), nil
}

// jpegAfterAPP0 is the offset right after SOI and the leading APP0
// segments, which JFIF wants first. Stripped JPEGs have no fill bytes, so
// those segments end at 2 + their lengths.
func jpegAfterAPP0(jpg []byte) (int, error) {
	at, leading := 2, true
	if _, err := jpegSegments(jpg, func(marker byte, _, seg []byte) {
		leading = leading && marker == 0xE0
		if leading {
			at += len(seg)
		}
	}); err != nil {
		return 0, err
	}
	return at, nil
}
