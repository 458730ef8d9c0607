package rewrite

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"appliance/internal/httpx"

	"golang.org/x/crypto/bcrypt"
)

// The examples of Netlify's and Cloudflare Pages' documentation that the
// appliance supports; they seed the fuzz targets too.
const docsRedirects = `# Netlify
/home              /
/blog/my-post.php  /blog/my-post
/news              /blog
/google            https://www.google.com
/home301 / 301
/my-redirect /  302
/pass-through      /index.html  200
/ecommerce         /store-closed  404
/news/:year/:month/:date/:slug  /blog/:year/:month/:date/:slug
/news/*  /blog/:splat
/app/*  /app/index.html  200!
# Cloudflare Pages
/querystrings /?query=string 301
/twitch https://twitch.tv
/trailing /trailing/ 301
/notrailing/ /nottrailing 301
/blog/* https://blog.my.domain/:splat
/products/:code/:name /products?code=:code&name=:name
/temporary /elsewhere 307
/permanent /elsewhere 308
/gone /gone.html 410
/*  /index.html  200
`

const docsHeaders = `# This is a comment
/secure/page
  X-Frame-Options: DENY
  X-Content-Type-Options: nosniff
  Referrer-Policy: no-referrer

/static/*
  Access-Control-Allow-Origin: *
  X-Robots-Tag: nosnippet

/templates/index.html
  # headers for that path:
  X-Frame-Options: DENY
  X-XSS-Protection: 1; mode=block

/*
  ! X-Powered-By
  Link: </style.css>; rel=preload; as=style
  Link: </script.js>; rel=preload; as=script
`

func TestParseRedirectsDocs(t *testing.T) {
	tab, errs := parseRedirects("_redirects", []byte(docsRedirects), []string{"example.test"})
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	if len(tab.rules) != 21 || len(tab.dynamic) != 6 {
		t.Fatalf("%d rules, %d dynamic", len(tab.rules), len(tab.dynamic))
	}
}

func TestParseRedirectsErrors(t *testing.T) {
	for _, tc := range []struct{ name, line, want string }{
		{"one field", "/a", "want: from to"},
		{"query parameters", "/store id=:id /blog/:id 301", "query parameters"},
		{"query in the path", "/store?id=1 /blog 301", "query parameters"},
		{"conditions", "/ /anz 302 Country=au,nz", "conditions"},
		{"role", "/admin/* /login 200! Role=admin", "conditions"},
		{"bad status", "/a /b 30x", "invalid status"},
		{"unknown status", "/a /b 500", "status 500"},
		{"trailing field", "/a /b 301 extra", "unexpected"},
		{"whole URL", "http://blog.test/* https://test/blog/:splat 301", "host"},
		{"relative source", "a /b", "must start with /"},
		{"splat inside", "/a/*/b /c", "may only end"},
		{"placeholder in a segment", "/a-:id /c", "whole segment"},
		{"placeholder twice", "/:a/:a /c", "twice"},
		{"splat as placeholder", "/:splat /c", ":splat"},
		{"not canonical", "/a//b /c", "canonical"},
		{"dot dot", "/a/../b /c", "canonical"},
		{"encoded slash", "/a%2Fb /c", "encoded slash"},
		{"bad escape", "/a%zz /c", "percent-encoding"},
		{"proxy", "/api/* https://api.example.com/:splat 200", "proxying"},
		{"relative target", "/a b", "want a path"},
		{"protocol-relative target", "/a //evil.test/", "want a path"},
		{"fragment", "/page /page2/#fragment 301", "fragments"},
		{"unknown placeholder", "/a/:id /b/:name", ":name is not a placeholder"},
		{"splat without *", "/a /b/:splat", ":splat is not a placeholder"},
		{"capture in host", "/a/:h https://:h.test/ 301", "host must be written out"},
		{"loop", "/a/* /a/b 301!", "loops"},
		{"loop on the host", "/x https://example.test/x 302!", "loops"},
		{"control character", "/a /b\x01", "visible ASCII"},
		{"long line", "/a /" + strings.Repeat("b", maxRedirectLine), "longer than 1000 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := "# first line\n/ok /fine\n" + tc.line + "\n"
			_, errs := parseRedirects("site/_redirects", []byte(data), []string{"example.test"})
			if len(errs) != 1 || !strings.HasPrefix(errs[0].Error(), "site/_redirects:3: ") || !strings.Contains(errs[0].Error(), tc.want) {
				t.Fatalf("%q: errors %v, want one at line 3 saying %q", tc.line, errs, tc.want)
			}
		})
	}
}

func TestRedirectsBounds(t *testing.T) {
	var b strings.Builder
	for i := range maxStaticRedirects + 1 {
		fmt.Fprintf(&b, "/s%d /t\n", i)
	}
	for i := range maxDynamicRedirects + 1 {
		fmt.Fprintf(&b, "/d%d/* /t\n", i)
	}
	_, errs := parseRedirects("_redirects", []byte(b.String()), nil)
	if len(errs) != 2 || !strings.Contains(errs[0].Error(), ":2001: more than 2000") || !strings.Contains(errs[1].Error(), ":2102: more than 100") {
		t.Fatal(errs)
	}
	_, errs = parseRedirects("_redirects", bytes.Repeat([]byte("#"), maxRulesFileBytes+1), nil)
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "larger than 1048576 bytes") {
		t.Fatal(errs)
	}
	_, errs = parseHeaders("_headers", bytes.Repeat([]byte("#"), maxRulesFileBytes+1))
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "larger than 1048576 bytes") {
		t.Fatal(errs)
	}
	b.Reset()
	for i := range maxHeaderRules + 1 {
		fmt.Fprintf(&b, "/p%d\n  X-A: 1\n", i)
	}
	b.WriteString("/many\n" + strings.Repeat("  X-B: 1\n", maxHeaderLinesPerRule+1))
	_, errs = parseHeaders("_headers", []byte(b.String()))
	if len(errs) != 2 || !strings.Contains(errs[0].Error(), ":201: more than 100 paths") {
		t.Fatal(errs)
	}
}

func TestParseHeadersErrors(t *testing.T) {
	const ok = "# comment\n/ok\n  X-Ok: yes\n" // lines 1-3
	for _, tc := range []struct {
		name, text string
		line       int
		want       string
	}{
		{"header before a path", "  X-A: 1", 1, "before any path"},
		{"no colon", ok + "/a\n  X-A 1", 5, "want Name: value"},
		{"bad name", ok + "/a\n  X A: 1", 5, "invalid header name"},
		{"bad value", ok + "/a\n  X-A: \x01", 5, "invalid value"},
		{"framing", ok + "/a\n  Content-Length: 5", 5, "the server's to set"},
		{"hop by hop", ok + "/a\n  Upgrade: h2c", 5, "connection's"},
		{"basic auth", ok + "/a\n  Basic-Auth: u:p", 5, "[[site.auth]]"},
		{"whole URL", ok + "https://example.test/*\n  X-A: 1", 4, "host"},
		{"two paths on a line", ok + "/a /b\n  X-A: 1", 4, "one path"},
		{"placeholder in a segment", ok + "/a-:b\n  X-A: 1", 4, "whole segment"},
		{"bad detach", ok + "/a\n  ! X A", 5, "header name to remove"},
		{"long line", ok + "/a\n  X-A: " + strings.Repeat("v", maxHeaderLine), 5, "longer than 2000 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, errs := parseHeaders("site/_headers", []byte(tc.text+"\n"))
			if len(errs) != 1 || !strings.HasPrefix(errs[0].Error(), fmt.Sprintf("site/_headers:%d: ", tc.line)) || !strings.Contains(errs[0].Error(), tc.want) {
				t.Fatalf("errors %v, want one at line %d saying %q", errs, tc.line, tc.want)
			}
		})
	}
}

// site is a pretend root for the engine tests: the rules files and what
// exists (see files).
func siteHandler(t testing.TB, redirects, headers string) (http.Handler, *bytes.Buffer, fstest.MapFS) {
	fsys := fstest.MapFS{"_redirects": {Data: []byte(redirects)}, "_headers": {Data: []byte(headers)}}
	var log bytes.Buffer
	sf := NewSiteFiles(fsys, SiteFilesOptions{Dir: "site", Hosts: []string{"example.test"}, Revalidate: time.Nanosecond,
		Log: slog.New(slog.NewTextHandler(&log, nil))})
	h := New(Rules{Files: sf}, exists, echo)
	return h, &log, fsys
}

func get(h http.Handler, target string, header ...string) *http.Response {
	req := httptest.NewRequest("GET", target, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

func TestSiteRedirects(t *testing.T) {
	h, log, _ := siteHandler(t, "/about.html /elsewhere 301\n/index.html /forced 302!\n/x/:a/:b /y/:b/:a 302\n/ext/* https://other.test/:splat?from=:splat 302\n/d%20e /f%20g 200\n"+docsRedirects, "")
	if log.Len() > 0 && strings.Contains(log.String(), "refused") {
		t.Fatal(log)
	}
	for _, tc := range []struct {
		name, target string
		status       int
		where        string // Location, or the path and query served
	}{
		{"static, default 301", "/home", 301, "/"},
		{"any letter case", "/HOME", 301, "/"},
		{"trailing slash ignored", "/home/", 301, "/"},
		{"query kept", "/news?x=1", 301, "/blog?x=1"},
		{"absolute target", "/google", 301, "https://www.google.com"},
		{"302", "/my-redirect", 302, "/"},
		{"307", "/temporary", 307, "/elsewhere"},
		{"308", "/permanent", 308, "/elsewhere"},
		{"placeholders", "/news/2024/02/12/my-story", 301, "/blog/2024/02/12/my-story"},
		{"splat", "/news/a/b.html", 301, "/blog/a/b.html"},
		{"splat matches the bare directory", "/news/", 301, "/blog"},
		{"and without its slash", "/news", 301, "/blog"},
		{"placeholders reordered", "/x/1/2", 302, "/y/2/1"},
		{"splat to another host, escaped", "/ext/a%3Fb", 302, "https://other.test/a%3Fb?from=a%3Fb"},
		{"target query replaces the request's", "/querystrings?a=b", 301, "/?query=string"},
		{"query built from placeholders", "/products/12/h&t", 301, "/products?code=12&name=h%26t"},
		{"200 rewrite", "/pass-through", 200, "/index.html?"},
		{"404 rewrite", "/ecommerce", 404, "/store-closed?"},
		{"410 rewrite", "/gone", 410, "/gone.html?"},
		{"decoded rewrite target", "/d%20e", 200, "/f g?"},
		{"an existing file shadows a rule", "/about.html", 200, "/about.html?"},
		{"forced rule beats the file", "/index.html", 302, "/forced"},
		{"forced splat", "/app/anything", 200, "/app/index.html?"},
		{"catch-all rewrite last", "/whatever/else", 200, "/index.html?"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := get(h, tc.target)
			got := res.Header.Get("Location")
			if got == "" {
				got = text(res)
			}
			if res.StatusCode != tc.status || got != tc.where {
				t.Fatalf("%s: %d %q, want %d %q", tc.target, res.StatusCode, got, tc.status, tc.where)
			}
		})
	}
}

func TestSiteRedirectsSafety(t *testing.T) {
	h, _, _ := siteHandler(t, "/r/* /:splat 302!\n/w/* /pub/:splat 200!\n", "")
	if res := get(h, "/r//evil.test/"); res.Header.Get("Location") != "/evil.test/" {
		t.Fatalf("%d %q", res.StatusCode, res.Header.Get("Location"))
	}
	// A ".." made by the rewrite is refused, not resolved.
	req := httptest.NewRequest("GET", "/", nil)
	req.URL.Path = "/w/../../etc/passwd"
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != 400 {
		t.Fatal(rec.Code, rec.Body)
	}
}

func TestSiteHeaders(t *testing.T) {
	h, log, _ := siteHandler(t, "/moved /blog/ 301\n", docsHeaders+"/static/*\n  X-Robots-Tag: noarchive\n  Cache-Control: public, max-age=60\n")
	if strings.Contains(log.String(), "refused") {
		t.Fatal(log)
	}
	res := get(h, "/secure/page")
	if res.Header.Get("X-Frame-Options") != "DENY" || res.Header.Get("Referrer-Policy") != "no-referrer" || res.Header.Get("X-Powered-By") != "" {
		t.Fatal(res.Header)
	}
	if l := res.Header.Values("Link"); len(l) != 1 || l[0] != "</style.css>; rel=preload; as=style, </script.js>; rel=preload; as=script" {
		t.Fatal(l)
	}
	res = get(h, "/Static/a/b.css")
	if res.Header.Get("X-Robots-Tag") != "nosnippet, noarchive" || res.Header.Get("Cache-Control") != "public, max-age=60" {
		t.Fatal(res.Header)
	}
	// Redirects answer before any header rule, as those of the configuration do.
	if res := get(h, "/moved"); res.StatusCode != 301 || res.Header.Get("X-Robots-Tag") != "" {
		t.Fatal(res.StatusCode, res.Header)
	}
}

// TestSiteFilesReload: a change is seen at the next check; a broken edit
// is logged with its line and the rules before it stay.
func TestSiteFilesReload(t *testing.T) {
	h, log, fsys := siteHandler(t, "/a /one 302\n", "/*\n  X-V: 1\n")
	if res, b := get(h, "/a"), get(h, "/b"); res.Header.Get("Location") != "/one" || b.Header.Get("X-V") != "1" {
		t.Fatal(res.Header, b.Header)
	}
	fsys["_redirects"] = &fstest.MapFile{Data: []byte("/a /two 302\n"), ModTime: time.Unix(1, 0)}
	fsys["_headers"] = &fstest.MapFile{Data: []byte("/*\n  X-V: 2\n"), ModTime: time.Unix(1, 0)}
	if res, b := get(h, "/a"), get(h, "/b"); res.Header.Get("Location") != "/two" || b.Header.Get("X-V") != "2" {
		t.Fatal(res.Header, b.Header)
	}
	fsys["_redirects"] = &fstest.MapFile{Data: []byte("/a /three 302\n/b\n/c /d 999\n"), ModTime: time.Unix(2, 0)}
	fsys["_headers"] = &fstest.MapFile{Data: []byte("  X-V: 3\n"), ModTime: time.Unix(2, 0)}
	if res, b := get(h, "/a"), get(h, "/b"); res.Header.Get("Location") != "/two" || b.Header.Get("X-V") != "2" {
		t.Fatal(res.Header, b.Header)
	}
	for _, want := range []string{"site/_redirects:2: want: from to", "site/_redirects:3: status 999", "site/_headers:1: a header line before any path"} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("the log lacks %q:\n%s", want, log)
		}
	}
	fsys["_redirects"] = &fstest.MapFile{Data: bytes.Repeat([]byte("/x\n"), 150), ModTime: time.Unix(3, 0)}
	log.Reset()
	get(h, "/a")
	if n := strings.Count(log.String(), "\n"); n != maxLoggedErrors+1 || !strings.Contains(log.String(), "more_errors=50") {
		t.Errorf("%d log lines for 150 errors:\n%.300s", n, log)
	}
	delete(fsys, "_redirects")
	if res := get(h, "/a"); res.StatusCode != 200 {
		t.Fatal("a removed file still has rules", res.StatusCode)
	}
}

func FuzzRedirectsFile(f *testing.F) {
	for _, line := range strings.Split(docsRedirects, "\n") {
		f.Add(line, "/news/2024/x")
	}
	f.Add("/r/* /:splat 302!", "/r//evil.test")
	f.Add("/w/:a /:a/x 200!", "/w/..")
	f.Fuzz(func(t *testing.T, file, p string) {
		tab, _ := parseRedirects("_redirects", []byte(file), []string{"example.test"})
		if tab != nil && len(tab.rules) > maxStaticRedirects+maxDynamicRedirects {
			t.Fatal("over the bound")
		}
		if c, status := httpx.CleanPath(p); tab == nil || status != 0 || c != p {
			return // requests reach the rules with a canonical path
		}
		e := &engine{exists: exists}
		req := httptest.NewRequest("GET", "/", nil)
		req.URL.Path = p
		rec := httptest.NewRecorder()
		np, _, _, done := e.siteRedirects(rec, req, tab, p, "")
		if !done && (!strings.HasPrefix(np, "/") || strings.HasPrefix(np, "//") || strings.Contains(np, "/../")) {
			t.Fatalf("%q rewritten to %q", p, np)
		}
		loc := rec.Header().Get("Location")
		if strings.HasPrefix(loc, "//") || strings.HasPrefix(loc, "/\\") || strings.ContainsAny(loc, "\r\n") {
			t.Fatalf("%q redirected to %q", p, loc)
		}
	})
}

func FuzzHeadersFile(f *testing.F) {
	f.Add(docsHeaders, "/secure/page")
	f.Add("/*\n  ! Content-Type\n  X-A: 1\n  X-A: 2\n", "/x")
	f.Fuzz(func(t *testing.T, file, p string) {
		rules, errs := parseHeaders("_headers", []byte(file))
		if len(rules) > maxHeaderRules || len(errs) > 0 && len(rules) > maxHeaderRules {
			t.Fatal("over the bound")
		}
		h := http.Header{}
		var match []*fileHeaders
		for _, fh := range rules {
			if len(fh.ops) > maxHeaderLinesPerRule {
				t.Fatal("over the bound")
			}
			if fh.matches(p) {
				match = append(match, fh)
			}
		}
		applyFileHeaders(h, match)
		for k, vs := range h {
			for _, v := range vs {
				if strings.ContainsAny(k+v, "\r\n\x00") {
					t.Fatalf("%q: %q", k, v)
				}
			}
		}
	})
}

// TestSiteFilesUnderConfig: the configuration's rules come first and
// have the last word: its redirects and rewrites before the file's, its
// header rules after; its access and auth rules hold for the paths the
// file rewrites to.
func TestSiteFilesUnderConfig(t *testing.T) {
	hash, _ := bcrypt.GenerateFromPassword([]byte("secret"), bcrypt.MinCost)
	fsys := fstest.MapFS{
		"_redirects": {Data: []byte("/cfg /from-file 302\n/pub/* /private/:splat 200!\n/both /file 302\n")},
		"_headers":   {Data: []byte("/*\n  Cache-Control: from-file\n  X-File: yes\n")},
	}
	rules := Rules{
		Files:     NewSiteFiles(fsys, SiteFilesOptions{}),
		Redirects: []*Redirect{must(NewRedirect(`^/cfg$`, "/from-config", 302, Cond{}, nil))},
		Rewrites:  []*Rewrite{must(NewRewrite(`^/both$`, "/cfg-rewritten", false, Cond{}))},
		Headers:   []*Headers{must(NewHeaders("/**", "", map[string]string{"Cache-Control": "from-config"}, nil))},
		Auth:      []*Auth{must(NewAuth("/private/", "staff", map[string]string{"alice": string(hash)}))},
	}
	h := New(rules, exists, echo)
	if res := get(h, "/cfg"); res.Header.Get("Location") != "/from-config" {
		t.Error("the file's redirect beat the configuration's:", res.Header)
	}
	if res := get(h, "/both"); res.StatusCode != 200 || text(res) != "/cfg-rewritten?" {
		t.Error("the file's rule saw the path before the configuration's rewrite:", res.StatusCode)
	}
	if res := get(h, "/x"); res.Header.Get("Cache-Control") != "from-config" || res.Header.Get("X-File") != "yes" {
		t.Error("header precedence:", res.Header)
	}
	if res := get(h, "/pub/x.html"); res.StatusCode != 401 {
		t.Error("a file rewrite reached a protected path:", res.StatusCode)
	}
}

// TestStatusRule: a 404 or 410 rule's answer has no validators, and
// conditionals and ranges do not turn it into a 304 or 206.
func TestStatusRule(t *testing.T) {
	fsys := fstest.MapFS{"_redirects": {Data: []byte("/closed /about.html 404\n")}}
	served := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("If-None-Match") != "" || r.Header.Get("Range") != "" {
			w.WriteHeader(304)
			return
		}
		w.Header().Set("Etag", `"x"`)
		w.Header().Set("Last-Modified", "Mon, 01 Jan 2024 00:00:00 GMT")
		io.WriteString(w, "page")
	})
	h := New(Rules{Files: NewSiteFiles(fsys, SiteFilesOptions{})}, exists, served)
	res := get(h, "/closed", "If-None-Match", `"x"`, "Range", "bytes=0-1")
	if res.StatusCode != 404 || text(res) != "page" || res.Header.Get("Etag") != "" || res.Header.Get("Last-Modified") != "" {
		t.Fatal(res.StatusCode, res.Header)
	}
}

// BenchmarkSiteFilesNoMatch: a request no rule matches, against files at
// their bounds (2000 static and 100 dynamic redirects, 100 header paths).
func BenchmarkSiteFilesNoMatch(b *testing.B) {
	var r, hd strings.Builder
	for i := range maxStaticRedirects {
		fmt.Fprintf(&r, "/old/page-%d.html /new/page-%d 301\n", i, i)
	}
	for i := range maxDynamicRedirects {
		fmt.Fprintf(&r, "/section-%d/:year/* /s%d/:year/:splat 301\n", i, i)
	}
	for i := range maxHeaderRules {
		fmt.Fprintf(&hd, "/dir-%d/*\n  X-A: %d\n", i, i)
	}
	fsys := fstest.MapFS{"_redirects": {Data: []byte(r.String())}, "_headers": {Data: []byte(hd.String())}}
	var log bytes.Buffer
	sf := NewSiteFiles(fsys, SiteFilesOptions{Revalidate: time.Hour, Log: slog.New(slog.NewTextHandler(&log, nil))})
	if strings.Contains(log.String(), "refused") {
		b.Fatal(log.String())
	}
	benchRules(b, Rules{Files: sf})
}

// TestSiteFilesSwap: a deploy that renames another file into place is
// seen even with the same size and modification time.
func TestSiteFilesSwap(t *testing.T) {
	dir := t.TempDir()
	write := func(name, data string) {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, time.Unix(1e9, 0), time.Unix(1e9, 0)); err != nil {
			t.Fatal(err)
		}
	}
	write("_redirects", "/a /one 302\n")
	sf := NewSiteFiles(os.DirFS(dir), SiteFilesOptions{Revalidate: time.Nanosecond})
	h := New(Rules{Files: sf}, exists, echo)
	if res := get(h, "/a"); res.Header.Get("Location") != "/one" {
		t.Fatal(res.Header)
	}
	write("next", "/a /two 302\n")
	if err := os.Rename(filepath.Join(dir, "next"), filepath.Join(dir, "_redirects")); err != nil {
		t.Fatal(err)
	}
	if res := get(h, "/a"); res.Header.Get("Location") != "/two" {
		t.Fatal("the swapped file was not seen:", res.Header)
	}
}
