package config

import (
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
)

// EnvPrefix starts every environment override.
const EnvPrefix = "ZIMAGE_"

// envOnly are ZIMAGE_ variables read elsewhere, not config keys.
var envOnly = map[string]bool{"ZIMAGE_CONFIG": true, "ZIMAGE_MASTER_KEY": true}

// applyEnv sets ZIMAGE_<SECTION>_<KEY> values and returns which keys it
// set (key -> variable), for errors to name the variable. An unknown
// ZIMAGE_ variable is an error like an unknown key in the file: a typo must
// not be ignored. [[backends]] is a list and has no environment form.
func applyEnv(cfg *Config, env []string) (map[string]string, Errors) {
	fields := envFields(cfg)
	names := make([]string, 0)
	values := map[string]string{}
	for _, kv := range env {
		name, value, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(name, EnvPrefix) || envOnly[name] {
			continue
		}
		names = append(names, name)
		values[name] = value
	}
	sort.Strings(names) // deterministic order of errors
	known := make([]string, 0, len(fields))
	for name := range fields {
		known = append(known, name)
	}
	set := map[string]string{}
	var errs Errors
	for _, name := range names {
		f, ok := fields[name]
		if !ok {
			advice := "unknown environment variable; overrides are ZIMAGE_<SECTION>_<KEY> for the keys in config.example.toml (backends have none)"
			if near := nearest(name, known); near != "" {
				advice = "unknown environment variable; did you mean " + near + "?"
			}
			errs = append(errs, &Error{Key: name, Allowed: advice, Source: "environment"})
			continue
		}
		if err := setFromString(f.v, values[name]); err != nil {
			errs = append(errs, &Error{Key: f.key, Value: strconv.Quote(values[name]), Allowed: err.Error(), Source: name})
			continue
		}
		set[f.key] = name
	}
	return set, errs
}

type envField struct {
	key string
	v   reflect.Value
}

// envFields maps ZIMAGE_SECTION_KEY to the settable field of every scalar
// key in every section.
func envFields(cfg *Config) map[string]envField {
	out := map[string]envField{}
	root := reflect.ValueOf(cfg).Elem()
	rt := root.Type()
	for i := 0; i < rt.NumField(); i++ {
		section := rt.Field(i).Tag.Get("toml")
		sv := root.Field(i)
		if sv.Kind() != reflect.Struct {
			continue
		}
		st := sv.Type()
		for j := 0; j < st.NumField(); j++ {
			key := st.Field(j).Tag.Get("toml")
			name := EnvPrefix + strings.ToUpper(section+"_"+key)
			out[name] = envField{key: section + "." + key, v: sv.Field(j)}
		}
	}
	return out
}

var durationType = reflect.TypeOf(Duration(0))

func setFromString(v reflect.Value, s string) error {
	switch {
	case v.Type() == durationType:
		d, err := ParseDuration(s)
		if err != nil {
			return fmt.Errorf("must be a duration such as \"90d\", \"36h\" or \"15m\"")
		}
		v.SetInt(int64(d))
	case v.Kind() == reflect.String:
		v.SetString(s)
	case v.Kind() == reflect.Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return fmt.Errorf("must be true or false")
		}
		v.SetBool(b)
	case v.Kind() == reflect.Int || v.Kind() == reflect.Int64:
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return fmt.Errorf("must be a whole number")
		}
		v.SetInt(n)
	case v.Kind() == reflect.Slice && v.Type().Elem().Kind() == reflect.String:
		var items []string
		for _, p := range strings.Split(s, ",") {
			if p = strings.TrimSpace(p); p != "" {
				items = append(items, p)
			}
		}
		v.Set(reflect.ValueOf(items))
	default:
		return fmt.Errorf("cannot be set from the environment; use the config file")
	}
	return nil
}
