package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
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
	inter, interKey := intermediate(t, root, rootKey, "deployers intermediate")
	leaf := issue(t, inter, interKey, x509.ExtKeyUsageClientAuth, "alice")
	withInter := tls.Certificate{Certificate: [][]byte{leaf.Certificate[0], inter.Raw}, PrivateKey: leaf.PrivateKey}

	bogus := bogusChain(t, root, 99)
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
