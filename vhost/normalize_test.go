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
