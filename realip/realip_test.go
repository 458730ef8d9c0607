package realip

import (
	"net"
	"net/http"
	"net/netip"
	"testing"

	proxyproto "github.com/pires/go-proxyproto"
)

func mustTrusted(t *testing.T, list ...string) Trusted {
	t.Helper()
	tr, err := ParseTrusted(list)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func TestParseTrusted(t *testing.T) {
	tr := mustTrusted(t, "10.0.0.0/8", "192.0.2.7", "2001:db8::/32", "::ffff:198.51.100.0/120")
	for addr, want := range map[string]bool{
		"10.1.2.3": true, "::ffff:10.1.2.3": true, "11.0.0.1": false,
		"192.0.2.7": true, "192.0.2.8": false, "2001:db8::1": true, "2001:db9::1": false,
		"198.51.100.9": true, "198.51.101.9": false,
	} {
		if got := tr.Contains(netip.MustParseAddr(addr)); got != want {
			t.Errorf("Contains(%s) = %v, want %v", addr, got, want)
		}
	}
	for _, bad := range []string{"10.0.0.0/33", "example.com", "", "fe80::1%eth0", "10.0.0.1/"} {
		if _, err := ParseTrusted([]string{bad}); err == nil {
			t.Errorf("ParseTrusted(%q) accepted", bad)
		}
	}
	if (Trusted(nil)).Contains(netip.MustParseAddr("127.0.0.1")) {
		t.Error("the zero value trusts someone")
	}
}

// TestClient is the rightmost-untrusted-hop rule: chains of several
// proxies, entries a client wrote itself, the two headers, bad entries.
func TestClient(t *testing.T) {
	tr := mustTrusted(t, "10.0.0.0/8", "2001:db8::/32")
	trustedPeer, otherPeer := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("203.0.113.50")
	for _, c := range []struct {
		name  string
		peer  netip.Addr
		which Header
		h     http.Header
		want  string // "" with Peer
		res   Result
	}{
		{"untrusted peer: header ignored", otherPeer, XForwardedFor, http.Header{"X-Forwarded-For": {"198.51.100.1"}}, "", Peer},
		{"untrusted peer: Forwarded ignored", otherPeer, Forwarded, http.Header{"Forwarded": {"for=198.51.100.1"}}, "", Peer},
		{"no header", trustedPeer, XForwardedFor, http.Header{}, "", Peer},
		{"one hop", trustedPeer, XForwardedFor, http.Header{"X-Forwarded-For": {"198.51.100.1"}}, "198.51.100.1:0", Found},
		{"spoofed entries left of the real one", trustedPeer, XForwardedFor, http.Header{"X-Forwarded-For": {"1.1.1.1, 2.2.2.2, 198.51.100.1"}}, "198.51.100.1:0", Found},
		{"chain of trusted proxies", trustedPeer, XForwardedFor, http.Header{"X-Forwarded-For": {"1.1.1.1, 198.51.100.1, 10.9.9.9, 10.8.8.8"}}, "198.51.100.1:0", Found},
		{"chain over several lines", trustedPeer, XForwardedFor, http.Header{"X-Forwarded-For": {"1.1.1.1, 198.51.100.1", "10.9.9.9", "10.8.8.8"}}, "198.51.100.1:0", Found},
		{"every hop trusted: the leftmost", trustedPeer, XForwardedFor, http.Header{"X-Forwarded-For": {"10.3.3.3, 10.2.2.2"}}, "10.3.3.3:0", Found},
		{"ports and brackets", trustedPeer, XForwardedFor, http.Header{"X-Forwarded-For": {"[2001:db9::5]:4711, 10.2.2.2:80"}}, "[2001:db9::5]:4711", Found},
		{"bare IPv6", trustedPeer, XForwardedFor, http.Header{"X-Forwarded-For": {"2001:db9::5"}}, "[2001:db9::5]:0", Found},
		{"mapped IPv4", trustedPeer, XForwardedFor, http.Header{"X-Forwarded-For": {"::ffff:198.51.100.1"}}, "198.51.100.1:0", Found},
		{"empty elements skipped", trustedPeer, XForwardedFor, http.Header{"X-Forwarded-For": {"198.51.100.1, ,"}}, "198.51.100.1:0", Found},
		{"garbage behind trusted hops: unknown", trustedPeer, XForwardedFor, http.Header{"X-Forwarded-For": {"1.1.1.1, nonsense, 10.2.2.2"}}, "", Unknown},
		{"garbage left of the client: ignored", trustedPeer, XForwardedFor, http.Header{"X-Forwarded-For": {"nonsense, 198.51.100.1"}}, "198.51.100.1:0", Found},
		{"zone refused", trustedPeer, XForwardedFor, http.Header{"X-Forwarded-For": {"fe80::1%eth0"}}, "", Unknown},
		{"XFF ignored when Forwarded is believed", trustedPeer, Forwarded, http.Header{"X-Forwarded-For": {"198.51.100.1"}}, "", Peer},
		{"Forwarded ignored when XFF is believed", trustedPeer, XForwardedFor, http.Header{"Forwarded": {"for=198.51.100.1"}}, "", Peer},
		{"Forwarded", trustedPeer, Forwarded, http.Header{"Forwarded": {`for=1.1.1.1, for=198.51.100.1;proto=https, For="[2001:db8::7]:80";by=10.0.0.1`}}, "198.51.100.1:0", Found},
		{"Forwarded quoted IPv6 client", trustedPeer, Forwarded, http.Header{"Forwarded": {`for="[2001:db9::17]:4711"`}}, "[2001:db9::17]:4711", Found},
		{"Forwarded quoted comma", trustedPeer, Forwarded, http.Header{"Forwarded": {`for=198.51.100.1;host="a,b"`}}, "198.51.100.1:0", Found},
		{"Forwarded unknown", trustedPeer, Forwarded, http.Header{"Forwarded": {"for=198.51.100.1, for=unknown"}}, "", Unknown},
		{"Forwarded obfuscated", trustedPeer, Forwarded, http.Header{"Forwarded": {"for=_gazonk"}}, "", Unknown},
		{"Forwarded without for", trustedPeer, Forwarded, http.Header{"Forwarded": {"proto=https"}}, "", Unknown},
	} {
		t.Run(c.name, func(t *testing.T) {
			ap, res := tr.Client(c.peer, c.h, c.which)
			if res != c.res || res == Found && ap.String() != c.want {
				t.Errorf("Client = %v, %v; want %s, %v", ap, res, c.want, c.res)
			}
		})
	}
}

func TestClientMaxHops(t *testing.T) {
	tr := mustTrusted(t, "10.0.0.0/8")
	v := "198.51.100.1"
	for range maxHops + 5 {
		v += ", 10.0.0.2"
	}
	ap, res := tr.Client(netip.MustParseAddr("10.0.0.1"), http.Header{"X-Forwarded-For": {v}}, XForwardedFor)
	if res != Found || ap.Addr().String() != "10.0.0.2" {
		t.Errorf("%v %v", ap, res)
	}
}

// header writes a PROXY header with a well-kept client implementation.
func header(t *testing.T, version byte, cmd proxyproto.ProtocolVersionAndCommand, proto proxyproto.AddressFamilyAndProtocol, src, dst net.Addr, tlvs ...proxyproto.TLV) []byte {
	t.Helper()
	h := &proxyproto.Header{Version: version, Command: cmd, TransportProtocol: proto, SourceAddr: src, DestinationAddr: dst}
	if len(tlvs) > 0 {
		if err := h.SetTLVs(tlvs); err != nil {
			t.Fatal(err)
		}
	}
	b, err := h.Format()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseProxy(t *testing.T) {
	v4src := &net.TCPAddr{IP: net.ParseIP("198.51.100.7"), Port: 50123}
	v4dst := &net.TCPAddr{IP: net.ParseIP("10.0.0.9"), Port: 443}
	v6src := &net.TCPAddr{IP: net.ParseIP("2001:db8::7"), Port: 4711}
	v6dst := &net.TCPAddr{IP: net.ParseIP("2001:db8::9"), Port: 80}
	request := []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	for _, c := range []struct {
		name string
		hdr  []byte
		want string // "" for a header without an address
	}{
		{"v1 TCP4", header(t, 1, proxyproto.PROXY, proxyproto.TCPv4, v4src, v4dst), "198.51.100.7:50123"},
		{"v1 TCP6", header(t, 1, proxyproto.PROXY, proxyproto.TCPv6, v6src, v6dst), "[2001:db8::7]:4711"},
		{"v1 UNKNOWN", []byte("PROXY UNKNOWN\r\n"), ""},
		{"v1 UNKNOWN with addresses", []byte("PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n"), ""},
		{"v2 TCP4", header(t, 2, proxyproto.PROXY, proxyproto.TCPv4, v4src, v4dst), "198.51.100.7:50123"},
		{"v2 TCP6", header(t, 2, proxyproto.PROXY, proxyproto.TCPv6, v6src, v6dst), "[2001:db8::7]:4711"},
		{"v2 with TLVs", header(t, 2, proxyproto.PROXY, proxyproto.TCPv4, v4src, v4dst,
			proxyproto.TLV{Type: proxyproto.PP2_TYPE_AUTHORITY, Value: []byte("example.com")},
			proxyproto.TLV{Type: proxyproto.PP2Type(0xEA), Value: []byte("\x01vpce-0123456789abcdef")}), "198.51.100.7:50123"},
		{"v2 LOCAL", header(t, 2, proxyproto.LOCAL, proxyproto.UNSPEC, nil, nil), ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			in := append(append([]byte(nil), c.hdr...), request...)
			src, n, st := ParseProxy(in)
			if st != Proxy || n != len(c.hdr) {
				t.Fatalf("status %v, n %d (header %d bytes)", st, n, len(c.hdr))
			}
			if got := ""; src.IsValid() && src.String() != c.want || !src.IsValid() && c.want != got {
				t.Errorf("source %v, want %q", src, c.want)
			}
			// Every prefix of the header asks for more, none is taken for
			// something else.
			for i := range len(c.hdr) {
				if _, _, st := ParseProxy(c.hdr[:i]); st != NeedMore {
					t.Fatalf("prefix of %d bytes: status %v", i, st)
				}
			}
		})
	}
	for name, in := range map[string]string{
		"request":     "GET / HTTP/1.1\r\n",
		"PROPFIND":    "PROPFIND / HTTP/1.1\r\n",
		"TLS hello":   "\x16\x03\x01\x02\x00\x01",
		"CRLF then x": "\r\nx",
	} {
		if _, _, st := ParseProxy([]byte(in)); st != NotProxy {
			t.Errorf("%s: status %v, want NotProxy", name, st)
		}
	}
	long := "PROXY TCP4 " + string(make([]byte, 120))
	v2 := header(t, 2, proxyproto.PROXY, proxyproto.TCPv4, v4src, v4dst)
	badVersion := append([]byte(nil), v2...)
	badVersion[12] = 0x31
	badCommand := append([]byte(nil), v2...)
	badCommand[12] = 0x2f
	tooLong := append([]byte(nil), v2[:16]...)
	tooLong[14], tooLong[15] = 0xff, 0xff
	short := append([]byte(nil), v2[:16]...)
	short[15] = 4 // IPv4 needs 12 bytes of addresses
	short = append(short, 1, 2, 3, 4)
	for name, in := range map[string][]byte{
		"v1 without CRLF in 107 bytes": []byte(long),
		"v1 bare LF":                   []byte("PROXY TCP4 198.51.100.7 10.0.0.9 1 2\n"),
		"v1 bad protocol":              []byte("PROXY UDP4 198.51.100.7 10.0.0.9 1 2\r\n"),
		"v1 family mismatch":           []byte("PROXY TCP4 2001:db8::7 10.0.0.9 1 2\r\n"),
		"v1 bad port":                  []byte("PROXY TCP4 198.51.100.7 10.0.0.9 65536 2\r\n"),
		"v1 missing field":             []byte("PROXY TCP4 198.51.100.7 10.0.0.9 1\r\n"),
		"v1 double space":              []byte("PROXY TCP4  198.51.100.7 10.0.0.9 1 2\r\n"),
		"v2 version 3":                 badVersion,
		"v2 command 15":                badCommand,
		"v2 longer than the limit":     tooLong,
		"v2 address too short":         short,
	} {
		if _, _, st := ParseProxy(in); st != BadProxy {
			t.Errorf("%s: status %v, want BadProxy", name, st)
		}
	}
}

func FuzzParseProxy(f *testing.F) {
	f.Add([]byte("PROXY TCP4 198.51.100.7 10.0.0.9 1 2\r\nGET /"))
	f.Add([]byte("PROXY UNKNOWN\r\n"))
	f.Add([]byte(v2Sig + "\x21\x11\x00\x0c\xc6\x33\x64\x07\x0a\x00\x00\x09\x00\x01\x00\x02"))
	f.Fuzz(func(t *testing.T, b []byte) {
		src, n, st := ParseProxy(b)
		switch st {
		case Proxy:
			if n <= 0 || n > len(b) || n > MaxProxyHeader {
				t.Fatalf("n = %d of %d", n, len(b))
			}
			if src.IsValid() && src.Addr().Is4In6() {
				t.Fatalf("mapped source %v", src)
			}
		default:
			if n != 0 || src.IsValid() {
				t.Fatalf("status %v with n %d, src %v", st, n, src)
			}
		}
	})
}
