package h1

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	proxyproto "github.com/pires/go-proxyproto"
)

// echoRemote answers with the request's RemoteAddr and protocol.
var echoRemote = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	body := "remote=" + r.RemoteAddr + " proto=" + r.Proto
	w.Header().Set("Content-Length", fmt.Sprint(len(body)))
	io.WriteString(w, body)
})

// proxyHeader is a PROXY header for src, written by go-proxyproto.
func proxyHeader(t *testing.T, version byte, src string) []byte {
	t.Helper()
	ap := netip.MustParseAddrPort(src)
	proto := proxyproto.TCPv4
	dst := &net.TCPAddr{IP: net.ParseIP("10.0.0.9"), Port: 443}
	if ap.Addr().Is6() {
		proto, dst = proxyproto.TCPv6, &net.TCPAddr{IP: net.ParseIP("2001:db8::9"), Port: 443}
	}
	h := &proxyproto.Header{Version: version, Command: proxyproto.PROXY, TransportProtocol: proto,
		SourceAddr: net.TCPAddrFromAddrPort(ap), DestinationAddr: dst}
	b, err := h.Format()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// dialFrom connects to addr from the loopback address local (127.0.0.1
// is the trusted proxy in these tests, 127.0.0.2 is not).
func dialFrom(t *testing.T, local, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}, Timeout: 10 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	t.Cleanup(func() { c.Close() })
	return c
}

func trustLoopback1(s *Server) {
	s.Trusted = func(a netip.Addr) bool { return a == netip.MustParseAddr("127.0.0.1") }
	s.ProxyProtocol = true
}

// TestProxyProtocol: a trusted proxy's PROXY header (v1, v2) makes its
// connection the client's on every path: the fast path, net/http's
// fallback, TLS on both, HTTP/2, and with the fast path off. Without a
// header a connection is its peer's; a header from a peer that is not
// trusted closes the connection unanswered.
func TestProxyProtocol(t *testing.T) {
	cert := testCert(t)
	for _, secure := range []bool{false, true} {
		for _, all := range []bool{false, true} {
			t.Run(fmt.Sprintf("tls=%v,handOffAll=%v", secure, all), func(t *testing.T) {
				var mu sync.Mutex
				var refused []string
				_, addr := start(t, echoRemote, trustLoopback1, func(s *Server) {
					s.HandOffAll = all
					if secure {
						s.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2", "http/1.1"}}
					}
					s.Refused = func(reason string, peer netip.Addr) {
						mu.Lock()
						refused = append(refused, reason+" "+peer.String())
						mu.Unlock()
					}
				})
				// conn sends header (may be nil), then request over TLS
				// or not, and returns what came back.
				conn := func(from string, header []byte, request string) string {
					c := dialFrom(t, from, addr)
					c.Write(header)
					if secure {
						tc := tls.Client(c, &tls.Config{ServerName: "a.test", InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
						if err := tc.Handshake(); err != nil {
							return "handshake: " + err.Error()
						}
						c = tc
					}
					io.WriteString(c, request)
					b, _ := io.ReadAll(c)
					return string(b)
				}
				fast := "GET / HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n"
				fallback := "GET / HTTP/1.0\r\nHost: a.test\r\n\r\n"
				for _, c := range []struct {
					name, from string
					header     []byte
					request    string
					want       string
				}{
					{"v1 fast", "127.0.0.1", proxyHeader(t, 1, "198.51.100.7:50001"), fast, "remote=198.51.100.7:50001 proto=HTTP/1.1"},
					{"v2 fast", "127.0.0.1", proxyHeader(t, 2, "198.51.100.7:50002"), fast, "remote=198.51.100.7:50002 proto=HTTP/1.1"},
					{"v2 IPv6", "127.0.0.1", proxyHeader(t, 2, "[2001:db8::7]:50003"), fast, "remote=[2001:db8::7]:50003 proto=HTTP/1.1"},
					{"v1 fallback", "127.0.0.1", proxyHeader(t, 1, "198.51.100.7:50004"), fallback, "remote=198.51.100.7:50004 proto=HTTP/1.0"},
					{"v2 fallback", "127.0.0.1", proxyHeader(t, 2, "198.51.100.7:50005"), fallback, "remote=198.51.100.7:50005 proto=HTTP/1.0"},
					{"LOCAL: the proxy's own", "127.0.0.1", []byte("\r\n\r\n\x00\r\nQUIT\n\x20\x00\x00\x00"), fast, "remote=127.0.0.1:"},
					{"trusted peer without header", "127.0.0.1", nil, fast, "remote=127.0.0.1:"},
					{"untrusted peer without header", "127.0.0.2", nil, fast, "remote=127.0.0.2:"},
				} {
					got := conn(c.from, c.header, c.request)
					if !strings.Contains(got, "200 OK") || !strings.Contains(got, c.want) {
						t.Errorf("%s: %q, want %q", c.name, got, c.want)
					}
				}
				for _, c := range []struct {
					name, from string
					header     []byte
				}{
					{"v1 from an untrusted peer", "127.0.0.2", proxyHeader(t, 1, "198.51.100.7:50006")},
					{"v2 from an untrusted peer", "127.0.0.2", proxyHeader(t, 2, "198.51.100.7:50007")},
					{"malformed v1 from the trusted peer", "127.0.0.1", []byte("PROXY TCP4 nonsense\r\n")},
				} {
					if got := conn(c.from, c.header, fast); strings.Contains(got, "HTTP/1.1") {
						t.Errorf("%s: answered %q", c.name, got)
					}
				}
				mu.Lock()
				if len(refused) != 3 || !strings.HasSuffix(refused[0], " 127.0.0.2") || !strings.Contains(refused[0], "not in trusted_proxies") || !strings.Contains(refused[2], "malformed") {
					t.Errorf("refusals reported: %q", refused)
				}
				mu.Unlock()

				if !secure {
					return
				}
				// HTTP/2 and HTTP/1.1 clients of net/http behind a proxy
				// that sends a v2 header.
				dialProxied := func(ctx context.Context, network, _ string) (net.Conn, error) {
					c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
					if err == nil {
						_, err = c.Write(proxyHeader(t, 2, "198.51.100.8:40000"))
					}
					return c, err
				}
				for proto, tr := range map[string]*http.Transport{
					"HTTP/1.1": {DialContext: dialProxied, TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, TLSNextProto: map[string]func(string, *tls.Conn) http.RoundTripper{}},
					"HTTP/2.0": {DialContext: dialProxied, TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, ForceAttemptHTTP2: true},
				} {
					res, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get("https://a.test/")
					if err != nil {
						t.Errorf("%s: %v", proto, err)
						continue
					}
					if b := text(res); b != "remote=198.51.100.8:40000 proto="+proto {
						t.Errorf("%s: %q", proto, b)
					}
					tr.CloseIdleConnections()
				}
			})
		}
	}
}

// TestProxyProtocolPerIPLimit: behind a PROXY-protocol proxy,
// MaxConnsPerIP counts each client the headers name, not the proxy.
func TestProxyProtocolPerIPLimit(t *testing.T) {
	s, addr := start(t, echoRemote, trustLoopback1, func(s *Server) { s.Limits = &Limits{MaxConnsPerIP: 1} })
	// open holds a connection whose first request was answered.
	open := func(from string, header []byte) (net.Conn, error) {
		c := dialFrom(t, from, addr)
		c.Write(header)
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
		res, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			return nil, err
		}
		if b := text(res); !strings.HasPrefix(b, "remote=") {
			return nil, fmt.Errorf("body %q", b)
		}
		return c, nil
	}
	if _, err := open("127.0.0.1", proxyHeader(t, 2, "198.51.100.1:1")); err != nil {
		t.Fatalf("first client: %v", err)
	}
	if _, err := open("127.0.0.1", proxyHeader(t, 1, "198.51.100.1:2")); err == nil {
		t.Error("a second connection of the same client was served with max 1 per IP")
	}
	if _, err := open("127.0.0.1", proxyHeader(t, 2, "198.51.100.2:1")); err != nil {
		t.Errorf("another client behind the same proxy: %v", err)
	}
	if _, err := open("127.0.0.1", nil); err != nil {
		t.Errorf("the proxy's own connection: %v", err)
	}
	if _, err := open("127.0.0.1", nil); err == nil {
		t.Error("a second connection of the proxy's own was served with max 1 per IP")
	}
	if _, err := open("127.0.0.2", nil); err != nil {
		t.Errorf("a direct client: %v", err)
	}
	if n := s.Open(); n != 4 {
		t.Errorf("Open() = %d, want 4", n)
	}
	if n := s.Rejected(); n != 2 {
		t.Errorf("Rejected() = %d, want 2", n)
	}
}

// TestTrustedPeerNotLimitedPerIP: without the PROXY protocol, a trusted
// proxy's connections (which carry many clients) are not limited per IP.
func TestTrustedPeerNotLimitedPerIP(t *testing.T) {
	_, addr := start(t, echoRemote, func(s *Server) {
		s.Limits = &Limits{MaxConnsPerIP: 1}
		s.Trusted = func(a netip.Addr) bool { return a == netip.MustParseAddr("127.0.0.1") }
	})
	for i := range 3 {
		c := dialFrom(t, "127.0.0.1", addr)
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
		if _, err := http.ReadResponse(bufio.NewReader(c), nil); err != nil {
			t.Fatalf("connection %d of the trusted proxy: %v", i+1, err)
		}
	}
	c := dialFrom(t, "127.0.0.2", addr)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	if _, err := http.ReadResponse(bufio.NewReader(c), nil); err != nil {
		t.Fatal(err)
	}
	c = dialFrom(t, "127.0.0.2", addr)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	if _, err := http.ReadResponse(bufio.NewReader(c), nil); err == nil {
		t.Error("a client's second connection was served with max 1 per IP")
	}
}

// TestProxyHeaderTimeout: a header that never ends is cut off by the
// read-header deadline, on both listener kinds.
func TestProxyHeaderTimeout(t *testing.T) {
	for _, secure := range []bool{false, true} {
		_, addr := start(t, echoRemote, trustLoopback1, func(s *Server) {
			s.ReadHeaderTimeout = time.Millisecond
			if secure {
				s.TLSConfig = &tls.Config{Certificates: []tls.Certificate{testCert(t)}}
			}
		})
		for _, partial := range []string{"PROX", "PROXY TCP4 198.51.100.1", "\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x0c\xc6"} {
			c := dialFrom(t, "127.0.0.1", addr)
			io.WriteString(c, partial)
			if b, err := io.ReadAll(c); err != nil || len(b) != 0 {
				t.Errorf("tls=%v %q: %q %v", secure, partial, b, err)
			}
		}
	}
}
