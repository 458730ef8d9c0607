package httpx

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
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
