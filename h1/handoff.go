package h1

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"sync"
)

// chanListener feeds the connections the fast path declines to the
// fallback net/http Server.
type chanListener struct {
	addr   net.Addr
	ch     chan net.Conn
	once   sync.Once
	closed chan struct{}
}

func newChanListener() *chanListener {
	return &chanListener{ch: make(chan net.Conn), closed: make(chan struct{})}
}

func (l *chanListener) give(c net.Conn) bool {
	select {
	case l.ch <- c:
		return true
	case <-l.closed:
		return false
	}
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *chanListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

func (l *chanListener) Addr() net.Addr {
	if l.addr == nil {
		return &net.TCPAddr{}
	}
	return l.addr
}

// prefixConn replays the bytes the fast path had read before handing
// the connection over.
type prefixConn struct {
	net.Conn
	prefix  []byte
	release func() // gives the connection's place back to the limits
	tls     *tls.ConnectionState
	remote  net.Addr // the client a PROXY header named; nil: the peer
}

// RemoteAddr is the client's address: the PROXY header's, or the peer's.
func (c *prefixConn) RemoteAddr() net.Addr {
	if c.remote != nil {
		return c.remote
	}
	return c.Conn.RemoteAddr()
}

type tlsKey struct{}

// chainConnContext keeps a handed-off HTTPS connection's TLS state in its
// context (net/http sets r.TLS only for a bare *tls.Conn).
func chainConnContext(next func(context.Context, net.Conn) context.Context) func(context.Context, net.Conn) context.Context {
	return func(ctx context.Context, c net.Conn) context.Context {
		if pc, ok := c.(*prefixConn); ok && pc.tls != nil {
			ctx = context.WithValue(ctx, tlsKey{}, pc.tls)
		}
		if next != nil {
			ctx = next(ctx, c)
		}
		return ctx
	}
}

// withTLS sets r.TLS on requests of handed-off HTTPS connections, so that
// handlers see it wherever a request was served.
func withTLS(next http.Handler) http.Handler {
	if next == nil {
		next = http.DefaultServeMux
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS == nil { // HTTP/2 requests have it: no context lookup for them
			if st, ok := r.Context().Value(tlsKey{}).(*tls.ConnectionState); ok {
				r = r.WithContext(r.Context()) // a copy: the caller's request stays as it was
				r.TLS = st
			}
		}
		next.ServeHTTP(w, r)
	})
}

// closeAfterChunked closes a connection that net/http serves after a
// request with a chunked body. net/http lets Transfer-Encoding win over a
// Content-Length sent with it and reads on; RFC 9112 6.1 says to close.
// The fast path answers such heads 400, but on a connection it has handed
// off (or with HandOffAll) net/http reads the heads that follow. Chunked
// uploads are not what a static server sees; they only lose keep-alive.
func closeAfterChunked(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// HTTP/1.0: net/http drops a Transfer-Encoding it carries without a
		// trace (golang/go#12785) and reads the chunked body as the next
		// request, which RFC 9112 6.1 says to treat as faulty framing. Not
		// knowing whether it was there, close after every HTTP/1.0
		// request: keep-alive is rare in HTTP/1.0, smuggling is not.
		if len(r.TransferEncoding) > 0 || r.ProtoMajor == 1 && r.ProtoMinor == 0 {
			w.Header().Set("Connection", "close")
		}
		next.ServeHTTP(w, r)
	})
}

func (c *prefixConn) Close() error {
	err := c.Conn.Close()
	if c.release != nil {
		c.release()
	}
	return err
}

// ReadFrom keeps net/http's sendfile path working for handed-off
// connections.
func (c *prefixConn) ReadFrom(r io.Reader) (int64, error) {
	if rf, ok := c.Conn.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(writerOnly{c.Conn}, r)
}

func (c *prefixConn) Read(p []byte) (int, error) {
	if len(c.prefix) > 0 {
		n := copy(p, c.prefix)
		c.prefix = c.prefix[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}
