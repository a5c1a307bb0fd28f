package c2pa

import (
	"encoding/binary"
	"encoding/hex"
)

// JUMBF (ISO/IEC 19566-5) box types and the C2PA description UUIDs
// (C2PA 2.1, "JUMBF boxes"); the UUIDs are the four-letter type followed
// by the ISO suffix 0011-0010-8000-00AA00389B71.
var (
	uuidManifestStore  = c2paUUID("c2pa")
	uuidManifest       = c2paUUID("c2ma")
	uuidAssertionStore = c2paUUID("c2as")
	uuidClaim          = c2paUUID("c2cl")
	uuidSignature      = c2paUUID("c2cs")
	uuidCBOR           = c2paUUID("cbor")
)

func c2paUUID(fourCC string) []byte {
	suffix, _ := hex.DecodeString("00110010800000AA00389B71")
	return append([]byte(fourCC), suffix...)
}

// box is one ISO BMFF box: 4-byte big-endian size (header included) and
// 4-byte type.
func box(typ string, payload []byte) []byte {
	b := make([]byte, 0, 8+len(payload))
	b = binary.BigEndian.AppendUint32(b, uint32(8+len(payload)))
	b = append(b, typ...)
	return append(b, payload...)
}

// description is a jumd box: the content type's UUID, toggles 0x03
// (requestable, label present) and the NUL-terminated label.
func description(uuid []byte, label string) []byte {
	p := make([]byte, 0, 17+len(label)+1)
	p = append(p, uuid...)
	p = append(p, 0x03)
	p = append(p, label...)
	return box("jumd", append(p, 0))
}

// superBoxPayload is what follows a jumb box's own header: the
// description, then the content boxes. C2PA hashes an assertion over
// exactly these bytes.
func superBoxPayload(uuid []byte, label string, contents ...[]byte) []byte {
	p := description(uuid, label)
	for _, c := range contents {
		p = append(p, c...)
	}
	return p
}

func superBox(uuid []byte, label string, contents ...[]byte) []byte {
	return box("jumb", superBoxPayload(uuid, label, contents...))
}
