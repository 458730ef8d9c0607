package h1

import (
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"appliance/internal/clock"
)

const writeBufSize = 4096

var errContentLength = errors.New("h1: wrote more than the declared Content-Length")

// response is the fast path's http.ResponseWriter. The head is built in
// buf; a small body joins it there, a large one goes out with it in one
// writev, a file through ReadFrom (sendfile).
type response struct {
	c      *conn
	req    *http.Request
	header http.Header
	buf    []byte

	status      int
	wroteHeader bool
	bodyAllowed bool
	head        bool  // HEAD: the body is discarded
	length      int64 // declared Content-Length; -1: none
	written     int64
	chunked     bool
	closeAfter  bool
}

func (w *response) reset(r *http.Request) {
	clear(w.header)
	w.req = r
	w.status = 0
	w.wroteHeader = false
	w.head = r.Method == http.MethodHead
	w.length = -1
	w.written = 0
	w.chunked = false
	w.closeAfter = r.Close
}

func (w *response) Header() http.Header { return w.header }

func (w *response) WriteHeader(code int) {
	if w.wroteHeader {
		return
	}
	if code < 100 || code > 999 {
		panic("h1: invalid status code " + strconv.Itoa(code))
	}
	if code < 200 { // informational: not used by this server; send nothing
		return
	}
	w.wroteHeader = true
	w.status = code
	w.bodyAllowed = code != http.StatusNoContent && code != http.StatusNotModified
	h := w.header
	if cl := h["Content-Length"]; len(cl) == 1 && w.bodyAllowed {
		if n, err := strconv.ParseInt(cl[0], 10, 64); err == nil && n >= 0 {
			w.length = n
		}
	}
	if w.length < 0 && w.bodyAllowed && !w.head {
		w.chunked = true
	}
	if _, ok := h["Connection"]; ok && strings.EqualFold(h.Get("Connection"), "close") {
		w.closeAfter = true
	}
	w.writeHead()
}

// writeHead appends the status line and fields to buf.
func (w *response) writeHead() {
	b := w.buf
	b = append(b, "HTTP/1.1 "...)
	b = strconv.AppendInt(b, int64(w.status), 10)
	b = append(b, ' ')
	b = append(b, http.StatusText(w.status)...)
	b = append(b, "\r\n"...)
	for k, vs := range w.header {
		switch k {
		case "Transfer-Encoding", "Connection":
			continue // framing is ours
		case "Content-Length":
			if !w.bodyAllowed || w.length < 0 {
				continue
			}
		}
		for _, v := range vs {
			b = append(b, k...)
			b = append(b, ": "...)
			b = appendSanitized(b, v)
			b = append(b, "\r\n"...)
		}
	}
	if _, ok := w.header["Date"]; !ok {
		b = append(b, *w.c.s.date.Load()...)
	}
	if w.chunked {
		b = append(b, "Transfer-Encoding: chunked\r\n"...)
	}
	if w.closeAfter {
		b = append(b, "Connection: close\r\n"...)
	}
	w.buf = append(b, "\r\n"...)
}

// appendSanitized keeps a handler's CR or LF from splitting the response.
func appendSanitized(b []byte, v string) []byte {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c == '\r' || c == '\n' || c == 0 {
			b = append(b, ' ')
		} else {
			b = append(b, c)
		}
	}
	return b
}

func (w *response) Write(p []byte) (int, error) {
	if !w.wroteHeader {
		if _, ok := w.header["Content-Type"]; !ok && len(p) > 0 {
			w.header["Content-Type"] = []string{http.DetectContentType(p)}
		}
		w.WriteHeader(http.StatusOK)
	}
	if !w.bodyAllowed {
		return 0, http.ErrBodyNotAllowed
	}
	if w.head {
		return len(p), nil
	}
	if w.length >= 0 && w.written+int64(len(p)) > w.length {
		return 0, errContentLength
	}
	w.written += int64(len(p))
	if w.chunked {
		if len(p) == 0 {
			return 0, nil
		}
		w.buf = strconv.AppendInt(w.buf, int64(len(p)), 16)
		w.buf = append(w.buf, "\r\n"...)
		if err := w.send(p); err != nil {
			return 0, err
		}
		w.buf = append(w.buf, "\r\n"...)
		return len(p), nil
	}
	if err := w.send(p); err != nil {
		return 0, err
	}
	return len(p), nil
}

// send queues p behind what buf holds: copied if it fits, else written
// together with buf in one writev.
func (w *response) send(p []byte) error {
	if len(w.buf)+len(p) <= cap(w.buf) {
		w.buf = append(w.buf, p...)
		return nil
	}
	bufs := net.Buffers{w.buf, p}
	_, err := bufs.WriteTo(w.c.nc)
	w.buf = w.buf[:0]
	if err != nil {
		w.closeAfter = true
	}
	return err
}

// ReadFrom sends r's bytes; an *os.File (or a LimitedReader of one) goes
// out with sendfile when the connection supports it.
func (w *response) ReadFrom(r io.Reader) (int64, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if w.head || !w.bodyAllowed || w.chunked {
		return io.Copy(writerOnly{w}, r)
	}
	// The head and the file's first bytes share full segments; the rest
	// goes out uncorked, as the window opens (see notSentLowat). Corked
	// through the whole file, the last partial segment of every sendfile
	// waits for the next, which halved 10 MiB throughput on loopback.
	if w.written == 0 && cork(w.c.nc, true) {
		defer cork(w.c.nc, false)
	}
	if err := w.flush(); err != nil {
		return 0, err
	}
	if w.length >= 0 {
		// Clamp rather than wrap: sendfile sees through one LimitedReader only.
		remain := w.length - w.written
		if lr, ok := r.(*io.LimitedReader); ok {
			lr.N = min(lr.N, remain)
		} else {
			r = io.LimitReader(r, remain)
		}
	}
	n, err := io.Copy(w.c.nc, r)
	w.written += n
	if err != nil {
		w.closeAfter = true
	}
	return n, err
}

// writerOnly hides ReadFrom so that io.Copy uses Write.
type writerOnly struct{ io.Writer }

// Flush sends what is buffered.
func (w *response) Flush() {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	w.flush()
}

func (w *response) flush() error {
	if len(w.buf) == 0 {
		return nil
	}
	_, err := w.c.nc.Write(w.buf)
	w.buf = w.buf[:0]
	if err != nil {
		w.closeAfter = true
	}
	return err
}

// SetWriteDeadline lets http.ResponseController extend the time a large
// body may take; the reaper enforces it.
func (w *response) SetWriteDeadline(t time.Time) error {
	if t.IsZero() {
		w.c.deadline.Store(0)
	} else {
		w.c.deadline.Store(clock.MonoAt(t))
	}
	return nil
}

// finish completes the response: the head if nothing was written, the
// last chunk, and a closed connection if the body fell short.
func (w *response) finish() error {
	if !w.wroteHeader {
		if _, ok := w.header["Content-Length"]; !ok && !w.head {
			w.header["Content-Length"] = []string{"0"}
		}
		w.WriteHeader(http.StatusOK)
	}
	if w.chunked {
		w.buf = append(w.buf, "0\r\n\r\n"...)
	}
	if w.length >= 0 && !w.head && w.bodyAllowed && w.written != w.length {
		w.closeAfter = true // the client cannot frame what follows
	}
	if w.closeAfter {
		return w.flush()
	}
	return nil
}
