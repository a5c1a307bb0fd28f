package provenance

import (
	"bytes"
	"crypto/x509"
	"encoding/binary"
)

// c2paStoreUUID is the C2PA manifest store's JUMBF type ("c2pa" and the
// ISO suffix).
var c2paStoreUUID = []byte("c2pa\x00\x11\x00\x10\x80\x00\x00\xAA\x00\x38\x9B\x71")

// Carried is what a stored file says about itself, for the badge on the
// image page.
type Carried struct {
	// SourceType is the IPTC digital source type of the XMP marks, or "".
	SourceType string
	// Credentials is true when the file holds a C2PA manifest store.
	Credentials bool
	// Signer is the common name of the manifest's signing certificate.
	Signer string
}

// Carries looks at the start of a file for the marks and the Content
// Credentials: in a PNG both sit right after IHDR, in a JPEG after JFIF.
// (A WebP keeps its manifest at the end, past what the badge reads.) It
// reads; it does not validate the signature.
func Carries(head []byte) Carried {
	var c Carried
	if !bytes.HasPrefix(head, pngSignature) {
		for _, st := range []string{TrainedAlgorithmicMedia, AlgorithmicMedia} {
			if bytes.Contains(head, []byte(`DigitalSourceType="`+st+`"`)) {
				c.SourceType = st
			}
		}
		// The manifest store's description box: "jumd", then its UUID.
		if i := bytes.Index(head, append([]byte("jumd"), c2paStoreUUID...)); i >= 0 {
			c.Credentials = true
			c.Signer = firstCertificateName(head[i:])
		}
		return c
	}
	for off := len(pngSignature); len(head)-off >= 8; {
		n := int(binary.BigEndian.Uint32(head[off:]))
		typ := string(head[off+4 : off+8])
		if typ == "IDAT" || n < 0 || off+8+n > len(head) {
			break
		}
		data := head[off+8 : off+8+n]
		switch {
		case typ == "iTXt" && bytes.HasPrefix(data, []byte(xmpKeyword+"\x00")):
			for _, st := range []string{TrainedAlgorithmicMedia, AlgorithmicMedia} {
				if bytes.Contains(data, []byte(`DigitalSourceType="`+st+`"`)) {
					c.SourceType = st
				}
			}
		case typ == pngC2PAChunk:
			c.Credentials = true
			c.Signer = firstCertificateName(data)
		}
		off += 12 + n
	}
	return c
}

// firstCertificateName finds the first DER certificate in a manifest
// store (the x5chain's signer comes first) and returns its common name.
func firstCertificateName(store []byte) string {
	for i := 0; i+4 < len(store); i++ {
		if store[i] != 0x30 || store[i+1] != 0x82 {
			continue
		}
		end := i + 4 + int(binary.BigEndian.Uint16(store[i+2:]))
		if end > len(store) {
			continue
		}
		if cert, err := x509.ParseCertificate(store[i:end]); err == nil {
			return cert.Subject.CommonName
		}
	}
	return ""
}
