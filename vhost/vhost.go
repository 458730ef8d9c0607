// Package vhost picks the site that answers a request, by the Host header
// (or the authority of an absolute-form request target): exact names,
// one-label wildcards such as *.example.test, and a catch-all "*".
package vhost

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
)

// Table maps host patterns to values: exact names, one-label wildcards
// and a catch-all. The router uses it for Host headers, the TLS listener
// for SNI names.
type Table[T any] struct {
	exact       map[string]T
	wildcard    map[string]T // keyed by the suffix after "*."
	fallback    T
	hasFallback bool
}

// NewTable returns an empty table.
func NewTable[T any]() *Table[T] {
	return &Table[T]{exact: map[string]T{}, wildcard: map[string]T{}}
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

// Router dispatches requests to the handler of the matching site.
type Router struct {
	t *Table[http.Handler]
}

// New returns an empty router.
func New() *Router { return &Router{t: NewTable[http.Handler]()} }

// Add registers h for a host pattern: "name", "*.suffix" or "*".
// A pattern already taken is an error.
func (rt *Router) Add(pattern string, h http.Handler) error { return rt.t.Add(pattern, h) }

// NormalizePattern validates a host pattern and returns its canonical form.
func NormalizePattern(pattern string) (string, error) {
	if pattern == "*" {
		return pattern, nil
	}
	p := Normalize(pattern)
	name := strings.TrimPrefix(p, "*.")
	if name == "" || strings.ContainsAny(name, "*/ \t") || strings.Contains(name, "..") ||
		strings.HasPrefix(name, ".") || name != p && net.ParseIP(name) != nil {
		return "", fmt.Errorf("invalid host pattern %q: want a name, *.name or *", pattern)
	}
	if strings.ContainsRune(pattern, ':') && net.ParseIP(strings.Trim(pattern, "[]")) == nil {
		return "", fmt.Errorf("invalid host pattern %q: ports are not part of a host", pattern)
	}
	return p, nil
}

// Normalize lowers a Host value and strips its port, IPv6 brackets and a
// trailing dot. It allocates only when the value has upper-case letters.
func Normalize(host string) string {
	if strings.HasPrefix(host, "[") {
		if i := strings.IndexByte(host, ']'); i > 0 {
			host = host[1:i]
		}
	} else if i := strings.IndexByte(host, ':'); i >= 0 && strings.Count(host, ":") == 1 {
		host = host[:i]
	}
	return strings.ToLower(strings.TrimSuffix(host, "."))
}

// Lookup returns the handler for a Host value, or nil.
func (rt *Router) Lookup(host string) http.Handler {
	h, _ := rt.t.Lookup(host)
	return h
}

func (rt *Router) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Host == "" && r.ProtoAtLeast(1, 1) {
		Error(w, r, http.StatusBadRequest) // RFC 9112 3.2: Host is required
		return
	}
	h := rt.Lookup(r.Host)
	if h == nil {
		Error(w, r, http.StatusNotFound) // says nothing of the sites we do have
		return
	}
	h.ServeHTTP(w, r)
}

// Error answers a request that no site serves with status and a short
// plain-text body.
func Error(w http.ResponseWriter, r *http.Request, status int) {
	body := strconv.Itoa(status) + " " + http.StatusText(status) + "\n"
	hd := w.Header()
	hd.Set("Content-Type", "text/plain; charset=utf-8")
	hd.Set("Content-Length", strconv.Itoa(len(body)))
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Cache-Control", "no-cache")
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		io.WriteString(w, body)
	}
}
