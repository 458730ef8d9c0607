package main

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"appliance/deploy"
)

// writeCert writes cert and its key as PEM files in dir.
func writeCert(t *testing.T, dir, name string, cert tls.Certificate) (certFile, keyFile string) {
	t.Helper()
	keyDER, err := x509.MarshalECPrivateKey(cert.PrivateKey.(*ecdsa.PrivateKey))
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]}), 0o644)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600)
	return certFile, keyFile
}

// pushyClient is sniClient, but it presents cert whenever the server
// asks, whichever issuers the server named (Go's client sends only a
// certificate of an issuer named; a hostile one sends any).
func pushyClient(addr, sni string, h2 bool, cert tls.Certificate) *http.Client {
	c := sniClient(addr, sni, h2)
	c.Transport.(*http.Transport).DialTLSContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
		protos := []string{"http/1.1"}
		if h2 {
			protos = []string{"h2", "http/1.1"}
		}
		cfg := &tls.Config{ServerName: sni, InsecureSkipVerify: true, NextProtos: protos,
			GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert, nil }}
		return (&tls.Dialer{Config: cfg}).DialContext(ctx, network, addr)
	}
	return c
}

// TestDeployClientCert: a site with deploy_client_ca (and no token)
// takes deploys from a client certificate its CA issued, through the
// built binary (HTTP/2) and the deploy client over HTTP/1.1, fast path
// on and off; a certificate of another CA, a connection without SNI, a
// connection for another site and a session resumed from a handshake
// without a certificate get nothing, and nothing is stored.
func TestDeployClientCert(t *testing.T) {
	for _, fast := range []bool{true, false} {
		t.Run(fmt.Sprintf("fast_http1=%v", fast), func(t *testing.T) { testDeployClientCert(t, fast) })
	}
}

func testDeployClientCert(t *testing.T, fast bool) {
	dir := t.TempDir()
	caFile, cert := clientCert(t, dir)
	otherCAFile, otherCert := clientCert(t, t.TempDir())
	certFile, keyFile := writeCert(t, dir, "alice", cert)
	otherCertFile, otherKeyFile := writeCert(t, dir, "mallory", otherCert)
	s := &deploySite{dir: dir, state: filepath.Join(dir, "state", "sites", "localhost")}
	s.cfg = writeFile(t, dir, "appliance.toml", fmt.Sprintf(`[server]
http = "127.0.0.1:0"
https = "127.0.0.1:0"
state_dir = "state"
fast_http1 = %v
[[site]]
hosts = ["localhost", "127.0.0.1"]
tls = "local"
deploy_client_ca = %q
[[site]]
hosts = ["other.test"]
tls = "local"
deploy_client_ca = %q
[[site]]
hosts = ["m.test"]
tls = "local"
client_ca = %q
deploy_client_ca = %q
`, fast, caFile, otherCAFile, caFile, caFile))
	s.start(t)
	pemCA, err := exec.Command(binary, "ca-cert", "-config", s.cfg).Output()
	if err != nil {
		t.Fatal(err)
	}
	s.ca = writeFile(t, dir, "ca.pem", string(pemCA))
	_, port, _ := net.SplitHostPort(s.httpsAt)
	siteURL := "https://localhost:" + port + "/"
	run := func(args ...string) (string, error) {
		cmd := exec.Command(binary, args...)
		for _, e := range os.Environ() {
			if !strings.HasPrefix(e, "APPLIANCE_DEPLOY_") {
				cmd.Env = append(cmd.Env, e)
			}
		}
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	src := t.TempDir()
	writeFile(t, src, "index.html", "by certificate")

	// The binary, HTTP/2, no token.
	out, err := run("deploy", "-ca", s.ca, "-cert", certFile, "-key", keyFile, src, siteURL)
	if err != nil || !strings.Contains(out, "uploaded 1 of 1 files") {
		t.Fatalf("deploy by certificate: %v\n%s", err, out)
	}
	h1 := sniClient(s.httpsAt, "localhost", false)
	waitFor(t, h1, siteURL, "by certificate")
	if line := s.p.waitLogSeen(t, "msg=\"deploy: release active\""); !strings.Contains(line, `by="certificate CN=alice`) {
		t.Errorf("log: %s", line)
	}
	// The deploy client over HTTP/1.1, the certificate only in TLS.
	writeFile(t, src, "index.html", "by certificate, HTTP/1.1")
	local, err := deploy.Scan(src)
	if err != nil {
		t.Fatal(err)
	}
	c := &deploy.Client{Site: mustURL(siteURL), HTTP: sniClient(s.httpsAt, "localhost", false, cert)}
	if res, err := c.Deploy(context.Background(), local); err != nil || res.Uploaded != 1 {
		t.Fatalf("deploy by certificate over HTTP/1.1: %+v %v", res, err)
	}
	waitFor(t, h1, siteURL, "by certificate, HTTP/1.1")

	// A site with client_ca too: the certificate both bundles issued
	// deploys; without one, there is no handshake.
	mc := &deploy.Client{Site: mustURL("https://m.test/"), HTTP: sniClient(s.httpsAt, "m.test", true, cert)}
	if res, err := mc.Deploy(context.Background(), local); err != nil || res.Uploaded != 1 {
		t.Fatalf("deploy by certificate to a client_ca site: %+v %v", res, err)
	}
	mc.HTTP = sniClient(s.httpsAt, "m.test", true)
	if _, err := mc.Releases(context.Background()); err == nil {
		t.Fatal("a client_ca site answered without a certificate")
	}

	// Refusals: 401 (421 for another site's name), nothing stored.
	blobs := blobCount(t, s.state)
	writeFile(t, src, "index.html", "never stored")
	if local, err = deploy.Scan(src); err != nil {
		t.Fatal(err)
	}
	out, err = run("deploy", "-ca", s.ca, "-cert", otherCertFile, "-key", otherKeyFile, src, siteURL)
	if err == nil || !strings.Contains(out, "401") {
		t.Fatalf("a certificate of another CA (not sent by Go's client): %v\n%s", err, out)
	}
	for _, tt := range []struct {
		name string
		site string
		c    *http.Client
		want int
	}{
		{"another CA's certificate, HTTP/1.1", siteURL, pushyClient(s.httpsAt, "localhost", false, otherCert), 401},
		{"another CA's certificate, HTTP/2", siteURL, pushyClient(s.httpsAt, "localhost", true, otherCert), 401},
		{"no SNI (by address)", "https://127.0.0.1:" + port + "/", pushyClient(s.httpsAt, "", false, cert), 401},
		{"no SNI, HTTP/2", "https://127.0.0.1:" + port + "/", pushyClient(s.httpsAt, "", true, cert), 401},
		{"the other site's name", "https://other.test/", pushyClient(s.httpsAt, "other.test", true, cert), 401},
		{"a connection for this site, Host the other's", "https://other.test/", pushyClient(s.httpsAt, "localhost", true, cert), 421},
		{"the other site's name, Host this one", siteURL, pushyClient(s.httpsAt, "other.test", false, cert), 421},
	} {
		c := &deploy.Client{Site: mustURL(tt.site), HTTP: tt.c}
		_, err := c.Deploy(context.Background(), local)
		var se *deploy.StatusError
		if !errors.As(err, &se) || se.Code != tt.want {
			t.Errorf("%s: %v, want %d", tt.name, err, tt.want)
		}
	}
	if n := blobCount(t, s.state); n != blobs {
		t.Errorf("refused deploys stored %d blobs", n-blobs)
	}

	// A session resumed from a handshake without a certificate has none,
	// whatever the client would present now.
	cache := tls.NewLRUClientSessionCache(4)
	get := func(present *tls.Certificate) (status int, resumed bool) {
		t.Helper()
		conn, err := tls.Dial("tcp", s.httpsAt, &tls.Config{ServerName: "localhost", InsecureSkipVerify: true,
			NextProtos: []string{"http/1.1"}, ClientSessionCache: cache,
			GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return present, nil }})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		fmt.Fprintf(conn, "GET %sreleases HTTP/1.1\r\nHost: localhost\r\n\r\n", deploy.Prefix)
		res, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode, conn.ConnectionState().DidResume
	}
	if status, _ := get(&tls.Certificate{}); status != 401 {
		t.Fatalf("no certificate: %d", status)
	}
	if status, resumed := get(&cert); status != 401 || !resumed {
		t.Errorf("a resumed session (resumed: %v) with a certificate at hand: %d, want 401", resumed, status)
	}
	cache = nil // a full handshake
	if status, resumed := get(&cert); status != 200 || resumed {
		t.Errorf("with the certificate in a full handshake (resumed: %v): %d, want 200", resumed, status)
	}
}
