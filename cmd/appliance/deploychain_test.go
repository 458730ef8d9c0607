package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"appliance/deploy"
)

// TestDeployClientCertChain: a deployer's certificate issued by an
// intermediate CA counts when the bundle holds the intermediate, not
// when the client sends it; and a client with no credentials that sends
// a hundred bogus intermediates, each a candidate issuer with a P-521
// key, does not make each of its requests check their signatures (it
// made 20 requests over one connection cost the server over 7 s of CPU).
// Through the built binary, over TLS (HTTP/1.1, fast path on).
func TestDeployClientCertChain(t *testing.T) {
	dir := t.TempDir()
	root, rootKey := newCA(t, "deployers root")
	interKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	interTmpl := &x509.Certificate{SerialNumber: big.NewInt(3), Subject: pkix.Name{CommonName: "deployers intermediate"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	interDER, err := x509.CreateCertificate(rand.Reader, interTmpl, root, &interKey.PublicKey, rootKey)
	if err != nil {
		t.Fatal(err)
	}
	inter, _ := x509.ParseCertificate(interDER)
	leaf := issue(t, inter, interKey, x509.ExtKeyUsageClientAuth, "alice")
	withInter := tls.Certificate{Certificate: [][]byte{leaf.Certificate[0], interDER}, PrivateKey: leaf.PrivateKey}

	// 99 CA certificates named as the root, each with its own P-521
	// key, none of which signed anything here; a leaf naming the root
	// as its issuer, signed by none of them.
	bogusKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	bogus := tls.Certificate{PrivateKey: bogusKey}
	leafTmpl := &x509.Certificate{SerialNumber: big.NewInt(4), Subject: pkix.Name{CommonName: "mallory"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, &x509.Certificate{RawSubject: root.RawSubject}, &bogusKey.PublicKey, bogusKey)
	if err != nil {
		t.Fatal(err)
	}
	bogus.Certificate = append(bogus.Certificate, leafDER)
	for i := range 99 {
		k, _ := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(int64(10 + i)), Subject: root.Subject,
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
			BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, bogusKey)
		if err != nil {
			t.Fatal(err)
		}
		bogus.Certificate = append(bogus.Certificate, der)
	}

	pemOf := func(certs ...*x509.Certificate) string {
		var b []byte
		for _, c := range certs {
			b = append(b, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
		}
		return string(b)
	}
	rootOnly := writeFile(t, dir, "root.pem", pemOf(root))
	both := writeFile(t, dir, "both.pem", pemOf(root, inter))
	cfg := writeFile(t, dir, "appliance.toml", fmt.Sprintf(`[server]
https = "127.0.0.1:0"
state_dir = %q
[[site]]
hosts = ["r.test"]
tls = "local"
deploy_client_ca = %q
[[site]]
hosts = ["i.test"]
tls = "local"
deploy_client_ca = %q
`, filepath.Join(dir, "state"), rootOnly, both))
	p := start(t, "-config", cfg)
	addr := p.httpsAddr(t)
	releases := func(c interface {
		Get(string) (*http.Response, error)
	}, host string) int {
		res, err := c.Get("https://" + host + deploy.Prefix + "releases")
		if err != nil {
			t.Fatalf("%s: %v", host, err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return res.StatusCode
	}
	if got := releases(pushyClient(addr, "i.test", false, leaf), "i.test"); got != 200 {
		t.Errorf("the intermediate in the bundle, the leaf sent: %d, want 200", got)
	}
	if got := releases(pushyClient(addr, "r.test", false, withInter), "r.test"); got != 401 {
		t.Errorf("the root in the bundle, the intermediate sent by the client: %d, want 401", got)
	}
	if got := releases(pushyClient(addr, "i.test", false, withInter), "i.test"); got != 200 {
		t.Errorf("the intermediate in the bundle and sent: %d, want 200", got)
	}
	c := pushyClient(addr, "r.test", false, bogus)
	c.Transport.(*http.Transport).DisableKeepAlives = false
	t0 := time.Now()
	for range 20 {
		if got := releases(c, "r.test"); got != 401 {
			t.Fatalf("a chain of 99 bogus intermediates: %d, want 401", got)
		}
	}
	if d := time.Since(t0); d > 3*time.Second {
		t.Errorf("20 requests with 99 bogus intermediates took %v: their signatures were checked", d)
	}
}
