// Package h1 is a fast HTTP/1.1 transport for the requests a static
// server sees most: GET and HEAD with no body. It runs the same
// http.Handler as net/http, with a lean ResponseWriter (one write system
// call per response, sendfile for files, no per-request timers or header
// copies), and hands every other connection, with the bytes already
// read, to a net/http Server, so that anything unusual or malformed is
// answered by net/http.
package h1

import (
	"context"
	"crypto/tls"
	"errors"
	"log"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"appliance/internal/clock"
)

// Server serves HTTP/1.1 connections.
type Server struct {
	Handler           http.Handler
	ReadHeaderTimeout time.Duration
	IdleTimeout       time.Duration
	WriteTimeout      time.Duration
	MaxHeaderBytes    int
	ErrorLog          *log.Logger
	// TLSConfig, when set, makes this an HTTPS listener: connections that
	// negotiate h2 go to the fallback server (net/http's HTTP/2), HTTP/1.1
	// ones take the fast path with r.TLS set.
	TLSConfig *tls.Config
	// HandOffAll sends every connection to the fallback server unread:
	// the fast path is off, but connection limits and shutdown stay here.
	// With TLSConfig, the TLS handshake is still done here (under the
	// read-header deadline) and the fallback server gets the *tls.Conn.
	HandOffAll bool
	// Reject, when set, answers the requests the transport refuses
	// itself (a head with ambiguous body framing), so that they are logged
	// and counted like any other; it sees the method, target, Host and
	// address of the head, and the connection closes after its answer.
	// nil: a bare 400.
	Reject http.Handler
	// Limits close excess connections as soon as they are accepted, so
	// that a flood cannot exhaust memory; servers that share one (the
	// plain and the HTTPS listener) count their connections together.
	// nil: no limit.
	Limits *Limits
	// Trusted reports whether a peer is a trusted proxy or load balancer:
	// its connections carry many clients, so Limits.MaxConnsPerIP does not
	// count them under its own address. nil: nobody is.
	Trusted func(netip.Addr) bool
	// ProxyProtocol makes a connection from a Trusted peer that starts
	// with a PROXY protocol header (v1 or v2) the connection of the
	// client the header names: its requests carry that RemoteAddr and it
	// counts against Limits.MaxConnsPerIP under that address. The header is read
	// under ReadHeaderTimeout, which the request head that follows shares.
	// A connection from any other peer that starts with a PROXY header,
	// and a malformed header, are refused (closed unanswered).
	ProxyProtocol bool
	// Refused, if set, is told of each connection refused for its PROXY
	// header, with why and the peer.
	Refused func(reason string, peer netip.Addr)

	// HTTP2, when set, serves the TLS connections that negotiate h2
	// instead of the fallback server (net/http's HTTP/2); they stay
	// tracked and counted here until it returns, and Shutdown and Close
	// stop it with this server.
	HTTP2 HTTP2Server

	// fallbackServer takes the connections the fast path declines (nil:
	// none, and they are closed); set by ConfigureFallback.
	fallbackServer *http.Server

	mu        sync.Mutex
	conns     map[*conn]struct{}
	handedTLS map[*tls.Conn]*conn // HTTP/2 connections net/http serves
	listeners map[net.Listener]struct{}
	fallback  *chanListener
	start     sync.Once
	accepting sync.WaitGroup // Serve loops still running
	closing   atomic.Bool
	done      chan struct{}

	date atomic.Pointer[[]byte] // "Date: ...\r\n", renewed every second
}

const tick = 250 * time.Millisecond

// HTTP2Server serves HTTP/2 connections (package h2's Server).
type HTTP2Server interface {
	// ServeConn serves nc, whose handshake negotiated h2, until it ends,
	// and closes it; requests carry ctx's values and remote.
	ServeConn(ctx context.Context, nc net.Conn, st *tls.ConnectionState, remote string)
	Shutdown(ctx context.Context) error
	Close() error
}

// newConnGrace is how long Shutdown waits for the first byte of a
// connection that has just been accepted (net/http waits 5 s).
const newConnGrace = time.Second

func (s *Server) init() {
	s.start.Do(func() {
		s.conns = map[*conn]struct{}{}
		if s.Limits == nil {
			s.Limits = &Limits{}
		}
		s.handedTLS = map[*tls.Conn]*conn{}
		s.listeners = map[net.Listener]struct{}{}
		s.done = make(chan struct{})
		s.fallback = newChanListener()
		s.updateDate(time.Now())
		if s.fallbackServer != nil {
			go s.fallbackServer.Serve(s.fallback)
		}
		go s.reaper()
	})
}

// ConfigureFallback makes fallback the net/http server that takes the
// connections the fast path declines (and, with TLSConfig, those that
// negotiate h2), as http2.ConfigureServer prepares a server for HTTP/2.
// It wraps three of fallback's fields, so call it once, after setting
// them and before Serve:
//   - Handler: requests of handed-off HTTPS connections get r.TLS, and a
//     request with a chunked body or of HTTP/1.0 closes its connection
//     after the answer (RFC 9112 6.1);
//   - ConnContext: carries the TLS state of handed-off connections to
//     the handler;
//   - ConnState: a handed-off HTTPS connection leaves this server's
//     count when net/http closes it.
//
// Serve then serves fallback on the handed-off connections, and Shutdown
// and Close stop it with this server: the caller does neither itself.
// Without a fallback server, the connections the fast path declines are
// closed.
func (s *Server) ConfigureFallback(fallback *http.Server) {
	if s.fallbackServer != nil {
		panic("h1: ConfigureFallback called twice")
	}
	fallback.ConnContext = chainConnContext(fallback.ConnContext)
	fallback.Handler = closeAfterChunked(withTLS(fallback.Handler))
	fallback.ConnState = s.chainConnState(fallback.ConnState)
	s.fallbackServer = fallback
}

// Serve accepts connections on ln until Shutdown or Close.
func (s *Server) Serve(ln net.Listener) error {
	s.init()
	s.mu.Lock()
	if s.closing.Load() {
		s.mu.Unlock()
		return http.ErrServerClosed
	}
	s.listeners[ln] = struct{}{}
	s.fallback.addr = ln.Addr()
	s.accepting.Add(1)
	s.mu.Unlock()
	defer s.accepting.Done()
	var delay time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.closing.Load() || !s.serving(ln) {
				return http.ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || temporary(err) {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				time.Sleep(delay) // back off on EMFILE and friends, like net/http
				continue
			}
			return err
		}
		delay = 0
		ip, trusted, ok := s.admit(nc)
		if !ok {
			nc.Close()
			continue
		}
		c := &conn{s: s, nc: nc, raw: nc, ip: ip, perIP: !trusted, trusted: trusted, accepted: clock.Mono()}
		if s.ProxyProtocol {
			s.track(c)
			go c.serveProxied()
			continue
		}
		if s.HandOffAll {
			if s.TLSConfig != nil {
				s.track(c)
				go c.handshakeHandOff()
			} else {
				c.handoff()
			}
			continue
		}
		s.track(c) // even while shutting down: the client is waiting for it
		go c.serve()
	}
}

// temporary reports an accept error worth retrying (EMFILE, ENFILE...).
func temporary(err error) bool {
	var te interface{ Temporary() bool }
	return errors.As(err, &te) && te.Temporary()
}

func (s *Server) serving(ln net.Listener) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.listeners[ln]
	return ok
}

// Retire stops accepting on ln and closes it; its Serve returns
// ErrServerClosed while the connections it accepted go on.
func (s *Server) Retire(ln net.Listener) error {
	s.mu.Lock()
	delete(s.listeners, ln)
	s.mu.Unlock()
	return ln.Close()
}

// Limits are connection limits that several servers may share: one
// max_connections for every listener of the process.
type Limits struct {
	MaxConns      int // 0: no limit
	MaxConnsPerIP int // 0: no limit

	mu       sync.Mutex
	open     int                // connections open, handed-off ones included
	perIP    map[netip.Addr]int // open connections by client address
	rejected atomic.Int64
}

// admit counts a new connection from ip against the limits; a trusted
// proxy's (trusted) is not counted under its own address.
func (l *Limits) admit(ip netip.Addr, trusted bool) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.MaxConns > 0 && l.open >= l.MaxConns || !trusted && l.MaxConnsPerIP > 0 && l.perIP[ip] >= l.MaxConnsPerIP {
		l.rejected.Add(1)
		return false
	}
	l.open++
	if !trusted {
		l.countLocked(ip)
	}
	return true
}

func (l *Limits) countLocked(ip netip.Addr) {
	if l.perIP == nil {
		l.perIP = map[netip.Addr]int{}
	}
	l.perIP[ip]++
}

// countIP counts an admitted connection under ip against MaxConnsPerIP,
// once a PROXY header named its client; false (and counted as rejected)
// over the limit.
func (l *Limits) countIP(ip netip.Addr) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.MaxConnsPerIP > 0 && l.perIP[ip] >= l.MaxConnsPerIP {
		l.rejected.Add(1)
		return false
	}
	l.countLocked(ip)
	return true
}

// release gives a connection's place back; perIP: it was counted under ip.
func (l *Limits) release(ip netip.Addr, perIP bool) {
	l.mu.Lock()
	l.open--
	if perIP {
		if l.perIP[ip]--; l.perIP[ip] <= 0 {
			delete(l.perIP, ip)
		}
	}
	l.mu.Unlock()
}

// openConns reports how many connections are open, handed-off ones
// included.
func (l *Limits) openConns() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.open
}

// admit counts a new connection against the limits. A trusted proxy's
// connection is not counted under its address (trusted): on a PROXY
// protocol listener, serveProxied counts it under the client's.
func (s *Server) admit(nc net.Conn) (ip netip.Addr, trusted, ok bool) {
	if ap, err := netip.ParseAddrPort(nc.RemoteAddr().String()); err == nil {
		ip = ap.Addr().Unmap()
	}
	trusted = s.Trusted != nil && s.Trusted(ip)
	return ip, trusted, s.Limits.admit(ip, trusted)
}

// countIP counts c under ip against MaxConnsPerIP, once the PROXY
// header named its client; false (and counted as rejected) over it.
func (c *conn) countIP(ip netip.Addr) bool {
	if !c.s.Limits.countIP(ip) {
		return false
	}
	c.ip, c.perIP = ip, true
	return true
}

// Open reports how many connections are open under the server's limits,
// handed-off ones included (with shared Limits, every sharer's).
func (s *Server) Open() int {
	s.init()
	return s.Limits.openConns()
}

// Rejected reports how many connections the limits have closed.
func (s *Server) Rejected() int64 {
	s.init()
	return s.Limits.rejected.Load()
}

func (s *Server) track(c *conn) {
	s.mu.Lock()
	s.conns[c] = struct{}{}
	s.mu.Unlock()
}

func (s *Server) untrack(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// reaper closes connections past their deadline and renews the Date
// header: coarse timers for every connection instead of runtime timers
// reset on every request.
func (s *Server) reaper() {
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-s.done:
			return
		case now := <-t.C:
			s.updateDate(now)
			n := clock.MonoAt(now)
			s.mu.Lock()
			for c := range s.conns {
				if d := c.deadline.Load(); d != 0 && n > d {
					c.raw.Close()
				}
			}
			s.mu.Unlock()
		}
	}
}

func (s *Server) updateDate(now time.Time) {
	b := now.UTC().AppendFormat([]byte("Date: "), http.TimeFormat)
	b = append(b, "\r\n"...)
	s.date.Store(&b)
}

// Shutdown stops accepting, closes idle connections, waits for active
// ones to finish or ctx to end, and shuts the fallback server down.
func (s *Server) Shutdown(ctx context.Context) error {
	s.init()
	s.closeListeners()
	s.accepting.Wait() // every accepted connection is tracked from here on
	var fbErr error
	fbDone := make(chan struct{})
	go func() {
		var h2Err error
		h2Done := make(chan struct{})
		go func() {
			if s.HTTP2 != nil {
				h2Err = s.HTTP2.Shutdown(ctx)
			}
			close(h2Done)
		}()
		if s.fallbackServer != nil {
			fbErr = s.fallbackServer.Shutdown(ctx)
		}
		<-h2Done
		fbErr = errors.Join(fbErr, h2Err)
		close(fbDone)
	}()
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		s.mu.Lock()
		now := clock.Mono()
		for c := range s.conns {
			// Idle keep-alive connections go at once; new ones that have
			// sent nothing get newConnGrace for their first request.
			if c.idle.Load() || !c.received.Load() && now-c.accepted > int64(newConnGrace) {
				c.raw.Close()
			}
		}
		n := len(s.conns)
		s.mu.Unlock()
		if n == 0 {
			break
		}
		select {
		case <-ctx.Done():
			s.Close()
			<-fbDone
			return ctx.Err()
		case <-t.C:
		}
	}
	<-fbDone
	s.stop()
	return fbErr
}

// Close closes every listener and connection at once.
func (s *Server) Close() error {
	s.init()
	s.closeListeners()
	s.mu.Lock()
	for c := range s.conns {
		c.raw.Close()
	}
	s.mu.Unlock()
	if s.fallbackServer != nil {
		s.fallbackServer.Close()
	}
	if s.HTTP2 != nil {
		s.HTTP2.Close()
	}
	s.stop()
	return nil
}

func (s *Server) closeListeners() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closing.Store(true)
	for ln := range s.listeners {
		ln.Close()
	}
	clear(s.listeners)
}

func (s *Server) stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-s.done:
	default:
		close(s.done)
		s.fallback.Close()
	}
}

func (s *Server) logf(format string, args ...any) {
	if s.ErrorLog != nil {
		s.ErrorLog.Printf(format, args...)
	} else {
		log.Printf(format, args...)
	}
}

// conn is one client connection on the fast path.
type conn struct {
	s       *Server
	nc      net.Conn // what requests are read from: raw, or TLS over it
	raw     net.Conn // the socket, which the reaper and Shutdown close
	tls     *tls.ConnectionState
	ctx     context.Context // TLS without SNI only: holds the local address the handshake chose its site by
	ip      netip.Addr      // the address counted in perIP: the peer's, or the PROXY header's client
	perIP   bool            // counted in perIP under ip
	trusted bool            // the peer is a trusted proxy
	// With a PROXY header: the client's address, which requests carry
	// (remote), and the connection TLS reads from, which replays what
	// was read after the header and names the client as its RemoteAddr.
	remote   string
	proxied  *proxiedConn
	accepted int64       // unix nanoseconds
	received atomic.Bool // a byte has arrived
	released atomic.Bool
	deadline atomic.Int64 // unix nanoseconds; 0: none
	idle     atomic.Bool  // waiting for a request with nothing buffered

	rbuf []byte
	w    response
	// One request's state, reused by the next on the connection: nothing
	// on the fast path keeps the request past ServeHTTP.
	req  request
	hreq http.Request
	url  url.URL
}

const readBufSize = 4096

// serve serves the connection's requests on the fast path until it ends
// or is handed off: a TLS handshake for HTTPS, then, per request, read
// and parse the head (readHead) and run the handler (serveRequest).
func (c *conn) serve() {
	defer c.serveDone()
	s := c.s
	maxHead := s.MaxHeaderBytes
	if maxHead <= 0 {
		maxHead = http.DefaultMaxHeaderBytes
	}
	if c.deadline.Load() == 0 { // set already when a PROXY header was read: the head shares it
		c.setDeadline(s.ReadHeaderTimeout) // a new connection owes its first request
	}
	if s.TLSConfig != nil && !c.handshake() {
		return
	}
	// Not for HTTP/2: its frames of many streams share one socket, and
	// 100 KB responses over h2load lost up to 15% with the limit.
	limitUnsent(c.raw)
	if c.rbuf == nil { // a PROXY header's listener may have read the head's first bytes
		c.rbuf = make([]byte, 0, readBufSize)
	}
	c.w = response{c: c, header: make(http.Header, 12), buf: make([]byte, 0, writeBufSize)}
	remote := c.remoteAddr()
	for served := 0; ; served++ {
		st, ok := c.readHead(served, maxHead)
		if !ok {
			return
		}
		if st == fallback {
			c.handoff()
			return
		}
		if st == reject {
			c.reject()
			return
		}
		if !c.req.parseURL(&c.url) {
			c.handoff()
			return
		}
		if !c.serveRequest(remote) {
			return
		}
	}
}

// serveDone ends serve: it logs a handler's panic and, unless the
// connection was handed off, closes it and lets go of its count.
func (c *conn) serveDone() {
	if err := recover(); err != nil {
		c.s.logf("h1: panic serving %v: %v\n%s", c.nc.RemoteAddr(), err, debug.Stack())
	}
	if c.nc != nil { // nil after a hand-off
		c.nc.Close()
		c.s.untrack(c)
		c.release()
	}
}

// handshake does the TLS handshake of an HTTPS connection and reports
// whether its HTTP/1.1 requests follow, for the fast path: an h2
// connection is handed off to the fallback server, and one that fails
// its handshake or answered a TLS-ALPN-01 challenge is done.
func (c *conn) handshake() bool {
	bc := newBatchConn(c.under())
	tc := tls.Server(bc, c.s.TLSConfig)
	if err := tc.Handshake(); err != nil {
		return false
	}
	quickAck(c.raw) // no 40 ms wait for clients that leave Nagle on
	c.received.Store(true)
	st := tc.ConnectionState()
	c.nc, c.tls = tc, &st
	if st.ServerName == "" {
		c.ctx = context.WithValue(context.Background(), http.LocalAddrContextKey, c.raw.LocalAddr())
	}
	switch st.NegotiatedProtocol {
	case "h2":
		bc.batch()
		if c.s.HTTP2 != nil {
			c.serveHTTP2(tc)
		} else {
			c.handoffTLS(tc)
		}
		return false
	case "acme-tls/1":
		return false // a CA checked a TLS-ALPN-01 challenge; nothing follows
	}
	return true
}

// readHead parses the next request head in c.rbuf, reading more only
// when needed, and returns what parse said of it; at maxHead bytes
// without a complete head, fallback (net/http answers 431). served is
// how many requests the connection has had. It is not ok when the
// connection is done: a read or write failed, or the server is shutting
// down and the connection is idle.
func (c *conn) readHead(served, maxHead int) (st int, ok bool) {
	s := c.s
	req := &c.req
	st = req.parse(c.rbuf)
	for st == needMore {
		// Never block on the client with responses held back: a
		// complete request followed by part of the next is answered
		// now, and a client that pipelines small requests split
		// mid-head cannot pile up their responses here.
		if err := c.w.flush(); err != nil {
			return 0, false
		}
		if len(c.rbuf) == 0 && served > 0 {
			// Between requests of a keep-alive connection: idle, which
			// Shutdown may close. A new connection is not: its first
			// request is on its way, and it is served.
			c.idle.Store(true)
			if s.closing.Load() {
				return 0, false
			}
			c.setDeadline(s.IdleTimeout)
		}
		if len(c.rbuf) >= maxHead {
			return fallback, true // net/http answers 431
		}
		if len(c.rbuf) == cap(c.rbuf) {
			c.rbuf = append(c.rbuf[:cap(c.rbuf)], make([]byte, cap(c.rbuf))...)[:len(c.rbuf)]
		}
		// Never read past the limit: append may have grown the buffer
		// beyond it, and a head that fits would then be accepted.
		n, err := c.nc.Read(c.rbuf[len(c.rbuf):min(cap(c.rbuf), maxHead)])
		if n > 0 && !c.received.Load() {
			c.received.Store(true)
		}
		if n > 0 && c.idle.Load() {
			c.idle.Store(false)
			c.setDeadline(s.ReadHeaderTimeout)
		}
		c.rbuf = c.rbuf[:len(c.rbuf)+n]
		if err != nil {
			return 0, false
		}
		st = req.parse(c.rbuf)
	}
	return st, true
}

// serveRequest runs the handler on the request parsed into c.req and
// c.url, with remote as its RemoteAddr, and reports whether the
// connection goes on to the next request.
func (c *conn) serveRequest(remote string) bool {
	s := c.s
	req := &c.req
	c.setDeadline(s.WriteTimeout)
	hr := &c.hreq
	*hr = http.Request{
		Method:     req.method,
		URL:        &c.url,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     req.header,
		Body:       http.NoBody,
		Host:       req.host,
		RemoteAddr: remote,
		RequestURI: req.target,
		Close:      req.close,
		TLS:        c.tls,
	}
	if c.ctx != nil {
		*hr = *hr.WithContext(c.ctx) // the copy stays on the stack
	}
	c.w.reset(hr)
	if s.closing.Load() {
		c.w.closeAfter = true // shutting down: say so, then close
	}
	s.Handler.ServeHTTP(&c.w, hr)
	if err := c.w.finish(); err != nil || c.w.closeAfter {
		c.w.flush()
		return false
	}
	// Pipelined responses share writes, up to writeBufSize: beyond
	// that the connection reads no more requests until the client
	// has taken these (the write blocks), so what one connection
	// holds stays under writeBufSize plus one response.
	if len(c.w.buf) >= writeBufSize {
		if err := c.w.flush(); err != nil {
			return false
		}
	}
	c.rbuf = c.rbuf[:copy(c.rbuf, c.rbuf[req.headBytes:])]
	return true
}

// lingerTime is how long a connection closed on an error goes on
// reading what the client still sends (nginx: lingering_close).
const lingerTime = time.Second

// reject answers a head with untrustworthy framing with 400 and closes
// the connection, as nginx does; net/http would serve it and read on.
func (c *conn) reject() {
	c.setDeadline(c.s.WriteTimeout)
	w := &c.w
	if h := c.s.Reject; h != nil {
		hr := refusedRequest(c.rbuf[:c.req.headBytes], c.nc.RemoteAddr().String(), c.tls)
		w.reset(hr)
		w.closeAfter = true
		h.ServeHTTP(w, hr)
		if w.finish() == nil && w.flush() == nil {
			c.lingerClose()
		}
		return
	}
	w.buf = append(w.buf, "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n"+
		"Content-Length: 15\r\nConnection: close\r\n"...)
	w.buf = append(w.buf, *c.s.date.Load()...)
	w.buf = append(w.buf, "\r\n400 Bad Request"...)
	if w.flush() != nil {
		return
	}
	c.lingerClose()
}

// refusedRequest is what can be read of a refused head for the log: its
// request line and Host, nothing else.
func refusedRequest(head []byte, remote string, st *tls.ConnectionState) *http.Request {
	line, fields, _ := strings.Cut(string(head), "\n")
	line = strings.TrimSuffix(line, "\r")
	method, rest, _ := strings.Cut(line, " ")
	target, proto, _ := strings.Cut(rest, " ")
	r := &http.Request{Method: method, RequestURI: target, Proto: proto, Header: http.Header{},
		Body: http.NoBody, RemoteAddr: remote, TLS: st, URL: &url.URL{Path: "/"}}
	r.ProtoMajor, r.ProtoMinor, _ = http.ParseHTTPVersion(proto)
	for _, f := range strings.Split(fields, "\n") {
		if k, v, ok := strings.Cut(f, ":"); ok && strings.EqualFold(strings.TrimSpace(k), "Host") {
			r.Host = strings.TrimSpace(v)
			break
		}
	}
	return r
}

// lingerClose half-closes the connection and reads and drops what the
// client still sends until it closes too, for at most lingerTime. Closed
// with unread bytes, a socket answers with a reset, and the client may
// lose the response still on its way.
func (c *conn) lingerClose() {
	tcp, ok := c.raw.(*net.TCPConn)
	if !ok {
		return
	}
	if tc, ok := c.nc.(*tls.Conn); ok {
		tc.CloseWrite() // close_notify
	}
	if tcp.CloseWrite() != nil {
		return
	}
	c.idle.Store(true) // nothing more for the client: Shutdown closes it at once
	c.setDeadline(lingerTime)
	buf := c.rbuf[:cap(c.rbuf)]
	for {
		if _, err := tcp.Read(buf); err != nil {
			return
		}
	}
}

// release gives the connection's place back to the limits, once.
func (c *conn) release() {
	if c.released.Swap(true) {
		return
	}
	c.s.Limits.release(c.ip, c.perIP)
}

// setDeadline arms the reaper for d from now (0: no limit).
func (c *conn) setDeadline(d time.Duration) {
	if d <= 0 {
		c.deadline.Store(0)
		return
	}
	c.deadline.Store(clock.Mono() + int64(d))
}

// handoff passes the connection, with what was read from it, to net/http.
func (c *conn) handoff() {
	if c.w.c != nil {
		c.w.flush()
	}
	c.s.untrack(c)
	pc := &prefixConn{Conn: c.nc, prefix: append([]byte(nil), c.rbuf...), release: c.release, tls: c.tls}
	if c.proxied != nil && c.tls == nil {
		pc.remote = c.proxied.remote
	}
	if c.s.fallbackServer == nil || !c.s.fallback.give(pc) {
		pc.Close()
	}
	c.nc = nil
}

// handshakeHandOff does the TLS handshake of a connection that the fast
// path does not serve (HandOffAll) and gives the *tls.Conn to net/http,
// which serves HTTP/1.1 or HTTP/2 on it. The handshake runs as on the
// fast path: tracked, under the read-header deadline that the reaper
// enforces and Shutdown's grace for new connections, inside the limits.
func (c *conn) handshakeHandOff() {
	s := c.s
	if c.deadline.Load() == 0 {
		c.setDeadline(s.ReadHeaderTimeout)
	}
	tc := tls.Server(c.under(), s.TLSConfig)
	if err := tc.Handshake(); err != nil || tc.ConnectionState().NegotiatedProtocol == "acme-tls/1" {
		// A failed handshake, or a CA that checked a TLS-ALPN-01
		// challenge: nothing follows.
		s.untrack(c)
		c.release()
		tc.Close()
		return
	}
	c.received.Store(true)
	if s.HTTP2 != nil && tc.ConnectionState().NegotiatedProtocol == "h2" {
		c.serveHTTP2(tc)
		s.untrack(c)
		c.release()
		return
	}
	c.handoffTLS(tc)
}

// serveHTTP2 serves an h2 connection on the HTTP2 server, which keeps
// its own deadlines (the reaper's is off) and closes it; the connection
// stays tracked, so that Shutdown waits for it.
func (c *conn) serveHTTP2(tc *tls.Conn) {
	c.deadline.Store(0)
	st := tc.ConnectionState()
	ctx := c.ctx
	if ctx == nil {
		ctx = context.Background()
	}
	c.s.HTTP2.ServeConn(ctx, tc, &st, c.remoteAddr())
}

// remoteAddr is the client address requests carry: a PROXY header's, or
// the peer's.
func (c *conn) remoteAddr() string {
	if c.remote != "" {
		return c.remote
	}
	return c.under().RemoteAddr().String()
}

// handoffTLS gives a TLS connection (HTTP/2, or any with HandOffAll) to
// net/http as the *tls.Conn it must see; its place in the limits comes
// back through ConnState.
func (c *conn) handoffTLS(tc *tls.Conn) {
	c.s.untrack(c)
	c.s.mu.Lock()
	c.s.handedTLS[tc] = c
	c.s.mu.Unlock()
	if c.s.fallbackServer == nil || !c.s.fallback.give(tc) {
		tc.Close()
		c.s.mu.Lock()
		delete(c.s.handedTLS, tc)
		c.s.mu.Unlock()
		c.release()
	}
	c.nc = nil
}

// chainConnState releases an HTTP/2 connection's place when net/http
// closes it, then calls next.
func (s *Server) chainConnState(next func(net.Conn, http.ConnState)) func(net.Conn, http.ConnState) {
	return func(nc net.Conn, st http.ConnState) {
		if st == http.StateClosed || st == http.StateHijacked {
			if tc, ok := nc.(*tls.Conn); ok {
				s.mu.Lock()
				c := s.handedTLS[tc]
				delete(s.handedTLS, tc)
				s.mu.Unlock()
				if c != nil {
					c.release()
				}
			}
		}
		if next != nil {
			next(nc, st)
		}
	}
}
