// Package httpx owns the HTTP helpers several steps share: the canonical
// path, the cache policy of redirects, qvalues, and the ResponseWriter
// wrapper that every wrapping handler embeds, as Caddy's
// ResponseWriterWrapper does: Flush, Unwrap and ReadFrom are forwarded
// here, in one place.
package httpx

import (
	"io"
	"net/http"
)

// ResponseWriterWrapper forwards the optional interfaces of the
// ResponseWriter it wraps. A wrapper that must see the body or the
// header (to count bytes, to apply header rules) embeds it and
// overrides Write, WriteHeader and ReadFrom, calling these to forward.
type ResponseWriterWrapper struct {
	http.ResponseWriter
}

// ReadFrom keeps sendfile: the writer underneath gets the reader (an
// *os.File) itself when it can take it.
func (w *ResponseWriterWrapper) ReadFrom(r io.Reader) (int64, error) {
	if rf, ok := w.ResponseWriter.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(struct{ io.Writer }{w.ResponseWriter}, r)
}

// Flush sends buffered data to the client, when the writer underneath can.
func (w *ResponseWriterWrapper) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the connection (its
// deadlines) and accesslog.Attribute reach its Recorder.
func (w *ResponseWriterWrapper) Unwrap() http.ResponseWriter { return w.ResponseWriter }
