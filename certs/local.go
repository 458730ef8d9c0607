package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"appliance/internal/durable"
	"appliance/vhost"
)

// LocalCA is a private certificate authority kept in a directory (0700,
// key 0600). It issues short certificates on demand for LAN names and
// addresses (pi.lan, nas.local, 192.168.1.2), so a board at home gets
// HTTPS without a public name; install RootPEM in the clients once.
type LocalCA struct {
	root    *x509.Certificate
	rootKey *ecdsa.PrivateKey
	rootPEM []byte

	mu     sync.Mutex
	leaves map[string]*tls.Certificate
}

// Certificate lifetimes: the root outlives the board; leaves are renewed
// in memory well before they expire.
const (
	rootLifetime = 10 * 365 * 24 * time.Hour
	leafLifetime = 180 * 24 * time.Hour
	leafRenew    = 30 * 24 * time.Hour
	maxLeaves    = 1024
)

// OpenLocalCA loads the CA in dir, creating it on first use.
func OpenLocalCA(dir string) (*LocalCA, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	certPath, keyPath := filepath.Join(dir, "root.crt"), filepath.Join(dir, "root.key")
	ca := &LocalCA{leaves: map[string]*tls.Certificate{}}
	certPEM, err := os.ReadFile(certPath)
	if errors.Is(err, os.ErrNotExist) {
		if err := ca.create(certPath, keyPath); err != nil {
			return nil, fmt.Errorf("local CA: %w", err)
		}
		return ca, nil
	}
	if err != nil {
		return nil, err
	}
	keyPEM, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, err
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("local CA in %s: %w", dir, err)
	}
	key, ok := pair.PrivateKey.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("local CA in %s: not an ECDSA key", dir)
	}
	if ca.root, err = x509.ParseCertificate(pair.Certificate[0]); err != nil {
		return nil, err
	}
	ca.rootKey, ca.rootPEM = key, certPEM
	return ca, nil
}

func (ca *LocalCA) create(certPath, keyPath string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	serial, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "appliance local CA " + serial.Text(16)[:8], Organization: []string{"appliance"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(rootLifetime),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	// The key first, the root last: the root's presence says the CA is
	// whole. Both reach the disk before the CA is used: a board that
	// loses power must not come back with a root (already installed in
	// browsers) and an empty key.
	if err := durable.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return err
	}
	if err := durable.WriteFile(certPath, certPEM, 0o644); err != nil {
		return err
	}
	ca.root, _ = x509.ParseCertificate(der)
	ca.rootKey, ca.rootPEM = key, certPEM
	return nil
}

// RootPEM returns the root certificate to install in clients.
func (ca *LocalCA) RootPEM() []byte { return ca.rootPEM }

// GetCertificate implements Source: a certificate for the SNI name or,
// without SNI, for the address the client connected to.
func (ca *LocalCA) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	name := vhost.Normalize(hello.ServerName)
	if name == "" && hello.Conn != nil {
		if host, _, err := net.SplitHostPort(hello.Conn.LocalAddr().String()); err == nil {
			name = host
		}
	}
	if name == "" {
		return nil, ErrNoCertificate
	}
	ca.mu.Lock()
	defer ca.mu.Unlock()
	if c := ca.leaves[name]; c != nil && time.Until(c.Leaf.NotAfter) > leafRenew {
		return c, nil
	}
	c, err := ca.issue(name)
	if err != nil {
		return nil, err
	}
	if len(ca.leaves) >= maxLeaves {
		clear(ca.leaves) // clients sending random names cannot grow it
	}
	ca.leaves[name] = c
	return c, nil
}

func (ca *LocalCA) issue(name string) (*tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	serial, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(leafLifetime),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if ip := net.ParseIP(name); ip != nil {
		tmpl.IPAddresses = []net.IP{ip}
	} else {
		tmpl.DNSNames = []string{name}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.root, &key.PublicKey, ca.rootKey)
	if err != nil {
		return nil, err
	}
	leaf, _ := x509.ParseCertificate(der)
	return &tls.Certificate{Certificate: [][]byte{der, ca.root.Raw}, PrivateKey: key, Leaf: leaf}, nil
}
