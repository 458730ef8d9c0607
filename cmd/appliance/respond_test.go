package main

import (
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// respondSites is a configuration with fixed responses, rate limits, an
// auth rule and maintenance pages: site a.test with its own maintenance
// page, b.test with the built-in one. Both are TLS sites that also serve
// plain HTTP. The client address comes from X-Forwarded-For when the
// peer (127.0.0.1) sends one.
func respondSites(t *testing.T, dir string, fast bool, hash string) string {
	t.Helper()
	for _, root := range []string{"a", "b"} {
		writeFile(t, dir, root+"/index.html", "home "+root)
		writeFile(t, dir, root+"/.well-known/acme-challenge/tok", "challenge "+root)
		writeFile(t, dir, root+"/private/x.txt", "private")
	}
	writeFile(t, dir, "a/451.html", "<p>blocked here</p>")
	writeFile(t, dir, "a/maintenance.html", "<p>a is being upgraded</p>")
	return writeFile(t, dir, "appliance.toml", fmt.Sprintf(`[server]
http = "127.0.0.1:0"
https = "127.0.0.1:0"
fast_http1 = %v
state_dir = %q
trusted_proxies = ["127.0.0.1"]
maintenance_retry_after = "1m"

[[site]]
hosts = ["a.test"]
root = %q
tls = "local"
https_redirect = false
maintenance_page = "/maintenance.html"

[[site.respond]]
path = "/old/"
status = 410

[[site.respond]]
path = "/banned/"
status = 451
page = "/451.html"

[[site.respond]]
path = "/api/down/"
status = 503
body = "the API is down\n"
retry_after = 120

[[site.rewrite]]
from = "^/\\.well-known/home$"
to = "/index.html"

[[site.rate_limit]]
path = "/limited/"
rate = "1/h"
burst = 3

[[site.auth]]
path = "/private/"
users = { alice = %q }

[[site]]
hosts = ["b.test"]
root = %q
tls = "local"
https_redirect = false

[[site]]
hosts = ["c.test"]
root = %q
tls = "local"
`, fast, filepath.Join(dir, "state"), filepath.Join(dir, "a"), hash, filepath.Join(dir, "b"), filepath.Join(dir, "b")))
}

// TestFixedResponsesAndLimits runs the real binary, fast_http1 on and
// off, and checks over HTTP/1.1, HTTPS/1.1 and HTTP/2: 410, 451 (with a
// page) and 503 (with a body and Retry-After) from [[site.respond]];
// 429 with Retry-After past a rate limit's burst, per client address
// (X-Forwarded-For from a trusted proxy); the auth lockout; and
// maintenance on and off without a reload, /.well-known/ served
// throughout.
func TestFixedResponsesAndLimits(t *testing.T) {
	hash := rewriteHash(t, "letmein")
	for _, fast := range []bool{true, false} {
		t.Run(fmt.Sprintf("fast_http1=%v", fast), func(t *testing.T) {
			dir := t.TempDir()
			cfg := respondSites(t, dir, fast, hash)
			p := start(t, "-config", cfg)
			httpsAddr := p.httpsAddr(t)
			_, httpsPort, _ := net.SplitHostPort(httpsAddr)
			transports := []struct {
				name string
				c    rawClient
			}{
				{"http/1.1", &h1client{dial: tcpDialer(p.addr)}},
				{"https/1.1", &h1client{dial: tlsDialer(httpsAddr, "a.test", "http/1.1")}},
				{"h2", &h2client{dial: tlsDialer(httpsAddr, "a.test", "h2")}},
			}
			for _, tr := range transports {
				defer tr.c.Close()
			}
			do := func(tr rawClient, host, target string, header map[string]string, status int, body, retry string) {
				t.Helper()
				ex, err := tr.do(host, target, header)
				if err != nil || ex.status != status || (body != "" && string(ex.body) != body) {
					t.Fatalf("%s %s: %v %d %q, want %d %q", host, target, err, ex.status, ex.body, status, body)
				}
				if got := ex.header.Get("Retry-After"); got != retry {
					t.Errorf("%s %s: Retry-After %q, want %q", host, target, got, retry)
				}
			}
			for i, tr := range transports {
				t.Logf("%s", tr.name)
				do(tr.c, "a.test", "/old/page.html", nil, 410, "410 Gone\n", "")
				do(tr.c, "a.test", "/OLD", nil, 410, "410 Gone\n", "")
				do(tr.c, "a.test", "//old/./x", nil, 410, "410 Gone\n", "")
				do(tr.c, "a.test", "/banned/x", nil, 451, "<p>blocked here</p>", "")
				do(tr.c, "a.test", "/api/down/v1", nil, 503, "the API is down\n", "120")
				do(tr.c, "a.test", "/", nil, 200, "home a", "")
				// Each transport is a client of its own, by X-Forwarded-For.
				client := map[string]string{"X-Forwarded-For": fmt.Sprintf("203.0.113.%d", i+1)}
				for range 3 {
					do(tr.c, "a.test", "/limited/x", client, 404, "", "")
				}
				ex, err := tr.c.do("a.test", "/limited/x", client)
				if err != nil || ex.status != 429 || ex.header.Get("Retry-After") < "3000" || len(ex.header.Get("Retry-After")) != 4 {
					t.Fatalf("past the burst: %v %d Retry-After %q, want 429 and about 3600", err, ex.status, ex.header.Get("Retry-After"))
				}
				do(tr.c, "a.test", "/index.html", client, 200, "home a", "") // other paths are not limited
			}

			// Auth lockout: five failures are free, the sixth locks the
			// client out; then even the right password gets 429, on every
			// transport, and other clients are not locked.
			creds := func(pw string) map[string]string {
				return map[string]string{"Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte("alice:"+pw)), "X-Forwarded-For": "198.51.100.7"}
			}
			for range 6 {
				do(transports[0].c, "a.test", "/private/x.txt", creds("guess"), 401, "", "")
			}
			for _, tr := range transports {
				do(tr.c, "a.test", "/private/x.txt", creds("letmein"), 429, "", "1")
			}
			other := creds("letmein")
			other["X-Forwarded-For"] = "198.51.100.8"
			do(transports[2].c, "a.test", "/private/x.txt", other, 200, "private", "")

			// Maintenance, without a reload.
			maintenance := func(state, log string) {
				t.Helper()
				out, err := exec.Command(binary, "maintenance", state, "-config", cfg).CombinedOutput()
				if err != nil || !strings.Contains(string(out), "maintenance "+state) {
					t.Fatalf("appliance maintenance %s: %v %s", state, err, out)
				}
				p.waitLog(t, log)
			}
			maintenance("on", "maintenance on")
			for _, tr := range transports {
				do(tr.c, "a.test", "/", nil, 503, "<p>a is being upgraded</p>", "60")
				do(tr.c, "a.test", "/old/x", nil, 503, "<p>a is being upgraded</p>", "60")
				do(tr.c, "a.test", "/.well-known/acme-challenge/tok", nil, 200, "challenge a", "")
				// The exemption is for the path asked for: the site's
				// own rewrite of a /.well-known/ path serves its target.
				do(tr.c, "a.test", "/.well-known/home", nil, 200, "home a", "")
			}
			b := &h1client{dial: tcpDialer(p.addr)}
			defer b.Close()
			ex, err := b.do("b.test", "/index.html", nil)
			if err != nil || ex.status != 503 || !strings.Contains(string(ex.body), "Down for maintenance") ||
				ex.header.Get("Retry-After") != "60" || ex.header.Get("Content-Type") != "text/html; charset=utf-8" {
				t.Errorf("built-in maintenance page: %v %d %v %q", err, ex.status, ex.header, ex.body)
			}
			do(b, "b.test", "/.well-known/acme-challenge/tok", nil, 200, "challenge b", "")
			// A TLS site that redirects plain HTTP still does: the
			// 503 is for HTTPS.
			ex, err = b.do("c.test", "/index.html", nil)
			if err != nil || ex.status != 301 || ex.header.Get("Location") != "https://c.test:"+httpsPort+"/index.html" {
				t.Errorf("plain HTTP to c.test during maintenance: %v %d %v", err, ex.status, ex.header)
			}
			c := &h2client{dial: tlsDialer(httpsAddr, "c.test", "h2")}
			defer c.Close()
			do(c, "c.test", "/index.html", nil, 503, "", "60")
			maintenance("off", "maintenance off")
			for _, tr := range transports {
				do(tr.c, "a.test", "/", nil, 200, "home a", "")
			}
			do(b, "b.test", "/", nil, 200, "home b", "")
		})
	}
}

func TestMaintenanceCommandUsage(t *testing.T) {
	dir := t.TempDir()
	cfg := writeFile(t, dir, "a.toml", fmt.Sprintf("[server]\nhttp = \"127.0.0.1:0\"\nstate_dir = %q\n[[site]]\nroot = %q\n", filepath.Join(dir, "nope", "state"), dir))
	for _, args := range [][]string{{"maintenance", "-config", cfg}, {"maintenance", "sideways", "-config", cfg}, {"maintenance", "on"}} {
		if err := exec.Command(binary, args...).Run(); err == nil {
			t.Errorf("%v succeeded", args)
		}
	}
	// A state_dir that does not exist is made as the server would make
	// it (0700), except by root, whose directory would keep a service
	// with its own user out: then it is an error, not a silent no-op.
	out, err := exec.Command(binary, "maintenance", "on", "-config", cfg).CombinedOutput()
	fi, statErr := os.Stat(filepath.Join(dir, "nope", "state"))
	if os.Geteuid() == 0 {
		if err == nil || !strings.Contains(string(out), "does not exist: start the server first") || statErr == nil {
			t.Errorf("maintenance on as root without a state_dir: %v %s", err, out)
		}
	} else if err != nil || statErr != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("maintenance on without a state_dir: %v %s %v", err, out, fi)
	} else {
		exec.Command(binary, "maintenance", "off", "-config", cfg).Run()
	}
	// on when it is on, and off when it is off, say so.
	os.MkdirAll(filepath.Join(dir, "nope", "state"), 0o755)
	for _, c := range []struct{ state, want string }{
		{"on", "maintenance on ("}, {"on", "maintenance was already on ("}, {"off", "maintenance off ("}, {"off", "maintenance was already off (no "},
	} {
		out, err := exec.Command(binary, "maintenance", c.state, "-config", cfg).CombinedOutput()
		if err != nil || !strings.HasPrefix(string(out), c.want) {
			t.Errorf("maintenance %s: %v %q, want %q", c.state, err, out, c.want)
		}
	}
}

// TestRateLimitTableBound floods the running binary from 1,000 client
// addresses (X-Forwarded-For from a trusted proxy) across two rate-limit
// rules that remember at most 50 clients each: the admin metrics show
// 100 remembered, the latest client is still limited, and ACME's
// challenge path is not.
func TestRateLimitTableBound(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "site/index.html", "home")
	cfg := writeFile(t, dir, "appliance.toml", fmt.Sprintf(`[server]
http = "127.0.0.1:0"
trusted_proxies = ["127.0.0.1"]
rate_limit_clients = 50
[admin]
listen = "127.0.0.1:0"
[[site]]
root = %q
[[site.rate_limit]]
path = "/api/"
rate = "1/h"
burst = 1
[[site.rate_limit]]
rate = "1/h"
burst = 1
`, filepath.Join(dir, "site")))
	p := start(t, "-config", cfg)
	admin := strings.TrimPrefix(regexpAdmin.FindStringSubmatch(p.waitLogSeen(t, "admin listener"))[1], "http://")
	c := &h1client{dial: tcpDialer(p.addr)}
	defer c.Close()
	const clients = 1000
	for i := range clients {
		target := []string{"/api/x", "/"}[i%2]
		ex, err := c.do("x.test", target, map[string]string{"X-Forwarded-For": fmt.Sprintf("10.0.%d.%d", i/256, i%256)})
		if err != nil || ex.status == 429 {
			t.Fatalf("client %d's first request: %v %d", i, err, ex.status)
		}
	}
	last := map[string]string{"X-Forwarded-For": fmt.Sprintf("10.0.%d.%d", (clients-1)/256, (clients-1)%256)}
	if ex, err := c.do("x.test", "/", last); err != nil || ex.status != 429 {
		t.Errorf("the latest client's second request: %v %d, want 429", err, ex.status)
	}
	// ACME's challenges are never limited, even for a limited client.
	if ex, err := c.do("x.test", "/.well-known/acme-challenge/token", last); err != nil || ex.status != 404 {
		t.Errorf("an ACME challenge from a limited client: %v %d, want 404 (no such token)", err, ex.status)
	}
	res, err := http.Get("http://" + admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	m := readBody(res)
	if !strings.Contains(m, "\nappliance_rate_limit_clients 100\n") {
		t.Errorf("after %d clients, want 100 remembered (2 rules of 50):\n%s", clients, grepLines(m, "rate_limit"))
	}
	// A reload starts every count afresh: the limited client is let in.
	p.cmd.Process.Signal(syscall.SIGHUP)
	p.waitLog(t, "msg=reloaded")
	if ex, err := c.do("x.test", "/", last); err != nil || ex.status != 200 {
		t.Errorf("the limited client after a reload: %v %d, want 200", err, ex.status)
	}
}

// grepLines returns the lines of s that contain sub.
func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// BenchmarkMaintenanceGate is what the maintenance switch costs a request
// while it is off: one atomic load in front of the site's handler.
func BenchmarkMaintenanceGate(b *testing.B) {
	s := &server{}
	nop := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
	h := s.maintenanceGate("", nil, time.Minute, nop)
	r := httptest.NewRequest("GET", "/", nil)
	w := nullWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(w, r)
	}
}
