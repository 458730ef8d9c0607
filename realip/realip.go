// Package realip finds the address of the client behind trusted proxies
// and load balancers: from the PROXY protocol header (v1 or v2) that a
// load balancer puts in front of a connection, and from the
// X-Forwarded-For or Forwarded (RFC 7239) header of a request that a
// trusted HTTP proxy passes on. Nothing here is believed unless it comes
// from a peer in a Trusted set.
package realip

import (
	"fmt"
	"net/http"
	"net/netip"
	"strings"
)

// Trusted is the set of proxies whose word about the client is believed.
// The zero value trusts no one.
type Trusted []netip.Prefix

// ParseTrusted reads CIDR prefixes ("10.0.0.0/8", "2001:db8::/32") or
// single addresses ("192.0.2.1").
func ParseTrusted(list []string) (Trusted, error) {
	var t Trusted
	for _, s := range list {
		var p netip.Prefix
		if strings.Contains(s, "/") {
			var err error
			if p, err = netip.ParsePrefix(s); err != nil {
				return nil, fmt.Errorf("%q is not a CIDR prefix (like \"10.0.0.0/8\") or an address", s)
			}
			if p.Addr().Is4In6() {
				p = netip.PrefixFrom(p.Addr().Unmap(), max(p.Bits()-96, 0))
			}
		} else {
			a, err := netip.ParseAddr(s)
			if err != nil || a.Zone() != "" {
				return nil, fmt.Errorf("%q is not a CIDR prefix (like \"10.0.0.0/8\") or an address", s)
			}
			a = a.Unmap()
			p = netip.PrefixFrom(a, a.BitLen())
		}
		t = append(t, p.Masked())
	}
	return t, nil
}

// Contains reports whether a is a trusted proxy's address.
func (t Trusted) Contains(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range t {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// Header is the request header a trusted proxy writes the client into.
type Header int

const (
	XForwardedFor Header = iota // X-Forwarded-For: client, proxy1, proxy2
	Forwarded                   // Forwarded: for=client, for=proxy1 (RFC 7239)
)

// ParseHeader reads "X-Forwarded-For" or "Forwarded" (any letter case).
func ParseHeader(s string) (Header, error) {
	switch strings.ToLower(s) {
	case "", "x-forwarded-for":
		return XForwardedFor, nil
	case "forwarded":
		return Forwarded, nil
	}
	return 0, fmt.Errorf("client_ip_header %q: want \"X-Forwarded-For\" or \"Forwarded\"", s)
}

func (h Header) String() string {
	if h == Forwarded {
		return "Forwarded"
	}
	return "X-Forwarded-For"
}

// Result says what Client found.
type Result int

const (
	Peer    Result = iota // the header does not apply: the peer is the client
	Found                 // the address in the header is the client
	Unknown               // a trusted proxy named a client that is not an address ("unknown", an obfuscated name, garbage)
)

// maxHops is how many entries of a header Client walks at most; when
// every one of them is a trusted proxy, the last one walked is the
// client.
const maxHops = 32

// Client applies the rightmost-untrusted-hop rule to a request that
// arrived from peer: if peer is trusted, the header's entries are read
// from the right (the entry the nearest proxy appended) to the left,
// and the first one that is not a trusted proxy is the client (every
// entry to its left could have been written by the client itself, so
// none is believed). When every entry is trusted, the leftmost is the
// client. Only the header named by which is read: a proxy appends to
// one of them, and the other is then entirely the client's.
func (t Trusted) Client(peer netip.Addr, h http.Header, which Header) (netip.AddrPort, Result) {
	if len(t) == 0 || !t.Contains(peer) {
		return netip.AddrPort{}, Peer
	}
	var lines []string
	if which == Forwarded {
		lines = h["Forwarded"]
	} else {
		lines = h["X-Forwarded-For"]
	}
	var client netip.AddrPort
	res := Peer
	walked := 0
	for i := len(lines) - 1; i >= 0; i-- {
		line := lines[i]
		for line != "" {
			var elem string
			line, elem = lastElement(line)
			if strings.TrimSpace(elem) == "" {
				continue // "a, , b": an empty list element (RFC 9110 5.6.1)
			}
			hop := elem
			if which == Forwarded {
				hop = forParam(elem)
			}
			ap, ok := parseHop(hop)
			if !ok {
				return netip.AddrPort{}, Unknown
			}
			client, res = ap, Found
			walked++
			if !t.Contains(ap.Addr()) || walked == maxHops {
				return client, res
			}
		}
	}
	return client, res
}

// lastElement splits a comma-separated list before its last element,
// honouring quoted strings (a Forwarded value may quote a comma).
func lastElement(s string) (rest, last string) {
	quoted := false
	for i := len(s) - 1; i >= 0; i-- {
		switch s[i] {
		case '"':
			quoted = !quoted
		case ',':
			if !quoted {
				return s[:i], s[i+1:]
			}
		}
	}
	return "", s
}

// forParam returns the value of an RFC 7239 element's for= parameter,
// unquoted; "" when it has none.
func forParam(elem string) string {
	for elem != "" {
		var pair string
		pair, elem, _ = strings.Cut(elem, ";")
		k, v, ok := strings.Cut(strings.TrimSpace(pair), "=")
		if ok && strings.EqualFold(strings.TrimSpace(k), "for") {
			v = strings.TrimSpace(v)
			if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
				v = strings.ReplaceAll(v[1:len(v)-1], `\`, "")
			}
			return v
		}
	}
	return ""
}

// parseHop reads one hop: "192.0.2.1", "192.0.2.1:4711", "2001:db8::1",
// "[2001:db8::1]" or "[2001:db8::1]:4711" (port 0 when none).
func parseHop(s string) (netip.AddrPort, bool) {
	s = strings.TrimSpace(s)
	if a, err := netip.ParseAddr(s); err == nil && a.Zone() == "" {
		return netip.AddrPortFrom(a.Unmap(), 0), true
	}
	if inner, ok := strings.CutPrefix(s, "["); ok {
		if inner, ok := strings.CutSuffix(inner, "]"); ok {
			if a, err := netip.ParseAddr(inner); err == nil && a.Is6() && a.Zone() == "" {
				return netip.AddrPortFrom(a.Unmap(), 0), true
			}
			return netip.AddrPort{}, false
		}
	}
	if ap, err := netip.ParseAddrPort(s); err == nil && ap.Addr().Zone() == "" {
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), true
	}
	return netip.AddrPort{}, false
}
