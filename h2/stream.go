package h2

import (
	"errors"
	"io"
	"net/http"
	"net/textproto"
	"net/url"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/http/httpguts"
	"golang.org/x/net/http2"
)

// stream is one request and its response. Its fields are under the
// connection's mu.
type stream struct {
	id         uint32
	state      streamState
	running    bool  // its handler has not returned
	ended      bool  // END_STREAM was sent
	zombie     bool  // closed by a reset while its handler runs
	deadline   int64 // unix nanoseconds by which the response must be done; 0: none
	sendWindow int64
	recvWindow int64
	declared   int64 // the request's Content-Length; -1: none
	received   int64
	body       *body // nil: the request has no body
}

// connHeaders are the connection-specific fields an HTTP/2 request must
// not carry (RFC 9113 8.2.2).
var connHeaders = []string{"Connection", "Keep-Alive", "Proxy-Connection", "Transfer-Encoding", "Upgrade"}

// processHeaders opens a stream for a request (RFC 9113 8.1), or ends a
// request body with trailers, which are dropped.
func (c *conn) processHeaders(f *http2.MetaHeadersFrame) error {
	id := f.StreamID
	if id%2 == 0 {
		return http2.ConnectionError(http2.ErrCodeProtocol) // RFC 9113 5.1.1
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if st := c.streams[id]; st != nil {
		if st.state != stateOpen {
			return http2.StreamError{StreamID: id, Code: http2.ErrCodeStreamClosed}
		}
		// Trailers: they end the stream and carry no pseudo-fields
		// (RFC 9113 8.1).
		if !f.StreamEnded() || len(f.PseudoFields()) > 0 {
			return http2.StreamError{StreamID: id, Code: http2.ErrCodeProtocol}
		}
		if st.declared >= 0 && st.received != st.declared {
			return http2.StreamError{StreamID: id, Code: http2.ErrCodeProtocol}
		}
		st.body.closeWithError(io.EOF)
		st.state = stateHalfClosedRemote
		if st.ended {
			c.closeStreamLocked(st)
		}
		return nil
	}
	if id <= c.maxClientID {
		return http2.ConnectionError(http2.ErrCodeProtocol) // a closed stream, or going down
	}
	c.maxClientID = id
	if f.HasPriority() && f.Priority.StreamDep == id {
		return http2.StreamError{StreamID: id, Code: http2.ErrCodeProtocol} // RFC 9113 5.3.1
	}
	max := int(c.s.maxStreams())
	if len(c.streams) >= max {
		// RFC 9113 5.1.2: PROTOCOL_ERROR, or REFUSED_STREAM while our
		// SETTINGS may not have arrived.
		code := http2.ErrCodeProtocol
		if c.unackedSets > 0 {
			code = http2.ErrCodeRefusedStream
		}
		return http2.StreamError{StreamID: id, Code: code}
	}
	if len(c.streams)+c.zombies >= max {
		// Streams reset while their handlers still run count until they
		// return: refuse more work until then (CVE-2023-44487).
		if c.resets--; c.resets < 0 {
			return http2.ConnectionError(http2.ErrCodeEnhanceYourCalm)
		}
		return http2.StreamError{StreamID: id, Code: http2.ErrCodeRefusedStream}
	}
	r, err := c.newRequest(f)
	if err != nil {
		return http2.StreamError{StreamID: id, Code: http2.ErrCodeProtocol}
	}
	st := &stream{id: id, sendWindow: c.initialSend, recvWindow: initialWindow, declared: r.ContentLength}
	if f.StreamEnded() {
		st.state = stateHalfClosedRemote
	} else {
		st.body = &body{c: c, st: st}
		r.Body = st.body
	}
	c.streams[id] = st
	c.idleSince = 0
	st.running = true
	c.handlers++
	st.deadline = time.Now().Add(c.s.stallTimeout()).UnixNano()
	var h http.Handler = c.s.Handler
	if f.Truncated {
		h = http.HandlerFunc(headerListTooLong)
	}
	c.s.dispatch(job{c, st, r, h})
	return nil
}

// headerListTooLong answers a request whose header list was over
// MaxHeaderBytes, as net/http's HTTP/2 server does.
func headerListTooLong(w http.ResponseWriter, r *http.Request) {
	http.Error(w, "Request Header Fields Too Large", http.StatusRequestHeaderFieldsTooLarge)
}

// newRequest builds the request of a HEADERS frame (RFC 9113 8.3.1);
// an error: it is malformed.
func (c *conn) newRequest(f *http2.MetaHeadersFrame) (*http.Request, error) {
	errMalformed := errors.New("malformed request")
	method := f.PseudoValue("method")
	scheme := f.PseudoValue("scheme")
	authority := f.PseudoValue("authority")
	path := f.PseudoValue("path")
	if f.PseudoValue("protocol") != "" {
		return nil, errMalformed // no extended CONNECT (RFC 8441) offered
	}
	connect := method == "CONNECT"
	if connect {
		if path != "" || scheme != "" || authority == "" {
			return nil, errMalformed
		}
	} else if method == "" || path == "" || scheme != "https" && scheme != "http" {
		return nil, errMalformed
	}
	if !httpguts.ValidHeaderFieldName(method) {
		return nil, errMalformed
	}
	regular := f.RegularFields()
	h := make(http.Header, len(regular))
	for _, hf := range regular {
		k := canonicalKey(hf.Name)
		h[k] = append(h[k], hf.Value)
	}
	for _, k := range connHeaders {
		if _, ok := h[k]; ok {
			return nil, errMalformed
		}
	}
	if te := h["Te"]; len(te) > 1 || len(te) == 1 && te[0] != "trailers" {
		return nil, errMalformed // RFC 9113 8.2.2
	}
	if cookies := h["Cookie"]; len(cookies) > 1 {
		h["Cookie"] = []string{strings.Join(cookies, "; ")} // RFC 9113 8.2.3
	}
	if host := h["Host"]; len(host) == 1 {
		if authority == "" {
			authority = host[0]
		} else if host[0] != authority {
			return nil, errMalformed
		}
		delete(h, "Host")
	} else if len(host) > 1 {
		return nil, errMalformed
	}
	if strings.IndexByte(authority, '@') >= 0 || authority != "" && !httpguts.ValidHostHeader(authority) {
		return nil, errMalformed // RFC 9113 8.3.1: no userinfo
	}
	delete(h, "Trailer")
	r := &http.Request{
		Method:     method,
		Proto:      "HTTP/2.0",
		ProtoMajor: 2,
		Header:     h,
		Body:       http.NoBody,
		Host:       authority,
		RemoteAddr: c.remote,
	}
	if scheme == "https" {
		r.TLS = c.tls
	}
	if connect {
		r.URL, r.RequestURI = &url.URL{Host: authority}, authority
	} else {
		if path[0] != '/' && path != "*" {
			return nil, errMalformed
		}
		u, err := url.ParseRequestURI(path)
		if err != nil {
			return nil, errMalformed
		}
		r.URL, r.RequestURI = u, path
	}
	r.ContentLength = 0
	if !f.StreamEnded() {
		r.ContentLength = -1
		if cl := h["Content-Length"]; len(cl) > 0 {
			n, err := strconv.ParseUint(cl[0], 10, 63)
			if err != nil || len(cl) > 1 {
				return nil, errMalformed
			}
			r.ContentLength = int64(n)
		}
	} else if cl := h["Content-Length"]; len(cl) > 0 && cl[0] != "0" {
		return nil, errMalformed // RFC 9113 8.1.1: no DATA will follow
	}
	return r.WithContext(c.ctx), nil
}

// canonicalKey is the http.Header key of a field name as HTTP/2 sends
// it, in lower case.
func canonicalKey(name string) string {
	if k, ok := commonKeys[name]; ok {
		return k
	}
	return textproto.CanonicalMIMEHeaderKey(name)
}

var commonKeys = map[string]string{}

func init() {
	for _, k := range []string{"Accept", "Accept-Encoding", "Accept-Language", "Authorization", "Cache-Control",
		"Content-Length", "Content-Type", "Cookie", "Host", "If-Modified-Since", "If-None-Match", "If-Range",
		"Range", "Referer", "Sec-Fetch-Dest", "Sec-Fetch-Mode", "Sec-Fetch-Site", "Te", "Upgrade-Insecure-Requests",
		"User-Agent", "X-Forwarded-For", "Forwarded", "Priority", "Pragma", "Origin", "Dnt"} {
		commonKeys[strings.ToLower(k)] = k
	}
}

// runHandler runs h for st's request on a worker, then completes the
// response.
func (c *conn) runHandler(st *stream, r *http.Request, h http.Handler) {
	w := &responseWriter{c: c, st: st, header: make(http.Header, 8)}
	w.head = r.Method == http.MethodHead
	defer func() {
		if err := recover(); err != nil {
			if err != http.ErrAbortHandler {
				c.s.logf("h2: panic serving %s: %v\n%s", c.remote, err, debug.Stack())
			}
			c.mu.Lock()
			c.resetLocked(st.id, http2.ErrCodeInternal)
			c.mu.Unlock()
		}
		c.handlerDone(st)
	}()
	c.mu.Lock()
	live := st.state != stateClosed
	c.mu.Unlock()
	if !live {
		return // reset before a worker was free
	}
	h.ServeHTTP(w, r)
	w.finish()
}

// handlerDone notes that st's handler returned; a stream whose client
// still sends its body stays half-closed (local) until it ends it or the
// deadline resets it (endResponseLocked).
func (c *conn) handlerDone(st *stream) {
	c.mu.Lock()
	defer c.mu.Unlock()
	st.running = false
	c.handlers--
	if st.zombie {
		c.zombies--
	}
	if st.ended {
		c.resets = min(c.resets+1, resetBudget) // answered in full
	} else if st.state != stateClosed {
		// The response did not end (its writes failed): nothing more
		// will come.
		c.resetLocked(st.id, http2.ErrCodeInternal)
	}
	c.noteIdleLocked()
	c.flushLocked()
}

// body is a request body: what DATA frames brought, up to the stream's
// window, until the handler reads it.
type body struct {
	c   *conn
	st  *stream
	mu  sync.Mutex
	buf []byte
	err error // after buf: io.EOF, or why the stream ended
	rd  sync.Cond
}

// write adds a DATA frame's payload; the connection's mu is held.
func (b *body) write(p []byte) {
	if len(p) == 0 {
		return
	}
	b.mu.Lock()
	if b.err == nil {
		b.buf = append(b.buf, p...)
		b.signal()
	}
	b.mu.Unlock()
}

func (b *body) closeWithError(err error) {
	b.mu.Lock()
	if b.err == nil {
		b.err = err
	}
	b.signal()
	b.mu.Unlock()
}

func (b *body) signal() {
	if b.rd.L != nil {
		b.rd.Broadcast()
	}
}

// Read returns what has arrived and gives the stream's window back.
func (b *body) Read(p []byte) (int, error) {
	b.mu.Lock()
	if b.rd.L == nil {
		b.rd.L = &b.mu
	}
	for len(b.buf) == 0 && b.err == nil {
		b.rd.Wait()
	}
	if len(b.buf) == 0 {
		err := b.err
		b.mu.Unlock()
		return 0, err
	}
	n := copy(p, b.buf)
	b.buf = b.buf[:copy(b.buf, b.buf[n:])]
	b.mu.Unlock()
	c := b.c
	c.mu.Lock()
	if b.st.state == stateOpen {
		b.st.recvWindow += int64(n)
		c.fr.WriteWindowUpdate(b.st.id, uint32(n))
		c.flushLocked()
	}
	c.mu.Unlock()
	return n, nil
}

// Close drops the body; the client's further DATA is refused when the
// handler returns.
func (b *body) Close() error {
	b.closeWithError(errStreamClosed)
	return nil
}
