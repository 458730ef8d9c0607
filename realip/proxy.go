package realip

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"strconv"
	"strings"
)

// ProxyStatus is what ParseProxy found at the start of a connection.
type ProxyStatus int

const (
	NeedMore ProxyStatus = iota // too few bytes to tell
	NotProxy                    // the connection does not start with a PROXY header
	Proxy                       // a complete, valid header
	BadProxy                    // a PROXY header that is malformed or too long
)

// The PROXY protocol's signatures: version 1 is a text line, version 2
// a binary block that starts with 12 fixed bytes
// (https://www.haproxy.org/download/2.6/doc/proxy-protocol.txt).
const (
	v1Prefix = "PROXY "
	v2Sig    = "\r\n\r\n\x00\r\nQUIT\n"
	v1Max    = 107 // the longest version-1 line, CRLF included
)

// MaxProxyHeader is the longest header ParseProxy accepts: version 2
// allows 65,535 bytes of addresses and extensions, and load balancers
// send a few dozen.
const MaxProxyHeader = 4096

// ParseProxy reads a PROXY protocol header (version 1 or 2) at the
// start of b. With Proxy it returns the header's length n and the
// client's address src, which is not valid when the header carries no
// address (v1 UNKNOWN, v2 LOCAL, or an address family other than IPv4
// and IPv6): the connection is then the proxy's own and its peer
// address stands.
func ParseProxy(b []byte) (src netip.AddrPort, n int, st ProxyStatus) {
	if len(b) == 0 {
		return src, 0, NeedMore
	}
	switch {
	case bytes.HasPrefix(b, []byte(v1Prefix)):
		return parseV1(b)
	case bytes.HasPrefix(b, []byte(v2Sig)):
		return parseV2(b)
	case len(b) < len(v1Prefix) && strings.HasPrefix(v1Prefix, string(b)),
		len(b) < len(v2Sig) && strings.HasPrefix(v2Sig, string(b)):
		return src, 0, NeedMore
	}
	return src, 0, NotProxy
}

// parseV1 reads "PROXY TCP4 192.0.2.1 198.51.100.1 56324 443\r\n".
func parseV1(b []byte) (netip.AddrPort, int, ProxyStatus) {
	var none netip.AddrPort
	end := bytes.IndexByte(b[:min(len(b), v1Max)], '\n')
	if end < 0 {
		if len(b) >= v1Max {
			return none, 0, BadProxy
		}
		return none, 0, NeedMore
	}
	if end == 0 || b[end-1] != '\r' {
		return none, 0, BadProxy
	}
	f := strings.Split(string(b[len(v1Prefix):end-1]), " ")
	if f[0] == "UNKNOWN" {
		return none, end + 1, Proxy
	}
	if len(f) != 5 || f[0] != "TCP4" && f[0] != "TCP6" {
		return none, 0, BadProxy
	}
	src, err1 := netip.ParseAddr(f[1])
	dst, err2 := netip.ParseAddr(f[2])
	sport, err3 := strconv.ParseUint(f[3], 10, 16)
	_, err4 := strconv.ParseUint(f[4], 10, 16)
	if err1 != nil || err2 != nil || err3 != nil || err4 != nil || src.Zone() != "" ||
		src.Is4() != (f[0] == "TCP4") || dst.Is4() != (f[0] == "TCP4") {
		return none, 0, BadProxy
	}
	return netip.AddrPortFrom(src.Unmap(), uint16(sport)), end + 1, Proxy
}

// parseV2 reads the binary header: signature, version and command,
// family and transport, length, addresses, extensions (ignored).
func parseV2(b []byte) (netip.AddrPort, int, ProxyStatus) {
	var none netip.AddrPort
	if len(b) < 16 {
		return none, 0, NeedMore
	}
	if b[12]>>4 != 2 {
		return none, 0, BadProxy
	}
	n := 16 + int(binary.BigEndian.Uint16(b[14:16]))
	if n > MaxProxyHeader {
		return none, 0, BadProxy
	}
	if len(b) < n {
		return none, 0, NeedMore
	}
	body := b[16:n]
	switch b[12] & 0xf {
	case 0: // LOCAL: the proxy's own connection (a health check)
		return none, n, Proxy
	case 1: // PROXY
	default:
		return none, 0, BadProxy
	}
	switch b[13] >> 4 {
	case 1: // AF_INET: source, destination, source port, destination port
		if len(body) < 12 {
			return none, 0, BadProxy
		}
		a := netip.AddrFrom4([4]byte(body[0:4]))
		return netip.AddrPortFrom(a, binary.BigEndian.Uint16(body[8:10])), n, Proxy
	case 2: // AF_INET6
		if len(body) < 36 {
			return none, 0, BadProxy
		}
		a := netip.AddrFrom16([16]byte(body[0:16])).Unmap()
		return netip.AddrPortFrom(a, binary.BigEndian.Uint16(body[32:34])), n, Proxy
	case 0, 3: // AF_UNSPEC, AF_UNIX: no address to use
		return none, n, Proxy
	}
	return none, 0, BadProxy
}
