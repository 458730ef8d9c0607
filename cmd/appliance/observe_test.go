package main

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
)

// TestEveryResponseObserved: redirects, challenge answers, unknown
// or missing hosts and 421s are logged and counted exactly
// once, like the sites' own answers, on plain HTTP, HTTPS and HTTP/2;
// a response no site answered is the site "-", whatever its Host.
func TestEveryResponseObserved(t *testing.T) {
	for _, fast := range []bool{true, false} {
		t.Run(fmt.Sprintf("fast_http1=%v", fast), func(t *testing.T) { testEveryResponseObserved(t, fast) })
	}
}

func testEveryResponseObserved(t *testing.T, fast bool) {
	dir := t.TempDir()
	for _, s := range []string{"a", "b", "quiet"} {
		writeFile(t, dir, s+"/index.html", "site "+s)
	}
	logPath := filepath.Join(dir, "access.log")
	cfg := writeFile(t, dir, "appliance.toml", fmt.Sprintf(`[server]
http = "127.0.0.1:0"
https = "127.0.0.1:0"
state_dir = %q
access_log = %q
access_log_format = "json"
fast_http1 = %v
[admin]
listen = "127.0.0.1:0"
[[site]]
hosts = ["a.test"]
root = %q
tls = "local"
[[site]]
hosts = ["b.test"]
root = %q
tls = "local"
[[site]]
hosts = ["quiet.test"]
root = %q
tls = "off"
access_log = false
`, filepath.Join(dir, "state"), logPath, fast, filepath.Join(dir, "a"), filepath.Join(dir, "b"), filepath.Join(dir, "quiet")))
	p := start(t, "-config", cfg)
	httpsAddr := p.httpsAddr(t)
	admin := strings.TrimPrefix(regexpAdmin.FindStringSubmatch(p.waitLogSeen(t, "admin listener"))[1], "http://")

	do := func(c *http.Client, url, host string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest("GET", url, nil)
		req.Host = host
		res, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		readBody(res)
		res.Body.Close()
		return res
	}
	plain := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	defer plain.CloseIdleConnections()
	// Identity is not under test here: the local CA's root is not fetched.
	h1 := httpsClient(httpsAddr, &tls.Config{InsecureSkipVerify: true})
	h1.Transport.(*http.Transport).ForceAttemptHTTP2 = false // HTTP/1.1 over TLS
	defer h1.CloseIdleConnections()
	h2 := httpsClient(httpsAddr, &tls.Config{InsecureSkipVerify: true})
	defer h2.CloseIdleConnections()

	type check struct {
		name   string
		c      *http.Client
		url    string
		host   string
		status int
	}
	checks := []check{
		{"redirect to HTTPS", plain, "http://" + p.addr + "/", "a.test", 301},
		{"challenge path of a local site", plain, "http://" + p.addr + acmeChallengePath + "token", "a.test", 404},
		{"unknown host", plain, "http://" + p.addr + "/", "unknown.test", 404},
		{"unlogged site", plain, "http://" + p.addr + "/", "quiet.test", 200},
	}
	want := []string{
		"301 a.test a.test / HTTP/1.1",
		"404 a.test a.test " + acmeChallengePath + "token HTTP/1.1",
		"404 - unknown.test / HTTP/1.1",
		"404 -  / HTTP/1.0",
	}
	metricsWant := []string{
		`appliance_requests_total{site="a.test",code="301"} 1`,
		`appliance_requests_total{site="a.test",code="404"} 1`,
		`appliance_requests_total{site="quiet.test",code="200"} 1`,
		`appliance_requests_total{site="-",code="404"} 2`,
	}
	checks = append(checks,
		check{"HTTPS", h1, "https://a.test/", "a.test", 200},
		check{"misdirected", h1, "https://a.test/", "b.test", 421},
		check{"HTTP/2", h2, "https://b.test/", "b.test", 200})
	want = append(want,
		"200 a.test a.test / HTTP/1.1",
		"421 - b.test / HTTP/1.1",
		"200 b.test b.test / HTTP/2.0")
	metricsWant = append(metricsWant,
		`appliance_requests_total{site="a.test",code="200"} 1`,
		`appliance_requests_total{site="b.test",code="200"} 1`,
		`appliance_requests_total{site="-",code="421"} 1`,
		`appliance_request_duration_seconds_count{site="a.test"} 3`)
	refusals := 3
	if fast {
		// A head the fast path refuses itself (ambiguous framing).
		rs := raw(t, p.addr, "POST / HTTP/1.1\r\nHost: a.test\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 1)
		if rs[0].StatusCode != 400 || !rs[0].Close {
			t.Errorf("CL and TE: %d close=%v", rs[0].StatusCode, rs[0].Close)
		}
		want = append(want, "400 - a.test / HTTP/1.1")
		metricsWant = append(metricsWant, `appliance_requests_total{site="-",code="400"} 1`)
		refusals++
	}
	metricsWant = append(metricsWant, fmt.Sprintf(`appliance_request_duration_seconds_count{site="-"} %d`, refusals))
	for _, tt := range checks {
		res := do(tt.c, tt.url, tt.host)
		if res.StatusCode != tt.status {
			t.Errorf("%s: %d, want %d", tt.name, res.StatusCode, tt.status)
		}
		if tt.c == h2 && res.ProtoMajor != 2 {
			t.Errorf("%s: over %s", tt.name, res.Proto)
		}
	}
	// (HTTP/1.1 without Host is net/http's own 400, which no handler sees.)
	if rs := raw(t, p.addr, "GET / HTTP/1.0\r\n\r\n", 1); rs[0].StatusCode != 404 {
		t.Errorf("HTTP/1.0 without Host: %d", rs[0].StatusCode)
	}

	res, err := http.Get("http://" + admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	m := readBody(res)
	for _, want := range metricsWant {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	if strings.Contains(m, "unknown.test") {
		t.Error("a request's Host became a metrics label")
	}
	if t.Failed() {
		t.Logf("metrics:\n%s", m)
	}

	p.cmd.Process.Signal(syscall.SIGTERM) // flushes the log
	if err := p.cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var e struct {
			Site, Host, URI, Proto string
			Status                 int
		}
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("%v: %s", err, line)
		}
		got = append(got, fmt.Sprintf("%d %s %s %s %s", e.Status, e.Site, e.Host, e.URI, e.Proto))
	}
	// The order of lines from different connections is not guaranteed.
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("access log:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
