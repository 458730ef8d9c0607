package certs

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"sync"
	"time"
)

// Manual serves a certificate and key from files, reloading them when
// they change (checked at most once a second, on a handshake). A reload
// that fails keeps the certificate in use.
type Manual struct {
	certFile, keyFile string

	mu      sync.Mutex
	cert    *tls.Certificate
	stamp   string // modification times of both files
	checked time.Time
	OnError func(error) // told about a failed reload
}

// NewManual loads certFile (the chain, leaf first) and keyFile.
func NewManual(certFile, keyFile string) (*Manual, error) {
	m := &Manual{certFile: certFile, keyFile: keyFile}
	cert, stamp, err := m.load()
	if err != nil {
		return nil, err
	}
	m.cert, m.stamp, m.checked = cert, stamp, time.Now()
	return m, nil
}

func (m *Manual) load() (*tls.Certificate, string, error) {
	stamp := ""
	for _, f := range []string{m.certFile, m.keyFile} {
		fi, err := os.Stat(f)
		if err != nil {
			return nil, "", fmt.Errorf("certificate %s, key %s: %w", m.certFile, m.keyFile, err)
		}
		stamp += fi.ModTime().String() + fmt.Sprint(fi.Size())
	}
	cert, err := tls.LoadX509KeyPair(m.certFile, m.keyFile)
	if err != nil {
		return nil, "", fmt.Errorf("certificate %s, key %s: %w", m.certFile, m.keyFile, err)
	}
	if cert.Leaf == nil {
		if cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, "", err
		}
	}
	return &cert, stamp, nil
}

// Leaf returns the certificate in use.
func (m *Manual) Leaf() *x509.Certificate {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.cert.Leaf
}

// GetCertificate implements Source.
func (m *Manual) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if time.Since(m.checked) > time.Second {
		m.checked = time.Now()
		stamp := ""
		for _, f := range []string{m.certFile, m.keyFile} {
			if fi, err := os.Stat(f); err == nil {
				stamp += fi.ModTime().String() + fmt.Sprint(fi.Size())
			}
		}
		if stamp != m.stamp {
			if cert, st, err := m.load(); err != nil {
				if m.OnError != nil {
					m.OnError(err)
				}
			} else {
				m.cert, m.stamp = cert, st
			}
		}
	}
	return m.cert, nil
}
