package rewrite

import (
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

// files is a pretend site: path -> is a directory.
var files = map[string]bool{
	"/": true, "/index.html": false, "/docs": true, "/docs/": true, "/docs/legacy/a.html": false,
	"/about.html": false, "/app.js": false, "/LICENSE": false, "/private/x.html": false,
}

func exists(p string) (bool, bool) {
	dir, ok := files[p]
	return ok, ok && (dir || strings.HasSuffix(p, "/"))
}

// echo answers with the path and query it was given.
var echo = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Powered-By", "test")
	io.WriteString(w, r.URL.Path+"?"+r.URL.RawQuery)
})

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func serve(t *testing.T, rules Rules, method, target string, header ...string) *http.Response {
	t.Helper()
	h := New(rules, exists, echo)
	req := httptest.NewRequest(method, target, nil)
	req.RemoteAddr = "192.0.2.10:1234"
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

func text(res *http.Response) string {
	b, _ := io.ReadAll(res.Body)
	return string(b)
}

func TestRedirects(t *testing.T) {
	hosts := []string{"example.test"}
	rules := Rules{Redirects: []*Redirect{
		must(NewRedirect(`^/blog/(\d+)/(.*)$`, "https://blog.example.test/$1/$2", 0, Cond{}, hosts)),
		must(NewRedirect(`^/old/(?P<rest>.*)$`, "/new/${rest}", 308, Cond{}, hosts)),
		must(NewRedirect(`^/search$`, "/find?q=all", 302, Cond{}, hosts)),
		must(NewRedirect(`^/get-only$`, "/elsewhere", 301, Cond{Methods: []string{"GET"}}, hosts)),
		must(NewRedirect(`^/on-www$`, "/apex", 301, Cond{Host: `^www\.`}, hosts)),
		must(NewRedirect(`^/with-cookie$`, "/member", 302, Cond{IfHeader: "Cookie"}, hosts)),
		must(NewRedirect(`^/gone(/.*)?$`, "/missing$1", 301, Cond{IfMissing: true}, hosts)),
		must(NewRedirect(`^/go/(.*)$`, "/$1", 302, Cond{}, hosts)),
		must(NewRedirect(`^/blog/.*$`, "/never-reached", 301, Cond{}, hosts)), // the first match wins
	}}
	tests := []struct {
		name, method, target string
		header               []string
		status               int
		location             string
	}{
		{"numbered captures", "GET", "/blog/2024/hello-world", nil, 301, "https://blog.example.test/2024/hello-world"},
		{"query kept", "GET", "/blog/1/x?utm=1", nil, 301, "https://blog.example.test/1/x?utm=1"},
		{"named capture, status", "GET", "/old/a/b.html", nil, 308, "/new/a/b.html"},
		{"target query replaces", "GET", "/search?q=x", nil, 302, "/find?q=all"},
		{"method condition", "POST", "/get-only", nil, 200, ""},
		{"method condition met", "GET", "/get-only", nil, 301, "/elsewhere"},
		{"host condition", "GET", "http://www.example.test/on-www", nil, 301, "/apex"},
		{"host condition unmet", "GET", "http://example.test/on-www", nil, 200, ""},
		{"header condition", "GET", "/with-cookie", []string{"Cookie", "a=1"}, 302, "/member"},
		{"header condition unmet", "GET", "/with-cookie", nil, 200, ""},
		{"if_missing", "GET", "/gone/x", nil, 301, "/missing/x"},
		{"captures are escaped", "GET", "/go/a%20b%3F?c", nil, 302, "/a%20b%3F?c"},
		{"no protocol-relative target", "GET", "/go//evil.test/x", nil, 302, "/evil.test/x"},
		{"no backslash trick", "GET", "/go/\\evil.test", nil, 302, "/%5Cevil.test"},
		{"no match", "GET", "/other", nil, 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := serve(t, rules, tt.method, tt.target, tt.header...)
			if res.StatusCode != tt.status || res.Header.Get("Location") != tt.location {
				t.Fatalf("%d %q, want %d %q", res.StatusCode, res.Header.Get("Location"), tt.status, tt.location)
			}
			if tt.location != "" {
				checkRedirectCaching(t, res, "max-age=3600")
			}
		})
	}
}

// checkRedirectCaching checks a redirect's cache policy: permanent ones
// (301, 308) cacheable for permanent, temporary ones never stored, and
// no validator on either.
func checkRedirectCaching(t *testing.T, res *http.Response, permanent string) {
	t.Helper()
	want := "no-store"
	if res.StatusCode == 301 || res.StatusCode == 308 {
		want = permanent
	}
	if got := res.Header.Get("Cache-Control"); got != want {
		t.Errorf("%d: Cache-Control %q, want %q", res.StatusCode, got, want)
	}
	for _, k := range []string{"Etag", "Last-Modified"} {
		if v := res.Header.Get(k); v != "" {
			t.Errorf("%d: a redirect with %s %q", res.StatusCode, k, v)
		}
	}
}

// TestRedirectCacheControl: every kind of redirect takes the site's
// lifetime for permanent redirects.
func TestRedirectCacheControl(t *testing.T) {
	const cc = "max-age=60, public"
	rules := Rules{RedirectCacheControl: cc, TrailingSlash: TrailingSlashAdd, Redirects: []*Redirect{
		must(NewRedirect(`^/p$`, "/q", 301, Cond{}, nil)),
		must(NewRedirect(`^/t$`, "/u", 307, Cond{}, nil)),
		must(NewRedirect(`^/s$`, "/u", 303, Cond{}, nil)),
	}}
	for _, c := range []struct {
		method, target string
		rules          Rules
		status         int
	}{
		{"GET", "/p", rules, 301},
		{"POST", "/p", rules, 301}, // a rule keeps its status
		{"GET", "/t", rules, 307},
		{"GET", "/s", rules, 303},
		{"GET", "/docs", rules, 301}, // trailing_slash
		{"PUT", "/docs", rules, 308}, // trailing_slash
		{"GET", "/x", Rules{RedirectTo: "https://example.test", RedirectCacheControl: cc}, 301}, // redirect_to
	} {
		res := serve(t, c.rules, c.method, c.target)
		if res.StatusCode != c.status {
			t.Errorf("%s %s: %d, want %d", c.method, c.target, res.StatusCode, c.status)
		}
		checkRedirectCaching(t, res, cc)
	}
}

func TestRedirectRulesRefused(t *testing.T) {
	hosts := []string{"example.test"}
	tests := []struct{ from, to, want string }{
		{`^/a/(.*)$`, "https://$1.evil.test/", "host must be written out"},
		{`^/a/(.*)$`, "https://example.test@$1/", "host must be written out"},
		{`^/a/(.*)$`, "//evil.test/$1", "want a path"},
		{`^/a/(.*)$`, "javascript:alert(1)", "want a path"},
		{`^/a/(.*)$`, "evil.test/$1", "want a path"},
		{`^/a/(.*)$`, "/b/$2", "does not capture"},
		{`^/a/(.*)$`, "/b/${nope}", "does not capture"},
		{`^/a/(.*$`, "/b", "invalid pattern"},
		{`^/a/(.*)$`, "/a/$1", "loops"},
		{`^/x$`, "/x", "loops"},
		{`^/x$`, "https://example.test/x", "loops"},
		{`^/a/(.*)$`, "/b/$", "lone $"},
	}
	for _, tt := range tests {
		_, err := NewRedirect(tt.from, tt.to, 301, Cond{}, hosts)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s -> %s: %v, want %q", tt.from, tt.to, err, tt.want)
		}
	}
	if _, err := NewRedirect(`^/x$`, "/y", 200, Cond{}, hosts); err == nil {
		t.Error("status 200 accepted")
	}
	if _, err := NewRedirect(`^/x$`, "https://other.test/x", 301, Cond{}, hosts); err != nil {
		t.Errorf("redirect to the same path on another host refused: %v", err)
	}
}

func TestRewrites(t *testing.T) {
	rules := Rules{Rewrites: []*Rewrite{
		must(NewRewrite(`^/docs/v1/(.*)$`, "/docs/legacy/$1", false, Cond{IfMissing: true})),
		must(NewRewrite(`^/api/(\w+)$`, "/api/$1.json?v=2", true, Cond{})),
		must(NewRewrite(`^/api/.*$`, "/never", false, Cond{})), // after a last rule
		must(NewRewrite(`^/a$`, "/b", false, Cond{})),
		must(NewRewrite(`^/b$`, "/c", false, Cond{})), // chains in order
		must(NewRewrite(`^/q/(.*)$`, "/pub/$1?name=$1", false, Cond{})),
	}}
	tests := []struct{ target, want string }{
		{"/docs/v1/a.html?x=1", "/docs/legacy/a.html?x=1"},
		{"/api/users?x=1", "/api/users.json?v=2"},
		{"/a", "/c?"},
		{"/untouched?q", "/untouched?q"},
		// A capture is a decoded path: into the path as it is, into the
		// query encoded.
		{"/q/a%20b%C3%A9.txt", "/pub/a bé.txt?name=a%20b%C3%A9.txt"},
	}
	for _, tt := range tests {
		if got := text(serve(t, rules, "GET", tt.target)); got != tt.want {
			t.Errorf("%s: %q, want %q", tt.target, got, tt.want)
		}
	}
}

func TestRewriteChainIsBounded(t *testing.T) {
	var rules Rules
	for range 50 {
		rules.Rewrites = append(rules.Rewrites, must(NewRewrite(`^/(.*)$`, "/x$1", false, Cond{})))
	}
	got := text(serve(t, rules, "GET", "/a"))
	if got != "/"+strings.Repeat("x", maxRewrites)+"a?" {
		t.Fatalf("%q", got)
	}
}

func TestFallbackAndTrailingSlash(t *testing.T) {
	spa := Rules{Fallback: "/index.html"}
	for target, want := range map[string]string{
		"/dashboard/settings": "/index.html?", // app route: the shell
		"/app.js":             "/app.js?",     // exists
		"/missing.js":         "/missing.js?", // a missing asset stays missing
		"/docs/":              "/docs/?",      // a directory exists
	} {
		if got := text(serve(t, spa, "GET", target)); got != want {
			t.Errorf("fallback %s: %q, want %q", target, got, want)
		}
	}
	add := Rules{TrailingSlash: TrailingSlashAdd}
	if res := serve(t, add, "GET", "/docs?x=1"); res.StatusCode != 301 || res.Header.Get("Location") != "/docs/?x=1" {
		t.Errorf("add: %d %q", res.StatusCode, res.Header.Get("Location"))
	}
	if res := serve(t, add, "GET", "/LICENSE"); res.StatusCode != 200 {
		t.Errorf("add redirected a file without extension: %d", res.StatusCode)
	}
	remove := Rules{TrailingSlash: TrailingSlashRemove}
	if res := serve(t, remove, "GET", "/about/"); res.StatusCode != 301 || res.Header.Get("Location") != "/about" {
		t.Errorf("remove: %d %q", res.StatusCode, res.Header.Get("Location"))
	}
	if res := serve(t, remove, "GET", "/docs/"); res.StatusCode != 200 {
		t.Errorf("remove redirected a directory (serve would redirect back): %d", res.StatusCode)
	}
	whole := Rules{RedirectTo: "https://example.test"}
	if res := serve(t, whole, "GET", "/a%20b/c?d=1"); res.StatusCode != 301 || res.Header.Get("Location") != "https://example.test/a%20b/c?d=1" {
		t.Errorf("redirect_to: %d %q", res.StatusCode, res.Header.Get("Location"))
	}
	if res := serve(t, whole, "POST", "/form"); res.StatusCode != 308 {
		t.Errorf("redirect_to for POST: %d, want 308", res.StatusCode)
	}
}

func TestHeadersAndPresets(t *testing.T) {
	rules := Rules{
		SecurityHeaders: SecurityBasic,
		Headers: []*Headers{
			must(NewHeaders("/assets/**", "", map[string]string{"cache-control": "public, max-age=31536000, immutable"}, []string{"X-Powered-By"})),
			must(NewHeaders("", `\.json$`, map[string]string{"X-Frame-Options": "DENY"}, nil)),
			must(NewHeaders("/*.html", "", map[string]string{"X-Top": "1"}, nil)),
		},
	}
	res := serve(t, rules, "GET", "/assets/css/site.css")
	if res.Header.Get("Cache-Control") != "public, max-age=31536000, immutable" || res.Header.Get("X-Powered-By") != "" ||
		res.Header.Get("Referrer-Policy") != "strict-origin-when-cross-origin" {
		t.Errorf("assets: %v", res.Header)
	}
	res = serve(t, rules, "GET", "/data/x.json")
	if res.Header.Get("X-Frame-Options") != "DENY" || res.Header.Get("Cache-Control") != "no-cache" {
		t.Errorf("json: %v", res.Header)
	}
	if res := serve(t, rules, "GET", "/a.html"); res.Header.Get("X-Top") != "1" {
		t.Errorf("glob * at the top: %v", res.Header)
	}
	if res := serve(t, rules, "GET", "/sub/a.html"); res.Header.Get("X-Top") != "" {
		t.Errorf("glob * crossed a segment: %v", res.Header)
	}
	for _, bad := range [][2]string{{"Content-Length", "1"}, {"X-A", "b\r\nc"}, {"Bad Name", "x"}} {
		if _, err := NewHeaders("/**", "", map[string]string{bad[0]: bad[1]}, nil); err == nil {
			t.Errorf("header %q accepted", bad)
		}
	}
}

func TestCORS(t *testing.T) {
	rules := Rules{CORS: []*CORS{must(NewCORS("/fonts/**", []string{"https://app.test"}, 0)), must(NewCORS("/api/**", []string{"*"}, 60))}}
	res := serve(t, rules, "GET", "/fonts/a.woff2", "Origin", "https://app.test")
	if res.Header.Get("Access-Control-Allow-Origin") != "https://app.test" || res.Header.Get("Vary") != "Origin" {
		t.Errorf("allowed origin: %v", res.Header)
	}
	if res := serve(t, rules, "GET", "/fonts/a.woff2", "Origin", "https://evil.test"); res.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("other origin allowed: %v", res.Header)
	}
	res = serve(t, rules, "OPTIONS", "/api/x", "Origin", "https://any.test", "Access-Control-Request-Method", "GET", "Access-Control-Request-Headers", "X-Token")
	if res.StatusCode != 204 || res.Header.Get("Access-Control-Allow-Origin") != "*" || res.Header.Get("Access-Control-Max-Age") != "60" ||
		res.Header.Get("Access-Control-Allow-Headers") != "X-Token" {
		t.Errorf("preflight: %d %v", res.StatusCode, res.Header)
	}
}

func TestAccess(t *testing.T) {
	rules := Rules{Access: []*Access{
		must(NewAccess("/admin/", []string{"10.0.0.0/8", "192.0.2.10"}, nil)),
		must(NewAccess("/blocked/", nil, []string{"192.0.2.0/24"})),
		must(NewAccess("/nobody/", []string{"10.0.0.1"}, []string{"all"})),
	}}
	for target, status := range map[string]int{"/admin/x": 200, "/blocked/x": 403, "/nobody/x": 403, "/open": 200} {
		if res := serve(t, rules, "GET", target); res.StatusCode != status {
			t.Errorf("%s: %d, want %d", target, res.StatusCode, status)
		}
	}
	// A rewrite cannot lead around an access rule.
	rules.Rewrites = []*Rewrite{must(NewRewrite(`^/public/(.*)$`, "/blocked/$1", false, Cond{}))}
	if res := serve(t, rules, "GET", "/public/x"); res.StatusCode != 403 {
		t.Errorf("rewrite bypassed access: %d", res.StatusCode)
	}
	for _, bad := range []string{"10.0.0.0/33", "nope", "1.2.3"} {
		if _, err := NewAccess("/a/", []string{bad}, nil); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestAuth(t *testing.T) {
	bcryptHash, _ := bcrypt.GenerateFromPassword([]byte("secret"), bcrypt.MinCost)
	a := must(NewAuth("/private/", "staff", map[string]string{"alice": HashPassword("wonderland"), "bob": string(bcryptHash)}))
	rules := Rules{Auth: []*Auth{a}, Rewrites: []*Rewrite{must(NewRewrite(`^/p/(.*)$`, "/private/$1", false, Cond{}))}}
	basic := func(user, pass string) string {
		return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
	}
	tests := []struct {
		name, target, auth string
		status             int
	}{
		{"no credentials", "/private/x.html", "", 401},
		{"the prefix without slash", "/private", "", 401},
		{"right argon2id password", "/private/x.html", basic("alice", "wonderland"), 200},
		{"again, from the verified cache", "/private/x.html", basic("alice", "wonderland"), 200},
		{"right bcrypt password", "/private/x.html", basic("bob", "secret"), 200},
		{"wrong password", "/private/x.html", basic("alice", "Wonderland"), 401},
		{"unknown user", "/private/x.html", basic("mallory", "wonderland"), 401},
		{"other scheme", "/private/x.html", "Bearer abc", 401},
		{"malformed base64", "/private/x.html", "Basic !!!", 401},
		{"no colon", "/private/x.html", "Basic " + base64.StdEncoding.EncodeToString([]byte("alice")), 401},
		{"lower-case scheme", "/private/x.html", strings.Replace(basic("alice", "wonderland"), "Basic", "basic", 1), 200},
		{"via a rewrite", "/p/x.html", "", 401},
		{"unprotected", "/public.html", "", 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var res *http.Response
			if tt.auth != "" {
				res = serve(t, rules, "GET", tt.target, "Authorization", tt.auth)
			} else {
				res = serve(t, rules, "GET", tt.target)
			}
			if res.StatusCode != tt.status {
				t.Fatalf("%d, want %d", res.StatusCode, tt.status)
			}
			if tt.status == 401 && res.Header.Get("WWW-Authenticate") != `Basic realm="staff", charset="UTF-8"` {
				t.Errorf("WWW-Authenticate %q", res.Header.Get("WWW-Authenticate"))
			}
		})
	}
	for _, bad := range []string{"plaintext", "$argon2id$v=19$m=1,t=1,p=1$c2FsdHNhbHQ$a2V5", "$2a$99$x"} {
		if _, err := NewAuth("/a/", "r", map[string]string{"u": bad}); err == nil {
			t.Errorf("hash %q accepted", bad)
		}
	}
}

func TestNoRulesIsNoWrapper(t *testing.T) {
	h := New(Rules{}, exists, echo)
	if _, ok := h.(*engine); ok {
		t.Fatal("an empty rule set wraps the handler")
	}
}

// TestAuthCostsTheSameForUnknownUsers: names cannot be probed by timing,
// because an unknown user is checked against a dummy hash of the same
// kind and cost as a real one, and comparisons are constant-time.
func TestAuthCostsTheSameForUnknownUsers(t *testing.T) {
	a := must(NewAuth("/p/", "r", map[string]string{"alice": HashPassword("x")}))
	rules := Rules{Auth: []*Auth{a}}
	for _, user := range []string{"alice", "nobody"} {
		before := hashings.Load()
		cred := base64.StdEncoding.EncodeToString([]byte(user + ":wrong"))
		if res := serve(t, rules, "GET", "/p/x", "Authorization", "Basic "+cred); res.StatusCode != 401 {
			t.Fatal(res.StatusCode)
		}
		if n := hashings.Load() - before; n != 1 {
			t.Errorf("%s: %d hash computations, want 1", user, n)
		}
	}
	if d := dummyHash(); d.argon == nil || d.argon.memory != argonMemory || d.argon.time != argonTime {
		t.Error("the dummy hash does not cost what a real one does")
	}
}

// TestSecret: a deploy token is checked against its hash once; a token
// that passed is remembered, a wrong one costs a hash each time.
func TestSecret(t *testing.T) {
	if _, err := NewSecret("plain-text"); err == nil {
		t.Fatal("a plain token was taken for a hash")
	}
	s := must(NewSecret(HashPassword("tok")))
	for i, c := range []struct {
		secret string
		want   bool
		hashes int64
	}{{"wrong", false, 1}, {"tok", true, 1}, {"tok", true, 0}, {"wrong", false, 1}} {
		before := hashings.Load()
		r := httptest.NewRequest("GET", "/", nil)
		if err := s.Check(r, c.secret); (err == nil) != c.want {
			t.Errorf("%d: Check(%q) = %v", i, c.secret, err)
		}
		if n := hashings.Load() - before; n != c.hashes {
			t.Errorf("%d: %d hash computations, want %d", i, n, c.hashes)
		}
	}
}

// TestSecretCheckBearer: CheckBearer takes the token of "Authorization:
// Bearer TOKEN"; a request without one (none, another scheme, an empty
// token) gets ErrWrongSecret without a hash, and counts no failure: the
// address is not locked out by any number of them.
func TestSecretCheckBearer(t *testing.T) {
	s := must(NewSecret(HashPassword("tok")))
	get := func(auth string) error {
		r := httptest.NewRequest("GET", "/", nil)
		if auth != "" {
			r.Header.Set("Authorization", auth)
		}
		return s.CheckBearer(r)
	}
	before := hashings.Load()
	for range 3 * freeFailures {
		for _, auth := range []string{"", "Basic dG9rOnRvaw==", "Bearer ", "Bearertok"} {
			if err := get(auth); err != ErrWrongSecret {
				t.Fatalf("%q: %v, want ErrWrongSecret", auth, err)
			}
		}
	}
	if n := hashings.Load() - before; n != 0 {
		t.Errorf("%d hash computations without a bearer token", n)
	}
	if err := get("Bearer tok"); err != nil {
		t.Errorf("the right token after requests without one: %v", err)
	}
	if err := get("bearer tok"); err != nil { // RFC 9110 11.1: the scheme in any case
		t.Errorf("a lower-case scheme: %v", err)
	}
	if err := get("Bearer wrong"); err != ErrWrongSecret {
		t.Errorf("a wrong token: %v", err)
	}
}

// FuzzRules drives random paths and hosts through a rule set with
// captures everywhere: what reaches the file server is always a rooted
// path, and a redirect goes to a path on this site or to a host a rule
// wrote out.
func FuzzRules(f *testing.F) {
	hosts := []string{"example.test"}
	rules := Rules{
		Fallback: "/index.html",
		Redirects: []*Redirect{
			must(NewRedirect(`^/r/(.*)$`, "/$1", 302, Cond{}, hosts)),
			must(NewRedirect(`^/ext/(.*)$`, "https://other.test/$1", 301, Cond{}, hosts)),
			must(NewRedirect(`^/(.*)\.php$`, "/$1.html", 301, Cond{}, hosts)),
		},
		Rewrites: []*Rewrite{
			must(NewRewrite(`^/w/(.*)$`, "/$1", false, Cond{})),
			must(NewRewrite(`^/(.*)/(.*)$`, "/$2/$1", false, Cond{})),
		},
	}
	var asked string // the path of the request in flight
	h := New(rules, exists, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// A path no rule touched is the client's own (serve cleans it);
		// one a rule rewrote must be rooted and never protocol-relative.
		if r.URL.Path != asked && (!strings.HasPrefix(r.URL.Path, "/") || strings.HasPrefix(r.URL.Path, "//")) {
			panic("rewritten to " + r.URL.Path)
		}
	}))
	for _, s := range []string{"/r//evil.test", "/r/\\evil.test", "/ext/@evil.test", "/x.php", "/w/../../etc/passwd", "/a/b", "/r/%2F%2Fevil"} {
		f.Add(s, "example.test")
	}
	f.Fuzz(func(t *testing.T, p, host string) {
		if !strings.HasPrefix(p, "/") {
			return // requests reaching a site always have a rooted path
		}
		req := httptest.NewRequest("GET", "/", nil)
		req.URL.Path, req.Host = p, host
		asked = p
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		loc := rec.Header().Get("Location")
		if loc == "" {
			return
		}
		if !(strings.HasPrefix(loc, "/") && !strings.HasPrefix(loc, "//") && !strings.HasPrefix(loc, "/\\") ||
			strings.HasPrefix(loc, "https://other.test/")) {
			t.Fatalf("path %q redirected to %q", p, loc)
		}
		if strings.ContainsAny(loc, "\r\n") {
			t.Fatalf("path %q put a line break in Location", p)
		}
	})
}

func benchRules(b *testing.B, rules Rules) {
	h := New(rules, exists, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	req := httptest.NewRequest("GET", "/assets/app.js", nil)
	w := httptest.NewRecorder()
	b.ReportAllocs()
	for range b.N {
		h.ServeHTTP(w, req)
	}
}

func BenchmarkNoRules(b *testing.B) { benchRules(b, Rules{}) }

// Benchmark50RulesNoMatch is the case: fifty redirect and rewrite
// rules of the usual shape, none matching.
func Benchmark50RulesNoMatch(b *testing.B) {
	var rules Rules
	for i := range 25 {
		rules.Redirects = append(rules.Redirects, must(NewRedirect(`^/old-`+strconv.Itoa(i)+`/(.*)$`, "/new/$1", 301, Cond{}, nil)))
		rules.Rewrites = append(rules.Rewrites, must(NewRewrite(`^/legacy-`+strconv.Itoa(i)+`/(.*)$`, "/v2/$1", false, Cond{})))
	}
	benchRules(b, rules)
}

// TestRulesOnOddPaths covers what the engine does on its own with paths
// that the server's edge would have made canonical first: rules still
// hold, in any letter case, and no redirect leaves the site.
func TestRulesOnOddPaths(t *testing.T) {
	rules := Rules{
		Access:   []*Access{must(NewAccess("/admin/", nil, []string{"all"}))},
		Auth:     []*Auth{must(NewAuth("/private/", "staff", map[string]string{"alice": HashPassword("x")}))},
		Rewrites: []*Rewrite{must(NewRewrite(`^/r/(.*)$`, "/x//$1", false, Cond{}))},
	}
	for target, status := range map[string]int{
		"/ADMIN/x": 403, "/Admin": 403, "/admin": 403, "/PRIVATE/x.html": 401, "/Private": 401,
		"/r/private/x.html": 200, // "/x/private/x.html": not the protected directory
	} {
		if res := serve(t, rules, "GET", target); res.StatusCode != status {
			t.Errorf("%s: %d, want %d", target, res.StatusCode, status)
		}
	}
	// A capture can make ".." out of a canonical path: refused, not served.
	dots := Rules{Rewrites: []*Rewrite{must(NewRewrite(`^/d/a(.)b$`, "/private/$1.", false, Cond{}))}}
	if res := serve(t, dots, "GET", "/d/a.b"); res.StatusCode != 400 {
		t.Errorf("a rewrite to /private/..: %d, want 400", res.StatusCode)
	}
	rules.Rewrites = []*Rewrite{must(NewRewrite(`^/r/(.*)$`, "/.//$1", false, Cond{}))}
	if res := serve(t, rules, "GET", "/r/private/x.html"); res.StatusCode != 401 {
		t.Errorf("a rewrite to a non-canonical path slipped past auth: %d", res.StatusCode)
	}
	for _, pol := range []TrailingSlash{TrailingSlashAdd, TrailingSlashRemove} {
		for _, target := range []string{"//evil.test/x", "//evil.test/", "/\\evil.test/x", "/\\evil.test/"} {
			req := httptest.NewRequest("GET", "/", nil)
			req.URL.Path = target
			rec := httptest.NewRecorder()
			New(Rules{TrailingSlash: pol}, exists, echo).ServeHTTP(rec, req)
			if loc := rec.Header().Get("Location"); strings.HasPrefix(loc, "//") || strings.HasPrefix(loc, "/\\") {
				t.Errorf("trailing_slash %d, %q: Location %q", pol, target, loc)
			}
		}
	}
	for _, bad := range []string{"/a//b/", "/a/./b/", "/a/../b/", "/a\\b/", "a/"} {
		if _, err := NewAuth(bad, "r", map[string]string{"u": HashPassword("x")}); err == nil {
			t.Errorf("auth path %q accepted", bad)
		}
		if _, err := NewAccess(bad, nil, []string{"all"}); err == nil {
			t.Errorf("access path %q accepted", bad)
		}
	}
}

// TestHostCondition: a rule's host condition sees the Host in the one
// canonical form (vhost.Normalize): no port, brackets, trailing dot or
// upper case; an IPv6 literal stays whole.
func TestHostCondition(t *testing.T) {
	rules := Rules{Redirects: []*Redirect{
		must(NewRedirect(`^/v6$`, "/six", 302, Cond{Host: `^::1$`}, nil)),
		must(NewRedirect(`^/name$`, "/named", 302, Cond{Host: `^www\.example\.test$`}, nil)),
	}}
	h := New(rules, exists, echo)
	for _, tc := range []struct {
		host, path, want string
	}{
		{"[::1]:8080", "/v6", "/six"},
		{"[::1]", "/v6", "/six"},
		{"::1", "/v6", "/six"},
		{"[::2]", "/v6", ""},
		{"WWW.Example.test.:80", "/name", "/named"},
		{"www.example.test", "/name", "/named"},
		{"example.test", "/name", ""},
	} {
		req := httptest.NewRequest("GET", tc.path, nil)
		req.Host = tc.host
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if got := rec.Header().Get("Location"); got != tc.want {
			t.Errorf("Host %q, %s: Location %q, want %q", tc.host, tc.path, got, tc.want)
		}
	}
}

func TestParsePolicies(t *testing.T) {
	slash := map[string]TrailingSlash{"": TrailingSlashKeep, "add": TrailingSlashAdd, "remove": TrailingSlashRemove}
	for s, want := range slash {
		if got, err := ParseTrailingSlash(s); got != want || err != nil {
			t.Errorf("ParseTrailingSlash(%q) = %v, %v; want %v", s, got, err, want)
		}
	}
	preset := map[string]SecurityPreset{"": SecurityOff, "off": SecurityOff, "basic": SecurityBasic, "strict": SecurityStrict}
	for s, want := range preset {
		if got, err := ParseSecurityPreset(s); got != want || err != nil {
			t.Errorf("ParseSecurityPreset(%q) = %v, %v; want %v", s, got, err, want)
		}
	}
	for s, want := range map[string]string{"": "", "https://example.test": "https://example.test", "http://example.test:8080/": "http://example.test:8080"} {
		if got, err := ParseRedirectTo(s); got != want || err != nil {
			t.Errorf("ParseRedirectTo(%q) = %q, %v; want %q", s, got, err, want)
		}
	}
	for s, want := range map[string]string{"": "", "/index.html": "/index.html"} {
		if got, err := ParseFallback(s); got != want || err != nil {
			t.Errorf("ParseFallback(%q) = %q, %v; want %q", s, got, err, want)
		}
	}
	bad := []struct {
		name string
		err  error
	}{
		{"trailing_slash yes", second(ParseTrailingSlash("yes"))},
		{"security_headers paranoid", second(ParseSecurityPreset("paranoid"))},
		{"redirect_to without scheme", second(ParseRedirectTo("example.test"))},
		{"redirect_to with a path", second(ParseRedirectTo("https://example.test/x"))},
		{"redirect_to with userinfo", second(ParseRedirectTo("https://a@example.test"))},
		{"fallback relative", second(ParseFallback("index.html"))},
		{"fallback climbing", second(ParseFallback("/../x.html"))},
	}
	for _, tt := range bad {
		if tt.err == nil {
			t.Errorf("%s: accepted", tt.name)
		}
	}
}

func second[T any](_ T, err error) error { return err }
