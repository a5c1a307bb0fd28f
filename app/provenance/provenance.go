// Package provenance decides what an image file says about itself. Every
// file Z Image stores goes through it twice: Strip removes whatever the
// model server wrote into the file (ComfyUI's whole workflow with the
// prompt, A1111's "parameters" text, EXIF, XMP, timestamps), and Mark adds
// Z Image's own IPTC marks saying the picture was made by an algorithm,
// and by which software — never by whom, from which prompt, or where.
//
// Both work on the container only (PNG chunks, JPEG segments, WebP RIFF
// chunks): pixel data is copied byte for byte, never decoded or encoded
// again, so they cost a copy of the file and nothing more.
//
// Signed Content Credentials (C2PA) would be one more step after Mark: the
// signature's hash binds the final bytes, so a Signer must see the file
// exactly as it will be served, marks and embedded parameters included.
package provenance

import (
	"bytes"
	"errors"
	"fmt"
)

// IPTC digital source types (https://cv.iptc.org/newscodes/digitalsourcetype/).
const (
	// TrainedAlgorithmicMedia is a picture made by a trained model: every
	// model server's output.
	TrainedAlgorithmicMedia = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
	// AlgorithmicMedia is a picture drawn by an algorithm without training
	// data: the builtin procedural renderer.
	AlgorithmicMedia = "http://cv.iptc.org/newscodes/digitalsourcetype/algorithmicMedia"
)

// Software is the name written as the software agent.
const Software = "Z Image"

// Marker writes the marks. Its zero value marks files, naming the software
// "Z Image" without a version.
type Marker struct {
	// Version is the build's version, written after the software's name.
	Version string
	// Off leaves files unmarked (config provenance.marks = false). Strip
	// still runs: the prompt must not leak whatever the marks setting.
	Off bool
}

// Formats Strip and Mark understand, by MIME type.
const (
	PNG  = "image/png"
	JPEG = "image/jpeg"
	WebP = "image/webp"
)

// ErrFormat is returned for bytes that are not a well-formed PNG, JPEG or
// WebP container.
var ErrFormat = errors.New("provenance: not a well-formed PNG, JPEG or WebP file")

// Format returns the MIME type of data by its signature, or "".
func Format(data []byte) string {
	switch {
	case bytes.HasPrefix(data, pngSignature):
		return PNG
	case len(data) >= 3 && data[0] == 0xFF && data[1] == 0xD8 && data[2] == 0xFF:
		return JPEG
	case len(data) >= 12 && string(data[:4]) == "RIFF" && string(data[8:12]) == "WEBP":
		return WebP
	}
	return ""
}

// Strip returns data without any metadata: only what a decoder needs to
// show the picture right (pixels, palette, transparency, colour space,
// pixel density) is kept, copied byte for byte. Bytes after the end of the
// image are dropped too, since they can hide anything.
func Strip(data []byte) ([]byte, error) {
	switch Format(data) {
	case PNG:
		return stripPNG(data)
	case JPEG:
		return stripJPEG(data)
	case WebP:
		return stripWebP(data)
	}
	return nil, ErrFormat
}

// Mark returns data with the IPTC marks in XMP: the digital source type
// (TrainedAlgorithmicMedia or AlgorithmicMedia) and the software agent. It
// expects stripped data (an XMP packet already there would be a second
// one). With Off set it returns data unchanged.
func (m Marker) Mark(data []byte, sourceType string) ([]byte, error) {
	if m.Off {
		return data, nil
	}
	if sourceType != TrainedAlgorithmicMedia && sourceType != AlgorithmicMedia {
		return nil, fmt.Errorf("provenance: unknown digital source type %q", sourceType)
	}
	packet := xmpPacket(sourceType, m.agent())
	switch Format(data) {
	case PNG:
		return insertPNGChunk(data, "iTXt", iTXtData(xmpKeyword, packet))
	case JPEG:
		return insertJPEGXMP(data, packet)
	case WebP:
		return setWebPXMP(data, packet)
	}
	return nil, ErrFormat
}

// agent is the software agent: "Z Image" and the version when known.
func (m Marker) agent() string {
	if m.Version == "" {
		return Software
	}
	return Software + " " + m.Version
}
