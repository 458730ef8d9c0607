package h1

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"math/big"
	"net"
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

// TestHandOffAllTLS: with the fast path off (HandOffAll), an HTTPS
// listener still does the TLS handshake and gives net/http the *tls.Conn,
// which it serves as HTTP/1.1 or HTTP/2 with r.TLS set; plaintext on the
// port is never served, and acme-tls/1 gets the handshake and nothing else.
func TestHandOffAllTLS(t *testing.T) {
	cfg := &tls.Config{Certificates: []tls.Certificate{testCert(t)}, NextProtos: []string{"h2", "http/1.1", "acme-tls/1"}}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sni := "none"
		if r.TLS != nil {
			sni = r.TLS.ServerName
		}
		io.WriteString(w, r.Proto+" sni="+sni)
	})
	_, addr := start(t, h, func(s *Server) { s.TLSConfig = cfg; s.HandOffAll = true })
	dial := func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}
	clientTLS := func() *tls.Config { return &tls.Config{ServerName: "a.test", InsecureSkipVerify: true} } // one each: h2 adds to NextProtos
	for proto, tr := range map[string]*http.Transport{
		"HTTP/1.1": {DialContext: dial, TLSClientConfig: clientTLS(), TLSNextProto: map[string]func(string, *tls.Conn) http.RoundTripper{}},
		"HTTP/2.0": {DialContext: dial, TLSClientConfig: clientTLS(), ForceAttemptHTTP2: true},
	} {
		res, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get("https://a.test/")
		if err != nil {
			t.Errorf("%s: %v", proto, err)
			continue
		}
		if b := text(res); res.StatusCode != 200 || res.Proto != proto || res.Header.Get("X-Via") != "net/http" || b != proto+" sni=a.test" {
			t.Errorf("%s: %d %s via %q: %q", proto, res.StatusCode, res.Proto, res.Header.Get("X-Via"), b)
		}
		tr.CloseIdleConnections()
	}

	// Plaintext on the HTTPS port: no handshake, no answer.
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: a.test\r\n\r\n")
	b, _ := io.ReadAll(c)
	c.Close()
	if strings.HasPrefix(string(b), "HTTP/") {
		t.Errorf("plaintext request on the HTTPS port answered: %q", b)
	}

	// acme-tls/1: the CA's TLS-ALPN-01 check is the handshake; nothing is
	// served after it.
	tc, err := tls.Dial("tcp", addr, &tls.Config{ServerName: "a.test", InsecureSkipVerify: true, NextProtos: []string{"acme-tls/1"}})
	if err != nil {
		t.Fatalf("acme-tls/1 handshake: %v", err)
	}
	tc.SetDeadline(time.Now().Add(10 * time.Second))
	if p := tc.ConnectionState().NegotiatedProtocol; p != "acme-tls/1" {
		t.Errorf("negotiated %q, want acme-tls/1", p)
	}
	io.WriteString(tc, "GET / HTTP/1.1\r\nHost: a.test\r\n\r\n")
	b, _ = io.ReadAll(tc)
	tc.Close()
	if len(b) != 0 {
		t.Errorf("acme-tls/1 connection served: %q", b)
	}
}

// TestHandOffAllTLSLimits: the handshake of a handed-off HTTPS connection
// runs under the read-header deadline and the connection limits.
func TestHandOffAllTLSLimits(t *testing.T) {
	cfg := &tls.Config{Certificates: []tls.Certificate{testCert(t)}}
	t.Run("deadline", func(t *testing.T) {
		_, addr := start(t, hello, func(s *Server) { s.TLSConfig = cfg; s.HandOffAll = true; s.ReadHeaderTimeout = time.Millisecond })
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		if b, err := io.ReadAll(c); err != nil || len(b) != 0 { // the reaper closes the silent connection
			t.Fatalf("%q %v", b, err)
		}
	})
	t.Run("max connections", func(t *testing.T) {
		s, addr := start(t, hello, func(s *Server) { s.TLSConfig = cfg; s.HandOffAll = true; s.Limits = &Limits{MaxConns: 1} })
		first, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true})
		if err != nil {
			t.Fatal(err)
		}
		defer first.Close()
		first.SetDeadline(time.Now().Add(10 * time.Second))
		io.WriteString(first, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
		if res, err := http.ReadResponse(bufio.NewReader(first), nil); err != nil || text(res) != "hello" {
			t.Fatalf("first connection: %v", err)
		}
		if n := s.Open(); n != 1 {
			t.Errorf("Open() = %d with one handed-off connection, want 1", n)
		}
		second, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true})
		if err == nil {
			second.SetDeadline(time.Now().Add(10 * time.Second))
			_, err = io.WriteString(second, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
			if err == nil {
				_, err = http.ReadResponse(bufio.NewReader(second), nil)
			}
			second.Close()
		}
		if err == nil {
			t.Error("a second connection was served with max connections 1")
		}
	})
}

// TestLocalAddrWithoutSNI: on a TLS connection without SNI, whose
// handshake chose its site by the local address, handlers find that
// address where net/http puts it, on the fast path too.
func TestLocalAddrWithoutSNI(t *testing.T) {
	cfg := &tls.Config{Certificates: []tls.Certificate{testCert(t)}}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		local, _ := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
		io.WriteString(w, fmt.Sprint("local=", local))
	})
	_, addr := start(t, h, func(s *Server) { s.TLSConfig = cfg })
	for raw, via := range map[string]string{
		"GET / HTTP/1.1\r\nHost: a.test\r\n\r\nGET / HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n": "fast",
		"GET / HTTP/1.0\r\nHost: a.test\r\n\r\n":                                                            "net/http",
	} {
		c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true}) // no ServerName: no SNI
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		io.WriteString(c, raw)
		br := bufio.NewReader(c)
		for {
			res, err := http.ReadResponse(br, nil)
			if err != nil {
				break
			}
			if b := text(res); res.Header.Get("X-Via") != via || b != "local="+addr {
				t.Errorf("%q: via %q: %q, want local=%s", raw, res.Header.Get("X-Via"), b, addr)
			}
		}
		c.Close()
	}
}
