package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"appliance/internal/testnet"
)

// testChain makes a root CA, the pool that holds it, and a client
// certificate issued through n intermediate CAs: chain is the leaf then
// the intermediates up to the root's child, and cert sends them all.
func testChain(t *testing.T, n int) (pool *x509.CertPool, chain []*x509.Certificate, cert tls.Certificate) {
	t.Helper()
	mk := func(tmpl *x509.Certificate, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*x509.Certificate, *ecdsa.PrivateKey) {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(time.Hour)
		if parent == nil {
			parent, parentKey = tmpl, key
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
		if err != nil {
			t.Fatal(err)
		}
		c, _ := x509.ParseCertificate(der)
		return c, key
	}
	id := rand.Text() // names this chain's CAs apart from another's
	ca := func(i int) *x509.Certificate {
		return &x509.Certificate{SerialNumber: big.NewInt(int64(i + 1)), Subject: pkix.Name{CommonName: fmt.Sprintf("CA %d %s", i, id)},
			IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	}
	issuer, key := mk(ca(0), nil, nil)
	pool = x509.NewCertPool()
	pool.AddCert(issuer)
	var inters []*x509.Certificate
	for i := range n {
		issuer, key = mk(ca(i+1), issuer, key)
		inters = append([]*x509.Certificate{issuer}, inters...)
	}
	leaf, leafKey := mk(&x509.Certificate{SerialNumber: big.NewInt(100), Subject: pkix.Name{CommonName: "alice"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}, issuer, key)
	chain = append([]*x509.Certificate{leaf}, inters...)
	cert.PrivateKey = leafKey
	for _, c := range chain {
		cert.Certificate = append(cert.Certificate, c.Raw)
	}
	return pool, chain, cert
}

// TestVerifyClientChain: a client_ca site admits a client certificate
// sent with up to 3 intermediates (MaxClientChain 4 in all) and refuses
// a longer chain before it verifies anything: a chain of 5 that would
// verify is refused as too long, as is one of 100.
func TestVerifyClientChain(t *testing.T) {
	for n := range MaxClientChain {
		pool, chain, _ := testChain(t, n)
		if err := verifyClient(tls.ConnectionState{PeerCertificates: chain}, pool); err != nil {
			t.Errorf("a leaf and %d intermediates: %v", n, err)
		}
		if err := verifyClient(tls.ConnectionState{PeerCertificates: chain}, x509.NewCertPool()); err == nil {
			t.Errorf("a leaf and %d intermediates of a CA the site does not have: admitted", n)
		}
	}
	pool, chain, _ := testChain(t, MaxClientChain)
	if err := verifyClient(tls.ConnectionState{PeerCertificates: chain}, pool); !errors.Is(err, errLongChain) {
		t.Errorf("a leaf and %d intermediates, which would verify: %v, want %v", MaxClientChain, err, errLongChain)
	}
	long := append([]*x509.Certificate{}, chain[0])
	for range 99 {
		long = append(long, chain[1])
	}
	if err := verifyClient(tls.ConnectionState{PeerCertificates: long}, pool); !errors.Is(err, errLongChain) {
		t.Errorf("a leaf and 99 intermediates: %v, want %v", err, errLongChain)
	}
	if err := verifyClient(tls.ConnectionState{}, pool); err == nil {
		t.Error("no certificate: admitted")
	}
	// A certificate for another use than client authentication.
	server := *chain[0]
	server.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	if err := verifyClient(tls.ConnectionState{PeerCertificates: []*x509.Certificate{&server, chain[1]}}, pool); err == nil {
		t.Error("a certificate for server authentication: admitted")
	}
	_, short, _ := testChain(t, 0)
	if err := verifyClient(tls.ConnectionState{PeerCertificates: short}, pool); err == nil {
		t.Error("a certificate of another root: admitted")
	}
}

// oneSession is a client session cache that offers its last session
// to every server, as a client that mixed up its tickets would.
type oneSession struct{ s *tls.ClientSessionState }

func (o *oneSession) Get(string) (*tls.ClientSessionState, bool) { return o.s, o.s != nil }
func (o *oneSession) Put(_ string, s *tls.ClientSessionState) {
	if s != nil {
		o.s = s
	}
}

// TestClientChainResumption: a session of a client_ca site resumes on
// that site, verified again and answered; a ticket from elsewhere
// (another client_ca site, a deploy_client_ca site's handshake that
// verified nothing, the same site before a reload) gets a full
// handshake, as crypto/tls gave it when it verified itself, and not a
// failed one. TLS 1.2 and 1.3.
func TestClientChainResumption(t *testing.T) {
	ca, err := OpenLocalCA(filepath.Join(t.TempDir(), "ca"))
	if err != nil {
		t.Fatal(err)
	}
	poolM, _, certM := testChain(t, 1)
	poolN, _, certN := testChain(t, 2)
	var sel *Selector
	base := ServerConfig(func(h *tls.ClientHelloInfo) (*tls.Certificate, error) { return sel.GetCertificate(h) },
		func(h *tls.ClientHelloInfo) (*tls.Config, error) { return sel.ConfigForClient(h) })
	build := func() *Selector {
		s := NewSelector()
		s.Add("m.test", 0, ca, poolM, nil, base)
		s.Add("n.test", 1, ca, poolN, nil, base)
		s.Add("d.test", 2, ca, nil, poolM, base) // asks for a certificate, verifies none
		return s
	}
	sel = build()
	for _, version := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		cache := &oneSession{}
		// connect makes a connection for sni, with a client that holds
		// both certificates; it returns whether it resumed and whether
		// the site answers on it.
		connect := func(sni string) (resumed, answered bool) {
			t.Helper()
			c, s := testnet.TCPPair(t)
			defer c.Close()
			srv := tls.Server(s, base)
			done := make(chan error, 1)
			go func() {
				defer s.Close()
				if err := srv.Handshake(); err != nil {
					done <- err
					return
				}
				_, err := srv.Write([]byte("x")) // after the tickets
				done <- err
			}()
			cl := tls.Client(c, &tls.Config{ServerName: sni, InsecureSkipVerify: true, MinVersion: version, MaxVersion: version,
				Certificates: []tls.Certificate{certM, certN}, ClientSessionCache: cache})
			if err := cl.Handshake(); err != nil {
				c.Close()
				t.Fatalf("TLS %x, %s: %v (server: %v)", version, sni, err, <-done)
			}
			cl.Read(make([]byte, 1))
			if err := <-done; err != nil {
				t.Fatalf("TLS %x, %s: server: %v", version, sni, err)
			}
			st := srv.ConnectionState()
			return st.DidResume, sel.Answers(&st, nil, sni)
		}
		for _, step := range []struct {
			what, sni        string
			reload           bool
			resumed, answers bool
		}{
			{"first", "m.test", false, false, true},
			{"again", "m.test", false, true, true},
			{"m.test's ticket on n.test", "n.test", false, false, true},
			{"n.test's ticket on d.test", "d.test", false, true, true},
			{"d.test's ticket on m.test", "m.test", false, false, true},
			{"after a reload", "m.test", true, false, true},
			{"again", "m.test", false, true, true},
		} {
			if step.reload {
				sel = build()
			}
			resumed, answered := connect(step.sni)
			if resumed != step.resumed || answered != step.answers {
				t.Errorf("TLS %x, %s (%s): resumed %v, answered %v; want %v, %v", version, step.what, step.sni, resumed, answered, step.resumed, step.answers)
			}
		}
	}
}

// TestVerifiedForgotten: the record of verified connections holds a
// connection no longer than its state: 100 verified and dropped leave
// no entry once collected.
func TestVerifiedForgotten(t *testing.T) {
	pool, chain, _ := testChain(t, 0)
	before := verified.count()
	// The states are held until checked: a collection during the loop
	// (the race detector's, another test's) would drop earlier ones.
	states := make([]tls.ConnectionState, 100)
	for i := range states {
		states[i] = tls.ConnectionState{PeerCertificates: []*x509.Certificate{chain[0]}}
		if err := verifyClient(states[i], pool); err != nil {
			t.Fatal(err)
		}
	}
	for i := range states {
		if !verified.has(states[i].PeerCertificates) {
			t.Fatalf("state %d not recorded", i)
		}
	}
	states = nil
	// Cleanups run on their own goroutine after a collection.
	for i := 0; verified.count() > before; i++ {
		if i == 1000 {
			t.Fatalf("%d of 100 dropped states still recorded", verified.count()-before)
		}
		runtime.GC()
		runtime.Gosched()
	}
}
