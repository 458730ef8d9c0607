// Package certs provides the certificates of the HTTPS listener: files
// given by the operator (manual), a private CA kept in the state
// directory for LAN names and addresses (local), and the TLS
// configuration that picks one by SNI. It plugs into crypto/tls through
// GetCertificate, as autocert does.
package certs

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"

	"golang.org/x/crypto/acme"

	"appliance/vhost"
)

// Source returns the certificate for a handshake.
type Source interface {
	GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error)
}

// ServerConfig returns the HTTPS listener's configuration: TLS 1.2 and
// 1.3 only, forward-secret AEAD suites only, HTTP/2 by ALPN, the
// certificate chosen by get. Session ticket keys are random and rotated
// by crypto/tls itself. forClient, if set, may return another
// configuration for a handshake (a site that requires client
// certificates).
func ServerConfig(get func(*tls.ClientHelloInfo) (*tls.Certificate, error), forClient func(*tls.ClientHelloInfo) (*tls.Config, error)) *tls.Config {
	return &tls.Config{
		GetConfigForClient: forClient,
		MinVersion:         tls.VersionTLS12,
		CipherSuites: []uint16{ // TLS 1.2; TLS 1.3's suites are all AEAD
			tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
			tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
		},
		// acme-tls/1 answers the CA's TLS-ALPN-01 challenges; clients
		// that offer h2 or http/1.1 never get it.
		NextProtos:     []string{"h2", "http/1.1", acme.ALPNProto},
		GetCertificate: get,
	}
}

// ErrNoCertificate is returned for a name no TLS site answers.
var ErrNoCertificate = errors.New("certs: no certificate for this name")

// Selector picks a site's certificate, and its client-certificate
// requirement, by SNI name with the site host patterns. It is also what
// decides whether a request may be answered on a connection (Answers),
// so that the site that answers is always the site whose TLS policy the
// handshake used.
type Selector struct {
	t *vhost.Table[*site]
}

type site struct {
	id     int // the site's identity: the same for all its host patterns
	src    Source
	mutual *tls.Config // requires client certificates; nil if the site does not
	ask    *tls.Config // asks for a deployer's certificate (deploy_client_ca); nil if the site does not
}

// NewSelector returns an empty selector.
func NewSelector() *Selector { return &Selector{t: vhost.NewTable[*site]()} }

// Add routes a host pattern's handshakes to src, for the site id (the
// patterns of one site share it). With clientCAs, clients must present
// a certificate that chains to them (mutual TLS), with at most
// MaxClientChain certificates in all (mutualConfig). With deployCAs (and
// no clientCAs), a handshake that names the site by SNI asks for a
// certificate, naming deployCAs as the acceptable issuers, but neither
// requires nor verifies one: whoever uses it (the deploy handler)
// verifies it against deployCAs, and a visitor without one, or with
// another, is served as usual. base is the listener's configuration
// that the site's own derives from.
func (s *Selector) Add(pattern string, id int, src Source, clientCAs, deployCAs *x509.CertPool, base *tls.Config) error {
	st := &site{id: id, src: src}
	switch {
	case clientCAs != nil:
		st.mutual = mutualConfig(base, clientCAs)
	case deployCAs != nil:
		st.ask = siteConfig(base, tls.RequestClientCert, deployCAs)
	}
	return s.t.Add(pattern, st)
}

// siteConfig is base asking for client certificates of cas with auth.
func siteConfig(base *tls.Config, auth tls.ClientAuthType, cas *x509.CertPool) *tls.Config {
	c := base.Clone()
	c.GetConfigForClient = nil
	c.ClientAuth = auth
	c.ClientCAs = cas
	return c
}

// GetCertificate implements tls.Config.GetCertificate with the site of
// the handshake (see handshakeSite).
func (s *Selector) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	st, ok := s.lookup(hello)
	if !ok || st == nil || st.src == nil {
		return nil, ErrNoCertificate
	}
	return st.src.GetCertificate(hello)
}

// ConfigForClient implements tls.Config.GetConfigForClient: a site that
// requires client certificates gets its own configuration, as does a
// site with deployCAs when the handshake names it by SNI (without one,
// no certificate is asked for, so none can be used); others the
// listener's (nil).
func (s *Selector) ConfigForClient(hello *tls.ClientHelloInfo) (*tls.Config, error) {
	st, ok := s.lookup(hello)
	switch {
	case !ok || st == nil:
	case st.mutual != nil:
		return st.mutual, nil
	case st.ask != nil && hello.ServerName != "":
		return st.ask, nil
	}
	return nil, nil
}

func (s *Selector) lookup(hello *tls.ClientHelloInfo) (*site, bool) {
	var local net.Addr
	if hello.ServerName == "" && hello.Conn != nil {
		local = hello.Conn.LocalAddr()
	}
	return s.handshakeSite(hello.ServerName, local)
}

// handshakeSite is the one rule for the site whose TLS policy
// (certificate, client_ca) a handshake uses: the site for the SNI name;
// without one (a client that connected by address), the site for the
// local address the client connected to; else the catch-all. Both the
// handshake and Answers decide with it, so they cannot disagree.
func (s *Selector) handshakeSite(serverName string, local net.Addr) (*site, bool) {
	name := serverName
	if name == "" && local != nil {
		// Per request on a connection without SNI (Answers): a TCP
		// address is looked up without formatting it.
		if a, ok := local.(*net.TCPAddr); ok && a.Zone == "" {
			return s.t.LookupIP(a.IP)
		}
		if host, _, err := net.SplitHostPort(local.String()); err == nil {
			name = host
		}
	}
	// An empty name, or an address no site has, finds the catch-all.
	return s.t.Lookup(name)
}

// Answers reports whether a request for host may be answered on a TLS
// connection with state st: host's site must be the site whose policy
// the handshake used (handshakeSite, by st.ServerName or, without SNI,
// by local, the connection's local address: http.LocalAddrContextKey),
// and if that site requires client certificates (a reload may have
// added client_ca since the handshake), one must have been verified by
// a client_ca site's handshake (clientVerified).
// Without SNI and without local the handshake's site is unknown: false.
// Otherwise the answer is 421 Misdirected Request (RFC 9110 15.5.20):
// the client may retry on a connection of its own for host.
func (s *Selector) Answers(st *tls.ConnectionState, local net.Addr, host string) bool {
	if st == nil || st.ServerName == "" && local == nil {
		return false
	}
	hs, ok := s.handshakeSite(st.ServerName, local)
	if !ok || hs == nil {
		return false
	}
	bh, ok := s.t.Lookup(host)
	if !ok || bh == nil || bh.id != hs.id {
		return false
	}
	return hs.mutual == nil || clientVerified(st)
}

// LoadCertPool reads a PEM bundle of CA certificates into a pool: those
// a site accepts client certificates from (client_ca), or those a private
// ACME CA's own HTTPS certificate chains to (ca_root).
func LoadCertPool(path string) (*x509.CertPool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("%s: no PEM certificate", path)
	}
	return pool, nil
}
