package h2

import (
	"errors"
	"net/http"
	"net/textproto"
	"net/url"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/net/http/httpguts"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// stream is one request and its response. Its fields are under the
// connection's mu.
type stream struct {
	id       uint32
	state    streamState
	running  bool  // its handler has not returned
	ended    bool  // END_STREAM was sent
	zombie   bool  // closed by a reset while its handler runs
	deadline int64 // unix nanoseconds by which the response must be done; 0: none
	// stalledAt is when its response began to wait for the client's
	// flow-control window (unix nanoseconds; 0: not waiting).
	stalledAt  int64
	sendWindow int64
	recvWindow int64
	declared   int64 // the request's Content-Length; -1: none
	received   int64
	body       *body // nil: the request has no body
}

// processHeaders opens a stream for a request (RFC 9113 8.1), or ends a
// request body with trailers, which are dropped.
func (c *conn) processHeaders(b *headerBlock) error {
	id := b.streamID
	if id%2 == 0 {
		return http2.ConnectionError(http2.ErrCodeProtocol) // RFC 9113 5.1.1
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.streams.get(id)
	if b.invalid {
		// Malformed (RFC 9113 8.1.1): the stream it opened, if any, is
		// closed by the reset.
		if st == nil && id > c.maxClientID && !c.goAwaySent {
			c.maxClientID = id
		}
		return http2.StreamError{StreamID: id, Code: http2.ErrCodeProtocol}
	}
	if st != nil {
		if st.state != stateOpen {
			return http2.StreamError{StreamID: id, Code: http2.ErrCodeStreamClosed}
		}
		// Trailers: they end the stream and carry no pseudo-fields
		// (RFC 9113 8.1).
		if !b.endStream || len(b.fields) > 0 && b.fields[0].IsPseudo() {
			return http2.StreamError{StreamID: id, Code: http2.ErrCodeProtocol}
		}
		return c.endRequestLocked(st)
	}
	if err := c.admitLocked(b); err != nil {
		return err
	}
	r, err := c.newRequest(b)
	if err != nil {
		return http2.StreamError{StreamID: id, Code: http2.ErrCodeProtocol}
	}
	c.startLocked(b, r)
	return nil
}

// admitLocked checks that the new stream of b may open: its ID after
// every earlier one, and room among the streams open and those reset
// whose handlers still run.
func (c *conn) admitLocked(b *headerBlock) error {
	id := b.streamID
	if id <= c.maxClientID {
		return http2.ConnectionError(http2.ErrCodeProtocol) // a closed stream, or going down
	}
	c.maxClientID = id
	if b.priority.StreamDep == id {
		return http2.StreamError{StreamID: id, Code: http2.ErrCodeProtocol} // RFC 9113 5.3.1
	}
	max := int(c.s.maxStreams())
	if c.streams.len() >= max {
		// RFC 9113 5.1.2: PROTOCOL_ERROR, or REFUSED_STREAM while our
		// SETTINGS may not have arrived.
		code := http2.ErrCodeProtocol
		if c.unackedSets > 0 {
			code = http2.ErrCodeRefusedStream
		}
		return http2.StreamError{StreamID: id, Code: code}
	}
	if c.streams.len()+c.zombies >= max {
		// Streams reset while their handlers still run count until they
		// return: refuse more work until then (CVE-2023-44487).
		if c.resets--; c.resets < 0 {
			return http2.ConnectionError(http2.ErrCodeEnhanceYourCalm)
		}
		return http2.StreamError{StreamID: id, Code: http2.ErrCodeRefusedStream}
	}
	return nil
}

// startLocked opens the stream of b for the request r and runs its
// handler: on the reader (runInline) when it has no body, else on a
// worker.
func (c *conn) startLocked(b *headerBlock, r *http.Request) {
	st := c.spareSt
	if st != nil {
		c.spareSt = nil
	} else {
		st = new(stream)
	}
	*st = stream{id: b.streamID, sendWindow: c.initialSend, recvWindow: initialWindow, declared: r.ContentLength}
	if b.endStream {
		st.state = stateHalfClosedRemote
	} else {
		st.body = &body{c: c, st: st}
		r.Body = st.body
	}
	c.streams.add(st)
	c.idleSince = 0
	st.running = true
	c.handlers++
	st.deadline = c.s.clock() + int64(c.s.stallTimeout())
	var h http.Handler = c.s.Handler
	if b.truncated {
		h = http.HandlerFunc(headerListTooLong)
	}
	if st.body == nil {
		// No body to wait for: the reader runs it once the frame is
		// processed (runInline), a worker only if it must wait.
		c.inline = job{c, st, r, h}
		return
	}
	c.s.dispatch(job{c, st, r, h})
}

// headerListTooLong answers a request whose header list was over
// MaxHeaderBytes, as net/http's HTTP/2 server does.
func headerListTooLong(w http.ResponseWriter, r *http.Request) {
	http.Error(w, "Request Header Fields Too Large", http.StatusRequestHeaderFieldsTooLarge)
}

// errMalformed: the HEADERS frame is not a well-formed request (RFC 9113
// section 8.1.1); the stream is reset with PROTOCOL_ERROR.
var errMalformed = errors.New("malformed request")

// newRequest builds the request of a header block (RFC 9113 8.3.1); an
// error: it is malformed.
func (c *conn) newRequest(b *headerBlock) (*http.Request, error) {
	p, n, ok := pseudoFields(b.fields)
	if !ok || !p.valid() {
		return nil, errMalformed
	}
	a, values := newRequestParts(len(b.fields) - n)
	h, ok := requestHeader(b.fields[n:], values)
	if !ok {
		return nil, errMalformed
	}
	authority, ok := requestHost(h, p.authority)
	if !ok {
		return nil, errMalformed
	}
	r := &a.r
	*r = *c.reqBase // the connection's context, without WithContext's copy
	r.Method, r.Header, r.Host = p.method, h, authority
	if p.scheme == "https" {
		r.TLS = c.tls
	}
	if p.method == "CONNECT" {
		r.URL, r.RequestURI = &url.URL{Host: authority}, authority
	} else {
		if p.path[0] != '/' && p.path != "*" {
			return nil, errMalformed
		}
		u, err := requestURL(p.path, &a.u)
		if err != nil {
			return nil, errMalformed
		}
		r.URL, r.RequestURI = u, p.path
	}
	if r.ContentLength, ok = contentLength(h, b.endStream); !ok {
		return nil, errMalformed
	}
	return r, nil
}

// requestParts is what newRequest makes a request of: the request and
// its URL, allocated with the values of its header fields
// (requestHeader) in one object instead of three, in two sizes: 512
// bytes for up to 4 fields (h2load sends 1: the three took 480 apart),
// 704 for up to 16 (a browser sends 10 to 16: 720 for 16).
type requestParts struct {
	r http.Request
	u url.URL
}

// newRequestParts returns the parts of a request with n regular header
// fields and room for their values (nil: more than 16, requestHeader
// makes its own).
func newRequestParts(n int) (*requestParts, []string) {
	switch {
	case n <= 4:
		p := new(struct {
			requestParts
			values [4]string
		})
		return &p.requestParts, p.values[:]
	case n <= 16:
		p := new(struct {
			requestParts
			values [16]string
		})
		return &p.requestParts, p.values[:]
	}
	return new(requestParts), nil
}

// requestURL is url.ParseRequestURI(path) for a path in origin form:
// one whose path part has only the bytes the URL keeps as they are
// (pathByte: no escapes, Path the same as the path, no RawPath) and a
// query without control bytes is cut at its '?' without the parser's
// work (5.8% of the server's CPU under h2load); others go to the
// parser. TestRequestURL holds the two to the same answers. The URL of
// the first kind is u, set; the parser's is its own.
func requestURL(path string, u *url.URL) (*url.URL, error) {
	if path == "" || path[0] != '/' {
		return url.ParseRequestURI(path)
	}
	i := 0
	for i < len(path) && pathByte[path[i]] {
		i++
	}
	if i == len(path) {
		*u = url.URL{Path: path}
		return u, nil
	}
	if path[i] != '?' {
		return url.ParseRequestURI(path)
	}
	query := path[i+1:]
	for j := 0; j < len(query); j++ {
		if b := query[j]; b < ' ' || b == 0x7f {
			return url.ParseRequestURI(path)
		}
	}
	*u = url.URL{Path: path[:i], RawQuery: query, ForceQuery: query == ""}
	return u, nil
}

// pathByte: the bytes a URL path keeps unescaped (net/url's shouldEscape
// for a path): letters, digits and -_.~$&+,/:;=@.
var pathByte = func() (t [256]bool) {
	for _, b := range []byte("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.~$&+,/:;=@") {
		t[b] = true
	}
	return t
}()

// pseudo holds a request's pseudo-header fields (RFC 9113 8.3.1).
type pseudo struct{ method, scheme, authority, path string }

// pseudoFields reads the pseudo-fields at the start of fields, and how
// many there are; false: one is unknown or repeated, or :protocol
// (extended CONNECT, RFC 8441, is not offered).
func pseudoFields(fields []hpack.HeaderField) (p pseudo, n int, ok bool) {
	var seen uint8
	for _, f := range fields {
		if !f.IsPseudo() {
			break
		}
		var v *string
		var bit uint8
		switch f.Name {
		case ":method":
			v, bit = &p.method, 1
		case ":scheme":
			v, bit = &p.scheme, 2
		case ":authority":
			v, bit = &p.authority, 4
		case ":path":
			v, bit = &p.path, 8
		default:
			return p, n, false
		}
		if seen&bit != 0 {
			return p, n, false
		}
		seen |= bit
		*v = f.Value
		n++
	}
	return p, n, true
}

// valid checks the pseudo-header fields: all that a request needs, and
// CONNECT's own form.
func (p *pseudo) valid() bool {
	if p.method == "CONNECT" {
		return p.path == "" && p.scheme == "" && p.authority != ""
	}
	return p.method != "" && p.path != "" && (p.scheme == "https" || p.scheme == "http") && httpguts.ValidHeaderFieldName(p.method)
}

// requestHeader makes the http.Header of the regular fields, refusing
// connection-specific ones and a TE other than "trailers" (RFC 9113
// 8.2.2), joining cookies into one field (8.2.3) and dropping Trailer;
// the fields' names are checked as they come (in lower case, as on the
// wire), not looked up in the map. The values are kept in buf when it
// has room for them all.
func requestHeader(regular []hpack.HeaderField, buf []string) (http.Header, bool) {
	h := make(http.Header, len(regular))
	// One array holds the values: a field's first value is a slice of it
	// with no room to grow, so that a second one is appended elsewhere.
	values := buf
	if len(regular) > len(buf) {
		values = make([]string, len(regular))
	}
	te, cookies := 0, 0
	for i, hf := range regular {
		switch hf.Name {
		case "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade":
			return nil, false
		case "te":
			if te++; te > 1 || hf.Value != "trailers" {
				return nil, false
			}
		case "cookie":
			cookies++
		case "trailer":
			continue
		}
		k := canonicalKey(hf.Name)
		if vs, ok := h[k]; ok {
			h[k] = append(vs, hf.Value)
			continue
		}
		values[i] = hf.Value
		h[k] = values[i : i+1 : i+1]
	}
	if cookies > 1 {
		h["Cookie"] = []string{strings.Join(h["Cookie"], "; ")}
	}
	return h, true
}

// requestHost is the request's host: :authority, or a Host field that
// must then agree with it; no userinfo (RFC 9113 8.3.1). The Host field
// leaves h.
func requestHost(h http.Header, authority string) (string, bool) {
	if host, ok := h["Host"]; ok {
		switch {
		case len(host) > 1:
			return "", false
		case authority == "":
			authority = host[0]
		case host[0] != authority:
			return "", false
		}
		delete(h, "Host")
	}
	if strings.IndexByte(authority, '@') >= 0 || authority != "" && !httpguts.ValidHostHeader(authority) {
		return "", false
	}
	return authority, true
}

// contentLength is the request's ContentLength: 0 when the HEADERS frame
// ends the stream (a Content-Length other than 0 is then malformed, RFC
// 9113 8.1.1), else the one Content-Length field, or -1 without one.
func contentLength(h http.Header, ended bool) (int64, bool) {
	cl := h["Content-Length"]
	if ended {
		return 0, len(cl) == 0 || len(cl) == 1 && cl[0] == "0"
	}
	if len(cl) == 0 {
		return -1, true
	}
	n, err := strconv.ParseUint(cl[0], 10, 63)
	return int64(n), err == nil && len(cl) == 1
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
		"User-Agent", "X-Forwarded-For", "Forwarded", "Priority", "Pragma", "Origin", "Dnt",
		"Sec-Ch-Ua", "Sec-Ch-Ua-Mobile", "Sec-Ch-Ua-Platform", "Sec-Fetch-User"} { // Chromium's client hints
		commonKeys[strings.ToLower(k)] = k
	}
}

// runHandler runs h for st's request, on a worker or on the reader with
// the reader's w (nil: a new one), then completes the response; inline:
// it ran on the reader to the end (not handed over).
func (c *conn) runHandler(st *stream, r *http.Request, h http.Handler, w *responseWriter) (inline bool) {
	worker := w == nil
	if worker {
		w = c.newResponseWriter()
		w.reset(st, r)
	}
	defer func() {
		if err := recover(); err != nil {
			if err != http.ErrAbortHandler {
				c.s.logf("h2: panic serving %s: %v\n%s", c.remote, err, debug.Stack())
			}
			c.mu.Lock()
			c.resetLocked(st.id, http2.ErrCodeInternal)
			c.mu.Unlock()
		}
		inline = c.handlerDone(st)
	}()
	if worker { // the client may have reset it while it waited for one
		c.mu.Lock()
		live := st.state != stateClosed
		c.mu.Unlock()
		if !live {
			return false // reset before a worker was free
		}
	}
	h.ServeHTTP(w, r)
	w.finish()
	return false // set by the deferred handlerDone
}

// handlerDone notes that st's handler returned; a stream whose client
// still sends its body stays half-closed (local) until it ends it or the
// deadline resets it (endResponseLocked). It reports whether the
// handler ran on the reader to the end; the reader then takes the
// closed stream for its next (spareSt).
func (c *conn) handlerDone(st *stream) bool {
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
	if c.inlineSt != st {
		c.flushLocked() // on the reader, the frames go with the others read
		return false
	}
	c.inlineSt = nil
	if st.state == stateClosed && st.body == nil {
		c.spareSt = st // nothing refers to it any more: the next stream's
	}
	return true
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
