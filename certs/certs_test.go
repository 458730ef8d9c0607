package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
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
	if fi, _ := os.Stat(filepath.Join(dir, "root.crt")); fi.Mode().Perm() != 0o644 {
		t.Errorf("root mode %v", fi.Mode())
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 2 {
		t.Errorf("%d files in the CA's directory, want root.crt and root.key: %v", len(entries), entries)
	}
	// Cut off between the key and the root (the key is written first):
	// a new CA, not an error.
	os.Remove(filepath.Join(dir, "root.crt"))
	if fresh, err := OpenLocalCA(dir); err != nil || string(fresh.RootPEM()) == string(ca.RootPEM()) {
		t.Errorf("a key without its root: %v", err)
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
	sel.Add("192.168.1.20", 0, ca, nil, nil, nil)
	sel.Add("pi.lan", 1, ca, nil, nil, nil)
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

// writePair writes a self-signed certificate for name and its key into dir.
func writePair(t *testing.T, dir, name string) *x509.Certificate {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: name}, DNSNames: []string{name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(key)
	os.MkdirAll(dir, 0o755)
	os.WriteFile(filepath.Join(dir, "tls.crt"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	os.WriteFile(filepath.Join(dir, "tls.key"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600)
	leaf, _ := x509.ParseCertificate(der)
	return leaf
}

// TestManualReload: a manual certificate follows its files, rewritten
// in place or swapped the way Kubernetes updates a Secret volume (a
// "..data" symlink to a new directory); a broken update keeps the old
// certificate and is reported.
func TestManualReload(t *testing.T) {
	dir := t.TempDir()
	serving := func(m *Manual) *big.Int {
		m.mu.Lock()
		m.checked = time.Time{} // the next handshake checks the files (at most once a second otherwise)
		m.mu.Unlock()
		c, err := m.GetCertificate(&tls.ClientHelloInfo{ServerName: "a.test"})
		if err != nil {
			t.Fatal(err)
		}
		return c.Leaf.SerialNumber
	}

	// Kubernetes' layout: tls.crt -> ..data/tls.crt, ..data -> ..v1.
	writePair(t, filepath.Join(dir, "..v1"), "a.test")
	os.Symlink("..v1", filepath.Join(dir, "..data"))
	for _, f := range []string{"tls.crt", "tls.key"} {
		os.Symlink(filepath.Join("..data", f), filepath.Join(dir, f))
	}
	m, err := NewManual(filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key"))
	if err != nil {
		t.Fatal(err)
	}
	var failures []error
	m.OnError = func(err error) { failures = append(failures, err) }
	first := serving(m)

	v2 := writePair(t, filepath.Join(dir, "..v2"), "a.test")
	os.Symlink("..v2", filepath.Join(dir, "..data.tmp"))
	if err := os.Rename(filepath.Join(dir, "..data.tmp"), filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	if got := serving(m); got.Cmp(v2.SerialNumber) != 0 || got.Cmp(first) == 0 {
		t.Fatal("the Secret-style swap was not picked up")
	}

	// Rewritten in place (a new modification time).
	v3 := writePair(t, filepath.Join(dir, "..v2"), "a.test")
	future := time.Now().Add(time.Minute)
	os.Chtimes(filepath.Join(dir, "..v2", "tls.crt"), future, future)
	if got := serving(m); got.Cmp(v3.SerialNumber) != 0 {
		t.Fatal("the rewritten files were not picked up")
	}

	// A broken update: the old certificate stays, the error is reported.
	os.WriteFile(filepath.Join(dir, "..v2", "tls.key"), []byte("garbage"), 0o600)
	if got := serving(m); got.Cmp(v3.SerialNumber) != 0 {
		t.Fatal("a broken update replaced the certificate")
	}
	if len(failures) != 1 {
		t.Errorf("%d failures reported, want 1", len(failures))
	}
}

// TestAnswers: a request is answered only by the site whose policy its
// handshake used (by SNI, else by local address, else the catch-all),
// and a client_ca site only with a verified client certificate.
func TestAnswers(t *testing.T) {
	ca, err := OpenLocalCA(filepath.Join(t.TempDir(), "ca"))
	if err != nil {
		t.Fatal(err)
	}
	base := ServerConfig(nil, nil)
	members, chain, _ := testChain(t, 0)
	sel := NewSelector()
	sel.Add("a.test", 0, ca, nil, nil, base)
	sel.Add("www.a.test", 0, ca, nil, nil, base) // the same site
	sel.Add("*.m.test", 1, ca, members, nil, base)
	sel.Add("192.168.1.20", 2, ca, members, nil, base)
	sel.Add("*", 3, ca, nil, nil, base)
	addr := func(ip string) net.Addr { return &net.TCPAddr{IP: net.ParseIP(ip), Port: 443} }
	const verified = "verified"
	for _, tt := range []struct {
		sni   string
		local net.Addr
		cert  string // the client certificate: none, "verified" by a client_ca handshake, or "unverified"
		host  string
		want  bool
	}{
		{"a.test", nil, "", "a.test", true},
		{"a.test", nil, "", "WWW.A.TEST:443", true},
		{"a.test", nil, "", "x.m.test", false},
		{"a.test", nil, "", "other.test", false}, // the catch-all is another site
		{"x.m.test", nil, "", "x.m.test", false}, // no client certificate (a reload added client_ca)
		{"x.m.test", nil, verified, "x.m.test", true},
		{"x.m.test", nil, verified, "a.test", false},
		{"unknown.test", nil, "", "other.test", true}, // both the catch-all
		{"unknown.test", nil, "", "a.test", false},
		{"", addr("10.0.0.1"), "", "a.test", false}, // no SNI: the catch-all's handshake
		{"", addr("10.0.0.1"), verified, "x.m.test", false},
		{"", addr("10.0.0.1"), "", "other.test", true},
		{"", addr("10.0.0.1"), "", "10.0.0.1", true},
		{"", addr("192.168.1.20"), "", "192.168.1.20", false}, // the address site's handshake asks for a certificate
		{"", addr("192.168.1.20"), verified, "192.168.1.20", true},
		{"", addr("192.168.1.20"), verified, "other.test", false},
		{"", nil, "", "other.test", false},                 // the handshake's site is unknown
		{"x.m.test", nil, "unverified", "x.m.test", false}, // a deploy_client_ca handshake's (a reload added client_ca)
	} {
		st := &tls.ConnectionState{ServerName: tt.sni}
		if tt.cert != "" {
			st.PeerCertificates = []*x509.Certificate{chain[0]} // one connection's
		}
		if tt.cert == verified {
			if err := verifyClient(*st, members); err != nil {
				t.Fatal(err)
			}
		}
		if got := sel.Answers(st, tt.local, tt.host); got != tt.want {
			t.Errorf("SNI %q, local %v, %q client certificate, Host %q: %v, want %v", tt.sni, tt.local, tt.cert, tt.host, got, tt.want)
		}
		// The handshake asked for a client certificate exactly when the
		// site it chose has client_ca.
		var conn net.Conn
		if tt.local != nil {
			conn = fakeConn{addr: tt.local}
		}
		cfg, _ := sel.ConfigForClient(&tls.ClientHelloInfo{ServerName: tt.sni, Conn: conn})
		hs, _ := sel.handshakeSite(tt.sni, tt.local)
		if (cfg != nil) != (hs != nil && hs.mutual != nil) {
			t.Errorf("SNI %q, local %v: the handshake and Answers chose different sites", tt.sni, tt.local)
		}
	}
	if sel.Answers(nil, nil, "a.test") {
		t.Error("a request without TLS state answered")
	}
}

// TestAnswersAllocs: the 421 check runs on every request; without SNI
// (a client that connected by address, as h2load) it looks the local
// address up without formatting it: no allocation, as with SNI.
func TestAnswersAllocs(t *testing.T) {
	ca, err := OpenLocalCA(filepath.Join(t.TempDir(), "ca"))
	if err != nil {
		t.Fatal(err)
	}
	sel := NewSelector()
	sel.Add("a.test", 0, ca, nil, nil, nil)
	sel.Add("192.0.2.1", 1, ca, nil, nil, nil)
	sel.Add("2001:db8::1", 1, ca, nil, nil, nil)
	sel.Add("*", 2, ca, nil, nil, nil)
	for _, tt := range []struct {
		sni   string
		local net.Addr
		host  string
	}{
		{"a.test", nil, "a.test"},
		{"", &net.TCPAddr{IP: net.ParseIP("192.0.2.1"), Port: 443}, "192.0.2.1"},
		{"", &net.TCPAddr{IP: net.ParseIP("2001:db8::1"), Port: 443}, "[2001:db8::1]:443"},
		{"", &net.TCPAddr{IP: net.ParseIP("127.0.0.1"), Port: 443}, "localhost"}, // the catch-all
	} {
		st := &tls.ConnectionState{ServerName: tt.sni}
		if !sel.Answers(st, tt.local, tt.host) {
			t.Fatalf("SNI %q, local %v, Host %q: not answered", tt.sni, tt.local, tt.host)
		}
		if n := testing.AllocsPerRun(100, func() { sel.Answers(st, tt.local, tt.host) }); n != 0 {
			t.Errorf("SNI %q, local %v, Host %q: %v allocations a request, want 0", tt.sni, tt.local, tt.host, n)
		}
	}
}

// TestDeployCAsAsked: a site with deploy CAs asks for a certificate, and
// requires none, only in a handshake that names it by SNI; client_ca
// wins over them; visitors without a certificate are answered.
func TestDeployCAsAsked(t *testing.T) {
	ca, err := OpenLocalCA(filepath.Join(t.TempDir(), "ca"))
	if err != nil {
		t.Fatal(err)
	}
	base := ServerConfig(nil, nil)
	deployers, members := x509.NewCertPool(), x509.NewCertPool()
	sel := NewSelector()
	sel.Add("d.test", 0, ca, nil, deployers, base)
	sel.Add("192.168.1.20", 0, ca, nil, deployers, base)
	sel.Add("m.test", 1, ca, members, deployers, base)
	sel.Add("o.test", 2, ca, nil, nil, base)
	local := fakeConn{addr: &net.TCPAddr{IP: net.ParseIP("192.168.1.20"), Port: 443}}
	for _, tt := range []struct {
		sni  string
		auth tls.ClientAuthType
		cas  *x509.CertPool
	}{
		{"d.test", tls.RequestClientCert, deployers},
		{"192.168.1.20", tls.RequestClientCert, deployers}, // an address given as SNI is a name
		{"", tls.NoClientCert, nil},                        // by local address: not asked
		{"m.test", tls.RequireAnyClientCert, members},      // verified by verifyClient
		{"o.test", tls.NoClientCert, nil},
	} {
		cfg, _ := sel.ConfigForClient(&tls.ClientHelloInfo{ServerName: tt.sni, Conn: local})
		auth, cas := tls.NoClientCert, (*x509.CertPool)(nil)
		if cfg != nil {
			auth, cas = cfg.ClientAuth, cfg.ClientCAs
		}
		if auth != tt.auth || cas != tt.cas {
			t.Errorf("SNI %q: client auth %v, want %v (or another pool)", tt.sni, auth, tt.auth)
		}
	}
	if !sel.Answers(&tls.ConnectionState{ServerName: "d.test"}, nil, "d.test") {
		t.Error("a visitor without a certificate is not answered")
	}
}

// textAddr is a local address of another type than *net.TCPAddr: the
// 421 check without SNI then looks its text up, as it did for every
// address before LookupIP.
type textAddr string

func (a textAddr) Network() string { return "tcp" }
func (a textAddr) String() string  { return string(a) }

// TestAnswersLocalAddrForms: without SNI, the 421 check's handshake site
// by the local address (LookupIP, no text made) is the one its text
// finds, for every form an address takes: IPv4 in 4 and 16 bytes,
// IPv4-mapped IPv6, a zone (fe80::1%eth0: the text has the zone, which
// no site's name has, so the catch-all; not the site fe80::1), and sites
// spelled in brackets, upper case or a 4-in-6 form; Host values in their
// own spellings.
func TestAnswersLocalAddrForms(t *testing.T) {
	ca, err := OpenLocalCA(filepath.Join(t.TempDir(), "ca"))
	if err != nil {
		t.Fatal(err)
	}
	sel := NewSelector()
	for i, name := range []string{"fe80::1", "192.0.2.1", "[2001:DB8::1]", "2001:db8::2", "::ffff:192.0.2.9", "*"} {
		sel.Add(name, i, ca, nil, nil, nil)
	}
	tcp := func(ip, zone string) *net.TCPAddr { return &net.TCPAddr{IP: net.ParseIP(ip), Port: 443, Zone: zone} }
	locals := []*net.TCPAddr{tcp("fe80::1", "eth0"), tcp("fe80::1", ""), tcp("192.0.2.1", ""), {IP: net.ParseIP("192.0.2.1").To4(), Port: 443},
		tcp("::ffff:192.0.2.1", ""), tcp("2001:db8::1", ""), tcp("2001:db8::2", "eth0"), tcp("192.0.2.9", ""), tcp("10.0.0.1", "")}
	hosts := []string{"[fe80::1]", "[FE80::1]:443", "192.0.2.1", "192.0.2.1:443", "[::ffff:192.0.2.1]", "[2001:db8::1]", "[2001:DB8::1]:8443",
		"[2001:db8::2]", "192.0.2.9", "[::ffff:192.0.2.9]", "other.test", "10.0.0.1"}
	st := &tls.ConnectionState{}
	for _, local := range locals {
		for _, host := range hosts {
			got, want := sel.Answers(st, local, host), sel.Answers(st, textAddr(local.String()), host)
			if got != want {
				t.Errorf("local %v, Host %q: answered %v, by the address's text %v", local, host, got, want)
			}
		}
	}
	// The zone's case, stated: the catch-all's handshake, not fe80::1's.
	if zoned := tcp("fe80::1", "eth0"); sel.Answers(st, zoned, "[fe80::1]") || !sel.Answers(st, zoned, "other.test") {
		t.Errorf("local %v: the handshake is not the catch-all's", zoned)
	}
	if plain := tcp("fe80::1", ""); !sel.Answers(st, plain, "[fe80::1]") || sel.Answers(st, plain, "other.test") {
		t.Errorf("local %v: the handshake is not fe80::1's", plain)
	}
}
