package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Duration is a TOML string such as "10s" or "1m30s".
type Duration time.Duration

func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("invalid duration %q: want a number with a unit, like \"10s\" or \"2m\"", b)
	}
	if v < 0 {
		return fmt.Errorf("invalid duration %q: must not be negative", b)
	}
	*d = Duration(v)
	return nil
}

func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// Seconds is a duration written as a whole number of seconds (300) or
// as a Go duration ("5m"), as HTTP's Retry-After counts.
type Seconds time.Duration

// UnmarshalTOML reads an integer or a duration string.
func (s *Seconds) UnmarshalTOML(v any) error {
	switch v := v.(type) {
	case int64:
		const most int64 = 1 << 31 // 68 years, and no overflow in nanoseconds
		if v < 0 || v > most {
			return fmt.Errorf("invalid seconds %d: want 0 to %d", v, most)
		}
		*s = Seconds(time.Duration(v) * time.Second)
		return nil
	case string:
		var d Duration
		if err := d.UnmarshalText([]byte(v)); err != nil {
			return err
		}
		*s = Seconds(d)
		return nil
	}
	return fmt.Errorf("want a number of seconds (300) or a duration (\"5m\"), not %v", v)
}

// Size is a byte count: an integer, or a string of a number and a unit,
// in any case: "64MiB", "64m", "512k", "512KB". k, m, g and KiB, MiB,
// GiB are powers of 1024; KB, MB, GB are powers of 1000; B is bytes.
type Size int64

// sizeUnits are the accepted suffixes, lower-cased, longest first so
// that "kib" is not read as "b".
var sizeUnits = []struct {
	suffix string
	factor int64
}{
	{"kib", 1 << 10}, {"mib", 1 << 20}, {"gib", 1 << 30},
	{"kb", 1000}, {"mb", 1000 * 1000}, {"gb", 1000 * 1000 * 1000},
	{"k", 1 << 10}, {"m", 1 << 20}, {"g", 1 << 30}, {"b", 1},
}

// sizeForms is what the error for a bad size lists: every accepted form.
const sizeForms = `a byte count, or a number with a unit in any case: k, m, g or KiB, MiB, GiB (powers of 1024); KB, MB, GB (powers of 1000); B`

func (s *Size) UnmarshalText(b []byte) error {
	str := strings.TrimSpace(string(b))
	lower := strings.ToLower(str)
	factor := int64(1)
	for _, u := range sizeUnits {
		if strings.HasSuffix(lower, u.suffix) {
			str, factor = strings.TrimSpace(str[:len(str)-len(u.suffix)]), u.factor
			break
		}
	}
	n, err := strconv.ParseInt(str, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/factor {
		return fmt.Errorf("invalid size %q: want %s", b, sizeForms)
	}
	*s = Size(n * factor)
	return nil
}

func (s Size) MarshalText() ([]byte, error) { return []byte(strconv.FormatInt(int64(s), 10)), nil }
