package serve

import (
	"net/http"
	"strings"
	"testing"
)

var testFiles = map[string]string{
	"index.html":               "<h1>home</h1>",
	"hello.txt":                "hello, world\n",
	"app.js":                   "console.log(1)",
	"data.bin":                 "\x00\x01\x02",
	"noext":                    "plain",
	"about.html":               "about page",
	"docs/index.html":          "docs home",
	"docs/guide.html":          "guide",
	"empty/":                   "",
	"404.html":                 "custom not found",
	".env":                     "SECRET=1",
	".git/config":              "[core]",
	"sub/.hidden":              "hidden",
	".well-known/security.txt": "Contact: ops@example.test",
	".well-known/.secret":      "nope",
	"weird <name>&.txt":        "escaped",
}

func TestServe(t *testing.T) {
	h, _ := site(t, testFiles, Options{
		CleanURLs:  true,
		ErrorPages: map[int]string{404: "/404.html"},
	}, CacheOptions{})
	tests := []struct {
		name, method, target string
		status               int
		body                 string
		header               map[string]string
	}{
		{"file", "GET", "/hello.txt", 200, "hello, world\n", map[string]string{
			"Content-Type": "text/plain; charset=utf-8", "Content-Length": "13",
			"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff", "Accept-Ranges": "bytes"}},
		{"javascript", "GET", "/app.js", 200, "console.log(1)", map[string]string{"Content-Type": "text/javascript; charset=utf-8"}},
		{"binary", "GET", "/data.bin", 200, "\x00\x01\x02", map[string]string{"Content-Type": "application/octet-stream"}},
		{"no extension is not sniffed", "GET", "/noext", 200, "plain", map[string]string{"Content-Type": "application/octet-stream"}},
		{"index", "GET", "/", 200, "<h1>home</h1>", map[string]string{"Content-Type": "text/html; charset=utf-8"}},
		{"index.html directly", "GET", "/index.html", 200, "<h1>home</h1>", nil},
		{"directory index", "GET", "/docs/", 200, "docs home", nil},
		{"directory redirect keeps query", "GET", "/docs?x=1&y=2", 301, "", map[string]string{"Location": "/docs/?x=1&y=2",
			"Cache-Control": "max-age=3600", "Etag": "", "Last-Modified": ""}},
		{"directory redirect escapes", "GET", "/docs%3F", 404, "custom not found", nil},
		{"clean url", "GET", "/about", 200, "about page", nil},
		{"clean url in subdirectory", "GET", "/docs/guide", 200, "guide", nil},
		{"file with trailing slash", "GET", "/hello.txt/", 404, "custom not found", nil},
		{"missing", "GET", "/missing.html", 404, "custom not found", map[string]string{"Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-cache"}},
		{"directory without index", "GET", "/empty/", 404, "custom not found", nil},
		{"dotfile", "GET", "/.env", 404, "custom not found", nil},
		{"dot directory", "GET", "/.git/config", 404, "custom not found", nil},
		{"nested dotfile", "GET", "/sub/.hidden", 404, "custom not found", nil},
		{"well-known", "GET", "/.well-known/security.txt", 200, "Contact: ops@example.test", nil},
		{"dotfile under well-known", "GET", "/.well-known/.secret", 404, "custom not found", nil},
		{"escaped name", "GET", "/weird%20%3Cname%3E&.txt", 200, "escaped", nil},
		{"double slash", "GET", "//hello.txt", 200, "hello, world\n", nil},
		{"dot segment", "GET", "/./docs/./guide.html", 200, "guide", nil},
		{"options", "OPTIONS", "/hello.txt", 204, "", map[string]string{"Allow": "GET, HEAD, OPTIONS", "Cache-Control": "no-cache"}},
		{"options star", "OPTIONS", "*", 204, "", map[string]string{"Allow": "GET, HEAD, OPTIONS"}},
		{"post", "POST", "/hello.txt", 405, "405 Method Not Allowed\n", map[string]string{"Allow": "GET, HEAD, OPTIONS"}},
		{"put", "PUT", "/hello.txt", 405, "", map[string]string{"Allow": "GET, HEAD, OPTIONS"}},
		{"delete", "DELETE", "/hello.txt", 405, "", map[string]string{"Allow": "GET, HEAD, OPTIONS"}},
		{"trace", "TRACE", "/hello.txt", 405, "", map[string]string{"Allow": "GET, HEAD, OPTIONS"}},
		{"patch", "PATCH", "/hello.txt", 405, "", map[string]string{"Allow": "GET, HEAD, OPTIONS"}},
		{"connect", "CONNECT", "/hello.txt", 405, "", map[string]string{"Allow": "GET, HEAD, OPTIONS"}},
		{"unknown method", "BREW", "/hello.txt", 501, "501 Not Implemented\n", map[string]string{"Allow": ""}},
		{"methods are case-sensitive", "get", "/hello.txt", 501, "", map[string]string{"Allow": ""}},
		{"WebDAV is not implemented", "PROPFIND", "/", 501, "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := do(h, tt.method, tt.target)
			if res.StatusCode != tt.status {
				t.Fatalf("status %d, want %d", res.StatusCode, tt.status)
			}
			if b := body(t, res); tt.body != "" && b != tt.body {
				t.Errorf("body %q, want %q", b, tt.body)
			}
			for k, v := range tt.header {
				if got := res.Header.Get(k); got != v {
					t.Errorf("%s: %q, want %q", k, got, v)
				}
			}
			if res.Header.Get("Server") != "" {
				t.Errorf("Server header %q leaks the implementation", res.Header.Get("Server"))
			}
		})
	}
}

func TestHeadMatchesGet(t *testing.T) {
	h, _ := site(t, testFiles, Options{ErrorPages: map[int]string{404: "/404.html"}}, CacheOptions{})
	for _, target := range []string{"/", "/hello.txt", "/missing", "/docs", "/.env"} {
		get, head := do(h, "GET", target), do(h, "HEAD", target)
		if get.StatusCode != head.StatusCode {
			t.Errorf("%s: HEAD %d, GET %d", target, head.StatusCode, get.StatusCode)
		}
		if !equalHeader(get.Header, head.Header) {
			t.Errorf("%s: HEAD header %v, GET header %v", target, head.Header, get.Header)
		}
		if b := body(t, head); b != "" {
			t.Errorf("%s: HEAD sent a body %q", target, b)
		}
	}
}

func equalHeader(a, b http.Header) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if strings.Join(v, ",") != strings.Join(b[k], ",") {
			return false
		}
	}
	return true
}

func TestDefaultErrorBody(t *testing.T) {
	h, _ := site(t, testFiles, Options{}, CacheOptions{})
	res := do(h, "GET", "/missing")
	if res.StatusCode != 404 || body(t, res) != "404 Not Found\n" || res.Header.Get("Content-Type") != "text/plain; charset=utf-8" {
		t.Fatalf("got %d %v", res.StatusCode, res.Header)
	}
	if res.Header.Get("Etag") != "" || res.Header.Get("Last-Modified") != "" {
		t.Errorf("error response carries validators: %v", res.Header)
	}
}

func TestCleanURLsOff(t *testing.T) {
	h, _ := site(t, testFiles, Options{}, CacheOptions{})
	if res := do(h, "GET", "/about"); res.StatusCode != 404 {
		t.Fatalf("status %d, want 404 without clean_urls", res.StatusCode)
	}
}

func TestIndexList(t *testing.T) {
	h, _ := site(t, map[string]string{"d/index.htm": "htm", "d/default.html": "default"},
		Options{Index: []string{"index.html", "index.htm", "default.html"}}, CacheOptions{})
	if res := do(h, "GET", "/d/"); body(t, res) != "htm" {
		t.Fatal("first existing index file not served")
	}
}

func TestCacheControlPerSite(t *testing.T) {
	h, _ := site(t, testFiles, Options{CacheControl: "public, max-age=60"}, CacheOptions{})
	if got := do(h, "GET", "/hello.txt").Header.Get("Cache-Control"); got != "public, max-age=60" {
		t.Fatalf("Cache-Control %q", got)
	}
	if got := do(h, "GET", "/missing").Header.Get("Cache-Control"); got != "no-cache" {
		t.Fatalf("error Cache-Control %q, want no-cache", got)
	}
}

func TestTypesOverride(t *testing.T) {
	h, _ := site(t, map[string]string{"a.foo": "x", "b.txt": "y"},
		Options{Types: map[string]string{".foo": "text/x-foo", ".txt": "text/markdown"}}, CacheOptions{})
	if got := do(h, "GET", "/a.foo").Header.Get("Content-Type"); got != "text/x-foo; charset=utf-8" {
		t.Errorf(".foo: %q", got)
	}
	if got := do(h, "GET", "/b.txt").Header.Get("Content-Type"); got != "text/markdown; charset=utf-8" {
		t.Errorf(".txt: %q", got)
	}
}

func TestDirectoryListing(t *testing.T) {
	files := map[string]string{
		"files/b.txt": "b", "files/a <x>.txt": "a", "files/sub/": "", "files/.secret": "s",
		"files/c&d.html": "c",
	}
	h, _ := site(t, files, Options{}, CacheOptions{})
	if res := do(h, "GET", "/files/"); res.StatusCode != 404 {
		t.Fatalf("listing without opt-in: %d", res.StatusCode)
	}
	h, _ = site(t, files, Options{ListDirectories: true}, CacheOptions{})
	res := do(h, "GET", "/files/")
	b := body(t, res)
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "text/html; charset=utf-8" {
		t.Fatalf("listing: %d %v", res.StatusCode, res.Header)
	}
	if strings.Contains(b, ".secret") {
		t.Error("listing shows a dotfile")
	}
	if !strings.Contains(b, "a &lt;x&gt;.txt") || strings.Contains(b, "<x>") {
		t.Error("names are not HTML-escaped")
	}
	if !strings.Contains(b, `href="./a%20%3Cx%3E.txt"`) {
		t.Errorf("href not URL-escaped:\n%s", b)
	}
	ia, ib, ic, is := strings.Index(b, "a &lt;"), strings.Index(b, ">b.txt"), strings.Index(b, "c&amp;d"), strings.Index(b, "sub/")
	if !(ia < ib && ib < ic && ic < is) {
		t.Errorf("entries not sorted:\n%s", b)
	}
}

// TestHidden: names in Options.Hidden are missing in the root, in any
// case and in listings; the same name below the root is content.
func TestHidden(t *testing.T) {
	files := map[string]string{"_redirects": "/a /b", "_headers": "/*", "sub/_redirects": "content", "index.html": "home"}
	h, _ := site(t, files, Options{Hidden: []string{"_redirects", "_headers"}, ListDirectories: true, Index: []string{"none"}}, CacheOptions{})
	for _, p := range []string{"/_redirects", "/_headers", "/_Redirects", "/_redirects/"} {
		if res := do(h, "GET", p); res.StatusCode != 404 {
			t.Errorf("%s: %d", p, res.StatusCode)
		}
		if ok, _ := h.Exists(p); ok {
			t.Errorf("%s exists", p)
		}
	}
	if res := do(h, "GET", "/sub/_redirects"); res.StatusCode != 200 {
		t.Errorf("/sub/_redirects: %d", res.StatusCode)
	}
	if b := body(t, do(h, "GET", "/")); strings.Contains(b, "_redirects") || strings.Contains(b, "_headers") || !strings.Contains(b, "index.html") {
		t.Errorf("listing:\n%s", b)
	}
}
