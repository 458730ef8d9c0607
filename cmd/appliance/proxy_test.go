package main

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	proxyproto "github.com/pires/go-proxyproto"
)

// dialFrom connects to addr from the loopback address local: 127.0.0.1
// is the trusted proxy in these tests, other 127.x addresses are
// clients.
func dialFrom(t *testing.T, local, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}, Timeout: 10 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	t.Cleanup(func() { c.Close() })
	return c
}

// ppHeader is a PROXY protocol header (version 1 or 2) naming src as the
// client, written by github.com/pires/go-proxyproto.
func ppHeader(t *testing.T, version byte, src string) []byte {
	t.Helper()
	ap := netip.MustParseAddrPort(src)
	h := proxyproto.HeaderProxyFromAddrs(version, net.TCPAddrFromAddrPort(ap), &net.TCPAddr{IP: net.ParseIP("10.0.0.9"), Port: 80})
	b, err := h.Format()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// exchangeVia sends header (nil: none) and one request from local to
// addr, over TLS for sni != "", and returns the status (0: the
// connection was closed unanswered).
func exchangeVia(t *testing.T, local, addr string, header []byte, sni, path string, fields ...string) int {
	t.Helper()
	c := dialFrom(t, local, addr)
	if header != nil {
		c.Write(header)
	}
	if sni != "" {
		tc := tls.Client(c, &tls.Config{ServerName: sni, InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
		if err := tc.Handshake(); err != nil {
			return 0
		}
		c = tc
	}
	req := "GET " + path + " HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n"
	for _, f := range fields {
		req += f + "\r\n"
	}
	io.WriteString(c, req+"\r\n")
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0
	}
	res.Body.Close()
	return res.StatusCode
}

// TestRealClientAddress: behind trusted proxies, the client's address
// (from a PROXY header, v1 or v2, and from X-Forwarded-For by the
// rightmost-untrusted-hop rule, alone or after a PROXY header) is the
// one [[site.access]] and the access log see, on the plain and the
// HTTPS listener, with the fast path on and off. Untrusted peers can
// spoof neither: their PROXY headers close the connection, their
// X-Forwarded-For is ignored.
func TestRealClientAddress(t *testing.T) {
	for _, fast := range []bool{true, false} {
		t.Run(fmt.Sprintf("fast_http1=%v", fast), func(t *testing.T) {
			dir := t.TempDir()
			writeFile(t, dir, "a/index.html", "a")
			writeFile(t, dir, "a/private/secret.txt", "secret")
			logPath := filepath.Join(dir, "access.log")
			cfg := writeFile(t, dir, "appliance.toml", fmt.Sprintf(`[server]
http = "127.0.0.1:0"
https = "127.0.0.1:0"
state_dir = %q
fast_http1 = %v
trusted_proxies = ["127.0.0.1", "10.0.0.0/8"]
proxy_protocol = true
access_log = %q
[[site]]
hosts = ["a.test"]
root = %q
tls = "local"
https_redirect = false
[[site.access]]
path = "/private/"
allow = ["198.51.100.0/24"]
`, filepath.Join(dir, "state"), fast, logPath, filepath.Join(dir, "a")))
			p := start(t, "-config", cfg)
			httpsAddr := p.httpsAddr(t)

			type want struct {
				status int
				client string // first field of the access log line; "" for no line
			}
			cases := []struct {
				name, from string
				header     []byte
				tls        bool
				fields     []string
				want       want
			}{
				{"PROXY v1 from the trusted peer", "127.0.0.1", ppHeader(t, 1, "198.51.100.7:5000"), false, nil, want{200, "198.51.100.7"}},
				{"PROXY v2 from the trusted peer", "127.0.0.1", ppHeader(t, 2, "198.51.100.8:5000"), false, nil, want{200, "198.51.100.8"}},
				{"PROXY v2 for a client the rule refuses", "127.0.0.1", ppHeader(t, 2, "203.0.113.9:5000"), false, nil, want{403, "203.0.113.9"}},
				{"PROXY v2 over TLS", "127.0.0.1", ppHeader(t, 2, "198.51.100.9:5000"), true, nil, want{200, "198.51.100.9"}},
				{"PROXY v1 over TLS, refused client", "127.0.0.1", ppHeader(t, 1, "203.0.113.10:5000"), true, nil, want{403, "203.0.113.10"}},
				{"PROXY v1 from an untrusted peer", "127.0.0.2", ppHeader(t, 1, "198.51.100.7:5000"), false, nil, want{0, ""}},
				{"PROXY v2 from an untrusted peer, TLS", "127.0.0.2", ppHeader(t, 2, "198.51.100.7:5000"), true, nil, want{0, ""}},
				{"X-Forwarded-For from an untrusted peer", "127.0.0.2", nil, false, []string{"X-Forwarded-For: 198.51.100.7"}, want{403, "127.0.0.2"}},
				{"X-Forwarded-For from an untrusted peer, TLS", "127.0.0.2", nil, true, []string{"X-Forwarded-For: 198.51.100.7"}, want{403, "127.0.0.2"}},
				{"X-Forwarded-For chain", "127.0.0.1", nil, false, []string{"X-Forwarded-For: 198.51.100.20, 10.1.2.3"}, want{200, "198.51.100.20"}},
				{"X-Forwarded-For chain with a spoofed first hop", "127.0.0.1", nil, false, []string{"X-Forwarded-For: 198.51.100.21, 203.0.113.5, 10.1.2.3"}, want{403, "203.0.113.5"}},
				{"X-Forwarded-For over several fields", "127.0.0.1", nil, true, []string{"X-Forwarded-For: 203.0.113.6, 198.51.100.22", "X-Forwarded-For: 10.4.4.4"}, want{200, "198.51.100.22"}},
				{"Forwarded is not the configured header", "127.0.0.1", nil, false, []string{"Forwarded: for=198.51.100.23"}, want{403, "127.0.0.1"}},
				{"X-Forwarded-For from a trusted proxy behind a PROXY header", "127.0.0.1", ppHeader(t, 2, "10.9.9.9:5000"), false, []string{"X-Forwarded-For: 198.51.100.24"}, want{200, "198.51.100.24"}},
				{"X-Forwarded-For from a client behind a PROXY header", "127.0.0.1", ppHeader(t, 2, "203.0.113.11:5000"), false, []string{"X-Forwarded-For: 198.51.100.25"}, want{403, "203.0.113.11"}},
				{"X-Forwarded-For naming no address", "127.0.0.1", nil, false, []string{"X-Forwarded-For: unknown"}, want{403, "unknown"}},
			}
			for i, c := range cases {
				addr, sni := p.addr, ""
				if c.tls {
					addr, sni = httpsAddr, "a.test"
				}
				if got := exchangeVia(t, c.from, addr, c.header, sni, fmt.Sprintf("/private/secret.txt?case=%d", i), c.fields...); got != c.want.status {
					t.Errorf("%s: status %d, want %d", c.name, got, c.want.status)
				}
			}
			line := p.waitLog(t, "msg=\""+noticeProxyHeader+"\"")
			if !strings.Contains(line, "peer=127.0.0.2") || !strings.Contains(line, "not in trusted_proxies") {
				t.Errorf("refusal logged as %q", line)
			}
			p.cmd.Process.Signal(syscall.SIGTERM) // flushes the access log
			p.cmd.Wait()
			b, _ := os.ReadFile(logPath)
			log := string(b)
			for i, c := range cases {
				tag := fmt.Sprintf("/private/secret.txt?case=%d ", i)
				var found string
				for _, l := range strings.Split(log, "\n") {
					if strings.Contains(l, tag) {
						found = l
					}
				}
				switch {
				case c.want.client == "" && found != "":
					t.Errorf("%s: logged %q", c.name, found)
				case c.want.client != "" && !strings.HasPrefix(found, c.want.client+" - - ["):
					t.Errorf("%s: log line %q, want client %s", c.name, found, c.want.client)
				}
			}
		})
	}
}

// TestHAProxy puts Debian's HAProxy in front, as a load balancer would
// be: send-proxy (v1) to the plain listener, send-proxy-v2 to the HTTPS
// one. The client connects to HAProxy from 127.0.0.3; the appliance
// must see that address, not HAProxy's.
func TestHAProxy(t *testing.T) {
	haproxy, err := exec.LookPath("haproxy")
	if err != nil {
		t.Skip("haproxy not installed (Debian package haproxy); .ci/run installs it")
	}
	dir := t.TempDir()
	writeFile(t, dir, "a/private/secret.txt", "secret")
	logPath := filepath.Join(dir, "access.log")
	cfg := writeFile(t, dir, "appliance.toml", fmt.Sprintf(`[server]
http = "127.0.0.1:0"
https = "127.0.0.1:0"
state_dir = %q
trusted_proxies = ["127.0.0.1"]
proxy_protocol = ["http", "https"]
access_log = %q
[[site]]
hosts = ["a.test"]
root = %q
tls = "local"
https_redirect = false
[[site.access]]
path = "/private/"
allow = ["127.0.0.3"]
`, filepath.Join(dir, "state"), logPath, filepath.Join(dir, "a")))
	p := start(t, "-config", cfg)
	httpsAddr := p.httpsAddr(t)

	// HAProxy's frontends listen on sockets bound here and passed to it
	// (bind fd@N): connections queue in them until it accepts.
	var files []*os.File
	var fronts []string
	for range 2 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		f, _ := ln.(*net.TCPListener).File()
		ln.Close()
		t.Cleanup(func() { f.Close() })
		files = append(files, f)
		fronts = append(fronts, ln.Addr().String())
	}
	hcfg := writeFile(t, dir, "haproxy.cfg", fmt.Sprintf(`global
  maxconn 100
defaults
  mode tcp
  timeout connect 5s
  timeout client 30s
  timeout server 30s
frontend plain
  bind fd@3
  default_backend appliance_http
frontend secure
  bind fd@4
  default_backend appliance_https
backend appliance_http
  server a %s send-proxy
backend appliance_https
  server a %s send-proxy-v2
`, p.addr, httpsAddr))
	cmd := exec.Command(haproxy, "-db", "-f", hcfg)
	cmd.ExtraFiles = files
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("haproxy:\n%s", out.String())
		}
	})

	for _, c := range []struct {
		name, from, addr, sni string
		want                  int
	}{
		{"v1 through HAProxy", "127.0.0.3", fronts[0], "", 200},
		{"v2 and TLS through HAProxy", "127.0.0.3", fronts[1], "a.test", 200},
		{"another client through HAProxy", "127.0.0.4", fronts[0], "", 403},
		{"HAProxy's own address, directly", "127.0.0.1", p.addr, "", 403},
	} {
		if got := exchangeVia(t, c.from, c.addr, nil, c.sni, "/private/secret.txt?"+strings.ReplaceAll(c.name, " ", "-")); got != c.want {
			t.Errorf("%s: status %d, want %d", c.name, got, c.want)
		}
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	p.cmd.Wait()
	b, _ := os.ReadFile(logPath)
	for _, want := range []string{
		`127.0.0.3 - - [`, `"GET /private/secret.txt?v1-through-HAProxy HTTP/1.1" 200 6`,
		`"GET /private/secret.txt?v2-and-TLS-through-HAProxy HTTP/1.1" 200 6`,
		`127.0.0.4 - - [`,
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("access log lacks %q:\n%s", want, b)
		}
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, "through-HAProxy") && strings.HasPrefix(l, "127.0.0.1 ") {
			t.Errorf("HAProxy's address logged for a client: %q", l)
		}
	}
}
