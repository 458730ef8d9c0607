package certs

import (
	"bytes"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"weak"
)

// MaxClientChain is the most certificates a client of a client_ca site
// may send: its own and 3 intermediate CAs. Go's own verification
// (tls.RequireAndVerifyClientCert) takes every certificate a client
// sends as a candidate issuer and checks up to 100 signatures: a client
// without any valid certificate sent 99 bogus P-521 intermediates named
// as the CA and cost the server 0.4 s of CPU per handshake.
const MaxClientChain = 4

// errLongChain refuses a chain longer than MaxClientChain.
var errLongChain = fmt.Errorf("tls: the client sent more than %d certificates (its own and %d intermediates), refused unverified", MaxClientChain, MaxClientChain-1)

// mutualConfig is base requiring a client certificate that chains to
// cas, for client authentication (mutual TLS), verified by
// verifyClient on full and resumed handshakes alike (crypto/tls runs
// VerifyConnection on both). Its session tickets name it (resumedHere):
// one issued by another configuration, such as another site's or this
// site's before a reload, gets a full handshake instead, as crypto/tls
// does for a ticket whose chain no longer verifies.
func mutualConfig(base *tls.Config, cas *x509.CertPool) *tls.Config {
	c := siteConfig(base, tls.RequireAnyClientCert, cas)
	c.VerifyConnection = func(cs tls.ConnectionState) error { return verifyClient(cs, cas) }
	tag := make([]byte, 16)
	rand.Read(tag)
	c.WrapSession = func(cs tls.ConnectionState, ss *tls.SessionState) ([]byte, error) {
		if !resumedHere(ss, tag) {
			ss.Extra = append(ss.Extra, tag)
		}
		return base.EncryptTicket(cs, ss)
	}
	c.UnwrapSession = func(identity []byte, cs tls.ConnectionState) (*tls.SessionState, error) {
		ss, err := base.DecryptTicket(identity, cs)
		if err != nil || ss == nil || !resumedHere(ss, tag) {
			return nil, err // (nil, nil): not resumed, a full handshake
		}
		return ss, nil
	}
	return c
}

// resumedHere reports whether the session ss was made by the
// configuration whose tag it is.
func resumedHere(ss *tls.SessionState, tag []byte) bool {
	return slices.ContainsFunc(ss.Extra, func(e []byte) bool { return bytes.Equal(e, tag) })
}

// verifyClient verifies the client certificate of a handshake against
// cas, with the intermediates the client sent, once it has checked that
// they are at most MaxClientChain-1: a longer chain is refused before
// any signature is checked. A verified connection is remembered
// (clientVerified) for Answers.
func verifyClient(cs tls.ConnectionState, cas *x509.CertPool) error {
	certs := cs.PeerCertificates
	switch {
	case len(certs) == 0:
		return errors.New("tls: client didn't provide a certificate")
	case len(certs) > MaxClientChain:
		return errLongChain
	}
	opts := x509.VerifyOptions{Roots: cas, Intermediates: x509.NewCertPool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	for _, c := range certs[1:] {
		opts.Intermediates.AddCert(c)
	}
	if _, err := certs[0].Verify(opts); err != nil {
		return &tls.CertificateVerificationError{UnverifiedCertificates: certs, Err: err}
	}
	verified.add(certs)
	return nil
}

// clientVerified reports whether the client certificate of the
// connection with state st was verified by a client_ca site's handshake
// (verifyClient). crypto/tls fills VerifiedChains only when it verifies
// itself, which client_ca sites no longer let it do.
func clientVerified(st *tls.ConnectionState) bool {
	return len(st.PeerCertificates) > 0 && verified.has(st.PeerCertificates)
}

// verified is the record of the connections whose client certificate a
// client_ca site verified. It is the process's, not a Selector's: a
// reload makes a new Selector, and a connection verified before it is
// still answered after it, as it was when crypto/tls's VerifiedChains
// said so.
var verified verifiedConns

// verifiedConns records connections by the first element of their
// PeerCertificates: crypto/tls makes that slice once per connection
// (full or resumed) and every ConnectionState of the connection shares
// it, whereas a certificate itself may be shared by the connections
// resumed from one ticket. The record holds it weakly: an entry goes
// when its connection's state is collected, so it holds no more than
// the live connections' and the garbage not yet collected.
type verifiedConns struct{ m sync.Map } // weak.Pointer[*x509.Certificate] -> struct{}

func (v *verifiedConns) add(certs []*x509.Certificate) {
	k := weak.Make(&certs[0])
	if _, loaded := v.m.LoadOrStore(k, struct{}{}); !loaded {
		runtime.AddCleanup(&certs[0], func(k weak.Pointer[*x509.Certificate]) { v.m.Delete(k) }, k)
	}
}

func (v *verifiedConns) has(certs []*x509.Certificate) bool {
	_, ok := v.m.Load(weak.Make(&certs[0]))
	return ok
}

// count is the number of connections recorded, for the tests.
func (v *verifiedConns) count() int {
	n := 0
	v.m.Range(func(any, any) bool { n++; return true })
	return n
}
