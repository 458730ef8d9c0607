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
// requirement, by SNI name with the site host patterns.
type Selector struct {
	t *vhost.Table[*site]
}

type site struct {
	src    Source
	mutual *tls.Config // requires client certificates; nil if the site does not
}

// NewSelector returns an empty selector.
func NewSelector() *Selector { return &Selector{t: vhost.NewTable[*site]()} }

// Add routes a host pattern's handshakes to src. With clientCAs, clients
// must present a certificate that chains to them (mutual TLS); base is
// the listener's configuration that the site's own derives from.
func (s *Selector) Add(pattern string, src Source, clientCAs *x509.CertPool, base *tls.Config) error {
	st := &site{src: src}
	if clientCAs != nil {
		st.mutual = base.Clone()
		st.mutual.GetConfigForClient = nil
		st.mutual.ClientAuth = tls.RequireAndVerifyClientCert
		st.mutual.ClientCAs = clientCAs
	}
	return s.t.Add(pattern, st)
}

// GetCertificate implements tls.Config.GetCertificate. A client that
// sends no SNI (it connected by address) gets the certificate of the
// site for the address it connected to, else the catch-all site's.
func (s *Selector) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	st, ok := s.lookup(hello)
	if !ok || st == nil || st.src == nil {
		return nil, ErrNoCertificate
	}
	return st.src.GetCertificate(hello)
}

// ConfigForClient implements tls.Config.GetConfigForClient: a site that
// requires client certificates gets its own configuration, others the
// listener's (nil).
func (s *Selector) ConfigForClient(hello *tls.ClientHelloInfo) (*tls.Config, error) {
	if st, ok := s.lookup(hello); ok && st != nil && st.mutual != nil {
		return st.mutual, nil
	}
	return nil, nil
}

// lookup finds the site for the SNI name or, without one, for the local
// address of the connection.
func (s *Selector) lookup(hello *tls.ClientHelloInfo) (*site, bool) {
	name := hello.ServerName
	if name == "" && hello.Conn != nil {
		if host, _, err := net.SplitHostPort(hello.Conn.LocalAddr().String()); err == nil {
			if st, ok := s.t.Lookup(host); ok {
				return st, true
			}
		}
	}
	return s.t.Lookup(name)
}

// LoadClientCAs reads a PEM bundle of the CAs whose client certificates
// a site accepts.
func LoadClientCAs(path string) (*x509.CertPool, error) {
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
