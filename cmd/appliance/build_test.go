package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"appliance/config"
	"appliance/realip"
)

// TestBuild: build loads the files a parsed configuration names and
// compiles its rules and proxies; config itself opened none of them, and
// each file that does not load is reported at its key's line.
func TestBuild(t *testing.T) {
	dir := t.TempDir()
	_, certFile, keyFile := testCA(t, dir, "a.test")
	caFile, _ := clientCert(t, dir)
	notPEM := writeFile(t, dir, "not.pem", "not a certificate")
	good := fmt.Sprintf(`[server]
https = "127.0.0.1:0"
trusted_proxies = ["10.0.0.0/8"]
client_ip_header = "forwarded"
[acme]
ca_root = %q
[[site]]
hosts = ["a.test"]
root = %q
tls = "manual"
cert = %q
key = %q
client_ca = %q
[[site.redirect]]
from = "^/old$"
to = "/new"
[[site]]
hosts = ["www.example.com"]
root = %q
tls = "acme"
`, caFile, dir, certFile, keyFile, caFile, dir)
	cfg, err := config.Parse("a.toml", []byte(good))
	if err != nil {
		t.Fatal(err)
	}
	lv, err := build(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !lv.trusted.Contains(netip.MustParseAddr("10.2.3.4")) || lv.trusted.Contains(netip.MustParseAddr("192.0.2.1")) || lv.ipHeader != realip.Forwarded {
		t.Errorf("proxies %v, header %v", lv.trusted, lv.ipHeader)
	}
	if s := lv.sites[0]; s.manual == nil || s.manual.Leaf().Subject.CommonName != "a.test" || s.clientCAs == nil || len(s.rules.Redirects) != 1 {
		t.Errorf("manual site %+v", s)
	}
	if lv.acmeRoots == nil || lv.sites[1].manual != nil || lv.sites[1].clientCAs != nil {
		t.Errorf("acme roots %v, acme site %+v", lv.acmeRoots, lv.sites[1])
	}

	site := "[[site]]\nhosts = [\"a.test\"]\nroot = \"" + dir + "\"\n"
	for _, tc := range []struct{ name, toml, want string }{
		{"acme bad ca_root", "[server]\nhttps = \":443\"\n[acme]\nca_root = \"/nope.pem\"\n" + site + "tls = \"acme\"\n", `a.toml:4: ca_root: open /nope.pem`},
		{"missing cert file", "[server]\nhttps = \":443\"\n" + site + "tls = \"manual\"\ncert = \"/nope.crt\"\nkey = \"/nope.key\"\n", "a.toml:7: certificate /nope.crt"},
		{"cert for another host", "[server]\nhttps = \":443\"\n[[site]]\nhosts = [\"b.test\"]\nroot = \"" + dir + "\"\ntls = \"manual\"\ncert = " + strconv.Quote(certFile) + "\nkey = " + strconv.Quote(keyFile) + "\n",
			"a.toml:7: certificate " + certFile + ` does not cover host "b.test"`},
		{"cert not PEM", "[server]\nhttps = \":443\"\n" + site + "tls = \"manual\"\ncert = " + strconv.Quote(notPEM) + "\nkey = " + strconv.Quote(keyFile) + "\n", "a.toml:7: certificate " + notPEM + ", key " + keyFile + ":"},
		{"client_ca not PEM", "[server]\nhttps = \":443\"\n" + site + "tls = \"local\"\nclient_ca = " + strconv.Quote(notPEM) + "\n", "a.toml:7: client_ca: " + notPEM + ": no PEM certificate"},
		{"deploy_client_ca missing", "[server]\nhttps = \":443\"\n[[site]]\nhosts = [\"d.test\"]\ntls = \"local\"\ndeploy_client_ca = \"/nope.pem\"\n", "a.toml:6: deploy_client_ca: open /nope.pem: no such file or directory"},
		{"deploy_client_ca not PEM", "[server]\nhttps = \":443\"\n[[site]]\nhosts = [\"d.test\"]\ntls = \"local\"\ndeploy_client_ca = " + strconv.Quote(notPEM) + "\n", "a.toml:6: deploy_client_ca: " + notPEM + ": no PEM certificate"},
		{"every error", "[server]\nhttps = \":443\"\n[acme]\nca_root = \"/nope.pem\"\n" + site + "tls = \"acme\"\n" + "[[site]]\nhosts = [\"b.test\"]\nroot = \"" + dir + "\"\ntls = \"local\"\nclient_ca = \"/nope.pem\"\n",
			"a.toml:4: ca_root: open /nope.pem: no such file or directory\na.toml:13: client_ca: open /nope.pem: no such file or directory"},
	} {
		cfg, err := config.Parse("a.toml", []byte(tc.toml))
		if err != nil {
			t.Errorf("%s: config opened a file: %v", tc.name, err)
			continue
		}
		if _, err := build(cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want %q", tc.name, err, tc.want)
		}
	}
}

// TestBrokenCertFile: appliance check, reload and serve refuse a
// configuration whose certificate file is missing, at its file:line, and
// so does the running server on SIGHUP, which keeps serving the running sites
// with their certificate, over HTTP/1.1 (the fast path and net/http's)
// and HTTP/2.
func TestBrokenCertFile(t *testing.T) {
	for _, fast := range []bool{true, false} {
		t.Run("fast_http1="+strconv.FormatBool(fast), func(t *testing.T) {
			dir := t.TempDir()
			writeFile(t, dir, "a/index.html", "site a")
			root, certFile, keyFile := testCA(t, dir, "a.test")
			conf := func(cert string) string {
				return fmt.Sprintf("[server]\nhttp = \"127.0.0.1:0\"\nhttps = \"127.0.0.1:0\"\nfast_http1 = %v\n[[site]]\nhosts = [\"a.test\"]\nroot = %q\ntls = \"manual\"\ncert = %q\nkey = %q\n",
					fast, filepath.Join(dir, "a"), cert, keyFile)
			}
			cfgPath := writeFile(t, dir, "appliance.toml", conf(certFile))
			p := start(t, "-config", cfgPath)
			addr := p.httpsAddr(t)
			pool := x509.NewCertPool()
			pool.AddCert(root)
			get := func(h2 bool) {
				t.Helper()
				tr := &http.Transport{
					DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
						return (&net.Dialer{}).DialContext(ctx, network, addr)
					},
					ForceAttemptHTTP2: h2,
					TLSClientConfig:   &tls.Config{RootCAs: pool},
				}
				if !h2 {
					tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
				}
				defer tr.CloseIdleConnections()
				res, err := (&http.Client{Transport: tr}).Get("https://a.test/")
				if err != nil {
					t.Fatalf("h2 %v: %v", h2, err)
				}
				if b := readBody(res); b != "site a" || (res.ProtoMajor == 2) != h2 {
					t.Fatalf("h2 %v: %s %q", h2, res.Proto, b)
				}
				res.Body.Close()
			}
			get(false)
			get(true)

			broken := writeFile(t, dir, "broken.toml", conf(filepath.Join(dir, "gone.crt")))
			want := broken + ":9: certificate " + filepath.Join(dir, "gone.crt")
			if _, errOut, code := runBinary(t, "", "check", "-config", broken); code != 1 || !strings.Contains(errOut, want) {
				t.Errorf("check: %d %q, want %q", code, errOut, want)
			}
			if _, errOut, code := runBinary(t, "", "reload", "-config", broken, "-pid", strconv.Itoa(p.cmd.Process.Pid)); code != 1 || !strings.Contains(errOut, want) {
				t.Errorf("appliance reload: %d %q, want %q", code, errOut, want)
			}
			if _, errOut, code := runBinary(t, "", "serve", "-config", broken); code != 1 || !strings.Contains(errOut, want) {
				t.Errorf("appliance serve: %d %q, want %q", code, errOut, want)
			}
			os.WriteFile(cfgPath, []byte(conf(filepath.Join(dir, "gone.crt"))), 0o644)
			p.cmd.Process.Signal(syscall.SIGHUP)
			if line := p.waitLog(t, "reload refused"); !strings.Contains(line, cfgPath+":9: certificate") {
				t.Errorf("refusal without file:line: %s", line)
			}
			get(false)
			get(true)
		})
	}
}
