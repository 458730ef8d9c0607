package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sync/atomic"
	"testing"
	"time"

	"appliance/internal/httpx"
)

// newCA makes a certificate authority for tests.
func newCA(t testing.TB, name string) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(der)
	return ca, key
}

// issue makes a leaf certificate for names (the first is the subject),
// signed by ca, for server or client authentication.
func issue(t testing.TB, ca *x509.Certificate, caKey *ecdsa.PrivateKey, usage x509.ExtKeyUsage, names ...string) tls.Certificate {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: names[0]},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{usage}}
	if usage == x509.ExtKeyUsageServerAuth {
		tmpl.DNSNames = names
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// intermediate makes an intermediate CA named name, issued by parent.
func intermediate(t *testing.T, parent *x509.Certificate, parentKey *ecdsa.PrivateKey, name string) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(3), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return c, key
}

// bogusChain is an attacker's client certificate chain against a server
// that trusts root: a leaf naming root as its issuer, followed by n CA
// certificates named as root, each with its own P-521 key, none of which
// signed anything here. A verifier that takes the intermediates a client
// sends checks one P-521 signature for each.
func bogusChain(t *testing.T, root *x509.Certificate, n int) tls.Certificate {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leafTmpl := &x509.Certificate{SerialNumber: big.NewInt(4), Subject: pkix.Name{CommonName: "mallory"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, &x509.Certificate{RawSubject: root.RawSubject}, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	bogus := tls.Certificate{Certificate: [][]byte{leafDER}, PrivateKey: key}
	for i := range n {
		k, _ := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(int64(10 + i)), Subject: root.Subject,
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
			BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, key)
		if err != nil {
			t.Fatal(err)
		}
		bogus.Certificate = append(bogus.Certificate, der)
	}
	return bogus
}

// pemOf is certs as a PEM bundle.
func pemOf(certs ...*x509.Certificate) string {
	var b []byte
	for _, c := range certs {
		b = append(b, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return string(b)
}

// testCA issues a certificate for names, as an operator's own CA would
// for tls = "manual"; it returns the CA certificate and the files.
func testCA(t testing.TB, dir string, names ...string) (*x509.Certificate, string, string) {
	t.Helper()
	ca, caKey := newCA(t, "test CA")
	cert := issue(t, ca, caKey, x509.ExtKeyUsageServerAuth, names...)
	keyDER, _ := x509.MarshalECPrivateKey(cert.PrivateKey.(*ecdsa.PrivateKey))
	certFile, keyFile := filepath.Join(dir, "b.crt"), filepath.Join(dir, "b.key")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]}), 0o644)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600)
	return ca, certFile, keyFile
}

var httpsRe = regexp.MustCompile(`https=https://(\S+)`)

func TestHTTPS(t *testing.T) {
	dir := t.TempDir()
	for _, s := range []string{"a", "b", "c"} {
		writeFile(t, dir, s+"/index.html", "site "+s)
	}
	testRoot, certFile, keyFile := testCA(t, dir, "b.test")
	cfg := writeFile(t, dir, "appliance.toml", fmt.Sprintf(`[server]
http = "127.0.0.1:0"
https = "127.0.0.1:0"
state_dir = %q
[[site]]
hosts = ["a.test"]
root = %q
tls = "local"
hsts = "max-age=63072000; includeSubDomains"
[[site]]
hosts = ["b.test"]
root = %q
tls = "manual"
cert = %q
key = %q
https_redirect = false
[[site]]
hosts = ["c.test"]
root = %q
tls = "off"
`, filepath.Join(dir, "state"), filepath.Join(dir, "a"), filepath.Join(dir, "b"), certFile, keyFile, filepath.Join(dir, "c")))
	p := start(t, "-config", cfg)
	httpsAddr := p.httpsAddr(t)
	_, httpsPort, _ := net.SplitHostPort(httpsAddr)

	rootPEM, err := exec.Command(binary, "ca-cert", "-config", cfg).Output()
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(rootPEM) {
		t.Fatal("ca-cert printed no certificate")
	}
	pool.AddCert(testRoot)
	if fi, _ := os.Stat(filepath.Join(dir, "state", "local-ca", "root.key")); fi == nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("local CA key mode %v, want 0600", fi.Mode())
	}
	if fi, _ := os.Stat(filepath.Join(dir, "state", "local-ca")); fi.Mode().Perm() != 0o700 {
		t.Errorf("local CA directory mode %v, want 0700", fi.Mode())
	}

	dial := func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, httpsAddr)
	}
	h2 := &http.Client{Transport: &http.Transport{DialContext: dial, ForceAttemptHTTP2: true, TLSClientConfig: &tls.Config{RootCAs: pool}}}
	h11 := &http.Client{Transport: &http.Transport{DialContext: dial, TLSNextProto: map[string]func(string, *tls.Conn) http.RoundTripper{},
		TLSClientConfig: &tls.Config{RootCAs: pool}}}
	defer h2.CloseIdleConnections()
	defer h11.CloseIdleConnections()

	for _, tt := range []struct {
		name   string
		client *http.Client
		url    string
		proto  string
		body   string
		hsts   string
	}{
		{"local CA over HTTP/2", h2, "https://a.test/", "HTTP/2.0", "site a", "max-age=63072000; includeSubDomains"},
		{"local CA over HTTP/1.1 (fast path)", h11, "https://a.test/", "HTTP/1.1", "site a", "max-age=63072000; includeSubDomains"},
		{"manual certificate", h2, "https://b.test/", "HTTP/2.0", "site b", "max-age=31536000"},
		{"manual certificate, HTTP/1.1", h11, "https://b.test/", "HTTP/1.1", "site b", "max-age=31536000"},
	} {
		res, err := tt.client.Get(tt.url)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if b := readBody(res); res.StatusCode != 200 || b != tt.body || res.Proto != tt.proto || res.Header.Get("Strict-Transport-Security") != tt.hsts {
			t.Errorf("%s: %d %s %q HSTS %q", tt.name, res.StatusCode, res.Proto, b, res.Header.Get("Strict-Transport-Security"))
		}
	}

	// The handshake chose a.test; a request for b.test on it is misdirected.
	for _, c := range []*http.Client{h2, h11} {
		req, _ := http.NewRequest("GET", "https://a.test/", nil)
		req.Host = "b.test"
		res, err := c.Do(req)
		if err != nil || res.StatusCode != http.StatusMisdirectedRequest {
			t.Errorf("SNI a.test, Host b.test: %v %v", err, res)
		}
	}
	if _, err := h2.Get("https://c.test/"); err == nil {
		t.Error("a site without TLS got a certificate")
	}
	old := &http.Client{Transport: &http.Transport{DialContext: dial, TLSClientConfig: &tls.Config{RootCAs: pool, MaxVersion: tls.VersionTLS11}}}
	if _, err := old.Get("https://a.test/"); err == nil {
		t.Error("TLS 1.1 accepted")
	}

	// Plain HTTP: TLS sites redirect, except ACME challenges; others serve.
	plain := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	do := func(method, host, path string) *http.Response {
		req, _ := http.NewRequest(method, "http://"+p.addr+path, nil)
		req.Host = host
		res, err := plain.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		readBody(res)
		return res
	}
	if res := do("GET", "a.test", "/x?y=1"); res.StatusCode != 301 || res.Header.Get("Location") != "https://a.test:"+httpsPort+"/x?y=1" {
		t.Errorf("redirect: %d %q", res.StatusCode, res.Header.Get("Location"))
	}
	if res := do("POST", "a.test", "/form"); res.StatusCode != 308 {
		t.Errorf("POST redirect: %d, want 308", res.StatusCode)
	}
	if res := do("GET", "a.test", "/.well-known/acme-challenge/token"); res.StatusCode != 404 {
		t.Errorf("ACME challenge path: %d, want it served (404 here), not redirected", res.StatusCode)
	}
	if res := do("GET", "c.test", "/"); res.StatusCode != 200 {
		t.Errorf("plain site: %d", res.StatusCode)
	}
	if res := do("GET", "b.test", "/"); res.StatusCode != 200 || res.Header.Get("Strict-Transport-Security") != "" {
		t.Errorf("TLS site with https_redirect = false over plain HTTP: %d, HSTS %q", res.StatusCode, res.Header.Get("Strict-Transport-Security"))
	}

	// The local CA survives a restart: clients keep trusting it.
	p.cmd.Process.Signal(os.Interrupt)
	p.cmd.Wait()
	again, _ := exec.Command(binary, "ca-cert", "-config", cfg).Output()
	if string(again) != string(rootPEM) {
		t.Error("the local CA changed across a restart")
	}
}

// clientCert makes a CA, writes it to dir, and a client certificate it
// signed.
func clientCert(t *testing.T, dir string) (caFile string, cert tls.Certificate) {
	t.Helper()
	ca, caKey := newCA(t, "clients CA")
	caFile = filepath.Join(dir, "clients.pem")
	os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Raw}), 0o644)
	return caFile, issue(t, ca, caKey, x509.ExtKeyUsageClientAuth, "alice")
}

func TestMutualTLS(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "m/index.html", "members only")
	writeFile(t, dir, "o/index.html", "open")
	caFile, cert := clientCert(t, dir)
	_, otherCert := clientCert(t, t.TempDir()) // signed by a CA the site does not know
	cfg := writeFile(t, dir, "appliance.toml", fmt.Sprintf(`[server]
https = "127.0.0.1:0"
state_dir = %q
[[site]]
hosts = ["m.test"]
root = %q
tls = "local"
client_ca = %q
[[site]]
hosts = ["o.test"]
root = %q
tls = "local"
`, filepath.Join(dir, "state"), filepath.Join(dir, "m"), caFile, filepath.Join(dir, "o")))
	p := start(t, "-config", cfg)
	addr := p.httpsAddr(t)
	rootPEM, _ := exec.Command(binary, "ca-cert", "-config", cfg).Output()
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(rootPEM)
	client := func(certs ...tls.Certificate) *http.Client {
		return &http.Client{Transport: &http.Transport{
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				return (&net.Dialer{}).DialContext(ctx, network, addr)
			},
			ForceAttemptHTTP2: true,
			TLSClientConfig:   &tls.Config{RootCAs: pool, Certificates: certs},
		}}
	}
	if _, err := client().Get("https://m.test/"); err == nil {
		t.Error("served without a client certificate")
	}
	if _, err := client(otherCert).Get("https://m.test/"); err == nil {
		t.Error("served with a certificate from an unknown CA")
	}
	res, err := client(cert).Get("https://m.test/")
	if err != nil || readBody(res) != "members only" {
		t.Fatalf("with the client certificate: %v", err)
	}
	if res, err := client().Get("https://o.test/"); err != nil || readBody(res) != "open" {
		t.Fatalf("the open site: %v", err)
	}
	// A connection made for the open site cannot reach the members' site.
	req, _ := http.NewRequest("GET", "https://o.test/", nil)
	req.Host = "m.test"
	if res, err := client().Do(req); err != nil || res.StatusCode != http.StatusMisdirectedRequest {
		t.Fatalf("Host m.test over a connection for o.test: %v %v", err, res)
	}
}

// sniClient is a real HTTP client that dials addr whatever the URL says,
// sends sni as the TLS server name ("": none, as for an address), offers
// h2 or only HTTP/1.1, and presents certs when asked. Each request makes
// a new connection, so each gets its own handshake.
func sniClient(addr, sni string, h2 bool, certs ...tls.Certificate) *http.Client {
	protos := []string{"http/1.1"}
	if h2 {
		protos = []string{"h2", "http/1.1"}
	}
	cfg := &tls.Config{ServerName: sni, InsecureSkipVerify: true, NextProtos: protos, Certificates: certs}
	return &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{
		DialTLSContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&tls.Dialer{Config: cfg}).DialContext(ctx, network, addr)
		},
		ForceAttemptHTTP2: h2,
		DisableKeepAlives: true,
	}}
}

// outcome is what a GET for host over c got: "refused" (no handshake, or
// an alert after it), "421", or "200 <body>"; an answer in another
// protocol than asked for (h2 or HTTP/1.1) is an error.
func outcome(c *http.Client, host string, h2 bool) (string, error) {
	res, err := c.Get("https://" + host + "/")
	if err != nil {
		return "refused", err
	}
	b := readBody(res)
	res.Body.Close()
	if (res.ProtoMajor == 2) != h2 {
		return res.Proto, fmt.Errorf("answered over %s", res.Proto)
	}
	if res.StatusCode == http.StatusMisdirectedRequest {
		return "421", nil
	}
	return fmt.Sprintf("%d %s", res.StatusCode, b), nil
}

// TestTLSWithoutSNI: a client that sends no SNI (it connected by
// address) gets the handshake of the site for the address it connected
// to, else of the catch-all site; only that site answers it, so a
// client_ca site is never reached without its client certificate.
func TestTLSWithoutSNI(t *testing.T) {
	dir := t.TempDir()
	for _, s := range []string{"e", "all", "ip", "o"} {
		writeFile(t, dir, s+"/index.html", s)
	}
	caFile, cert := clientCert(t, dir)
	var fast bool // of the process being checked
	run := func(t *testing.T, sites string, check func(addr string, h2 bool)) {
		for _, fast = range []bool{true, false} {
			cfg := writeFile(t, t.TempDir(), "appliance.toml", fmt.Sprintf("[server]\nhttps = \"127.0.0.1:0\"\nfast_http1 = %v\nstate_dir = %q\n%s",
				fast, filepath.Join(dir, "state"), sites))
			p := start(t, "-config", cfg)
			addr := p.httpsAddr(t)
			for _, h2 := range []bool{false, true} {
				check(addr, h2)
			}
		}
	}
	expect := func(t *testing.T, h2 bool, c *http.Client, what, host, want string) {
		t.Helper()
		if got, err := outcome(c, host, h2); got != want {
			t.Errorf("fast_http1=%v h2=%v %s, Host %s: %s (%v), want %s", fast, h2, what, host, got, err, want)
		}
	}
	t.Run("catch-all", func(t *testing.T) {
		run(t, fmt.Sprintf(`[[site]]
hosts = ["e.test"]
root = %q
tls = "local"
client_ca = %q
[[site]]
hosts = ["*"]
root = %q
tls = "local"
`, filepath.Join(dir, "e"), caFile, filepath.Join(dir, "all")), func(addr string, h2 bool) {
			// The handshake without SNI is the catch-all's: no client
			// certificate asked for, and e.test is not answered on it.
			expect(t, h2, sniClient(addr, "", h2), "no SNI", "e.test", "421")
			expect(t, h2, sniClient(addr, "", h2, cert), "no SNI, with a client certificate", "e.test", "421")
			expect(t, h2, sniClient(addr, "", h2), "no SNI", "any.test", "200 all")
			expect(t, h2, sniClient(addr, "", h2), "no SNI", "127.0.0.1", "200 all")
			expect(t, h2, sniClient(addr, "e.test", h2), "SNI e.test without a certificate", "e.test", "refused")
			expect(t, h2, sniClient(addr, "e.test", h2, cert), "SNI e.test", "e.test", "200 e")
			expect(t, h2, sniClient(addr, "e.test", h2, cert), "SNI e.test", "any.test", "421")
		})
	})
	t.Run("address site", func(t *testing.T) {
		run(t, fmt.Sprintf(`[[site]]
hosts = ["127.0.0.1"]
root = %q
tls = "local"
client_ca = %q
[[site]]
hosts = ["o.test"]
root = %q
tls = "local"
`, filepath.Join(dir, "ip"), caFile, filepath.Join(dir, "o")), func(addr string, h2 bool) {
			// The handshake without SNI is the address site's, which asks
			// for a client certificate; o.test is not answered on it.
			expect(t, h2, sniClient(addr, "", h2), "no SNI without a certificate", "127.0.0.1", "refused")
			expect(t, h2, sniClient(addr, "", h2, cert), "no SNI", "127.0.0.1", "200 ip")
			expect(t, h2, sniClient(addr, "", h2, cert), "no SNI", "o.test", "421")
			expect(t, h2, sniClient(addr, "o.test", h2), "SNI o.test", "o.test", "200 o")
			expect(t, h2, sniClient(addr, "o.test", h2, cert), "SNI o.test", "127.0.0.1", "421")
		})
	})
}

// TestToHTTPSHost: the redirect to HTTPS names the host in its one
// canonical form (vhost.Normalize), an IPv6 literal in brackets, with
// the HTTPS port unless it is 443.
func TestToHTTPSHost(t *testing.T) {
	var port atomic.Value
	port.Store("8443")
	for _, tc := range []struct{ host, public, want string }{
		{"a.test", "", "https://a.test:8443/x?y"},
		{"A.Test.:80", "", "https://a.test:8443/x?y"},
		{"[::1]:80", "", "https://[::1]:8443/x?y"},
		{"::1", "", "https://[::1]:8443/x?y"},
		{"[2001:DB8::1]", "443", "https://[2001:db8::1]/x?y"},
		{"192.0.2.1:80", "443", "https://192.0.2.1/x?y"},
	} {
		public := 0
		if tc.public != "" {
			public = 443
		}
		req := httptest.NewRequest("GET", "/x?y", nil)
		req.Host = tc.host
		rec := httptest.NewRecorder()
		toHTTPS(&port, public, httpx.DefaultRedirectCacheControl).ServeHTTP(rec, req)
		if got := rec.Header().Get("Location"); rec.Code != 301 || got != tc.want {
			t.Errorf("Host %q: %d %q, want 301 %q", tc.host, rec.Code, got, tc.want)
		}
	}
}
