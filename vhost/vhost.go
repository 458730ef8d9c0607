// Package vhost picks the site that answers a request, by the Host header
// (or the authority of an absolute-form request target): exact names,
// one-label wildcards such as *.example.test, and a catch-all "*".
package vhost

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// Table maps host patterns to values: exact names, one-label wildcards
// and a catch-all. The router uses it for Host headers, the TLS listener
// for SNI names.
type Table[T any] struct {
	exact       map[string]T
	addrs       map[netip.Addr]T // the exact names that are an address's text (LookupIP)
	wildcard    map[string]T     // keyed by the suffix after "*."
	fallback    T
	hasFallback bool
}

// NewTable returns an empty table.
func NewTable[T any]() *Table[T] {
	return &Table[T]{exact: map[string]T{}, addrs: map[netip.Addr]T{}, wildcard: map[string]T{}}
}

// Add registers v for a host pattern: "name", "*.suffix" or "*".
// A pattern already taken is an error.
func (t *Table[T]) Add(pattern string, v T) error {
	p, err := NormalizePattern(pattern)
	if err != nil {
		return err
	}
	switch {
	case p == "*":
		if t.hasFallback {
			return fmt.Errorf("duplicate catch-all host %q", pattern)
		}
		t.fallback, t.hasFallback = v, true
	case strings.HasPrefix(p, "*."):
		if _, dup := t.wildcard[p[2:]]; dup {
			return fmt.Errorf("duplicate host %q", pattern)
		}
		t.wildcard[p[2:]] = v
	default:
		if _, dup := t.exact[p]; dup {
			return fmt.Errorf("duplicate host %q", pattern)
		}
		t.exact[p] = v
		if a, err := netip.ParseAddr(p); err == nil && a.String() == p {
			t.addrs[a] = v
		}
	}
	return nil
}

// Lookup returns the value for a host (a Host header or an SNI name).
func (t *Table[T]) Lookup(host string) (T, bool) {
	host = Normalize(host)
	if v, ok := t.exact[host]; ok {
		return v, true
	}
	if i := strings.IndexByte(host, '.'); i > 0 {
		if v, ok := t.wildcard[host[i+1:]]; ok {
			return v, true
		}
	}
	return t.fallback, t.hasFallback
}

// LookupIP is Lookup of ip's text (as ip.String writes it, "" for no
// IP): the name a client that connected by address gives the handshake,
// looked up without formatting it. No wildcard can match an address's
// text (its last label is all digits, or it has no dot), and an exact
// name matches it when it is the text of the same address (addrs: IPv4
// as ip.String writes an IPv4-mapped address, IPv6 in RFC 5952 form),
// so only those and the catch-all count.
func (t *Table[T]) LookupIP(ip net.IP) (T, bool) {
	// nil and another length's text ("?" and hexadecimal digits) are no
	// pattern's.
	if a, ok := netip.AddrFromSlice(ip); ok {
		if v, ok := t.addrs[a.Unmap()]; ok {
			return v, true
		}
	}
	return t.fallback, t.hasFallback
}

// Router dispatches requests to the handler of the matching site.
type Router struct {
	t       *Table[http.Handler]
	unknown func(*http.Request)
}

// OnUnknown makes f see each request whose Host no site has, before its
// 404 (to log it; the client is told nothing of the sites).
func (rt *Router) OnUnknown(f func(*http.Request)) { rt.unknown = f }

// New returns an empty router.
func New() *Router { return &Router{t: NewTable[http.Handler]()} }

// Add registers h for a host pattern: "name", "*.suffix" or "*".
// A pattern already taken is an error.
func (rt *Router) Add(pattern string, h http.Handler) error { return rt.t.Add(pattern, h) }

// NormalizePattern validates a host pattern and returns its canonical form
// (lower case, no trailing dot, no IPv6 brackets). A pattern is "*", a
// DNS name, "*." and a DNS name, or an IP address. A name is ASCII
// letters, digits, hyphens and underscores in dot-separated labels of 1
// to 63 bytes, 253 in all, no label starting or ending with a hyphen and
// the last not all digits (that reads as an IPv4 address). Anything else
// (control characters, spaces, punctuation, raw Unicode: an international
// name is written in punycode, as Host headers and SNI carry it) is an
// error, which quotes the pattern with Go escapes.
func NormalizePattern(pattern string) (string, error) {
	if pattern == "*" {
		return pattern, nil
	}
	bad := func(why string) (string, error) {
		return "", fmt.Errorf("invalid host pattern %q: %s", pattern, why)
	}
	if inner, ok := strings.CutPrefix(pattern, "["); ok {
		if i := strings.LastIndex(inner, "]:"); i >= 0 && inner[i+2:] != "" && !strings.ContainsRune(inner[i+2:], ']') {
			return bad("ports are not part of a host")
		}
		inner, ok = strings.CutSuffix(inner, "]")
		if !ok || !strings.Contains(inner, ":") || net.ParseIP(inner) == nil {
			return bad("want an IPv6 address inside brackets")
		}
		return strings.ToLower(inner), nil
	}
	if strings.Contains(pattern, ":") {
		if net.ParseIP(pattern) != nil {
			return strings.ToLower(pattern), nil
		}
		if strings.Count(pattern, ":") == 1 {
			return bad("ports are not part of a host")
		}
		return bad("want a name, *.name, an IP address or *")
	}
	p := strings.TrimSuffix(pattern, ".")
	if net.ParseIP(p) != nil {
		return p, nil // IPv4
	}
	name, _ := strings.CutPrefix(p, "*.")
	if why := checkName(name); why != "" {
		return bad(why)
	}
	return strings.ToLower(p), nil // ASCII only, checked before lowering
}

// checkName says why name is not a DNS host name ("" if it is).
func checkName(name string) string {
	if name == "" {
		return "want a name, *.name, an IP address or *"
	}
	if len(name) > 253 {
		return "a name is at most 253 bytes"
	}
	var label string
	for rest := name; rest != ""; {
		label, rest, _ = strings.Cut(rest, ".")
		if why := checkLabel(label, rest == ""); why != "" {
			return why
		}
	}
	if strings.HasSuffix(name, ".") {
		return "empty label"
	}
	return ""
}

// checkLabel says why label is not a label of a host name ("" if it is);
// last says it is the name's last label, which must not be all digits.
func checkLabel(label string, last bool) string {
	switch {
	case label == "":
		return "empty label"
	case len(label) > 63:
		return "a label is at most 63 bytes"
	case label[0] == '-' || label[len(label)-1] == '-':
		return fmt.Sprintf("label %q starts or ends with a hyphen", label)
	}
	for i := 0; i < len(label); i++ {
		if b := label[i]; !isNameByte(b) {
			if b >= 0x80 {
				return "a name is ASCII: write an international name in punycode (xn--)"
			}
			return fmt.Sprintf("%q is not allowed in a host name (letters, digits, '-', '_' and '.')", string(rune(b)))
		}
	}
	if last && strings.Trim(label, "0123456789") == "" {
		return "the last label is all digits: not a name, and not an IPv4 address either"
	}
	return ""
}

// isNameByte reports whether b may appear in a label: an ASCII letter or
// digit, '-' or '_'.
func isNameByte(b byte) bool {
	return 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9' || b == '-' || b == '_'
}

// Normalize lowers a Host value and strips its port, IPv6 brackets and a
// trailing dot. It allocates only when the value has upper-case letters.
func Normalize(host string) string {
	// The usual value (a lower-case name or an IPv4 address, perhaps
	// with a port) is normal up to its port: one pass over it finds that,
	// per request.
	end := len(host)
	for i := 0; i < len(host); i++ {
		if isNormalByte(host[i]) {
			continue
		}
		if host[i] != ':' || i == 0 || !isPort(host[i+1:]) {
			return normalize(host)
		}
		end = i
		break
	}
	if end > 0 && host[end-1] == '.' {
		return normalize(host)
	}
	return host[:end]
}

// isPort reports whether s is all digits.
func isPort(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// isNormalByte reports whether b may stay as it is in a normal host:
// not upper case, and neither a port's nor brackets' (':', '[').
func isNormalByte(b byte) bool {
	return 'a' <= b && b <= 'z' || '0' <= b && b <= '9' || b == '.' || b == '-' || b == '_'
}

func normalize(host string) string {
	if strings.HasPrefix(host, "[") {
		if i := strings.IndexByte(host, ']'); i > 0 {
			host = host[1:i]
		}
	} else if i := strings.IndexByte(host, ':'); i >= 0 && strings.Count(host, ":") == 1 {
		host = host[:i]
	}
	return strings.ToLower(strings.TrimSuffix(host, "."))
}

// lookup returns the handler for a Host value, or nil.
func (rt *Router) lookup(host string) http.Handler {
	h, _ := rt.t.Lookup(host)
	return h
}

func (rt *Router) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Host == "" && r.ProtoAtLeast(1, 1) {
		Error(w, r, http.StatusBadRequest) // RFC 9112 3.2: Host is required
		return
	}
	h := rt.lookup(r.Host)
	if h == nil {
		if rt.unknown != nil {
			rt.unknown(r)
		}
		Error(w, r, http.StatusNotFound) // says nothing of the sites we do have
		return
	}
	h.ServeHTTP(w, r)
}
