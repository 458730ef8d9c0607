package vhost

import (
	"strings"
	"testing"
)

// TestNormalize: the one canonical form of a Host value (or an SNI name)
// that routing, certificates, rules and the file server compare.
func TestNormalize(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"example.test", "example.test"},
		{"Example.TEST", "example.test"},
		{"example.test.", "example.test"},
		{"example.test:8080", "example.test"},
		{"Example.Test.:443", "example.test"},
		{"192.0.2.1", "192.0.2.1"},
		{"192.0.2.1:80", "192.0.2.1"},
		{"::1", "::1"},
		{"[::1]", "::1"},
		{"[::1]:8080", "::1"},
		{"2001:DB8::1", "2001:db8::1"},
		{"[2001:DB8::1]", "2001:db8::1"},
		{"[2001:db8::1]:443", "2001:db8::1"},
		{"::ffff:192.0.2.1", "::ffff:192.0.2.1"},
		{"", ""},
	} {
		if got := Normalize(tc.in); got != tc.want {
			t.Errorf("Normalize(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestNormalizeAllocs: Normalize runs several times a request (the 421
// check, the router); a Host in lower case allocates nothing, whatever
// it strips, and one with capitals, its lowered copy once.
func TestNormalizeAllocs(t *testing.T) {
	for _, tc := range []struct {
		host  string
		wantN float64
	}{
		{"example.test", 0}, {"a-b_c.example.test", 0}, {"192.0.2.1", 0}, {"localhost", 0},
		{"example.test:443", 0}, {"127.0.0.1:8443", 0}, {"example.test.", 0}, {"[2001:db8::1]:443", 0}, {"::1", 0}, {"", 0},
		{"Example.test", 1}, {"[2001:DB8::1]", 1},
	} {
		if n := testing.AllocsPerRun(100, func() { Normalize(tc.host) }); n != tc.wantN {
			t.Errorf("Normalize(%q): %v allocations, want %v", tc.host, n, tc.wantN)
		}
	}
}

// FuzzNormalize: the one pass that returns a usual Host as it is agrees
// with the full normalization on any value.
func FuzzNormalize(f *testing.F) {
	for _, s := range []string{"example.test", "Example.TEST.:443", "[::1]:80", "a.", ".", "a..b", "x:1:2", "[", "_-.", "\\xff",
		"127.0.0.1:8443", "a.test:", ":443", "a.test.:1", "a:b", "a:1a"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, host string) {
		if got, want := Normalize(host), normalize(host); got != want {
			t.Errorf("Normalize(%q) = %q, the full normalization %q", host, got, want)
		}
	})
}

// TestNormalizeExhaustive: the one pass agrees with the full
// normalization on every value of up to 5 of the pieces that decide a
// Host's form: letters of both cases, digits, '.', ':', the brackets,
// '%' (a zone), '-', '_', a space, a control byte, DEL, a lone
// non-ASCII byte and the Kelvin sign (which strings.ToLower makes 'k').
// 16^0 + ... + 16^5 = 1,118,481 values; a mismatch would route a
// request to another site than the one the 421 check or a host rule
// saw.
func TestNormalizeExhaustive(t *testing.T) {
	pieces := []string{"a", "Z", "0", ".", ":", "[", "]", "%", "-", "_", " ", "\x01", "\x7f", "\xff", "\u212a", "k"}
	n, host := 0, make([]string, 0, 5)
	var walk func()
	walk = func() {
		s := strings.Join(host, "")
		n++
		if got, want := Normalize(s), normalize(s); got != want {
			t.Fatalf("Normalize(%q) = %q, the full normalization %q", s, got, want)
		}
		if len(host) == cap(host) {
			return
		}
		for _, p := range pieces {
			host = append(host, p)
			walk()
			host = host[:len(host)-1]
		}
	}
	walk()
	if n != 1118481 {
		t.Fatalf("%d values, want 1118481", n)
	}
}
