package main

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestNoticesRateLimit: one line per kind per noticeEvery, the next
// carrying the count of those suppressed; kinds do not share a budget.
func TestNoticesRateLimit(t *testing.T) {
	var buf bytes.Buffer
	n := newNotices(slog.New(slog.NewTextHandler(&buf, nil)))
	now := time.Unix(1_000_000, 0)
	n.now = func() time.Time { return now }
	for i := range 5 {
		n.warn(noticeUnknownHost, "host", fmt.Sprint("h", i))
	}
	n.warn(noticeUnknownSNI, "sni", "x")
	now = now.Add(noticeEvery)
	n.warn(noticeUnknownHost, "host", "h5")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d lines:\n%s", len(lines), buf.String())
	}
	for i, want := range []string{"host=h0 suppressed_since_last=0", "sni=x suppressed_since_last=0", "host=h5 suppressed_since_last=4"} {
		if !strings.Contains(lines[i], want) {
			t.Errorf("line %d %q lacks %q", i+1, lines[i], want)
		}
	}
	if len(n.kinds) != 2 {
		t.Errorf("%d kinds held", len(n.kinds))
	}
}

// TestSilentFailuresLogged: what used to fail without a word in the log
// is logged, once per kind within noticeEvery: a TLS handshake for a
// name no site has, one without SNI for an address no site has, a
// request for an unknown host (404), one for another site than the
// handshake's (421). The startup log lists each site with its URLs.
func TestSilentFailuresLogged(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "a/index.html", "a")
	writeFile(t, dir, "b/index.html", "b")
	cfg := writeFile(t, dir, "appliance.toml", fmt.Sprintf(`[server]
http = "127.0.0.1:0"
https = "127.0.0.1:0"
state_dir = %q
[[site]]
hosts = ["a.test", "www.a.test"]
root = %q
tls = "local"
[[site]]
hosts = ["b.test"]
root = %q
tls = "local"
https_redirect = false
`, filepath.Join(dir, "state"), filepath.Join(dir, "a"), filepath.Join(dir, "b")))
	p := start(t, "-config", cfg)
	httpsAddr := p.httpsAddr(t)
	_, httpPort, _ := net.SplitHostPort(p.addr)
	_, httpsPort, _ := net.SplitHostPort(httpsAddr)

	for _, want := range []string{
		fmt.Sprintf(`msg=site n=1 hosts=a.test,www.a.test root=%s tls=local plain_http="redirects to https" urls="https://a.test:%s/ https://www.a.test:%s/"`, filepath.Join(dir, "a"), httpsPort, httpsPort),
		fmt.Sprintf(`msg=site n=2 hosts=b.test root=%s tls=local plain_http=serves urls="https://b.test:%s/ http://b.test:%s/"`, filepath.Join(dir, "b"), httpsPort, httpPort),
	} {
		if line := p.waitLogSeen(t, "msg=site n="+want[len("msg=site n="):len("msg=site n=")+1]); !strings.Contains(line, want) {
			t.Errorf("site line %q, want %q", line, want)
		}
	}

	handshake := func(sni string) error {
		c := dialFrom(t, "127.0.0.5", httpsAddr)
		return tls.Client(c, &tls.Config{ServerName: sni, InsecureSkipVerify: true}).Handshake()
	}
	if err := handshake("nobody.test"); err == nil {
		t.Fatal("handshake for an unknown name succeeded")
	}
	line := p.waitLog(t, "msg=\""+noticeUnknownSNI+"\"")
	if !strings.Contains(line, "sni=nobody.test remote=127.0.0.5:") || !strings.Contains(line, "suppressed_since_last=0") {
		t.Errorf("unknown SNI logged as %q", line)
	}
	if err := handshake(""); err == nil {
		t.Fatal("handshake without SNI succeeded with no site for the address")
	}
	line = p.waitLog(t, "msg=\""+noticeNoSNI+"\"")
	if !strings.Contains(line, "remote=127.0.0.5:") || !strings.Contains(line, "local="+httpsAddr) {
		t.Errorf("missing SNI logged as %q", line)
	}

	get := func(host string) int {
		req, _ := http.NewRequest("GET", "http://"+p.addr+"/x", nil)
		req.Host = host
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	for _, host := range []string{"unknown.test", "unknown2.test", "unknown3.test"} {
		if st := get(host); st != 404 {
			t.Fatalf("%s: %d", host, st)
		}
	}
	handshake("nobody2.test")
	line = p.waitLog(t, "msg=\""+noticeUnknownHost+"\"")
	if !strings.Contains(line, "host=unknown.test") || !strings.Contains(line, "uri=/x") {
		t.Errorf("unknown host logged as %q", line)
	}

	// 421: a connection made for a.test asks for b.test.
	c := dialFrom(t, "127.0.0.1", httpsAddr)
	tc := tls.Client(c, &tls.Config{ServerName: "a.test", InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
	fmt.Fprintf(tc, "GET / HTTP/1.1\r\nHost: b.test\r\nConnection: close\r\n\r\n")
	var b bytes.Buffer
	b.ReadFrom(tc)
	if !strings.HasPrefix(b.String(), "HTTP/1.1 421 ") {
		t.Fatalf("%q", b.String())
	}
	line = p.waitLog(t, "msg=\""+noticeMisdirected+"\"")
	if !strings.Contains(line, "host=b.test sni=a.test") {
		t.Errorf("421 logged as %q", line)
	}
	// Everything above came within noticeEvery: one line per kind, the
	// repeats counted, not logged.
	for _, kind := range []string{noticeUnknownSNI, noticeNoSNI, noticeUnknownHost, noticeMisdirected} {
		if n := strings.Count(p.log.String(), "msg=\""+kind+"\""); n != 1 {
			t.Errorf("%d lines of %q:\n%s", n, kind, p.log.String())
		}
	}
}

// TestPublicHTTPSPort: behind port mapping (-p 443:8443, a Kubernetes
// Service), the redirect to HTTPS names the port the world reaches, not
// the listener's; without the key, the listener's, as before.
func TestPublicHTTPSPort(t *testing.T) {
	for _, c := range []struct {
		key  string
		want func(httpsPort string) string
	}{
		{"public_https_port = 443\n", func(string) string { return "https://a.test/docs/?q=1" }},
		{"public_https_port = 4443\n", func(string) string { return "https://a.test:4443/docs/?q=1" }},
		{"", func(p string) string { return "https://a.test:" + p + "/docs/?q=1" }},
	} {
		dir := t.TempDir()
		writeFile(t, dir, "a/index.html", "a")
		cfg := writeFile(t, dir, "appliance.toml", fmt.Sprintf("[server]\nhttp = \"127.0.0.1:0\"\nhttps = \"127.0.0.1:0\"\nstate_dir = %q\n%s[[site]]\nhosts = [\"a.test\"]\nroot = %q\ntls = \"local\"\n",
			filepath.Join(dir, "state"), c.key, filepath.Join(dir, "a")))
		p := start(t, "-config", cfg)
		_, httpsPort, _ := net.SplitHostPort(p.httpsAddr(t))
		for _, fast := range []string{"HTTP/1.1", "HTTP/1.0"} { // the fast path and net/http
			res := raw(t, p.addr, "GET /docs/?q=1 "+fast+"\r\nHost: a.test\r\nConnection: close\r\n\r\n", 1)[0]
			if loc := res.Header.Get("Location"); res.StatusCode != 301 || loc != c.want(httpsPort) {
				t.Errorf("%q %s: %d %q, want %q", c.key, fast, res.StatusCode, loc, c.want(httpsPort))
			}
		}
		site := p.waitLogSeen(t, "msg=site")
		if want := strings.TrimSuffix(c.want(httpsPort), "docs/?q=1"); !strings.Contains(site, `urls=`+want) {
			t.Errorf("%q: site line %q, want urls=%s", c.key, site, want)
		}
		p.cmd.Process.Kill()
		p.cmd.Wait()
	}
}
