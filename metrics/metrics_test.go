package metrics

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestExposition(t *testing.T) {
	r := New()
	s := r.Site("example.test")
	s.Observe(200, 100, 300*time.Microsecond)
	s.Observe(200, 50, 2*time.Millisecond)
	s.Observe(404, 10, 20*time.Second)
	r.Site("example.test").Observe(304, 0, time.Millisecond) // same counters after a reload
	r.Gauge("appliance_cache_bytes", "Bytes.", func() float64 { return 42 })
	r.Counter("appliance_cache_hits_total", "Hits.", func() float64 { return 7 })
	r.LabelledGauge("appliance_certificate_expiry_timestamp_seconds", "Expiry.", func() []Sample {
		return []Sample{{Labels: []string{"name", "a.test", "source", "acme"}, Value: 1800000000}, {Labels: []string{"name", `q"`}, Value: 0}}
	})
	var b strings.Builder
	r.write(&b)
	out := b.String()
	if _, err := parseExposition(out); err != nil {
		t.Error(err)
	}
	for _, want := range []string{
		`appliance_requests_total{site="example.test",code="200"} 2`,
		`appliance_requests_total{site="example.test",code="304"} 1`,
		`appliance_requests_total{site="example.test",code="404"} 1`,
		`appliance_response_bytes_total{site="example.test"} 160`,
		`appliance_request_duration_seconds_bucket{site="example.test",le="0.0005"} 1`,
		`appliance_request_duration_seconds_bucket{site="example.test",le="0.001"} 2`,
		`appliance_request_duration_seconds_bucket{site="example.test",le="0.0025"} 3`,
		`appliance_request_duration_seconds_bucket{site="example.test",le="10"} 3`,
		`appliance_request_duration_seconds_bucket{site="example.test",le="+Inf"} 4`,
		`appliance_request_duration_seconds_count{site="example.test"} 4`,
		"# TYPE appliance_cache_bytes gauge\nappliance_cache_bytes 42\n",
		"# TYPE appliance_cache_hits_total counter\nappliance_cache_hits_total 7\n",
		"# TYPE appliance_certificate_expiry_timestamp_seconds gauge\n" +
			"appliance_certificate_expiry_timestamp_seconds{name=\"a.test\",source=\"acme\"} 1800000000\n" +
			"appliance_certificate_expiry_timestamp_seconds{name=\"q\\\"\"} 0\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in:\n%s", want, out)
		}
	}
}

// hostile are label values that %q writes with escapes the text format
// does not have (\t, \x01, \u2028, \xff...), or that would end a value,
// a label set or a line early if written raw.
var hostile = []string{
	"plain.test", "", "a\tb", "\x01\x02", "\x7f", "del\x1bete", "é.test", "日本.test", "line\u2028sep", "bidi\u202e",
	`back\slash`, `q"uote`, "new\nline", "cr\rret", `\n`, `\"`, `a} 1` + "\nfake_metric 2", "x,y=\"z\"", "\ufeffbom",
}

// TestLabelValuesAreExposition: every label value is written as the
// Prometheus text format says (only \\, \" and \n escaped, the rest raw
// UTF-8), so one odd host name cannot break the whole scrape; a strict
// reader reads every value back unchanged. Invalid UTF-8, which the
// format cannot carry, comes back with U+FFFD in place of the bad bytes.
func TestLabelValuesAreExposition(t *testing.T) {
	r := New()
	values := append(slices.Clone(hostile), "bad\xffutf8")
	for _, v := range values {
		r.Site(v).Observe(200, 1, time.Millisecond)
	}
	r.LabelledGauge("appliance_certificate_expiry_timestamp_seconds", "Expiry, with a \\ and a\nnewline.", func() []Sample {
		var s []Sample
		for i, v := range values {
			s = append(s, Sample{Labels: []string{"name", v, "source", "acme"}, Value: float64(i)})
		}
		return s
	})
	var b strings.Builder
	r.write(&b)
	samples, err := parseExposition(b.String())
	if err != nil {
		t.Fatalf("%v in:\n%s", err, b.String())
	}
	want := map[string]bool{}
	for _, v := range values {
		want[strings.ToValidUTF8(v, "\uFFFD")] = true
	}
	for _, metric := range []string{"appliance_requests_total", "appliance_response_bytes_total", "appliance_request_duration_seconds_count"} {
		got := map[string]bool{}
		for _, s := range samples {
			if s.name == metric {
				got[s.labels["site"]] = true
			}
		}
		if !maps.Equal(got, want) {
			t.Errorf("%s: sites read back %q, want %q", metric, slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(want)))
		}
	}
	n := 0
	for _, s := range samples {
		if s.name == "appliance_certificate_expiry_timestamp_seconds" {
			if i := int(s.value); s.labels["name"] != strings.ToValidUTF8(values[i], "\uFFFD") || s.labels["source"] != "acme" {
				t.Errorf("sample %d: labels %q, want name %q", i, s.labels, values[i])
			}
			n++
		}
	}
	if n != len(values) {
		t.Errorf("%d certificate samples, want %d", n, len(values))
	}
}

type sample struct {
	name   string
	labels map[string]string
	value  float64
}

// parseExposition reads the Prometheus text format (version 0.0.4)
// strictly: HELP and TYPE comments, metric and label names by their
// grammar, label values with only the \\, \" and \n escapes and valid
// UTF-8, no duplicate label, a float value and an optional timestamp.
func parseExposition(text string) ([]sample, error) {
	if !utf8.ValidString(text) {
		return nil, fmt.Errorf("not UTF-8")
	}
	if !strings.HasSuffix(text, "\n") {
		return nil, fmt.Errorf("no final line feed")
	}
	var out []sample
	for i, line := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
		fail := func(why string) ([]sample, error) { return nil, fmt.Errorf("line %d %q: %s", i+1, line, why) }
		if rest, ok := strings.CutPrefix(line, "# "); ok {
			kw, rest, _ := strings.Cut(rest, " ")
			name, arg, _ := strings.Cut(rest, " ")
			switch {
			case kw != "HELP" && kw != "TYPE":
				continue // a plain comment
			case !validName(name, true):
				return fail("bad metric name in " + kw)
			case kw == "TYPE" && !slices.Contains([]string{"counter", "gauge", "histogram", "summary", "untyped"}, arg):
				return fail("bad type")
			case kw == "HELP":
				for j := 0; j < len(arg); j++ {
					if arg[j] == '\\' {
						if j++; j == len(arg) || arg[j] != '\\' && arg[j] != 'n' {
							return fail("bad escape in HELP")
						}
					}
				}
			}
			continue
		}
		if line == "" || line[0] == '#' {
			continue
		}
		end := strings.IndexAny(line, "{ ")
		if end < 0 {
			return fail("no value")
		}
		s := sample{name: line[:end], labels: map[string]string{}}
		if !validName(s.name, true) {
			return fail("bad metric name")
		}
		rest := line[end:]
		if rest[0] == '{' {
			rest = rest[1:]
			for {
				if r, ok := strings.CutPrefix(rest, "}"); ok {
					rest = r
					break
				}
				eq := strings.IndexByte(rest, '=')
				if eq < 0 || !validName(rest[:eq], false) || len(rest) < eq+2 || rest[eq+1] != '"' {
					return fail("bad label name")
				}
				lname := rest[:eq]
				var v strings.Builder
				j := eq + 2
				for ; j < len(rest) && rest[j] != '"'; j++ {
					if rest[j] != '\\' {
						v.WriteByte(rest[j])
						continue
					}
					if j++; j == len(rest) {
						return fail("unterminated escape")
					}
					switch rest[j] {
					case '\\', '"':
						v.WriteByte(rest[j])
					case 'n':
						v.WriteByte('\n')
					default:
						return fail(fmt.Sprintf("invalid escape \\%c", rest[j]))
					}
				}
				if j == len(rest) {
					return fail("unterminated label value")
				}
				if _, dup := s.labels[lname]; dup {
					return fail("duplicate label " + lname)
				}
				s.labels[lname] = v.String()
				rest = rest[j+1:]
				if r, ok := strings.CutPrefix(rest, ","); ok {
					rest = r
				} else if !strings.HasPrefix(rest, "}") {
					return fail("want , or } after a label value")
				}
			}
		}
		fields := strings.Split(strings.TrimPrefix(rest, " "), " ")
		if !strings.HasPrefix(rest, " ") || len(fields) > 2 {
			return fail("want one space, a value and an optional timestamp")
		}
		var err error
		if s.value, err = strconv.ParseFloat(fields[0], 64); err != nil {
			return fail("bad value")
		}
		if len(fields) == 2 {
			if _, err := strconv.ParseInt(fields[1], 10, 64); err != nil {
				return fail("bad timestamp")
			}
		}
		out = append(out, s)
	}
	return out, nil
}

func validName(s string, metric bool) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c == '_' || metric && c == ':' || i > 0 && '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}
