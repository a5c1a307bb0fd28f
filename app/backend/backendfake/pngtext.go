package backendfake

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"sort"
	"strings"
)

// pngWithText adds text chunks the way PIL's PngInfo.add_text does (which
// ComfyUI's SaveImage and A1111 both use): tEXt when the value is
// Latin-1, iTXt otherwise, placed before the image data. The fakes write
// them so tests see what real servers put into their files.
func pngWithText(png []byte, kv ...[2]string) []byte {
	const ihdrEnd = 8 + 12 + 13
	var chunks []byte
	for _, p := range kv {
		typ, data := "tEXt", []byte(p[0]+"\x00")
		latin1 := true
		for _, r := range p[1] {
			if r > 0xFF {
				latin1 = false
				break
			}
			data = append(data, byte(r))
		}
		if !latin1 {
			typ, data = "iTXt", append([]byte(p[0]+"\x00\x00\x00\x00\x00"), p[1]...)
		}
		c := binary.BigEndian.AppendUint32(nil, uint32(len(data)))
		c = append(append(c, typ...), data...)
		chunks = append(chunks, binary.BigEndian.AppendUint32(c, crc32.ChecksumIEEE(c[4:]))...)
	}
	out := append(append([]byte{}, png[:ihdrEnd]...), chunks...)
	return append(out, png[ihdrEnd:]...)
}

// pythonJSON is json.dumps with its defaults: ", " and ": " separators,
// non-ASCII escaped as \uXXXX. Keys come sorted: Python keeps the order
// they arrived in, which a Go map has forgotten.
func pythonJSON(v any) string {
	raw, _ := json.Marshal(v)
	var compact any
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.UseNumber()
	_ = dec.Decode(&compact)
	var b strings.Builder
	writePythonJSON(&b, compact)
	return b.String()
}

func writePythonJSON(b *strings.Builder, v any) {
	switch x := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		b.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				b.WriteString(", ")
			}
			writePythonJSON(b, k)
			b.WriteString(": ")
			writePythonJSON(b, x[k])
		}
		b.WriteByte('}')
	case []any:
		b.WriteByte('[')
		for i, e := range x {
			if i > 0 {
				b.WriteString(", ")
			}
			writePythonJSON(b, e)
		}
		b.WriteByte(']')
	case string:
		b.WriteByte('"')
		for _, r := range x {
			switch {
			case r == '"' || r == '\\':
				b.WriteByte('\\')
				b.WriteRune(r)
			case r == '\n':
				b.WriteString(`\n`)
			case r < 0x20 || r > 0x7E:
				if r > 0xFFFF {
					r -= 0x10000
					fmt.Fprintf(b, `\u%04x\u%04x`, 0xD800+(r>>10), 0xDC00+(r&0x3FF))
				} else {
					fmt.Fprintf(b, `\u%04x`, r)
				}
			default:
				b.WriteRune(r)
			}
		}
		b.WriteByte('"')
	default:
		raw, _ := json.Marshal(x)
		b.Write(raw)
	}
}
