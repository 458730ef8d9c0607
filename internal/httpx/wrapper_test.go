package httpx

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// readerFrom is a ResponseWriter that takes bodies through ReadFrom
// (sendfile) and can flush.
type readerFrom struct {
	*httptest.ResponseRecorder
	readFrom bool
}

func (w *readerFrom) ReadFrom(r io.Reader) (int64, error) {
	w.readFrom = true
	return io.Copy(w.ResponseRecorder, r)
}

func TestResponseWriterWrapper(t *testing.T) {
	under := &readerFrom{ResponseRecorder: httptest.NewRecorder()}
	w := &ResponseWriterWrapper{ResponseWriter: under}
	if n, err := w.ReadFrom(strings.NewReader("body")); n != 4 || err != nil || !under.readFrom {
		t.Errorf("ReadFrom: %d, %v; forwarded %v", n, err, under.readFrom)
	}
	w.Flush()
	if !under.Flushed {
		t.Error("Flush not forwarded")
	}
	if err := http.NewResponseController(w).Flush(); err != nil {
		t.Errorf("ResponseController does not reach the writer underneath: %v", err)
	}
	if w.Unwrap() != http.ResponseWriter(under) {
		t.Error("Unwrap")
	}

	// Without ReadFrom underneath, the body is copied with Write.
	rec := httptest.NewRecorder()
	w = &ResponseWriterWrapper{ResponseWriter: rec}
	if n, err := w.ReadFrom(strings.NewReader("body")); n != 4 || err != nil || rec.Body.String() != "body" {
		t.Errorf("ReadFrom by copy: %d, %v, %q", n, err, rec.Body.String())
	}
}

// countingHook sets a header and turns 200 into 203, counting its calls.
type countingHook struct{ calls int }

func (c *countingHook) BeforeHeader(h http.Header, status int) int {
	c.calls++
	h.Set("X-Hook", "yes")
	if status == http.StatusOK {
		return http.StatusNonAuthoritativeInfo
	}
	return status
}

// TestHookWriter: the hook runs once, before the first final status,
// whichever of WriteHeader, Write, ReadFrom (sendfile kept) or Finish
// comes first, and never for a 1xx.
func TestHookWriter(t *testing.T) {
	for _, tc := range []struct {
		name string
		do   func(w *HookWriter)
		want int
	}{
		{"WriteHeader", func(w *HookWriter) { w.WriteHeader(http.StatusNotFound); w.Write([]byte("x")) }, http.StatusNotFound},
		{"Write", func(w *HookWriter) { w.Write([]byte("x")); w.Write([]byte("y")) }, http.StatusNonAuthoritativeInfo},
		{"ReadFrom", func(w *HookWriter) { w.ReadFrom(strings.NewReader("x")) }, http.StatusNonAuthoritativeInfo},
		{"Finish", func(w *HookWriter) { w.Finish(); w.Finish() }, http.StatusNonAuthoritativeInfo},
	} {
		under := &readerFrom{ResponseRecorder: httptest.NewRecorder()}
		hook := &countingHook{}
		w := &HookWriter{ResponseWriterWrapper: ResponseWriterWrapper{ResponseWriter: under}, Hook: hook}
		tc.do(w)
		if hook.calls != 1 || under.Code != tc.want || under.Header().Get("X-Hook") != "yes" {
			t.Errorf("%s: hook called %d times, status %d (want %d), header %v", tc.name, hook.calls, under.Code, tc.want, under.Header())
		}
		if tc.name == "ReadFrom" && !under.readFrom {
			t.Error("ReadFrom did not reach the writer underneath (sendfile lost)")
		}
	}
	hook := &countingHook{}
	w := &HookWriter{ResponseWriterWrapper: ResponseWriterWrapper{ResponseWriter: httptest.NewRecorder()}, Hook: hook}
	w.WriteHeader(http.StatusEarlyHints)
	if hook.calls != 0 {
		t.Error("the hook ran for a 1xx")
	}
}

func TestRetryAfter(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "1", -time.Second: "1", time.Millisecond: "1", time.Second: "1",
		time.Second + 1: "2", 1500 * time.Millisecond: "2", 15 * time.Minute: "900",
	} {
		if got := RetryAfter(d); got != want {
			t.Errorf("RetryAfter(%v) = %s, want %s", d, got, want)
		}
	}
}
