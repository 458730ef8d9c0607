package h1

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestTLSStateOnBothPaths: handlers see r.TLS whether the fast path or
// net/http (a handed-off connection) served the request.
func TestTLSStateOnBothPaths(t *testing.T) {
	cfg := &tls.Config{Certificates: []tls.Certificate{testCert(t)}}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sni := "none"
		if r.TLS != nil {
			sni = r.TLS.ServerName
		}
		body := "sni=" + sni
		w.Header().Set("Content-Length", fmt.Sprint(len(body)))
		io.WriteString(w, body)
	})
	_, addr := start(t, h, func(s *Server) { s.TLSConfig = cfg })
	for raw, via := range map[string]string{
		"GET / HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n": "fast",
		"GET / HTTP/1.0\r\nHost: a.test\r\n\r\n":                      "net/http",
	} {
		c, err := tls.Dial("tcp", addr, &tls.Config{ServerName: "a.test", InsecureSkipVerify: true})
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		io.WriteString(c, raw)
		b, _ := io.ReadAll(c)
		c.Close()
		if s := string(b); !strings.Contains(s, "X-Via: "+via) || !strings.HasSuffix(s, "sni=a.test") {
			t.Errorf("%q:\n%s", raw, s)
		}
	}
}

// testCert is a self-signed certificate for a.test.
func testCert(t *testing.T) tls.Certificate {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), DNSNames: []string{"a.test"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}
