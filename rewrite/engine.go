package rewrite

import (
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"path"
	"strings"

	"appliance/internal/httpx"
	"appliance/vhost"
)

// Rules are one site's compiled rules.
type Rules struct {
	RedirectTo string // whole-host redirect target: scheme://host[:port]
	// TrailingSlash "add" redirects /x to /x/ unless /x is a file (sites
	// of dir/index.html); "remove" redirects /x/ to /x unless it is a
	// directory (sites with clean URLs).
	TrailingSlash   string
	Fallback        string // single-page-app shell, e.g. "/index.html"
	SecurityHeaders string // "", "off", "basic" or "strict"
	Redirects       []*Redirect
	Rewrites        []*Rewrite
	Headers         []*Headers
	Access          []*Access
	Auth            []*Auth
	CORS            []*CORS
}

// Exists reports whether a clean URL path names a file or a directory;
// dir tells which. The file server provides it.
type Exists func(path string) (exists, dir bool)

// Engine applies Rules in front of a handler.
type Engine struct {
	rules    Rules
	next     http.Handler
	exists   Exists
	preset   [][2]string
	redirect string // RedirectTo without a trailing slash
}

// New returns a handler applying rules before next, or next itself when
// there are no rules.
func New(rules Rules, exists Exists, next http.Handler) (http.Handler, error) {
	e := &Engine{rules: rules, next: next, exists: exists, preset: presets[rules.SecurityHeaders]}
	for _, check := range []func() error{
		func() error { return CheckPreset(rules.SecurityHeaders) },
		func() error { return CheckTrailingSlash(rules.TrailingSlash) },
		func() error { return CheckFallback(rules.Fallback) },
		func() error { return CheckRedirectTo(rules.RedirectTo) },
	} {
		if err := check(); err != nil {
			return nil, err
		}
	}
	e.redirect = strings.TrimSuffix(rules.RedirectTo, "/")
	if e.empty() {
		return next, nil
	}
	return e, nil
}

// CheckRedirectTo validates a whole-host redirect target: "" (none) or
// http(s)://host[:port] without a path.
func CheckRedirectTo(s string) error {
	if s == "" {
		return nil
	}
	if !strings.HasPrefix(s, "https://") && !strings.HasPrefix(s, "http://") {
		return fmt.Errorf("redirect_to %q: want http(s)://host", s)
	}
	rest := s[strings.Index(s, "//")+2:]
	host, p, _ := strings.Cut(rest, "/")
	if host == "" || strings.ContainsAny(host, "$?#\\@ ") || strings.Trim(p, "/") != "" {
		return fmt.Errorf("redirect_to %q: want http(s)://host[:port] without a path", s)
	}
	return nil
}

// CheckFallback validates a single-page-app shell path: "" or a file path.
func CheckFallback(s string) error {
	if s != "" && (!strings.HasPrefix(s, "/") || strings.Contains(s, "..")) {
		return fmt.Errorf("fallback %q must be a file path starting with /", s)
	}
	return nil
}

func (e *Engine) empty() bool {
	r := e.rules
	return r.RedirectTo == "" && r.TrailingSlash == "" && r.Fallback == "" && len(e.preset) == 0 &&
		len(r.Redirects)+len(r.Rewrites)+len(r.Headers)+len(r.Access)+len(r.Auth)+len(r.CORS) == 0
}

func (e *Engine) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if e.redirect != "" {
		e.sendRedirect(w, r, e.redirect+r.URL.EscapedPath()+query(r.URL.RawQuery), statusFor(r, http.StatusMovedPermanently))
		return
	}
	orig := r.URL.Path

	for _, rd := range e.rules.Redirects {
		if m := rd.from.match(orig); m != nil && e.holds(&rd.cond, r, orig) {
			target := rd.to.expand(orig, m)
			if !rd.abs {
				target = local(target)
			}
			if !strings.Contains(rd.to.raw, "?") && r.URL.RawQuery != "" {
				target += "?" + r.URL.RawQuery
			}
			e.sendRedirect(w, r, target, rd.status)
			return
		}
	}

	p, rawQuery := orig, r.URL.RawQuery
	applied := 0
	for _, rw := range e.rules.Rewrites {
		if applied == MaxRewrites {
			break
		}
		if m := rw.from.match(p); m != nil && e.holds(&rw.cond, r, p) {
			target, q, hasQ := rw.to.expandRewrite(p, m)
			if hasQ {
				rawQuery = q
			}
			p = clean(local(target))
			applied++
			if rw.last {
				break
			}
		}
	}

	if pol := e.rules.TrailingSlash; pol != "" && p == orig && p != "/" {
		last := p[strings.LastIndexByte(p, '/')+1:]
		switch {
		case pol == "add" && last != "" && !strings.Contains(last, "."):
			if ok, dir := e.exists(p); !ok || dir { // a file keeps its name
				e.sendRedirect(w, r, local((&urlPath{p + "/"}).escaped())+query(r.URL.RawQuery), statusFor(r, http.StatusMovedPermanently))
				return
			}
		case pol == "remove" && last == "":
			if _, dir := e.exists(p); !dir {
				e.sendRedirect(w, r, local((&urlPath{strings.TrimRight(p, "/")}).escaped())+query(r.URL.RawQuery), statusFor(r, http.StatusMovedPermanently))
				return
			}
		}
	}

	if fb := e.rules.Fallback; fb != "" && !strings.Contains(path.Base(p), ".") {
		if ok, _ := e.exists(p); !ok {
			p = fb
		}
	}

	if len(e.rules.Access) > 0 || len(e.rules.Auth) > 0 {
		if !e.admit(w, r, orig, p) {
			return
		}
	}

	var cors *CORS
	if origin := r.Header["Origin"]; len(origin) == 1 {
		for _, c := range e.rules.CORS {
			if c.path.matches(p) {
				cors = c
				break
			}
		}
		if cors != nil && r.Method == http.MethodOptions && len(r.Header["Access-Control-Request-Method"]) > 0 {
			e.preflight(w, r, cors, origin[0])
			return
		}
	}

	if p != orig || rawQuery != r.URL.RawQuery {
		r2 := *r
		u := *r.URL
		u.Path, u.RawPath, u.RawQuery = p, "", rawQuery
		r2.URL = &u
		r = &r2
	}

	var rules []*Headers
	for _, h := range e.rules.Headers {
		if h.path.matches(p) {
			rules = append(rules, h)
		}
	}
	if len(rules) == 0 && cors == nil && len(e.preset) == 0 {
		e.next.ServeHTTP(w, r)
		return
	}
	hw := &headerWriter{ResponseWriterWrapper: httpx.ResponseWriterWrapper{ResponseWriter: w}, e: e, rules: rules, cors: cors, origin: r.Header.Get("Origin")}
	e.next.ServeHTTP(hw, r)
	if !hw.applied {
		hw.apply()
	}
}

// local makes a path-only redirect or rewrite target start with exactly
// one slash: "//host/x" or "/\\host/x" in a Location would send the
// client to another host.
func local(target string) string {
	return "/" + strings.TrimLeft(target, "/\\")
}

// clean puts a rewritten path in canonical form, as the request's own
// path already is, so that access and auth rules see what is served.
func clean(p string) string {
	if !strings.Contains(p, "//") && !strings.Contains(p, "/.") {
		return p
	}
	c := path.Clean(p)
	if strings.HasSuffix(p, "/") && c != "/" {
		c += "/"
	}
	return c
}

// hasPrefixFold is strings.HasPrefix ignoring case: access and auth rules
// also cover "/PRIVATE/", which a case-insensitive file system serves as
// "/private/".
func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

func query(raw string) string {
	if raw == "" {
		return ""
	}
	return "?" + raw
}

// statusFor keeps the method of non-GET requests across a redirect.
func statusFor(r *http.Request, status int) int {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		if status == http.StatusMovedPermanently {
			return http.StatusPermanentRedirect
		}
		if status == http.StatusFound {
			return http.StatusTemporaryRedirect
		}
	}
	return status
}

type urlPath struct{ p string }

func (u *urlPath) escaped() string {
	var b strings.Builder
	escapeCapture(&b, u.p)
	return b.String()
}

// holds evaluates a rule's conditions.
func (e *Engine) holds(c *cond, r *http.Request, p string) bool {
	if len(c.methods) > 0 {
		found := false
		for _, m := range c.methods {
			if m == r.Method {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	if c.host != nil && !c.host.matches(vhost.Normalize(r.Host)) {
		return false
	}
	if c.ifHeader != "" && len(r.Header[c.ifHeader]) == 0 {
		return false
	}
	if c.ifExists || c.ifMissing {
		ok, _ := e.exists(p)
		if ok != c.ifExists {
			return false
		}
	}
	return true
}

func (e *Engine) sendRedirect(w http.ResponseWriter, r *http.Request, target string, status int) {
	h := w.Header()
	h["Location"] = []string{target}
	h["Cache-Control"] = []string{"no-cache"}
	vhost.Error(w, r, status)
}

// admit applies the IP and Basic-auth rules to the path the client asked
// for and the one it was rewritten to: a rewrite cannot open a way around
// them.
func (e *Engine) admit(w http.ResponseWriter, r *http.Request, paths ...string) bool {
	var addr netip.Addr
	if len(e.rules.Access) > 0 {
		ap, err := netip.ParseAddrPort(r.RemoteAddr)
		if err == nil {
			addr = ap.Addr().Unmap()
		}
	}
	for _, p := range paths {
		for _, a := range e.rules.Access {
			if a.covers(p) && (!addr.IsValid() || !a.allows(addr)) {
				vhost.Error(w, r, http.StatusForbidden)
				return false
			}
		}
		for _, a := range e.rules.Auth {
			if a.covers(p) && !a.check(r) {
				w.Header()["Www-Authenticate"] = a.header
				w.Header()["Cache-Control"] = []string{"no-store"}
				vhost.Error(w, r, http.StatusUnauthorized)
				return false
			}
		}
	}
	return true
}

func (e *Engine) preflight(w http.ResponseWriter, r *http.Request, c *CORS, origin string) {
	h := w.Header()
	if allowed := c.allowOrigin(origin); allowed != "" {
		h.Set("Access-Control-Allow-Origin", allowed)
		h.Set("Access-Control-Allow-Methods", "GET, HEAD, OPTIONS")
		if rh := r.Header.Get("Access-Control-Request-Headers"); rh != "" && !strings.ContainsAny(rh, "\r\n") {
			h.Set("Access-Control-Allow-Headers", rh)
		}
		h.Set("Access-Control-Max-Age", c.maxAge)
	}
	h.Add("Vary", "Origin")
	w.WriteHeader(http.StatusNoContent)
}

// headerWriter applies header rules when the next handler writes its
// header, so that they override what it set.
type headerWriter struct {
	httpx.ResponseWriterWrapper
	e       *Engine
	rules   []*Headers
	cors    *CORS
	origin  string
	applied bool
}

func (w *headerWriter) apply() {
	w.applied = true
	h := w.ResponseWriter.Header()
	for _, kv := range w.e.preset {
		if _, ok := h[kv[0]]; !ok {
			h[kv[0]] = []string{kv[1]}
		}
	}
	if w.cors != nil {
		if allowed := w.cors.allowOrigin(w.origin); allowed != "" {
			h["Access-Control-Allow-Origin"] = []string{allowed}
		}
		v := h["Vary"]
		h["Vary"] = append(v[:len(v):len(v)], "Origin")
	}
	for _, rule := range w.rules {
		for _, k := range rule.remove {
			delete(h, k)
		}
		for _, kv := range rule.set {
			h[kv[0]] = []string{kv[1]}
		}
	}
}

func (w *headerWriter) WriteHeader(code int) {
	if !w.applied {
		w.apply()
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *headerWriter) Write(p []byte) (int, error) {
	if !w.applied {
		w.apply()
	}
	return w.ResponseWriter.Write(p)
}

// ReadFrom keeps sendfile: the writer underneath gets the file itself.
func (w *headerWriter) ReadFrom(r io.Reader) (int64, error) {
	if !w.applied {
		w.apply()
	}
	return w.ResponseWriterWrapper.ReadFrom(r)
}
