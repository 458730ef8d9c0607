// Package rewrite applies a site's rules before its files are served:
// whole-host and pattern redirects, internal rewrites, trailing-slash
// policy, single-page-app fallback, IP allow/deny lists, HTTP Basic
// authentication, CORS and response headers, from the configuration and
// from the site's own _redirects and _headers files. It is an
// http.Handler in front of the next one and knows nothing of how that
// one serves.
package rewrite

import (
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"

	"appliance/internal/httpx"
	"appliance/vhost"
)

// maxRewrites bounds how many rewrite rules one request goes through, so
// that no set of rules can loop.
const maxRewrites = 10

// Cond restricts a rule to some requests; the zero value matches all.
type Cond struct {
	Methods   []string // upper-case method names
	Host      string   // RE2 on the lower-case host without port
	IfExists  bool     // the request path names a file or directory
	IfMissing bool     // it does not
	IfHeader  string   // the request carries this header
	Languages []string // the request prefers one of these languages (language.go)
}

type cond struct {
	methods             []string
	host                *pattern
	ifExists, ifMissing bool
	ifHeader            string
	languages           []string
}

func compileCond(c Cond) (cond, error) {
	out := cond{ifExists: c.IfExists, ifMissing: c.IfMissing, ifHeader: http.CanonicalHeaderKey(c.IfHeader)}
	if c.IfExists && c.IfMissing {
		return out, fmt.Errorf("if_exists and if_missing exclude each other")
	}
	for _, m := range c.Methods {
		if m == "" || strings.ToUpper(m) != m || strings.ContainsAny(m, " \t/") {
			return out, fmt.Errorf("invalid method %q (upper case, like GET)", m)
		}
		out.methods = append(out.methods, m)
	}
	var err error
	if out.languages, err = compileLanguages(c.Languages); err != nil {
		return out, err
	}
	if c.Host != "" {
		p, err := compilePattern(c.Host)
		if err != nil {
			return out, fmt.Errorf("host: %v", err)
		}
		out.host = p
	}
	return out, nil
}

// Redirect sends matching requests elsewhere.
type Redirect struct {
	from   *pattern
	to     *template
	status int
	abs    bool // the target has its own scheme and authority
	cond   cond
}

// NewRedirect compiles a redirect rule. to is an absolute http(s) URL
// whose scheme and authority are literal, or a path starting with "/".
// hosts are the site's names: a target that can lead back to the rule
// itself is refused.
func NewRedirect(from, to string, status int, c Cond, hosts []string) (*Redirect, error) {
	if status == 0 {
		status = http.StatusMovedPermanently
	}
	switch status {
	case 301, 302, 303, 307, 308:
	default:
		return nil, fmt.Errorf("redirect status %d: want 301, 302, 303, 307 or 308", status)
	}
	p, err := compilePattern(from)
	if err != nil {
		return nil, err
	}
	r := &Redirect{from: p, status: status}
	if r.cond, err = compileCond(c); err != nil {
		return nil, err
	}
	var local string
	if r.abs, local, err = redirectTarget(to, hosts); err != nil {
		return nil, err
	}
	if r.to, err = compileTemplate(to, p); err != nil {
		return nil, err
	}
	if local != "" {
		// Fill every capture with a plain word: if the rule matches its own
		// target, following it would loop.
		sample, _, _ := strings.Cut(sampleOf(local, p), "?")
		if p.matches(sample) && r.cond.ifHeader == "" && r.cond.host == nil && !r.cond.ifExists && !r.cond.ifMissing {
			return nil, fmt.Errorf("redirect %q -> %q loops: the target matches the pattern", from, to)
		}
	}
	return r, nil
}

// redirectTarget checks a redirect target and returns whether it is
// absolute and the path part that could lead back to this site ("" when
// it goes to another host).
func redirectTarget(to string, hosts []string) (abs bool, local string, err error) {
	switch {
	case strings.HasPrefix(to, "https://") || strings.HasPrefix(to, "http://"):
		rest := to[strings.Index(to, "//")+2:]
		authority, path, hasPath := strings.Cut(rest, "/")
		if authority == "" || strings.ContainsAny(authority, "$?#\\@") {
			return false, "", fmt.Errorf("redirect target %q: the host must be written out, without captures", to)
		}
		if !hasPath || !slices.Contains(hosts, vhost.Normalize(authority)) {
			return true, "", nil // no path, or another host: no loop to check here
		}
		return true, "/" + path, nil
	case strings.HasPrefix(to, "/") && !strings.HasPrefix(to, "//") && !strings.HasPrefix(to, "/\\"):
		return false, to, nil
	}
	return false, "", fmt.Errorf("redirect target %q: want a path starting with / or an http(s) URL", to)
}

func sampleOf(to string, p *pattern) string {
	t, err := compileTemplate(to, p)
	if err != nil {
		return to
	}
	var b strings.Builder
	for _, part := range t.parts {
		if part.group == 0 {
			b.WriteString(part.lit)
		} else {
			b.WriteString("x")
		}
	}
	return b.String()
}

// Rewrite changes the path (and query) the next handler sees.
type Rewrite struct {
	from *pattern
	to   *template
	last bool
	cond cond
}

// NewRewrite compiles an internal rewrite; to must start with "/". last
// stops the rules after this one.
func NewRewrite(from, to string, last bool, c Cond) (*Rewrite, error) {
	p, err := compilePattern(from)
	if err != nil {
		return nil, err
	}
	if !strings.HasPrefix(to, "/") {
		return nil, fmt.Errorf("rewrite target %q: want a path starting with /", to)
	}
	r := &Rewrite{from: p, last: last}
	if r.cond, err = compileCond(c); err != nil {
		return nil, err
	}
	if r.to, err = compileTemplate(to, p); err != nil {
		return nil, err
	}
	return r, nil
}

// Headers changes response header fields on matching paths.
type Headers struct {
	path   *pattern
	set    [][2]string
	remove []string
}

// NewHeaders compiles a header rule for a path glob ("/assets/**") or,
// if match is set, an RE2 pattern.
func NewHeaders(glob, match string, set map[string]string, remove []string) (*Headers, error) {
	var (
		p   *pattern
		err error
	)
	switch {
	case glob != "" && match != "":
		return nil, fmt.Errorf("give path or match, not both")
	case match != "":
		p, err = compilePattern(match)
	default:
		if glob == "" {
			glob = "/**"
		}
		p, err = globPattern(glob)
	}
	if err != nil {
		return nil, err
	}
	h := &Headers{path: p}
	for _, k := range slices.Sorted(mapsKeys(set)) {
		if err := checkField(k, set[k]); err != nil {
			return nil, err
		}
		h.set = append(h.set, [2]string{http.CanonicalHeaderKey(k), set[k]})
	}
	for _, k := range remove {
		if err := checkField(k, ""); err != nil {
			return nil, err
		}
		h.remove = append(h.remove, http.CanonicalHeaderKey(k))
	}
	return h, nil
}

func mapsKeys(m map[string]string) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func checkField(name, value string) error {
	if name == "" || strings.ContainsAny(name, " \t\r\n:") {
		return fmt.Errorf("invalid header name %q", name)
	}
	if strings.ContainsAny(value, "\r\n\x00") {
		return fmt.Errorf("header %s: the value must be one line", name)
	}
	switch http.CanonicalHeaderKey(name) {
	case "Content-Length", "Transfer-Encoding", "Connection", "Content-Range", "Content-Encoding":
		return fmt.Errorf("header %s is the server's to set", name)
	}
	return nil
}

// Access allows or denies clients by address on a path prefix.
type Access struct {
	prefix      string
	allow, deny []netip.Prefix
}

// NewAccess compiles an IP rule: a client in deny is refused; if allow is
// not empty, a client outside it is refused. Entries are CIDR prefixes
// or single addresses.
func NewAccess(prefix string, allow, deny []string) (*Access, error) {
	if err := checkPrefix("access", prefix); err != nil {
		return nil, err
	}
	a := &Access{prefix: prefix}
	for _, l := range []struct {
		in  []string
		out *[]netip.Prefix
	}{{allow, &a.allow}, {deny, &a.deny}} {
		for _, s := range l.in {
			p, err := parsePrefix(s)
			if err != nil {
				return nil, err
			}
			*l.out = append(*l.out, p)
		}
	}
	if len(a.allow) == 0 && len(a.deny) == 0 {
		return nil, fmt.Errorf("access %q: give allow or deny", prefix)
	}
	return a, nil
}

// checkPrefix refuses a rule path that no canonical request path can
// match, such as "/a//b/" or "/a/../b/": a rule written so would protect
// nothing.
func checkPrefix(kind, prefix string) error {
	if !strings.HasPrefix(prefix, "/") {
		return fmt.Errorf("%s path %q must start with /", kind, prefix)
	}
	if c, status := httpx.CleanPath(prefix); status != 0 || c != prefix {
		return fmt.Errorf("%s path %q is not in canonical form (no empty, \".\" or \"..\" segments, no backslash)", kind, prefix)
	}
	return nil
}

// covers reports whether the rule applies to path: the prefix itself, with
// or without its trailing slash, and everything below it.
func (a *Access) covers(path string) bool {
	return hasPrefixFold(path, a.prefix) || strings.EqualFold(path, strings.TrimSuffix(a.prefix, "/"))
}

func parsePrefix(s string) (netip.Prefix, error) {
	if s == "all" {
		return netip.Prefix{}, nil // matches everything, see contains
	}
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return p, fmt.Errorf("invalid CIDR %q", s)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("invalid address %q", s)
	}
	return netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()), nil
}

func contains(list []netip.Prefix, a netip.Addr) bool {
	for _, p := range list {
		if !p.IsValid() || p.Contains(a) {
			return true
		}
	}
	return false
}

func (a *Access) allows(addr netip.Addr) bool {
	if contains(a.deny, addr) {
		return false
	}
	return len(a.allow) == 0 || contains(a.allow, addr)
}

// CORS answers cross-origin requests on matching paths.
type CORS struct {
	path    *pattern
	origins []string // "*" allows any
	maxAge  string
}

// NewCORS compiles a CORS rule for a path glob.
func NewCORS(glob string, origins []string, maxAge int) (*CORS, error) {
	if glob == "" {
		glob = "/**"
	}
	p, err := globPattern(glob)
	if err != nil {
		return nil, err
	}
	if len(origins) == 0 {
		return nil, fmt.Errorf("cors %q: give origins (\"*\" for any)", glob)
	}
	for _, o := range origins {
		if o == "*" {
			continue
		}
		u, err := url.Parse(o)
		if err != nil || u.Scheme == "" || u.Host == "" || u.Path != "" {
			return nil, fmt.Errorf("cors origin %q: want scheme://host[:port] or *", o)
		}
	}
	if maxAge <= 0 {
		maxAge = 86400
	}
	return &CORS{path: p, origins: origins, maxAge: fmt.Sprint(maxAge)}, nil
}

func (c *CORS) allowOrigin(origin string) string {
	for _, o := range c.origins {
		if o == "*" {
			return "*"
		}
		if strings.EqualFold(o, origin) {
			return origin
		}
	}
	return ""
}
