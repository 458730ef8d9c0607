// Package certs provides the certificates of the HTTPS listener: files
// given by the operator (manual), a private CA kept in the state
// directory for LAN names and addresses (local), and the TLS
// configuration that picks one by SNI. It plugs into crypto/tls through
// GetCertificate, as autocert does.
package certs

import (
	"crypto/tls"
	"errors"

	"appliance/vhost"
)

// Source returns the certificate for a handshake.
type Source interface {
	GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error)
}

// ServerConfig returns the HTTPS listener's configuration: TLS 1.2 and
// 1.3 only, forward-secret AEAD suites only, HTTP/2 by ALPN, the
// certificate chosen by get. Session ticket keys are random and rotated
// by crypto/tls itself.
func ServerConfig(get func(*tls.ClientHelloInfo) (*tls.Certificate, error)) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		CipherSuites: []uint16{ // TLS 1.2; TLS 1.3's suites are all AEAD
			tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
			tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
		},
		NextProtos:     []string{"h2", "http/1.1"},
		GetCertificate: get,
	}
}

// ErrNoCertificate is returned for a name no TLS site answers.
var ErrNoCertificate = errors.New("certs: no certificate for this name")

// Selector picks the source by SNI name, with the site host patterns.
type Selector struct {
	t *vhost.Table[Source]
}

// NewSelector returns an empty selector.
func NewSelector() *Selector { return &Selector{t: vhost.NewTable[Source]()} }

// Add routes a host pattern's handshakes to src.
func (s *Selector) Add(pattern string, src Source) error { return s.t.Add(pattern, src) }

// GetCertificate implements tls.Config.GetCertificate. A client that
// sends no SNI (it connected by address) gets the catch-all site's.
func (s *Selector) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	src, ok := s.t.Lookup(hello.ServerName)
	if !ok || src == nil {
		return nil, ErrNoCertificate
	}
	return src.GetCertificate(hello)
}
