package web

import (
	"encoding/json"
	"math"
	"strconv"
	"sync"
	"time"

	"zimage/app"
)

// The gallery page is the API's busiest answer: 50 images of 24 fields.
// Encoding it by reflection cost a fifth of the request and several
// allocations per image, so pages are written by hand into a pooled
// buffer. The output is byte for byte what encoding/json makes of
// toImageJSON (TestAppendImageJSONMatchesEncodingJSON holds it to that),
// so the API's shape still has one definition: imageJSON.

var pageBufs = sync.Pool{New: func() any { b := make([]byte, 0, 64<<10); return &b }}

// maxPooledPage bounds the buffers kept for the next page.
const maxPooledPage = 1 << 20

// appendImagesPage appends {"images":[…],"next":"…"} and a newline, as
// c.JSON would write it. ok is false for a value JSON cannot hold (a NaN
// guidance), which encoding/json must then refuse with its own error.
func appendImagesPage(b []byte, imgs []app.Image, next string, now time.Time) ([]byte, bool) {
	b = append(b, `{"images":[`...)
	for n := range imgs {
		if n > 0 {
			b = append(b, ',')
		}
		var ok bool
		if b, ok = appendImageJSON(b, &imgs[n], now); !ok {
			return b, false
		}
	}
	b = append(b, `],"next":`...)
	b = appendJSONString(b, next)
	return append(b, "}\n"...), true
}

// appendImageJSON appends the JSON of toImageJSON(*i, now).
func appendImageJSON(b []byte, i *app.Image, now time.Time) ([]byte, bool) {
	if math.IsNaN(i.Guidance) || math.IsInf(i.Guidance, 0) {
		return b, false
	}
	b = append(b, `{"id":`...)
	b = appendJSONString(b, i.ID)
	b = append(b, `,"generation_id":`...)
	b = appendJSONString(b, i.GenerationID)
	b = append(b, `,"index":`...)
	b = strconv.AppendInt(b, int64(i.Index), 10)
	b = append(b, `,"width":`...)
	b = strconv.AppendInt(b, int64(i.Width), 10)
	b = append(b, `,"height":`...)
	b = strconv.AppendInt(b, int64(i.Height), 10)
	b = append(b, `,"seed":`...)
	b = strconv.AppendInt(b, i.Seed, 10)
	b = append(b, `,"content_type":`...)
	b = appendJSONString(b, i.ContentType)
	b = append(b, `,"bytes":`...)
	b = strconv.AppendInt(b, i.Bytes, 10)
	b = append(b, `,"has_webp":`...)
	b = strconv.AppendBool(b, i.HasWebP)
	b = append(b, `,"prompt":`...)
	b = appendJSONString(b, i.Prompt)
	b = append(b, `,"negative_prompt":`...)
	b = appendJSONString(b, i.NegativePrompt)
	b = append(b, `,"steps":`...)
	b = strconv.AppendInt(b, int64(i.Steps), 10)
	b = append(b, `,"guidance":`...)
	b = appendJSONFloat(b, i.Guidance)
	b = append(b, `,"backend":`...)
	b = appendJSONString(b, i.Backend)
	b = append(b, `,"model":`...)
	b = appendJSONString(b, i.Model)
	if i.APIKeyID != "" {
		b = append(b, `,"api_key_id":`...)
		b = appendJSONString(b, i.APIKeyID)
	}
	b = append(b, `,"favourite":`...)
	b = strconv.AppendBool(b, i.Favourite)
	b = append(b, `,"parameters_embedded":`...)
	b = strconv.AppendBool(b, i.ParametersEmbedded)
	var ok bool
	b = append(b, `,"created_at":`...)
	if b, ok = appendJSONTime(b, i.CreatedAt); !ok {
		return b, false
	}
	b = append(b, `,"expires_at":`...)
	if b, ok = appendJSONTime(b, i.ExpiresAt); !ok {
		return b, false
	}
	b = append(b, `,"deletes_in_days":`...)
	b = strconv.AppendInt(b, int64(daysLeft(i.ExpiresAt, now)), 10)
	if ms := i.RenderTime().Milliseconds(); ms != 0 {
		b = append(b, `,"render_ms":`...)
		b = strconv.AppendInt(b, ms, 10)
	}
	if ms := i.WaitTime().Milliseconds(); ms != 0 {
		b = append(b, `,"wait_ms":`...)
		b = strconv.AppendInt(b, ms, 10)
	}
	if !i.FinishedAt.IsZero() {
		b = append(b, `,"backend_finished_at":`...)
		if b, ok = appendJSONTime(b, i.FinishedAt); !ok {
			return b, false
		}
	}
	b = append(b, `,"urls":{"original":`...)
	b = appendFileURL(b, i.ID, "?format=png")
	b = append(b, `,"webp":`...)
	b = appendFileURL(b, i.ID, "?format=webp")
	b = append(b, `,"thumb":`...)
	b = appendFileURL(b, i.ID, "?size=thumb")
	b = append(b, `,"page":`...)
	b = appendJSONString(b, "/images/"+i.ID)
	return append(b, "}}"...), true
}

func appendFileURL(b []byte, id, query string) []byte {
	if !plainJSON(id) {
		return appendJSONString(b, "/api/v1/images/"+id+"/file"+query)
	}
	b = append(b, `"/api/v1/images/`...)
	b = append(b, id...)
	b = append(b, "/file"...)
	b = append(b, query...)
	return append(b, '"')
}

// appendJSONString writes s as encoding/json does. Most strings here (ids,
// names, English prompts) need no escaping and are copied as they are;
// anything else goes through encoding/json itself, so its rules for HTML
// characters, control characters, U+2028 and invalid UTF-8 apply unchanged.
func appendJSONString(b []byte, s string) []byte {
	if plainJSON(s) {
		b = append(b, '"')
		b = append(b, s...)
		return append(b, '"')
	}
	q, _ := json.Marshal(s) // a string always marshals
	return append(b, q...)
}

// plainJSON reports a string of printable ASCII that encoding/json writes
// unchanged between quotes.
func plainJSON(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x20 || c >= 0x7f, c == '"', c == '\\', c == '<', c == '>', c == '&':
			return false
		}
	}
	return true
}

// appendJSONFloat writes f as encoding/json writes a float64.
func appendJSONFloat(b []byte, f float64) []byte {
	abs, format := math.Abs(f), byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// e-09 → e-9, as encoding/json does.
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

// appendJSONTime writes t as time.Time.MarshalJSON does; years it refuses
// are reported with ok false.
func appendJSONTime(b []byte, t time.Time) ([]byte, bool) {
	if y := t.Year(); y < 0 || y > 9999 {
		return b, false
	}
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"'), true
}
