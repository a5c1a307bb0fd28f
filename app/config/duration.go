package config

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// maxDays bounds the "Nd" part of a duration: a hundred years is more than
// any retention window needs.
const maxDays = 100 * 365

// Duration is a time.Duration that also accepts a day unit ("90d", "1d12h"),
// because retention windows are naturally written in days.
type Duration time.Duration

// ParseDuration parses Go durations plus a leading "Nd" day count.
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, fmt.Errorf("empty duration")
	}
	var days time.Duration
	if i := strings.IndexByte(s, 'd'); i >= 0 {
		n, err := strconv.ParseInt(s[:i], 10, 64)
		if err != nil || n < 0 || n > maxDays {
			return 0, fmt.Errorf("bad day count %q", s[:i])
		}
		days = time.Duration(n) * 24 * time.Hour
		s = s[i+1:]
		if s == "" {
			return days, nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("not a duration")
	}
	if d < 0 {
		return 0, fmt.Errorf("negative duration")
	}
	if d > math.MaxInt64-days {
		// "36500d2562047h" would wrap around to a negative duration.
		return 0, fmt.Errorf("longer than %d days", maxDays)
	}
	return days + d, nil
}

// UnmarshalText implements encoding.TextUnmarshaler for TOML and env values.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// MarshalText writes days when the value is a whole number of days.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

func (d Duration) String() string {
	v := time.Duration(d)
	// Past maxDays a day count would not read back, so hours it is.
	if v > 0 && v%(24*time.Hour) == 0 && v/(24*time.Hour) <= maxDays {
		return fmt.Sprintf("%dd", v/(24*time.Hour))
	}
	return v.String()
}

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }
