package h1

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"testing"
	"time"

	"appliance/h2"

	"golang.org/x/net/http2"
)

// TestHTTP2ServerTrackedAndLimited: the TLS connections that negotiate
// h2 go to the HTTP2 server, on the fast path and with HandOffAll, and
// stay counted in the limits (a second is refused with MaxConns 1)
// until the HTTP2 server is done with them.
func TestHTTP2ServerTrackedAndLimited(t *testing.T) {
	cfg := &tls.Config{Certificates: []tls.Certificate{testCert(t)}, NextProtos: []string{"h2", "http/1.1"}}
	for _, handOffAll := range []bool{false, true} {
		s, addr := start(t, hello, func(s *Server) {
			s.TLSConfig = cfg
			s.HandOffAll = handOffAll
			s.Limits = &Limits{MaxConns: 1}
			s.HTTP2 = &h2.Server{Handler: s.Handler}
		})
		dial := func() (*tls.Conn, error) {
			d := &net.Dialer{Timeout: 10 * time.Second}
			return tls.DialWithDialer(d, "tcp", addr, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"h2"}})
		}
		first, err := dial()
		if err != nil {
			t.Fatal(err)
		}
		tr := &http2.Transport{DialTLSContext: func(context.Context, string, string, *tls.Config) (net.Conn, error) { return first, nil }}
		res, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get("https://a/")
		if err != nil {
			t.Fatalf("HandOffAll %v: %v", handOffAll, err)
		}
		if res.ProtoMajor != 2 || res.Header.Get("X-Via") != "fast" || text(res) != "hello" {
			t.Errorf("HandOffAll %v: %s via %q, want HTTP/2 from the HTTP2 server", handOffAll, res.Proto, res.Header.Get("X-Via"))
		}
		if n := s.Open(); n != 1 {
			t.Errorf("HandOffAll %v: Open() = %d with one HTTP/2 connection, want 1", handOffAll, n)
		}
		if second, err := dial(); err == nil {
			second.SetDeadline(time.Now().Add(10 * time.Second))
			var b [1]byte
			if _, err := second.Read(b[:]); err == nil {
				t.Errorf("HandOffAll %v: a second connection was served with max connections 1", handOffAll)
			}
			second.Close()
		}
		tr.CloseIdleConnections()
		first.Close()
		deadline := time.Now().Add(5 * time.Second)
		for s.Open() != 0 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if n := s.Open(); n != 0 {
			t.Errorf("HandOffAll %v: Open() = %d once the HTTP/2 connection closed, want 0", handOffAll, n)
		}
	}
}
