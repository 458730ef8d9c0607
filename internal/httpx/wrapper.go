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

// HeaderHook changes a response's header and status just before they
// are sent (see HookWriter).
type HeaderHook interface {
	BeforeHeader(h http.Header, status int) int
}

// HookWriter is a ResponseWriterWrapper that calls Hook once, just before
// the header goes out: on the first WriteHeader of a final status, or on
// the first Write or ReadFrom (status 200). The hook's status is sent.
// A wrapper that must have the last word on the next handler's header
// (header rules, Vary, a rule's status) embeds it and is its own Hook.
type HookWriter struct {
	ResponseWriterWrapper
	Hook HeaderHook
	sent bool
}

// WriteHeader calls the hook before the first final status.
func (w *HookWriter) WriteHeader(code int) {
	if !w.sent && code >= 200 {
		w.sent = true
		code = w.Hook.BeforeHeader(w.ResponseWriter.Header(), code)
	}
	w.ResponseWriter.WriteHeader(code)
}

// Write sends the header (through the hook) first, if it has not gone.
func (w *HookWriter) Write(p []byte) (int, error) {
	if !w.sent {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(p)
}

// ReadFrom sends the header (through the hook) first and keeps sendfile.
func (w *HookWriter) ReadFrom(r io.Reader) (int64, error) {
	if !w.sent {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriterWrapper.ReadFrom(r)
}

// Finish sends the header through the hook if the handler wrote nothing
// (the server would send it as a 200 with an empty body).
func (w *HookWriter) Finish() {
	if !w.sent {
		w.WriteHeader(http.StatusOK)
	}
}
