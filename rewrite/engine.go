package rewrite

import (
	"net/http"
	"net/netip"
	"path"
	"strings"

	"appliance/internal/httpx"
	"appliance/vhost"
)

// Rules are one site's compiled rules.
type Rules struct {
	RedirectTo      string // whole-host redirect target, as ParseRedirectTo returns it
	TrailingSlash   TrailingSlash
	Fallback        string // single-page-app shell, as ParseFallback returns it
	SecurityHeaders SecurityPreset
	Redirects       []*Redirect
	Rewrites        []*Rewrite
	Headers         []*Headers
	Access          []*Access
	Auth            []*Auth
	CORS            []*CORS
	// RedirectCacheControl is the Cache-Control of permanent redirects
	// (301, 308); "" is httpx.DefaultRedirectCacheControl. Temporary ones
	// are never stored (httpx.RedirectCacheControl).
	RedirectCacheControl string
	// Files are the site's own _redirects and _headers (nil: not read).
	// Their redirects and rewrites come after the rewrites above, their
	// headers before the header rules above: the configuration is the
	// operator's and has the last word.
	Files      *SiteFiles
	Respond    []*Respond
	RateLimits []*RateLimit
	// MaxClients bounds the client addresses the site's auth lockout
	// remembers (0: defaultMaxClients).
	MaxClients int
}

// engine applies Rules in front of a handler.
type engine struct {
	rules  Rules
	next   http.Handler
	exists func(path string) (exists, dir bool)
	preset [][2]string

	redirectControl []string   // Cache-Control of permanent redirects
	langs           []string   // every language the rules' conditions name
	pages           pageServer // sends the page of a fixed response (nil: next cannot)
	// lockout counts failed Basic-auth attempts by client (nil without
	// auth rules).
	lockout *lockout
}

// New returns a handler applying rules before next, or next itself when
// there are no rules. exists reports whether a clean URL path names a
// file or a directory, and dir tells which; the file server provides it.
// When next can send a site file with a status (ServePage, as
// serve.Handler can), fixed responses with a page use it.
// The rules come compiled (NewRedirect, ParseTrailingSlash and the
// like), so New cannot fail.
func New(rules Rules, exists func(path string) (exists, dir bool), next http.Handler) http.Handler {
	e := &engine{rules: rules, next: next, exists: exists, preset: presets[rules.SecurityHeaders], langs: ruleLanguages(rules)}
	e.redirectControl = httpx.Permanent(rules.RedirectCacheControl)
	if e.empty() {
		return next
	}
	e.pages, _ = next.(pageServer)
	if len(rules.Auth) > 0 {
		e.lockout = &lockout{newClients[failures](rules.MaxClients)}
	}
	return e
}

func (e *engine) empty() bool {
	r := e.rules
	return r.Files == nil && r.RedirectTo == "" && r.TrailingSlash == TrailingSlashKeep && r.Fallback == "" && len(e.preset) == 0 &&
		len(r.Redirects)+len(r.Rewrites)+len(r.Headers)+len(r.Access)+len(r.Auth)+len(r.CORS)+len(r.Respond)+len(r.RateLimits) == 0
}

// ServeHTTP applies the phases in the order the rules are documented:
// each either answers the request itself or hands on the path it leaves.
func (e *engine) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	limited := false // a rate limit covered the path asked for
	if len(e.rules.RateLimits) > 0 {
		var within bool
		if limited, within = e.withinRate(w, r, r.URL.Path); !within {
			return
		}
	}
	if e.rules.RedirectTo != "" {
		e.redirectHost(w, r)
		return
	}
	var lc *langChoice
	if len(e.langs) > 0 {
		vw := &varyWriter{} // one allocation for the writer and the choice
		lc = &vw.lc
		vw.HookWriter = httpx.HookWriter{ResponseWriterWrapper: httpx.ResponseWriterWrapper{ResponseWriter: w}, Hook: vw}
		w = vw
	}
	orig := r.URL.Path
	if e.redirectPattern(w, r, orig, lc) {
		return
	}
	p, rawQuery, status := e.rewrite(r, orig, lc)
	if status != 0 {
		vhost.Error(w, r, status)
		return
	}
	var site *siteRules
	override := 0 // the status a 404 or 410 rule of _redirects serves its target with
	if e.rules.Files != nil {
		site = e.rules.Files.current()
		if site.redirects != nil {
			var done bool
			if p, rawQuery, override, done = e.siteRedirects(w, r, site.redirects, p, rawQuery); done {
				return
			}
		}
	}
	if p == orig && e.redirectTrailingSlash(w, r, p) {
		return
	}
	p = e.fallback(p)
	if !limited && p != orig && len(e.rules.RateLimits) > 0 {
		if _, within := e.withinRate(w, r, p); !within {
			return
		}
	}
	if !e.admit(w, r, orig, p) {
		return
	}
	cors := e.corsFor(r, p)
	if cors != nil && isPreflight(r) {
		e.preflight(w, r, cors, r.Header["Origin"][0])
		return
	}
	var next http.Handler = e.next
	if rs := e.respondFor(orig, p); rs != nil {
		next = &fixed{rs, e.pages}
	}
	e.serveWithHeaders(w, withPath(r, p, rawQuery), p, cors, next, site, override)
}

// withinRate takes a token from the client's bucket of the first rate
// limit covering p; it reports whether a rule covered p, and whether
// there was a token, or else has answered 429. ServeHTTP asks it about
// the path asked for first and, if no rule covers that, about the path
// rewrites leave: a request counts once, and a rewrite is no way around
// a limit.
func (e *engine) withinRate(w http.ResponseWriter, r *http.Request, p string) (covered, within bool) {
	for _, l := range e.rules.RateLimits {
		if l.covers(p) {
			if wait := l.take(clientKey(r.RemoteAddr)); wait > 0 {
				tooMany(w, r, wait)
				return true, false
			}
			return true, true
		}
	}
	return false, true
}

// respondFor returns the first fixed response covering the path asked
// for or, failing that, the rewritten one (nil: none).
func (e *engine) respondFor(orig, p string) *Respond {
	for _, path := range [2]string{orig, p} {
		for _, rs := range e.rules.Respond {
			if rs.covers(path) {
				return rs
			}
		}
		if p == orig {
			break
		}
	}
	return nil
}

// fixed is a fixed response as the handler the header rules wrap.
type fixed struct {
	rs    *Respond
	pages pageServer
}

func (f *fixed) ServeHTTP(w http.ResponseWriter, r *http.Request) { f.rs.serve(w, r, f.pages) }

// redirectHost sends every request to the same path and query on the
// redirect_to host.
func (e *engine) redirectHost(w http.ResponseWriter, r *http.Request) {
	e.sendRedirect(w, r, e.rules.RedirectTo+r.URL.EscapedPath()+query(r.URL.RawQuery), statusFor(r, http.StatusMovedPermanently))
}

// redirectPattern answers with the first redirect rule that matches the
// path the client asked for; it reports whether one did.
func (e *engine) redirectPattern(w http.ResponseWriter, r *http.Request, orig string, lc *langChoice) bool {
	for _, rd := range e.rules.Redirects {
		if m := rd.from.match(orig); m != nil && e.holds(&rd.cond, r, orig, lc) {
			e.sendRedirectRule(w, r, rd, orig, m)
			return true
		}
	}
	return false
}

// sendRedirectRule answers with rd's target for p, which matched as m;
// the request's query goes along unless the target has its own.
func (e *engine) sendRedirectRule(w http.ResponseWriter, r *http.Request, rd *Redirect, p string, m []int) {
	target := rd.to.expand(p, m)
	if !rd.abs {
		target = local(target)
	}
	if !strings.Contains(rd.to.raw, "?") && r.URL.RawQuery != "" {
		target += "?" + r.URL.RawQuery
	}
	e.sendRedirect(w, r, target, rd.status)
}

// rewrite applies the rewrite rules in order, at most maxRewrites of
// them, and returns the path and raw query they leave.
func (e *engine) rewrite(r *http.Request, orig string, lc *langChoice) (p, rawQuery string, status int) {
	p, rawQuery = orig, r.URL.RawQuery
	applied := 0
	for _, rw := range e.rules.Rewrites {
		if applied == maxRewrites {
			break
		}
		if m := rw.from.match(p); m != nil && e.holds(&rw.cond, r, p, lc) {
			if p, rawQuery, status = rw.apply(p, m, rawQuery); status != 0 {
				return "", "", status
			}
			applied++
			if rw.last {
				break
			}
		}
	}
	return p, rawQuery, 0
}

// apply rewrites p, which matched as m, and returns the path and query
// to serve. The path is made canonical again, as the request's own is,
// so that access and auth rules see what is served; a target with no
// canonical form (a ".." a capture made) is refused with its status.
func (rw *Rewrite) apply(p string, m []int, rawQuery string) (string, string, int) {
	target, q, hasQ := rw.to.expandRewrite(p, m)
	if hasQ {
		rawQuery = q
	}
	np, status := httpx.CleanPath(local(target))
	return np, rawQuery, status
}

// redirectTrailingSlash applies the trailing_slash policy to a path no
// rewrite changed; it reports whether it answered.
func (e *engine) redirectTrailingSlash(w http.ResponseWriter, r *http.Request, p string) bool {
	pol := e.rules.TrailingSlash
	if pol == TrailingSlashKeep || p == "/" {
		return false
	}
	last := p[strings.LastIndexByte(p, '/')+1:]
	var target string
	switch {
	case pol == TrailingSlashAdd && last != "" && !strings.Contains(last, "."):
		if ok, dir := e.exists(p); ok && !dir { // a file keeps its name
			return false
		}
		target = p + "/"
	case pol == TrailingSlashRemove && last == "":
		if _, dir := e.exists(p); dir {
			return false
		}
		target = strings.TrimRight(p, "/")
	default:
		return false
	}
	e.sendRedirect(w, r, local((&urlPath{target}).escaped())+query(r.URL.RawQuery), statusFor(r, http.StatusMovedPermanently))
	return true
}

// fallback replaces a missing path without an extension by the
// single-page-app shell.
func (e *engine) fallback(p string) string {
	if fb := e.rules.Fallback; fb != "" && !strings.Contains(path.Base(p), ".") {
		if ok, _ := e.exists(p); !ok {
			return fb
		}
	}
	return p
}

// corsFor returns the CORS rule covering p for a request with one Origin,
// or nil.
func (e *engine) corsFor(r *http.Request, p string) *CORS {
	if len(r.Header["Origin"]) != 1 {
		return nil
	}
	for _, c := range e.rules.CORS {
		if c.path.matches(p) {
			return c
		}
	}
	return nil
}

// isPreflight reports whether r is a CORS preflight request (Fetch
// standard, "CORS-preflight request"); the caller has checked Origin.
func isPreflight(r *http.Request) bool {
	return r.Method == http.MethodOptions && len(r.Header["Access-Control-Request-Method"]) > 0
}

// withPath returns r, or a shallow copy of it carrying the rewritten path
// and query.
func withPath(r *http.Request, p, rawQuery string) *http.Request {
	if p == r.URL.Path && rawQuery == r.URL.RawQuery {
		return r
	}
	r2 := *r
	u := *r.URL
	u.Path, u.RawPath, u.RawQuery = p, "", rawQuery
	r2.URL = &u
	return &r2
}

// serveWithHeaders calls next (the next handler, or a fixed response),
// applying the security preset, the CORS response headers and the header
// rules that match p. With override, next's 200 goes out with that status.
func (e *engine) serveWithHeaders(w http.ResponseWriter, r *http.Request, p string, cors *CORS, next http.Handler, site *siteRules, override int) {
	var rules []*Headers
	for _, h := range e.rules.Headers {
		if h.path.matches(p) {
			rules = append(rules, h)
		}
	}
	var files []*fileHeaders
	if site != nil {
		for _, fh := range site.headers {
			if fh.matches(p) {
				files = append(files, fh)
			}
		}
	}
	serve := next.ServeHTTP
	if override != 0 {
		serve = func(w http.ResponseWriter, r *http.Request) { withStatus(next, w, r, override) }
	}
	if len(rules) == 0 && len(files) == 0 && cors == nil && len(e.preset) == 0 {
		serve(w, r)
		return
	}
	hw := &headerWriter{e: e, rules: rules, files: files, cors: cors, origin: r.Header.Get("Origin")}
	hw.HookWriter = httpx.HookWriter{ResponseWriterWrapper: httpx.ResponseWriterWrapper{ResponseWriter: w}, Hook: hw}
	serve(hw, r)
	hw.Finish()
}

// local makes a path-only redirect or rewrite target start with exactly
// one slash: "//host/x" or "/\\host/x" in a Location would send the
// client to another host.
func local(target string) string {
	return "/" + strings.TrimLeft(target, "/\\")
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

// holds evaluates a rule's conditions, the languages last: a response
// depends on Accept-Language only when the rest held.
func (e *engine) holds(c *cond, r *http.Request, p string, lc *langChoice) bool {
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
	return len(c.languages) == 0 || e.prefers(lc, r.Header["Accept-Language"], c.languages)
}

// sendRedirect answers with a redirect to target, cacheable if it is
// permanent; like every redirect here, it carries no validator.
func (e *engine) sendRedirect(w http.ResponseWriter, r *http.Request, target string, status int) {
	h := w.Header()
	h["Location"] = []string{target}
	h["Cache-Control"] = httpx.RedirectCacheControl(status, e.redirectControl)
	vhost.Error(w, r, status)
}

// admit applies the IP and Basic-auth rules to the path the client asked
// for and the one it was rewritten to: a rewrite cannot open a way around
// them.
func (e *engine) admit(w http.ResponseWriter, r *http.Request, paths ...string) bool {
	if len(e.rules.Access) == 0 && len(e.rules.Auth) == 0 {
		return true
	}
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
			if a.covers(p) && !e.authorized(w, r, a) {
				return false
			}
		}
	}
	return true
}

// authorized checks r's credentials against a, unless its client is
// locked out for failing too often; it reports whether they passed, or
// else has answered 401 (429 for a locked-out client, 503 while
// password hashing is busy).
func (e *engine) authorized(w http.ResponseWriter, r *http.Request, a *Auth) bool {
	ok, err := a.check(r, e.lockout, clientKey(r.RemoteAddr))
	if ref, refused := err.(*Refused); refused {
		refuse(w, r, ref.status, ref.RetryAfter())
		return false
	}
	if !ok {
		w.Header()["Www-Authenticate"] = a.header
		w.Header()["Cache-Control"] = hdrNoStore
		vhost.Error(w, r, http.StatusUnauthorized)
		return false
	}
	return true
}

func (e *engine) preflight(w http.ResponseWriter, r *http.Request, c *CORS, origin string) {
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
	httpx.HookWriter
	e      *engine
	rules  []*Headers
	files  []*fileHeaders // the site's _headers blocks that match
	cors   *CORS
	origin string
}

// BeforeHeader applies the preset, CORS, _headers and header rules.
func (w *headerWriter) BeforeHeader(h http.Header, status int) int {
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
	applyFileHeaders(h, w.files)
	for _, rule := range w.rules {
		for _, k := range rule.remove {
			delete(h, k)
		}
		for _, kv := range rule.set {
			h[kv[0]] = []string{kv[1]}
		}
	}
	return status
}
