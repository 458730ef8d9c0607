package certs

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"testing"
)

func TestLocalCA(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ca")
	ca, err := OpenLocalCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca.RootPEM())
	for _, name := range []string{"pi.lan", "nas.local", "192.168.1.20", "::1"} {
		hello := &tls.ClientHelloInfo{ServerName: name}
		if net.ParseIP(name) != nil {
			hello.ServerName = "" // clients send no SNI for addresses
			hello.Conn = fakeConn{addr: &net.TCPAddr{IP: net.ParseIP(name), Port: 443}}
		}
		c, err := ca.GetCertificate(hello)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: name}); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		if again, _ := ca.GetCertificate(hello); again != c {
			t.Errorf("%s: issued again instead of reused", name)
		}
	}
	reopened, err := OpenLocalCA(dir)
	if err != nil || string(reopened.RootPEM()) != string(ca.RootPEM()) {
		t.Fatalf("reopened CA differs: %v", err)
	}
	if fi, _ := os.Stat(filepath.Join(dir, "root.key")); fi.Mode().Perm() != 0o600 {
		t.Errorf("key mode %v", fi.Mode())
	}
}

type fakeConn struct {
	net.Conn
	addr net.Addr
}

func (f fakeConn) LocalAddr() net.Addr { return f.addr }

func TestServerConfig(t *testing.T) {
	c := ServerConfig(nil, nil)
	if c.MinVersion != tls.VersionTLS12 || c.NextProtos[0] != "h2" {
		t.Fatalf("%+v", c)
	}
	for _, id := range c.CipherSuites {
		for _, s := range tls.InsecureCipherSuites() {
			if s.ID == id {
				t.Errorf("insecure suite %s", s.Name)
			}
		}
	}
}

// TestSelectorByAddress: a client that connects by address sends no
// SNI; the site for that address answers, not only a catch-all.
func TestSelectorByAddress(t *testing.T) {
	ca, err := OpenLocalCA(filepath.Join(t.TempDir(), "ca"))
	if err != nil {
		t.Fatal(err)
	}
	sel := NewSelector()
	sel.Add("192.168.1.20", ca, nil, nil)
	sel.Add("pi.lan", ca, nil, nil)
	hello := &tls.ClientHelloInfo{Conn: fakeConn{addr: &net.TCPAddr{IP: net.ParseIP("192.168.1.20"), Port: 443}}}
	c, err := sel.GetCertificate(hello)
	if err != nil || len(c.Leaf.IPAddresses) != 1 || !c.Leaf.IPAddresses[0].Equal(net.ParseIP("192.168.1.20")) {
		t.Fatalf("by address: %v %v", c, err)
	}
	hello.Conn = fakeConn{addr: &net.TCPAddr{IP: net.ParseIP("10.0.0.1"), Port: 443}}
	if _, err := sel.GetCertificate(hello); err != ErrNoCertificate {
		t.Errorf("another address, no catch-all: %v", err)
	}
}
