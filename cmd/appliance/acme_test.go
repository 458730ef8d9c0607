package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"appliance/certs/pebbletest"
)

func portOf(addr string) int {
	_, p, _ := net.SplitHostPort(addr)
	var n int
	fmt.Sscan(p, &n)
	return n
}

// httpsClient talks to addr whatever the URL's host, trusting roots.
func httpsClient(addr string, roots *tls.Config) *http.Client {
	dial := func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}
	return &http.Client{
		Transport:     &http.Transport{DialContext: dial, TLSClientConfig: roots, ForceAttemptHTTP2: true},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// TestACME obtains certificates from a real ACME CA (Pebble, in this
// process) through the built binary, once by each challenge type: the
// CA's connections for the other type reach a port that closes them.
func TestACME(t *testing.T) {
	for _, challenge := range []string{"tls-alpn-01", "http-01"} {
		t.Run(challenge, func(t *testing.T) { testACME(t, challenge) })
	}
}

func testACME(t *testing.T, challenge string) {
	files, httpAddr, httpsAddr := activatedListeners(t)
	opt := pebbletest.Options{TLSPort: portOf(httpsAddr), HTTPPort: pebbletest.ClosingPort(t)}
	if challenge == "http-01" {
		opt = pebbletest.Options{TLSPort: pebbletest.ClosingPort(t), HTTPPort: portOf(httpAddr)}
	}
	ca := pebbletest.Start(t, opt)
	dir := t.TempDir()
	writeFile(t, dir, "shop/index.html", "the shop")
	writeFile(t, dir, "docs/index.html", "the docs")
	state := filepath.Join(dir, "state")
	config := func(extra string) string {
		return writeFile(t, dir, "appliance.toml", fmt.Sprintf(`[server]
http = ":80"
https = ":443"
state_dir = %q
[admin]
listen = "127.0.0.1:0"
[acme]
email = "ops@example.test"
directory = %q
ca_root = %q
[[site]]
hosts = ["shop.example.test"]
root = %q
tls = "acme"
[[site]]
hosts = ["docs.example.test"]
root = %q
tls = "acme"
hsts = "max-age=600; includeSubDomains"
%s`, state, ca.URL, ca.RootsPEM, filepath.Join(dir, "shop"), filepath.Join(dir, "docs"), extra))
	}
	cfg := config("")
	notify, sock := notifySocket(t)
	p := startActivated(t, cfg, files, "NOTIFY_SOCKET="+sock)
	// The certificates come in the background, before any visitor;
	// systemd's STATUS says so, then says again once both are there.
	p.waitLog(t, "certificate ready")
	p.waitLog(t, "certificate ready")
	for msg := nextNotify(t, notify, true); !strings.Contains(msg, "certificates: 2 acme") || strings.Contains(msg, "pending"); msg = nextNotify(t, notify, true) {
		if strings.HasPrefix(msg, "READY=1") && !strings.Contains(msg, "certificates: 2 acme") {
			t.Fatalf("STATUS without the certificates: %q", msg)
		}
	}

	client := httpsClient(httpsAddr, &tls.Config{RootCAs: ca.Issuer})
	serials := map[string]string{}
	for name, body := range map[string]string{"shop.example.test": "the shop", "docs.example.test": "the docs"} {
		res, err := client.Get("https://" + name + "/")
		if err != nil {
			t.Fatalf("%s: %v\n%s", name, err, p.log.String())
		}
		if got := readBody(res); got != body || res.Proto != "HTTP/2.0" {
			t.Errorf("%s: %s %q", name, res.Proto, got)
		}
		if name == "docs.example.test" && res.Header.Get("Strict-Transport-Security") != "max-age=600; includeSubDomains" {
			t.Errorf("HSTS %q", res.Header.Get("Strict-Transport-Security"))
		}
		serials[name] = res.TLS.PeerCertificates[0].SerialNumber.String()
	}
	// A name that is not configured gets no certificate, and the CA is
	// not asked.
	before := ca.Requests()
	if _, err := tls.Dial("tcp", httpsAddr, &tls.Config{ServerName: "evil.example.test", RootCAs: ca.Issuer}); err == nil {
		t.Error("handshake for a name not in the config")
	}
	if n := ca.Requests() - before; n != 0 {
		t.Errorf("%d CA requests for a name not in the config", n)
	}
	// Plain HTTP redirects, but for the challenge path.
	plain := httpsClient(httpAddr, nil)
	res, err := plain.Get("http://shop.example.test/a?b")
	if err != nil || res.StatusCode != 301 || res.Header.Get("Location") != fmt.Sprintf("https://shop.example.test:%d/a?b", portOf(httpsAddr)) {
		t.Fatalf("redirect: %v %+v", err, res)
	}
	res, err = plain.Get("http://shop.example.test/.well-known/acme-challenge/unknown")
	if err != nil || res.StatusCode != 404 {
		t.Fatalf("challenge path: %v %+v", err, res)
	}
	admin := strings.TrimPrefix(regexpAdmin.FindStringSubmatch(p.waitLogSeen(t, "admin listener"))[1], "http://")
	res, err = http.Get("http://" + admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	m := readBody(res)
	for _, want := range []string{`appliance_certificate_expiry_timestamp_seconds{name="docs.example.test",source="acme"} 1`, "appliance_acme_errors_total 0", "appliance_acme_certificates_stored_total 2"} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %q:\n%s", want, m)
		}
	}
	if challenge == "http-01" {
		return
	}

	// Restart from the cache: the same certificates, no request to the
	// CA; then the CA goes down and the sites keep serving, while a new
	// site without a certificate fails its handshakes with a clear log.
	p.cmd.Process.Signal(syscall.SIGTERM)
	p.cmd.Wait()
	files, _, httpsAddr = activatedListeners(t)
	before = ca.Requests()
	cfg = config(fmt.Sprintf("[[site]]\nhosts = [\"new.example.test\"]\nroot = %q\ntls = \"acme\"\n", filepath.Join(dir, "docs")))
	ca.Stop()
	p = startActivated(t, cfg, files)
	client = httpsClient(httpsAddr, &tls.Config{RootCAs: ca.Issuer})
	for name, serial := range serials {
		res, err := client.Get("https://" + name + "/")
		if err != nil {
			t.Fatalf("%s after restart with the CA down: %v\n%s", name, err, p.log.String())
		}
		readBody(res)
		if got := res.TLS.PeerCertificates[0].SerialNumber.String(); got != serial {
			t.Errorf("%s: a new certificate after restart", name)
		}
	}
	if n := ca.Requests() - before; n != 0 {
		t.Errorf("%d requests to the CA on restart", n)
	}
	line := p.waitLog(t, "no certificate for a site")
	if !strings.Contains(line, "name=new.example.test") || !strings.Contains(line, "retry_in=1m0s") {
		t.Errorf("log line %q", line)
	}
	if _, err := client.Get("https://new.example.test/"); err == nil {
		t.Error("a certificate for the new site with the CA down")
	}
	if res, err := client.Get("https://shop.example.test/"); err != nil || readBody(res) != "the shop" {
		t.Fatalf("the other sites stop serving: %v", err)
	}
}
