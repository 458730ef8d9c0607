package vhost

import "testing"

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
