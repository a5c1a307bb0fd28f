// Package provenancetest reads image files the way an outsider would, for
// tests that check what Z Image's files carry: every container chunk (its
// own small parser, not the one under test), and the XMP as exiftool reads
// it.
package provenancetest

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Chunk is one container unit: a PNG chunk, a WebP RIFF chunk or a JPEG
// marker segment (Type "FFE1" and so on).
type Chunk struct {
	Type string
	Data []byte
}

// Chunks lists every chunk of a PNG, WebP or JPEG file, failing the test
// on anything else; Trailing holds bytes after the container's end.
func Chunks(t testing.TB, data []byte) (chunks []Chunk, trailing []byte) {
	t.Helper()
	switch {
	case bytes.HasPrefix(data, []byte("\x89PNG\r\n\x1a\n")):
		for off := 8; off+12 <= len(data); {
			n := int(binary.BigEndian.Uint32(data[off:]))
			typ := string(data[off+4 : off+8])
			if off+12+n > len(data) {
				t.Fatalf("PNG chunk %s at %d runs past the end", typ, off)
			}
			chunks = append(chunks, Chunk{typ, data[off+8 : off+8+n]})
			off += 12 + n
			if typ == "IEND" {
				return chunks, data[off:]
			}
		}
		t.Fatalf("PNG without IEND")
	case len(data) >= 12 && string(data[:4]) == "RIFF" && string(data[8:12]) == "WEBP":
		end := 8 + int(binary.LittleEndian.Uint32(data[4:]))
		if end > len(data) {
			t.Fatalf("WebP RIFF size %d past the end (%d bytes)", end, len(data))
		}
		for off := 12; off+8 <= end; {
			n := int(binary.LittleEndian.Uint32(data[off+4:]))
			if off+8+n > end {
				t.Fatalf("WebP chunk at %d runs past the end", off)
			}
			chunks = append(chunks, Chunk{string(data[off : off+4]), data[off+8 : off+8+n]})
			off += 8 + n + n&1
		}
		return chunks, data[end:]
	case bytes.HasPrefix(data, []byte{0xFF, 0xD8}):
		for off := 2; off+4 <= len(data); {
			m := data[off+1]
			n := int(binary.BigEndian.Uint16(data[off+2:]))
			chunks = append(chunks, Chunk{"FF" + hexByte(m), data[off+4 : off+2+n]})
			if m == 0xDA { // the scans follow: keep them as one chunk
				end := bytes.LastIndex(data, []byte{0xFF, 0xD9})
				chunks = append(chunks, Chunk{"scan", data[off+2+n : end]})
				return chunks, data[end+2:]
			}
			off += 2 + n
		}
		t.Fatalf("JPEG without a scan")
	default:
		t.Fatalf("not a PNG, WebP or JPEG file (starts %q)", data[:min(len(data), 12)])
	}
	return nil, nil
}

func hexByte(b byte) string {
	const digits = "0123456789ABCDEF"
	return string([]byte{digits[b>>4], digits[b&15]})
}

// Exiftool runs exiftool on data and returns the tags it found, keyed
// "Group:Tag" (for example "XMP-iptcExt:DigitalSourceType"). A missing
// exiftool fails the test: the marks must be proven by a reader no one
// here wrote.
func Exiftool(t testing.TB, data []byte) map[string]any {
	t.Helper()
	return ExiftoolFiles(t, map[string][]byte{"file": data})["file"]
}

// ExiftoolFiles runs exiftool once over several files (it starts in about
// half a second) and returns each one's tags by the files' keys.
func ExiftoolFiles(t testing.TB, files map[string][]byte) map[string]map[string]any {
	t.Helper()
	path, err := exec.LookPath("exiftool")
	if err != nil {
		t.Fatalf("exiftool is not installed, and these tests read the marks back with it: install Debian's libimage-exiftool-perl (apt-get install -y libimage-exiftool-perl)")
	}
	dir := t.TempDir()
	args := []string{"-json", "-G1", "-a", "-struct"}
	names := map[string]string{}
	i := 0
	for key, data := range files {
		i++
		name := filepath.Join(dir, fmt.Sprintf("f%d", i))
		if err := os.WriteFile(name, data, 0o600); err != nil {
			t.Fatal(err)
		}
		names[name] = key
		args = append(args, name)
	}
	cmd := exec.Command(path, args...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		t.Fatalf("exiftool: %v: %s", err, errOut.String())
	}
	var tags []map[string]any
	if err := json.Unmarshal(out.Bytes(), &tags); err != nil || len(tags) != len(files) {
		t.Fatalf("exiftool output not %d JSON objects (%v): %s", len(files), err, out.String())
	}
	res := map[string]map[string]any{}
	for _, tg := range tags {
		src, _ := tg["SourceFile"].(string)
		res[names[src]] = tg
	}
	return res
}
