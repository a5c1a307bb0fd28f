package config

import (
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"github.com/pelletier/go-toml/v2"
)

// origin says where a key's value came from, so an error names the line a
// person wrote (or the environment variable they set), and a value nobody
// wrote is never presented as theirs.
type origin struct {
	path    string
	data    []byte
	written map[string]bool   // keys the file sets ("server.listen", "backends[0].url")
	env     map[string]string // key -> ZIMAGE_ variable that set it
}

// source is file:line (or the file, where the line cannot be told) or the
// variable name for a key that was set; "" for a key left at its default.
func (o origin) source(key string) string {
	if name, ok := o.env[key]; ok {
		return name
	}
	if n := lineOf(o.data, key); n > 0 {
		return fmt.Sprintf("%s:%d", o.path, n)
	}
	if o.written[key] {
		return o.path
	}
	return ""
}

// writtenKeys lists every key and table raw sets, however it was written
// (tables, inline tables, dotted keys).
func writtenKeys(raw map[string]any, prefix string, out map[string]bool) {
	for k, v := range raw {
		key := prefix + k
		out[key] = true
		switch x := v.(type) {
		case map[string]any:
			writtenKeys(x, key+".", out)
		case []any:
			for i, item := range x {
				if m, ok := item.(map[string]any); ok {
					writtenKeys(m, fmt.Sprintf("%s[%d].", key, i), out)
				}
			}
		}
	}
}

func (o origin) isSet(key string) bool { return o.source(key) != "" }

// decode applies the file on top of cfg. A syntax error stops it (fatal);
// unknown keys and values of the wrong type are all reported, and the keys
// around them still apply, so validation can report the rest.
func decode(cfg *Config, o *origin) (Errors, bool) {
	var raw map[string]any
	if err := toml.Unmarshal(o.data, &raw); err != nil {
		var de *toml.DecodeError
		src := o.path
		if errors.As(err, &de) {
			row, _ := de.Position()
			src = fmt.Sprintf("%s:%d", o.path, row)
		}
		return Errors{{Source: src, Allowed: "not valid TOML: " + strings.TrimPrefix(err.Error(), "toml: ")}}, true
	}
	o.written = map[string]bool{}
	writtenKeys(raw, "", o.written)
	var errs Errors
	// A [[backends]] table in the file replaces the default list rather than
	// appending to it: an admin who configures ComfyUI does not want the
	// builtin renderer quietly serving jobs too. Each table starts from its
	// kind's defaults, so it needs only the keys that have none.
	if v, ok := raw["backends"]; ok {
		delete(raw, "backends")
		tables, ok := v.([]any)
		if !ok {
			errs = append(errs, &Error{Key: "backends", Allowed: "must be [[backends]] tables, one per server", Source: o.source("backends")})
		}
		cfg.Backends = []Backend{}
		for i, t := range tables {
			table, ok := t.(map[string]any)
			if !ok {
				errs = append(errs, &Error{Key: fmt.Sprintf("backends[%d]", i), Allowed: "must be a [[backends]] table", Source: o.path})
				continue
			}
			kind, _ := table["kind"].(string)
			b := DefaultBackend(kind)
			errs = append(errs, decodeTable(&b, table, fmt.Sprintf("backends[%d].", i), *o)...)
			cfg.Backends = append(cfg.Backends, b)
		}
	}
	return append(errs, decodeTable(cfg, raw, "", *o)...), false
}

// decodeTable decodes raw into v strictly. The decoder stops at the first
// value of the wrong type, so that key is reported, dropped, and the rest
// decoded again until only unknown keys (reported together) remain.
func decodeTable(v any, raw map[string]any, prefix string, o origin) Errors {
	t := reflect.TypeOf(v).Elem()
	errs := unquotedDurations(t, raw, nil, prefix, o)
	for range 1000 {
		doc, err := toml.Marshal(raw)
		if err != nil {
			return append(errs, &Error{Key: strings.TrimSuffix(prefix, "."), Allowed: err.Error(), Source: o.path})
		}
		dec := toml.NewDecoder(strings.NewReader(string(doc)))
		dec.DisallowUnknownFields()
		err = dec.Decode(v)
		var strict *toml.StrictMissingError
		var de *toml.DecodeError
		switch {
		case err == nil:
			return errs
		case errors.As(err, &strict):
			for _, e := range strict.Errors {
				key := e.Key()
				errs = append(errs, &Error{Key: prefix + strings.Join(key, "."), Allowed: unknownKeyAdvice(t, key), Source: o.source(prefix + strings.Join(key, "."))})
			}
			return errs
		case errors.As(err, &de) && len(de.Key()) > 0:
			key := de.Key()
			full := prefix + strings.Join(key, ".")
			errs = append(errs, &Error{Key: full, Value: written(lookup(raw, key)), Allowed: typeAdvice(t, key), Source: o.source(full)})
			if !remove(raw, key) {
				return errs
			}
		default:
			return append(errs, &Error{Key: strings.TrimSuffix(prefix, "."), Allowed: err.Error(), Source: o.path})
		}
	}
	return errs
}

// unquotedDurations reports and drops durations written as bare numbers:
// the decoder would take `timeout = 600` as 600 nanoseconds, not as the
// seconds or minutes the person meant.
func unquotedDurations(t reflect.Type, raw map[string]any, path []string, prefix string, o origin) Errors {
	var errs Errors
	for k, v := range raw {
		key := append(append([]string(nil), path...), k)
		ft, ok := fieldType(t, key)
		if !ok {
			continue
		}
		if sub, isTable := v.(map[string]any); isTable && ft.Kind() == reflect.Struct {
			errs = append(errs, unquotedDurations(t, sub, key, prefix, o)...)
			continue
		}
		if _, isString := v.(string); ft == durationType && !isString {
			full := prefix + strings.Join(key, ".")
			errs = append(errs, &Error{Key: full, Value: written(v), Allowed: typeAdvice(t, key), Source: o.source(full)})
			delete(raw, k)
		}
	}
	return errs
}

func lookup(raw map[string]any, key []string) any {
	var cur any = raw
	for _, k := range key {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[k]
	}
	return cur
}

func remove(raw map[string]any, key []string) bool {
	parent, ok := lookup(raw, key[:len(key)-1]).(map[string]any)
	if !ok {
		return false
	}
	if _, ok := parent[key[len(key)-1]]; !ok {
		return false
	}
	delete(parent, key[len(key)-1])
	return true
}

// written shows a value as the person wrote it: strings quoted, others as
// TOML would print them.
func written(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return strconv.Quote(x)
	case map[string]any:
		return "{…}"
	}
	return fmt.Sprint(v)
}

// fieldType follows key through the toml tags of t; ok is false where no
// field has that name.
func fieldType(t reflect.Type, key []string) (reflect.Type, bool) {
	for _, k := range key {
		for t.Kind() == reflect.Slice || t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct {
			return nil, false
		}
		found := false
		for i := 0; i < t.NumField(); i++ {
			if t.Field(i).Tag.Get("toml") == k {
				t, found = t.Field(i).Type, true
				break
			}
		}
		if !found {
			return nil, false
		}
	}
	return t, true
}

func typeAdvice(t reflect.Type, key []string) string {
	ft, ok := fieldType(t, key)
	if !ok {
		return "has the wrong type; see config.example.toml"
	}
	switch {
	case ft == durationType:
		return "must be a duration in quotes such as \"90d\", \"36h\" or \"15m\""
	case ft.Kind() == reflect.String:
		return "must be text in quotes"
	case ft.Kind() == reflect.Bool:
		return "must be true or false (no quotes)"
	case ft.Kind() == reflect.Int || ft.Kind() == reflect.Int64:
		return "must be a whole number (no quotes)"
	case ft.Kind() == reflect.Slice:
		return "must be a list of texts such as [\"a\", \"b\"]"
	case ft.Kind() == reflect.Map:
		return "must be a table of texts such as { prompt = \"6.text\" }"
	case ft.Kind() == reflect.Struct:
		return fmt.Sprintf("must be a [%s] table", strings.Join(key, "."))
	}
	return "has the wrong type; see config.example.toml"
}

// unknownKeyAdvice names the nearest key that exists where key was
// written: most unknown keys are typos.
func unknownKeyAdvice(t reflect.Type, key []string) string {
	const none = "unknown key; see config.example.toml for the keys that exist"
	parent, ok := fieldType(t, key[:len(key)-1])
	if !ok {
		return none
	}
	for parent.Kind() == reflect.Slice {
		parent = parent.Elem()
	}
	if parent.Kind() != reflect.Struct {
		return none
	}
	var names []string
	for i := 0; i < parent.NumField(); i++ {
		names = append(names, parent.Field(i).Tag.Get("toml"))
	}
	if near := nearest(key[len(key)-1], names); near != "" {
		return "unknown key; did you mean " + near + "?"
	}
	return none
}

// nearest returns the candidate closest to s by edit distance, when it is
// close enough to be a typo of it (at most 2 edits, or a third of s), or "".
func nearest(s string, candidates []string) string {
	sorted := append([]string(nil), candidates...)
	sort.Strings(sorted)
	best, bestD := "", -1
	for _, c := range sorted {
		if d := editDistance(strings.ToLower(s), strings.ToLower(c)); bestD < 0 || d < bestD {
			best, bestD = c, d
		}
	}
	if bestD < 0 || bestD > max(2, len(s)/3) || bestD >= len(s) {
		return ""
	}
	return best
}

// editDistance is the Levenshtein distance between a and b, in bytes
// (config keys are ASCII).
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// lineOf finds the line that sets key ("server.listen", "backends[1].url")
// or opens table key ("tls", "backends[0]"), or 0. It reads the plain
// layout config.example.toml uses; inline tables and dotted keys give 0.
func lineOf(data []byte, key string) int {
	table := ""
	arrays := map[string]int{}
	for i, line := range strings.Split(string(data), "\n") {
		l := strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(l, "[["):
			name, _, _ := strings.Cut(strings.TrimPrefix(l, "[["), "]]")
			name = strings.TrimSpace(name)
			table = fmt.Sprintf("%s[%d]", name, arrays[name])
			arrays[name]++
			if table == key || name == key {
				return i + 1
			}
			continue
		case strings.HasPrefix(l, "["):
			name, _, _ := strings.Cut(strings.TrimPrefix(l, "["), "]")
			table = strings.TrimSpace(name)
			if table == key {
				return i + 1
			}
			continue
		case strings.HasPrefix(l, "#"):
			continue
		}
		k, _, ok := strings.Cut(l, "=")
		if !ok {
			continue
		}
		k = strings.Trim(strings.TrimSpace(k), `"'`)
		if table != "" {
			k = table + "." + k
		}
		if k == key {
			return i + 1
		}
	}
	return 0
}
