package h1

import (
	"net"

	"appliance/realip"
)

// serveProxied reads a connection's PROXY protocol header, if it starts
// with one (ProxyProtocol), then serves it as Serve would have.
func (c *conn) serveProxied() {
	s := c.s
	c.setDeadline(s.ReadHeaderTimeout) // for the header and the request head after it
	rest, ok := c.readProxy(make([]byte, 0, readBufSize))
	if !ok {
		s.untrack(c)
		c.raw.Close()
		c.release()
		return
	}
	if s.TLSConfig != nil {
		// What followed the header is the start of the TLS handshake.
		if c.proxied == nil && len(rest) > 0 {
			c.proxied = &proxiedConn{Conn: c.raw}
		}
		if c.proxied != nil {
			c.proxied.prefix = rest
		}
		if s.HandOffAll {
			c.handshakeHandOff()
			return
		}
		c.serve()
		return
	}
	c.rbuf = rest
	if s.HandOffAll {
		c.handoff()
		return
	}
	c.serve()
}

// readProxy reads into buf until it holds a whole PROXY header or
// bytes that cannot start one, and returns what follows the header (or
// all that was read, without one) at the start of buf. A header from a
// peer that is not trusted, or a malformed one, refuses the connection
// (false); so does MaxConnsPerIP for the client the header names. Reads
// stop at realip.MaxProxyHeader bytes and end with the connection when
// the reaper enforces ReadHeaderTimeout.
func (c *conn) readProxy(buf []byte) ([]byte, bool) {
	for {
		src, n, st := realip.ParseProxy(buf)
		switch st {
		case realip.NotProxy:
			// A client connected directly (or a trusted proxy's own
			// request): its own address counts.
			if !c.perIP && !c.countIP(c.ip) {
				return nil, false
			}
			return buf, true
		case realip.BadProxy:
			c.refuse("malformed PROXY protocol header")
			return nil, false
		case realip.Proxy:
			if !c.trusted {
				c.refuse("PROXY protocol header from a peer not in trusted_proxies")
				return nil, false
			}
			ip := c.ip
			if src.IsValid() {
				ip = src.Addr()
				c.remote = src.String()
				c.proxied = &proxiedConn{Conn: c.raw, remote: net.TCPAddrFromAddrPort(src)}
			}
			if !c.countIP(ip) {
				return nil, false
			}
			return buf[:copy(buf, buf[n:])], true
		}
		if len(buf) == cap(buf) { // cannot happen: a header longer than MaxProxyHeader is BadProxy
			c.refuse("PROXY protocol header too long")
			return nil, false
		}
		m, err := c.raw.Read(buf[len(buf):cap(buf)])
		if m > 0 {
			c.received.Store(true)
		}
		buf = buf[:len(buf)+m]
		if err != nil && m == 0 {
			return nil, false
		}
	}
}

func (c *conn) refuse(reason string) {
	c.s.Limits.rejected.Add(1)
	if c.s.Refused != nil {
		c.s.Refused(reason, c.ip)
	}
}

// under is what the TLS layer reads from: the socket, or the socket
// behind a PROXY header.
func (c *conn) under() net.Conn {
	if c.proxied != nil {
		return c.proxied
	}
	return c.raw
}

// proxiedConn is a connection that began with a PROXY header: it
// replays the bytes read after the header and names the header's client
// as its RemoteAddr (net/http and crypto/tls read it from there).
type proxiedConn struct {
	net.Conn
	prefix []byte
	remote net.Addr // nil: the peer's own address
}

func (p *proxiedConn) Read(b []byte) (int, error) {
	if len(p.prefix) > 0 {
		n := copy(b, p.prefix)
		p.prefix = p.prefix[n:]
		return n, nil
	}
	return p.Conn.Read(b)
}

func (p *proxiedConn) RemoteAddr() net.Addr {
	if p.remote != nil {
		return p.remote
	}
	return p.Conn.RemoteAddr()
}
