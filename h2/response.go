package h2

import (
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/net/http/httpguts"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"appliance/internal/clock"
)

// frameBody is how much body a response buffers before it sends a DATA
// frame: the largest frame every peer takes (RFC 9113 4.2).
const frameBody = 16384

var errContentLength = errors.New("h2: wrote more than the declared Content-Length")

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, frameBody); return &b }}

// responseWriter is a stream's http.ResponseWriter: the head waits for
// the first frame of body (or the handler's end), so that a small
// response leaves as one HEADERS and one DATA frame in one write, with
// its Content-Length.
type responseWriter struct {
	c      *conn
	st     *stream
	header http.Header
	buf    *[]byte

	status      int
	wroteHeader bool
	sentHeader  bool
	bodyAllowed bool
	head        bool
	length      int64 // declared Content-Length; -1: none
	written     int64
	err         error
}

func (c *conn) newResponseWriter() *responseWriter {
	return &responseWriter{c: c, header: make(http.Header, 8)}
}

// reset readies w for st's response to r.
func (w *responseWriter) reset(st *stream, r *http.Request) {
	clear(w.header)
	*w = responseWriter{c: w.c, st: st, header: w.header, head: r.Method == http.MethodHead}
}

// release drops what w holds of a finished response, to be reset for
// the next; the header map's values may be kept by the handler.
func (w *responseWriter) release() {
	w.st = nil
	clear(w.header)
}

func (w *responseWriter) Header() http.Header { return w.header }

func (w *responseWriter) WriteHeader(code int) {
	if w.wroteHeader {
		return
	}
	if code < 100 || code > 999 {
		panic("h2: invalid status code " + strconv.Itoa(code))
	}
	if code < 200 { // informational: not sent by this server
		return
	}
	w.wroteHeader = true
	w.status = code
	w.bodyAllowed = code != http.StatusNoContent && code != http.StatusNotModified
	w.length = -1
	if cl := w.header["Content-Length"]; len(cl) == 1 && w.bodyAllowed {
		if n, err := strconv.ParseInt(cl[0], 10, 64); err == nil && n >= 0 {
			w.length = n
		}
	}
}

func (w *responseWriter) Write(p []byte) (int, error) {
	if !w.wroteHeader {
		if _, ok := w.header["Content-Type"]; !ok && len(p) > 0 {
			w.header["Content-Type"] = []string{http.DetectContentType(p)}
		}
		w.WriteHeader(http.StatusOK)
	}
	if !w.bodyAllowed {
		return 0, http.ErrBodyNotAllowed
	}
	if w.err != nil {
		return 0, w.err
	}
	if w.length >= 0 && w.written+int64(len(p)) > w.length {
		return 0, errContentLength
	}
	w.written += int64(len(p))
	if w.head {
		return len(p), nil
	}
	n := len(p)
	if w.buf == nil {
		w.buf = bufPool.Get().(*[]byte)
	}
	for len(p) > 0 {
		b := *w.buf
		k := copy(b[len(b):cap(b)], p)
		*w.buf = b[:len(b)+k]
		p = p[k:]
		if len(*w.buf) == cap(*w.buf) {
			if err := w.send(false); err != nil {
				return n - len(p), err
			}
		}
	}
	return n, nil
}

// ReadFrom reads r straight into the frame buffer.
func (w *responseWriter) ReadFrom(r io.Reader) (int64, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !w.bodyAllowed || w.head {
		return io.Copy(writerOnly{w}, r)
	}
	// A file read waits: not on the connection's reader.
	w.c.mu.Lock()
	w.c.handOffLocked(w.st)
	w.c.mu.Unlock()
	var total int64
	for {
		if w.err != nil {
			return total, w.err
		}
		if w.buf == nil {
			w.buf = bufPool.Get().(*[]byte)
		}
		b := *w.buf
		room := b[len(b):cap(b)]
		if w.length >= 0 && int64(len(room)) > w.length-w.written+1 {
			room = room[:w.length-w.written+1] // one more: to see r run past it
		}
		n, err := r.Read(room)
		if w.length >= 0 && w.written+int64(n) > w.length {
			return total, errContentLength
		}
		*w.buf = b[:len(b)+n]
		w.written += int64(n)
		total += int64(n)
		if len(*w.buf) == cap(*w.buf) {
			if serr := w.send(false); serr != nil {
				return total, serr
			}
		}
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}

// writerOnly hides ReadFrom so that io.Copy uses Write.
type writerOnly struct{ io.Writer }

// SetWriteDeadline moves the time by which the response must be done
// (http.ResponseController): past it, the reaper resets the stream.
func (w *responseWriter) SetWriteDeadline(t time.Time) error {
	c := w.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if w.st.state == stateClosed {
		return errStreamClosed
	}
	w.st.deadline = 0
	if !t.IsZero() {
		w.st.deadline = clock.MonoAt(t)
	}
	return nil
}

// Flush sends the head and what is buffered.
func (w *responseWriter) Flush() {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	w.send(false)
}

// finish ends the response once the handler returned.
func (w *responseWriter) finish() {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !w.sentHeader && w.bodyAllowed {
		if _, ok := w.header["Content-Length"]; !ok && (w.written > 0 || !w.head) {
			// The whole body is here: say how long it is, as net/http does.
			w.header["Content-Length"] = []string{strconv.FormatInt(w.written, 10)}
		}
	}
	w.send(true)
	if w.buf != nil {
		*w.buf = (*w.buf)[:0]
		bufPool.Put(w.buf)
		w.buf = nil
	}
}

// send writes the head, if not sent yet, and the buffered body; end: the
// response is complete.
func (w *responseWriter) send(end bool) error {
	if w.err != nil {
		return w.err
	}
	var data []byte
	if w.buf != nil {
		data = *w.buf
	}
	if !w.sentHeader {
		w.sentHeader = true
		w.err = w.c.writeResponse(w.st, w.status, w.header, data, end)
	} else {
		w.err = w.c.writeData(w.st, data, end)
	}
	if w.buf != nil {
		*w.buf = data[:0]
	}
	return w.err
}

// writeResponse queues a response's HEADERS and its first DATA, in one
// write when the windows allow.
func (c *conn) writeResponse(st *stream, status int, h http.Header, data []byte, end bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.writableLocked(st); err != nil {
		return err
	}
	c.encodeHeadersLocked(status, h)
	block := c.head
	endHeaders := len(block) <= c.peerMaxFrame
	first := block[:min(len(block), c.peerMaxFrame)]
	c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: st.id, BlockFragment: first, EndStream: end && len(data) == 0, EndHeaders: endHeaders})
	for block = block[len(first):]; len(block) > 0; {
		frag := block[:min(len(block), c.peerMaxFrame)]
		block = block[len(frag):]
		c.fr.WriteContinuation(st.id, len(block) == 0, frag)
	}
	if end && len(data) == 0 {
		c.endResponseLocked(st)
		if c.inlineSt != st {
			return c.flushLocked()
		}
		return c.werr
	}
	return c.writeDataLocked(st, data, end)
}

// endResponseLocked notes that st's END_STREAM is queued: the stream
// closes, or, while the client is still sending its request body, is
// half-closed (local) until it ends it (RFC 9113 5.1); what it sends
// then is dropped, its length checked and its window given back, and
// the stream's deadline still holds.
func (c *conn) endResponseLocked(st *stream) {
	st.ended = true
	if st.state == stateOpen {
		if st.body != nil {
			st.body.closeWithError(errStreamClosed)
		}
		return
	}
	c.closeStreamLocked(st)
}

// writableLocked reports why st can take no more frames, if so.
func (c *conn) writableLocked(st *stream) error {
	if c.werr != nil {
		return c.werr
	}
	if st.state == stateClosed {
		return errStreamClosed
	}
	return nil
}

// writeData queues data as DATA frames within the flow-control windows
// (RFC 9113 6.9), waiting for the client's WINDOW_UPDATE when they are
// shut; end: the last frame carries END_STREAM. The wait ends with the
// stream (reset by the client, or by the reaper at its deadline).
func (c *conn) writeData(st *stream, data []byte, end bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.writeDataLocked(st, data, end)
}

// writeDataLocked is writeData with mu held (and released while it
// waits or writes).
func (c *conn) writeDataLocked(st *stream, data []byte, end bool) error {
	for {
		if err := c.writableLocked(st); err != nil {
			return err
		}
		if len(data) == 0 && !end {
			break
		}
		n := int(min(int64(len(data)), int64(c.peerMaxFrame), c.sendWindow, st.sendWindow))
		if n <= 0 && len(data) > 0 {
			// The rest waits for the client's WINDOW_UPDATE, which the
			// reader must be free to read.
			if st.stalledAt == 0 {
				st.stalledAt = clock.Mono()
			}
			c.handOffLocked(st)
			if c.flushing || len(c.out) == 0 {
				c.cond.Wait()
			} else if err := c.flushLocked(); err != nil {
				return err
			}
			continue
		}
		if len(c.out) >= maxPendingWrite {
			if err := c.flushLocked(); err != nil {
				return err
			}
			continue
		}
		st.stalledAt = 0
		last := end && n == len(data)
		c.fr.WriteData(st.id, last, data[:n])
		c.sendWindow -= int64(n)
		st.sendWindow -= int64(n)
		data = data[n:]
		if last {
			c.endResponseLocked(st)
			break
		}
		if len(data) == 0 {
			break
		}
	}
	if c.inlineSt == st {
		return c.werr // the reader sends it with the rest of what it read
	}
	return c.flushLocked()
}

// encodeHeadersLocked HPACK-encodes a response head into c.head: the
// status, the handler's fields in lower case without the
// connection-specific ones (RFC 9113 8.2.2), and Date. The encoder keeps
// no dynamic table, so that a field's encoding stands alone (a static
// table reference or a literal without indexing, RFC 7541 6.2.2) and
// each is encoded once per connection (fieldCache): serve shares the
// values of a cached file's fields between its responses, so most
// fields of most responses are one lookup and a copy.
func (c *conn) encodeHeadersLocked(status int, h http.Header) {
	c.head = c.head[:0]
	c.appendField(":status", ":status", statusText(status))
	date := false
	for k, vs := range h {
		if k == "Date" {
			date = true
		}
		for _, v := range vs {
			c.appendField(k, "", v)
		}
	}
	if !date {
		if d := c.s.date.Load(); d != c.date {
			c.encodeField(hpackField("date", *d))
			c.date, c.dateField = d, append(c.dateField[:0], c.encBuf.Bytes()...)
		}
		c.head = append(c.head, c.dateField...)
	}
}

// fieldSlot is a response field as the handler set it (its http.Header
// key and one of its values) and where its encoding is in
// conn.fieldBytes; n == 0: the field is not sent (connection-specific,
// or invalid).
type fieldSlot struct {
	key, value string
	off, n     uint32
}

// A connection's fieldCache has fieldSlots slots; a field of at most
// maxCachedField bytes (key and value) is kept in one of the fieldWays
// slots from the one its strings' addresses pick (a field that comes in
// other strings, or finds those slots taken by others, is encoded anew),
// and their encodings take at most maxCachedFieldBytes, past which it
// starts afresh: at most 64 x 512 bytes of strings and 8 KiB of
// encodings a connection (TestFieldCache). The
// addresses only pick the slots: a hit compares the strings, which costs
// a length and a pointer when they are the same strings, as serve's
// prepared values are, and no hashing of their bytes.
const (
	fieldSlots          = 64
	fieldWays           = 4
	maxCachedField      = 512
	maxCachedFieldBytes = 8 << 10
)

// fieldSlotOf is the first slot of the field key: value.
func fieldSlotOf(key, value string) int {
	h := uint64(uintptr(unsafe.Pointer(unsafe.StringData(value))))
	h ^= uint64(uintptr(unsafe.Pointer(unsafe.StringData(key)))) << 7
	h ^= uint64(len(value))
	return int(h * 0x9e3779b97f4a7c15 >> (64 - 6)) // 64 slots: the top 6 bits
}

// appendField appends the encoding of the field key: value to c.head,
// from the cache or encoded there; name is its HTTP/2 name when the
// caller knows it ("": from key).
func (c *conn) appendField(key, name, value string) {
	if c.fieldCache == nil {
		c.fieldCache = new([fieldSlots]fieldSlot)
	}
	first := fieldSlotOf(key, value)
	for i := range fieldWays {
		if sl := &c.fieldCache[(first+i)%fieldSlots]; sl.value == value && sl.key == key {
			c.head = append(c.head, c.fieldBytes[sl.off:sl.off+sl.n]...)
			return
		}
	}
	if name == "" {
		name = fieldName(key)
	}
	var enc []byte
	if name != "" && httpguts.ValidHeaderFieldValue(value) {
		c.encodeField(hpackField(name, value))
		enc = c.encBuf.Bytes()
		c.head = append(c.head, enc...)
		if !c.sizeSent {
			// The first field carries the dynamic table size update
			// (RFC 7541 4.2): not to be repeated.
			c.sizeSent = true
			return
		}
	}
	if len(key)+len(value) > maxCachedField {
		return
	}
	if len(c.fieldBytes)+len(enc) > maxCachedFieldBytes {
		*c.fieldCache = [fieldSlots]fieldSlot{}
		c.fieldBytes = c.fieldBytes[:0]
	}
	// An empty slot of the field's, else each in turn.
	c.evict++
	sl := &c.fieldCache[(first+c.evict%fieldWays)%fieldSlots]
	for i := range fieldWays {
		if e := &c.fieldCache[(first+i)%fieldSlots]; e.key == "" {
			sl = e
			break
		}
	}
	*sl = fieldSlot{key: key, value: value, off: uint32(len(c.fieldBytes)), n: uint32(len(enc))}
	c.fieldBytes = append(c.fieldBytes, enc...)
}

// encodeField HPACK-encodes f alone into c.encBuf.
func (c *conn) encodeField(f hpack.HeaderField) {
	c.encBuf.Reset()
	c.enc.WriteField(f)
}

// fieldName is the HTTP/2 name of a response field's http.Header key:
// in lower case; "" for a name that is not sent: connection-specific
// (RFC 9113 8.2.2) or invalid.
func fieldName(key string) string {
	name, ok := lowerKeys[key]
	if !ok {
		if !httpguts.ValidHeaderFieldName(key) {
			return ""
		}
		name = strings.ToLower(key)
	}
	switch name {
	case "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade":
		return ""
	}
	return name
}

func hpackField(name, value string) hpack.HeaderField {
	return hpack.HeaderField{Name: name, Value: value}
}

// statusText is a status code in decimal, without allocating for the
// common ones.
func statusText(code int) string {
	switch code {
	case 200:
		return "200"
	case 304:
		return "304"
	case 404:
		return "404"
	}
	return strconv.Itoa(code)
}

// lowerKeys are the HTTP/2 names of the fields handlers commonly set.
var lowerKeys = map[string]string{}

func init() {
	for _, k := range []string{"Accept-Ranges", "Cache-Control", "Content-Encoding", "Content-Length", "Content-Range",
		"Content-Security-Policy", "Content-Type", "Date", "Etag", "Expires", "Last-Modified", "Location",
		"Referrer-Policy", "Strict-Transport-Security", "Vary", "Www-Authenticate", "X-Content-Type-Options",
		"X-Frame-Options", "Alt-Svc", "Server", "Set-Cookie", "Retry-After", "Allow"} {
		lowerKeys[k] = strings.ToLower(k)
	}
}
