package main

import (
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// semanticsSite is the site TestHTTPSemantics serves as a.test: over
// plain HTTP and HTTPS (https_redirect = false), with rules and a
// listing; r.test is a TLS site whose plain-HTTP requests are
// redirected.
const semanticsSite = `
[[site]]
hosts = ["a.test"]
root = %q
tls = "local"
https_redirect = false
directory_listing = true
redirect_cache_control = "max-age=600"
trailing_slash = "remove"
[[site.redirect]]
from = "^/perm$"
to = "/page.html"
[[site.redirect]]
from = "^/temp$"
to = "/page.html"
status = 302
[[site.redirect]]
from = "^/keep$"
to = "/page.html"
status = 307
[[site.cors]]
path = "/**"
origins = ["https://o.test"]
[[site]]
hosts = ["r.test"]
root = %q
tls = "local"
[[site]]
hosts = ["d.test"]
root = %q
tls = "local"
https_redirect = false
repr_digest = true
`

// transportClient sends a site's requests over one transport: plain
// HTTP/1.1, HTTP/1.1 over TLS or HTTP/2 over TLS.
type transportClient struct {
	name   string
	c      *http.Client
	scheme string
	addr   string
}

// do sends method target with Host host and header pairs, and returns
// the response with its body read.
func (tc transportClient) do(t *testing.T, method, host, target string, header ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, tc.scheme+"://"+host+target, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := tc.c.Do(req)
	if err != nil {
		t.Fatalf("%s %s %s: %v", tc.name, method, target, err)
	}
	defer res.Body.Close()
	body := readBody(res)
	want := 1
	if tc.name == "h2" {
		want = 2
	}
	if res.ProtoMajor != want {
		t.Fatalf("%s: answered over %s", tc.name, res.Proto)
	}
	return res, body
}

// startSemantics runs the binary with semanticsSite and returns a client
// per transport. Every client dials the process whatever host a URL
// names, and none follows redirects or decompresses.
func startSemantics(t *testing.T, fast bool, files map[string]string) []transportClient {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		writeFile(t, dir, "a/"+name, content)
	}
	writeFile(t, dir, "r/index.html", "r")
	cfg := writeFile(t, dir, "appliance.toml", fmt.Sprintf("[server]\nhttp = \"127.0.0.1:0\"\nhttps = \"127.0.0.1:0\"\nstate_dir = %q\nfast_http1 = %v\n",
		filepath.Join(dir, "state"), fast)+fmt.Sprintf(semanticsSite, filepath.Join(dir, "a"), filepath.Join(dir, "r"), filepath.Join(dir, "a")))
	p := start(t, "-config", cfg)
	httpsAddr := p.httpsAddr(t)

	plain := httpsClient(p.addr, nil)
	plain.Transport.(*http.Transport).DisableCompression = true
	h1 := httpsClient(httpsAddr, &tls.Config{InsecureSkipVerify: true})
	h1.Transport.(*http.Transport).ForceAttemptHTTP2 = false
	h1.Transport.(*http.Transport).DisableCompression = true
	h2 := httpsClient(httpsAddr, &tls.Config{InsecureSkipVerify: true})
	h2.Transport.(*http.Transport).DisableCompression = true
	for _, c := range []*http.Client{plain, h1, h2} {
		t.Cleanup(c.CloseIdleConnections)
	}
	return []transportClient{
		{"http/1.1", plain, "http", p.addr},
		{"https/1.1", h1, "https", httpsAddr},
		{"h2", h2, "https", httpsAddr},
	}
}

// TestHTTPSemantics checks, through the binary on every transport
// (HTTP/1.1 with fast_http1 on and off, HTTP/1.1 over TLS, HTTP/2), the
// answers to unknown and refused methods and the cache policy of every
// kind of redirect.
func TestHTTPSemantics(t *testing.T) {
	files := map[string]string{
		"page.html":  "<p>page</p>",
		"dir/a.txt":  "a",
		"file.txt":   "file",
		"index.html": "home",
		"big.html":   strings.Repeat("<p>compressible</p>\n", 100),
		// A listing: list/ has no index.
		"list/small.txt":   "12345",
		"list/big.bin":     strings.Repeat("x", 1234),
		"list/a b?#.txt":   "a",
		"list/.hidden":     "secret",
		"list/.git/config": "secret",
		"list/sub/x":       "x",
	}
	for _, fast := range []bool{true, false} {
		clients := startSemantics(t, fast, files)
		for _, tc := range clients {
			t.Run(fmt.Sprintf("fast_http1=%v/%s", fast, tc.name), func(t *testing.T) {
				t.Run("methods", func(t *testing.T) { testMethods(t, tc) })
				t.Run("redirects", func(t *testing.T) { testRedirectCaching(t, tc) })
				t.Run("digests", func(t *testing.T) { testDigests(t, tc) })
				t.Run("listings", func(t *testing.T) { testListings(t, tc) })
			})
		}
		t.Run(fmt.Sprintf("fast_http1=%v/https redirect", fast), func(t *testing.T) {
			// Unknown methods too: the redirect answers before the method
			// is looked at.
			for _, method := range []string{"GET", "HEAD", "POST", "BREW"} {
				res, _ := clients[0].do(t, method, "r.test", "/x?y=1")
				want := 308
				if method == "GET" || method == "HEAD" {
					want = 301
				}
				if res.StatusCode != want || !strings.HasPrefix(res.Header.Get("Location"), "https://r.test") {
					t.Errorf("%s: %d %q, want %d to https", method, res.StatusCode, res.Header.Get("Location"), want)
				}
				checkRedirect(t, method+" to https", res, "max-age=3600")
			}
		})
	}
}

// testMethods: GET and HEAD are served, OPTIONS and CORS preflights
// answered, known methods a static site does not allow refused with 405
// and Allow, unknown ones (method names are case-sensitive) with 501.
func testMethods(t *testing.T, tc transportClient) {
	for _, c := range []struct {
		method string
		status int
		allow  string
	}{
		{"GET", 200, ""},
		{"HEAD", 200, ""},
		{"OPTIONS", 204, "GET, HEAD, OPTIONS"},
		{"POST", 405, "GET, HEAD, OPTIONS"},
		{"PUT", 405, "GET, HEAD, OPTIONS"},
		{"DELETE", 405, "GET, HEAD, OPTIONS"},
		{"PATCH", 405, "GET, HEAD, OPTIONS"},
		{"TRACE", 405, "GET, HEAD, OPTIONS"},
		{"BREW", 501, ""},
		{"PROPFIND", 501, ""},
		{"get", 501, ""},
		{"Head", 501, ""},
	} {
		res, body := tc.do(t, c.method, "a.test", "/page.html")
		if res.StatusCode != c.status || res.Header.Get("Allow") != c.allow {
			t.Errorf("%s: %d Allow %q, want %d Allow %q", c.method, res.StatusCode, res.Header.Get("Allow"), c.status, c.allow)
		}
		if c.status == 501 && body != "501 Not Implemented\n" {
			t.Errorf("%s: body %q", c.method, body)
		}
	}
	res, _ := tc.do(t, "OPTIONS", "a.test", "/page.html", "Origin", "https://o.test", "Access-Control-Request-Method", "GET")
	if res.StatusCode != 204 || res.Header.Get("Access-Control-Allow-Origin") != "https://o.test" {
		t.Errorf("CORS preflight: %d %v", res.StatusCode, res.Header)
	}
}

// testRedirectCaching: permanent redirects are cacheable for the site's
// redirect_cache_control, temporary ones never stored, and none carries
// a validator.
func testRedirectCaching(t *testing.T, tc transportClient) {
	for _, c := range []struct {
		what, method, target string
		status               int
		location             string
	}{
		{"directory slash", "GET", "/dir?q=1", 301, "/dir/?q=1"},
		{"directory slash, HEAD", "HEAD", "/dir", 301, "/dir/"},
		{"trailing_slash", "GET", "/file.txt/", 301, "/file.txt"},
		{"trailing_slash, POST", "POST", "/file.txt/", 308, "/file.txt"},
		{"rule, 301", "GET", "/perm", 301, "/page.html"},
		{"rule, 302", "GET", "/temp", 302, "/page.html"},
		{"rule, 307", "GET", "/keep", 307, "/page.html"},
	} {
		res, _ := tc.do(t, c.method, "a.test", c.target)
		if res.StatusCode != c.status || res.Header.Get("Location") != c.location {
			t.Errorf("%s: %d %q, want %d %q", c.what, res.StatusCode, res.Header.Get("Location"), c.status, c.location)
		}
		checkRedirect(t, c.what, res, "max-age=600")
	}
}

// testDigests: Repr-Digest is the SHA-256 of the representation's bytes
// (the encoded ones for a content coding, the whole ones for a range),
// sent when asked for or by default with repr_digest, HEAD as GET.
func testDigests(t *testing.T, tc transportClient) {
	res, page := tc.do(t, "GET", "a.test", "/big.html")
	if d := res.Header.Get("Repr-Digest"); d != "" {
		t.Errorf("unasked: Repr-Digest %q", d)
	}
	want := digestHeader([]byte(page))
	for _, c := range []struct {
		what, method, host string
		header             []string
		status             int
		digest             string // "body": the body's
	}{
		{"asked", "GET", "a.test", []string{"Want-Repr-Digest", "sha-512=9, sha-256=1"}, 200, want},
		{"HEAD", "HEAD", "a.test", []string{"Want-Repr-Digest", "sha-256=1"}, 200, want},
		{"refused", "GET", "a.test", []string{"Want-Repr-Digest", "sha-256=0"}, 200, ""},
		{"range", "GET", "a.test", []string{"Want-Repr-Digest", "sha-256=1", "Range", "bytes=5-9"}, 206, want},
		{"gzip", "GET", "a.test", []string{"Want-Repr-Digest", "sha-256=1", "Accept-Encoding", "gzip"}, 200, "body"},
		{"zstd", "GET", "a.test", []string{"Want-Repr-Digest", "sha-256=1", "Accept-Encoding", "zstd"}, 200, "body"},
		{"on by default", "GET", "d.test", nil, 200, want},
		{"on by default, HEAD", "HEAD", "d.test", nil, 200, want},
		{"on by default, refused", "GET", "d.test", []string{"Want-Repr-Digest", "sha-256=0"}, 200, ""},
	} {
		res, body := tc.do(t, c.method, c.host, "/big.html", c.header...)
		w := c.digest
		if w == "body" {
			if res.Header.Get("Content-Encoding") == "" {
				t.Errorf("%s: not encoded", c.what)
			}
			w = digestHeader([]byte(body))
		}
		if res.StatusCode != c.status || res.Header.Get("Repr-Digest") != w {
			t.Errorf("%s: %d Repr-Digest %q, want %d %q", c.what, res.StatusCode, res.Header.Get("Repr-Digest"), c.status, w)
		}
	}
}

// testListings: a listing is HTML or JSON by Accept (q-values, Vary:
// Accept), sorted by the query, without dotfiles, with sizes in binary
// units in HTML; a bad sort is 400.
func testListings(t *testing.T, tc transportClient) {
	type entry struct {
		Name     string `json:"name"`
		Size     int64  `json:"size"`
		Modified string `json:"modified"`
		IsDir    bool   `json:"is_dir"`
		URL      string `json:"url"`
	}
	list := func(query string, header ...string) []entry {
		t.Helper()
		res, body := tc.do(t, "GET", "a.test", "/list/"+query, header...)
		if res.StatusCode != 200 || res.Header.Get("Content-Type") != "application/json" || res.Header.Get("Vary") != "Accept" {
			t.Fatalf("%s: %d %v", query, res.StatusCode, res.Header)
		}
		var l struct {
			Path    string  `json:"path"`
			Entries []entry `json:"entries"`
		}
		if err := json.Unmarshal([]byte(body), &l); err != nil || l.Path != "/list/" {
			t.Fatalf("%s: %v %q\n%s", query, err, l.Path, body)
		}
		return l.Entries
	}
	order := func(es []entry) string {
		var n []string
		for _, e := range es {
			n = append(n, e.Name)
		}
		return strings.Join(n, " ")
	}
	es := list("", "Accept", "application/json")
	if got := order(es); got != "a b?#.txt big.bin small.txt sub" {
		t.Fatalf("entries %s", got)
	}
	if e := es[0]; e.URL != "./a%20b%3F%23.txt" || e.Size != 1 || e.IsDir {
		t.Errorf("escaped entry: %+v", e)
	}
	if e := es[3]; e.URL != "./sub/" || !e.IsDir {
		t.Errorf("directory entry: %+v", e)
	}
	if _, err := time.Parse(time.RFC3339, es[1].Modified); err != nil {
		t.Errorf("modified %q: %v", es[1].Modified, err)
	}
	for _, c := range []struct{ query, accept, want string }{
		{"?sort=size&order=desc", "application/json", "big.bin small.txt a b?#.txt sub"},
		{"?sort=name&order=desc", "text/html;q=0.5, application/json", "sub small.txt big.bin a b?#.txt"},
		{"?sort=size", "application/json, */*", "sub a b?#.txt small.txt big.bin"},
	} {
		if got := order(list(c.query, "Accept", c.accept)); got != c.want {
			t.Errorf("%s (Accept %s): %s, want %s", c.query, c.accept, got, c.want)
		}
	}
	for _, accept := range []string{"", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", "application/json;q=0.5, text/html"} {
		res, body := tc.do(t, "GET", "a.test", "/list/", "Accept", accept)
		if res.StatusCode != 200 || res.Header.Get("Content-Type") != "text/html; charset=utf-8" || res.Header.Get("Vary") != "Accept" {
			t.Fatalf("HTML for %q: %d %v", accept, res.StatusCode, res.Header)
		}
		if !strings.Contains(body, ">1.2 KiB<") || !strings.Contains(body, ">5 B<") || strings.Contains(body, "hidden") || strings.Contains(body, ".git") {
			t.Errorf("HTML for %q:\n%s", accept, body)
		}
	}
	res, body := tc.do(t, "GET", "a.test", "/list/?sort=owner", "Accept", "application/json")
	if res.StatusCode != 400 || !strings.Contains(body, "sort must be name, size or time") {
		t.Errorf("bad sort: %d %q", res.StatusCode, body)
	}
	res, body = tc.do(t, "HEAD", "a.test", "/list/", "Accept", "application/json")
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "application/json" || body != "" {
		t.Errorf("HEAD: %d %v %q", res.StatusCode, res.Header, body)
	}
}

// digestHeader is the Repr-Digest of b.
func digestHeader(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha-256=:" + base64.StdEncoding.EncodeToString(sum[:]) + ":"
}

// checkRedirect checks a redirect's cache policy: permanent ones (301,
// 308) cacheable for permanent, temporary ones never stored, and no
// validator on either.
func checkRedirect(t *testing.T, what string, res *http.Response, permanent string) {
	t.Helper()
	want := "no-store"
	if res.StatusCode == 301 || res.StatusCode == 308 {
		want = permanent
	}
	if got := res.Header.Get("Cache-Control"); got != want {
		t.Errorf("%s: %d Cache-Control %q, want %q", what, res.StatusCode, got, want)
	}
	for _, k := range []string{"Etag", "Last-Modified", "Accept-Ranges"} {
		if v := res.Header.Get(k); v != "" {
			t.Errorf("%s: %d with %s %q", what, res.StatusCode, k, v)
		}
	}
}
