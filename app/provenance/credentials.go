package provenance

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"

	"zimage/app/provenance/c2pa"
)

// Credentials adds signed C2PA Content Credentials, the last step: the
// manifest's hash binds every other byte of the file, so nothing may
// change the file after Sign. Its zero value (no Signer) signs nothing.
type Credentials struct {
	// Signer is the operator's checked key and certificate; nil when
	// signing is off or its configuration is broken.
	Signer *c2pa.Signer
	// Version is the build's version, for the software agent.
	Version string
	// IncludeModel writes the model's name into the manifest (config
	// provenance.include_model); off, the manifest names only Z Image.
	IncludeModel bool
}

// PNG chunk and WebP RIFF chunk that carry a C2PA manifest store (C2PA
// 2.1, "Embedding manifests into assets").
const (
	pngC2PAChunk  = "caBX"
	webpC2PAChunk = "C2PA"
)

// Sign returns data with a signed manifest saying it was created by Z Image
// from sourceType (and model, if IncludeModel). PNG carries it in a caBX
// chunk after IHDR, WebP in a C2PA chunk at the end (the file becomes
// extended-format WebP), JPEG in APP11 segments after SOI and JFIF. Other
// formats, and a Credentials without Signer, return data unchanged.
func (c Credentials) Sign(data []byte, sourceType, model string) ([]byte, error) {
	if c.Signer == nil {
		return data, nil
	}
	f := c2pa.Facts{DigitalSourceType: sourceType, Software: Software, Version: c.Version}
	if c.IncludeModel {
		f.Model = model
	}
	var box c2pa.Container
	switch Format(data) {
	case PNG:
		box = pngContainer(data)
	case WebP:
		chunks, err := webpChunks(data)
		if err != nil {
			return nil, err
		}
		if chunks, err = extendedWebP(chunks); err != nil {
			return nil, err
		}
		box = &webpContainer{chunks: chunks}
	case JPEG:
		at, err := jpegAfterAPP0(data)
		if err != nil {
			return nil, err
		}
		box = jpegContainer{jpg: data, at: at}
	default:
		return data, nil
	}
	out, err := c.Signer.Embed(box, f)
	if err != nil {
		return nil, fmt.Errorf("provenance: content credentials: %w", err)
	}
	return out, nil
}

// pngContainer puts the manifest store in a caBX chunk right after IHDR;
// the hash leaves out the whole chunk (length, type, data and CRC).
type pngContainer []byte

func (pngContainer) Exclusion(n int) c2pa.Exclusion {
	const ihdrEnd = 8 + 4 + 4 + 13 + 4
	return c2pa.Exclusion{Start: ihdrEnd, Length: 12 + n}
}

func (p pngContainer) Place(n int) ([]byte, error) {
	return insertPNGChunk(p, pngC2PAChunk, make([]byte, n))
}

func (pngContainer) Fill(file []byte, ex c2pa.Exclusion, store []byte) error {
	chunk := file[ex.Start : ex.Start+ex.Length]
	if string(chunk[4:8]) != pngC2PAChunk || len(store) != len(chunk)-12 {
		return fmt.Errorf("provenance: caBX chunk not where it was placed")
	}
	copy(chunk[8:], store)
	binary.BigEndian.PutUint32(chunk[8+len(store):], crc32.ChecksumIEEE(chunk[4:8+len(store)]))
	return nil
}

// webpContainer puts the manifest store in a C2PA chunk at the end of an
// extended-format WebP; the hash leaves out the chunk's header and data
// (a padding byte after odd data is hashed, as c2pa-rs does).
type webpContainer struct {
	chunks []riffChunk
}

func (w *webpContainer) Exclusion(n int) c2pa.Exclusion {
	start := 12 // RIFF header and "WEBP"
	for _, c := range w.chunks {
		start += 8 + len(c.payload) + len(c.payload)&1
	}
	return c2pa.Exclusion{Start: start, Length: 8 + n}
}

func (w *webpContainer) Place(n int) ([]byte, error) {
	return encodeWebP(append(w.chunks[:len(w.chunks):len(w.chunks)], riffChunk{webpC2PAChunk, make([]byte, n)})), nil
}

func (*webpContainer) Fill(file []byte, ex c2pa.Exclusion, store []byte) error {
	chunk := file[ex.Start : ex.Start+ex.Length]
	if string(chunk[:4]) != webpC2PAChunk || len(store) != len(chunk)-8 {
		return fmt.Errorf("provenance: C2PA chunk not where it was placed")
	}
	copy(chunk[8:], store)
	return nil
}

// jpegContainer puts the manifest store in APP11 segments (JPEG XT boxes,
// ISO 19566-5) after SOI and any APP0, as c2pa-rs does; the hash leaves out
// all of them.
type jpegContainer struct {
	jpg []byte
	at  int
}

// jpegJUMBFChunk is how many store bytes one APP11 segment carries.
const jpegJUMBFChunk = 65000

// jpegAPP11 encodes the store as APP11 segments: CI "JP", box instance
// number En, packet sequence Z from 1; segments after the first repeat the
// superbox's LBox and TBox before their part of the data.
func jpegAPP11(store []byte) []byte {
	var out []byte
	for i, z := 0, uint32(1); i < len(store) || i == 0; z++ {
		end := min(i+jpegJUMBFChunk, len(store))
		payload := []byte{'J', 'P', 0x02, 0x11}
		payload = binary.BigEndian.AppendUint32(payload, z)
		if z > 1 {
			payload = append(payload, store[:8]...)
		}
		payload = append(payload, store[i:end]...)
		out = append(out, 0xFF, 0xEB)
		out = binary.BigEndian.AppendUint16(out, uint16(2+len(payload)))
		out = append(out, payload...)
		if i = end; i >= len(store) {
			break
		}
	}
	return out
}

func (j jpegContainer) Exclusion(n int) c2pa.Exclusion {
	store := make([]byte, max(n, 8))[:n]
	return c2pa.Exclusion{Start: j.at, Length: len(jpegAPP11(store))}
}

func (j jpegContainer) Place(n int) ([]byte, error) {
	segs := jpegAPP11(make([]byte, n))
	out := make([]byte, 0, len(j.jpg)+len(segs))
	out = append(out, j.jpg[:j.at]...)
	out = append(out, segs...)
	return append(out, j.jpg[j.at:]...), nil
}

func (jpegContainer) Fill(file []byte, ex c2pa.Exclusion, store []byte) error {
	segs := jpegAPP11(store)
	if len(segs) != ex.Length || file[ex.Start] != 0xFF || file[ex.Start+1] != 0xEB {
		return fmt.Errorf("provenance: APP11 segments not where they were placed")
	}
	copy(file[ex.Start:], segs)
	return nil
}
