package main

import (
	"bytes"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestSiteRulesFiles runs a site with site_rules_files through the
// binary over HTTP/1.1 (fast transport on and off) and HTTP/2 over TLS:
// the _redirects and _headers in its root apply, the files themselves are
// not served, an edit is picked up without a reload, and a broken edit is
// logged with file:line while the rules before it stay in force.
func TestSiteRulesFiles(t *testing.T) {
	for _, fast := range []bool{true, false} {
		t.Run(fmt.Sprintf("fast_http1=%v", fast), func(t *testing.T) { testSiteRulesFiles(t, fast) })
	}
}

func testSiteRulesFiles(t *testing.T, fast bool) {
	dir := t.TempDir()
	root := filepath.Join(dir, "site")
	writeFile(t, root, "index.html", "home")
	writeFile(t, root, "about.html", "about page")
	writeFile(t, root, "forced.html", "forced page")
	writeFile(t, root, "closed.html", "closed page")
	writeFile(t, root, "assets/app.js", "app")
	writeFile(t, root, "admin/secret.txt", "SECRET-ADMIN")
	redirects := writeFile(t, root, "_redirects", `# Netlify and Cloudflare Pages syntax
/news/*            /blog/:splat
/items/:id/:slug   /shop/:slug?id=:id  302
/shell/*           /index.html         200
/closed            /closed.html        404
/gone              /closed.html        410
/about.html        /elsewhere          301
/forced.html       /elsewhere          302!
/adm/*             /admin/:splat       200!
`)
	headers := writeFile(t, root, "_headers", `/assets/*
  X-Asset: yes
  Cache-Control: public, max-age=60
/*
  X-Site: files
`)
	cfg := writeFile(t, dir, "appliance.toml", fmt.Sprintf(`[server]
http = "127.0.0.1:0"
https = "127.0.0.1:0"
fast_http1 = %v
state_dir = %q
[cache]
revalidate = "10ms"
[[site]]
hosts = ["files.test"]
root = %q
tls = "local"
https_redirect = false
site_rules_files = true
[[site.access]]
path = "/admin/"
deny = ["127.0.0.0/8", "::1"]
`, fast, filepath.Join(dir, "state"), root))
	p := start(t, "-config", cfg)
	httpsAddr := p.httpsAddr(t)
	transports := map[string]rawClient{
		"http/1.1":  &h1client{dial: tcpDialer(p.addr)},
		"https/1.1": &h1client{dial: tlsDialer(httpsAddr, "files.test", "http/1.1")},
		"h2":        &h2client{dial: tlsDialer(httpsAddr, "files.test", "h2")},
	}
	for name, tr := range transports {
		defer tr.Close()
		for _, tc := range []struct {
			target string
			status int
			want   string // Location, or the body
		}{
			{"/news/2024/hello", 301, "/blog/2024/hello"},
			{"/NEWS/x?q=1", 301, "/blog/x?q=1"},
			{"/items/7/red%20hat", 302, "/shop/red%20hat?id=7"},
			{"/shell/settings/profile", 200, "home"},
			{"/closed", 404, "closed page"},
			{"/gone", 410, "closed page"},
			{"/about.html", 200, "about page"}, // the file shadows the rule
			{"/forced.html", 302, "/elsewhere"},
			{"/_redirects", 404, ""},
			{"/_headers", 404, ""},
			{"/_REDIRECTS", 404, ""},
			// Other spellings of the same files reach the same answer.
			{"/%5Fredirects", 404, ""},
			{"/%5fHeaders", 404, ""},
			{"//_redirects", 404, ""},
			{"/./_headers", 404, ""},
			{"/_redirects/", 404, ""},
			{"/x/../_redirects", 400, ""},
			{"/adm/secret.txt", 403, ""}, // the configuration's access rule holds for the rewritten path
		} {
			ex, err := tr.do("files.test", tc.target, nil)
			got := ex.header.Get("Location")
			if got == "" {
				got = string(ex.body)
			}
			if err != nil || ex.status != tc.status || tc.want != "" && got != tc.want || bytes.Contains(ex.body, []byte("/news/*")) || bytes.Contains(ex.body, []byte("SECRET")) {
				t.Errorf("%s %s: %v %d %q, want %d %q", name, tc.target, err, ex.status, got, tc.status, tc.want)
			}
		}
		// Nor does a compressed or partial representation leak them.
		for _, target := range []string{"/_redirects", "/_headers"} {
			ex, err := tr.do("files.test", target, map[string]string{"Accept-Encoding": "gzip, br, zstd", "Range": "bytes=0-5"})
			if err != nil || ex.status != 404 || ex.header.Get("Content-Encoding") != "" || bytes.Contains(ex.body, []byte("/news/")) || bytes.Contains(ex.body, []byte("/assets/")) {
				t.Errorf("%s %s, compressed and ranged: %v %d %v %q", name, target, err, ex.status, ex.header, ex.body)
			}
		}
		ex, err := tr.do("files.test", "/assets/app.js", nil)
		if err != nil || ex.status != 200 || ex.header.Get("X-Asset") != "yes" || ex.header.Get("X-Site") != "files" ||
			ex.header.Get("Cache-Control") != "public, max-age=60" {
			t.Errorf("%s: headers %v %v", name, err, ex.header)
		}
		ex, err = tr.do("files.test", "/closed", map[string]string{"If-None-Match": "*", "Range": "bytes=0-1"})
		if err != nil || ex.status != 404 || string(ex.body) != "closed page" || ex.header.Get("Etag") != "" {
			t.Errorf("%s: conditional request of a 404 rule: %v %d %q %v", name, err, ex.status, ex.body, ex.header)
		}
	}

	h1 := transports["http/1.1"]
	writeFile(t, root, "_redirects", "/news/* /articles/:splat 302\n")
	writeFile(t, root, "_headers", "/*\n  X-Site: edited\n")
	deadline := time.Now().Add(10 * time.Second)
	for {
		ex, _ := h1.do("files.test", "/news/a", nil)
		ix, _ := h1.do("files.test", "/", nil)
		if ex.header.Get("Location") == "/articles/a" && ix.header.Get("X-Site") == "edited" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the edited files were not picked up: %d %v, %v", ex.status, ex.header, ix.header)
		}
		time.Sleep(5 * time.Millisecond)
	}

	// A broken edit: every error is logged with its line, nothing changes.
	writeFile(t, root, "_redirects", "/news/* /broken/:splat 302\n/only-one-field\n/x /y 999\n")
	writeFile(t, root, "_headers", "/*\n  Content-Length: 3\n")
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // requests are what makes the server look at the files
		defer wg.Done()
		c := &h1client{dial: tcpDialer(p.addr)}
		defer c.Close()
		for {
			select {
			case <-stop:
				return
			default:
				c.do("files.test", "/", nil)
			}
		}
	}()
	p.waitLog(t, redirects+":2: want: from to")
	p.waitLog(t, redirects+":3: status 999")
	p.waitLog(t, headers+":2: header Content-Length is the server's to set")
	close(stop)
	wg.Wait()
	ex, _ := h1.do("files.test", "/news/a", nil)
	ix, _ := h1.do("files.test", "/", nil)
	if ex.header.Get("Location") != "/articles/a" || ix.header.Get("X-Site") != "edited" {
		t.Errorf("a broken edit changed the rules: %v, %v", ex.header, ix.header)
	}

	// On SIGHUP the files are read afresh: still broken, the site goes
	// without their rules until they are fixed, and the errors are
	// logged again.
	p.cmd.Process.Signal(syscall.SIGHUP)
	p.waitLog(t, redirects+":2: want: from to")
	p.waitLog(t, "msg=reloaded")
	ex, err := h1.do("files.test", "/news/a", nil)
	ix, _ = h1.do("files.test", "/", nil)
	if err != nil || ex.status != 404 || ex.header.Get("Location") != "" || ix.header.Get("X-Site") != "" {
		t.Errorf("after a reload with broken files: %v %d %v, %v", err, ex.status, ex.header, ix.header)
	}
	if strings.Contains(p.log.String(), "panic") {
		t.Error(p.log.String())
	}
}
