package serve

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// discard is a minimal ResponseWriter: the benchmarks measure serve, not
// the recorder. It keeps the status, for the check before the loop.
type discard struct {
	h      http.Header
	status int
}

func (d *discard) Header() http.Header { return d.h }
func (d *discard) Write(b []byte) (int, error) {
	if d.status == 0 {
		d.status = http.StatusOK
	}
	return len(b), nil
}
func (d *discard) WriteHeader(code int) {
	if d.status == 0 {
		d.status = code
	}
}

// benchServe measures the request that req makes for the site, after
// checking once that it gets the status want: a benchmark that measures
// another answer than its name says is worse than none.
func benchServe(b *testing.B, want int, req func(h http.Handler) *http.Request) {
	h, _ := site(b, map[string]string{"page.html": strings.Repeat("x", 1024), "app.js": strings.Repeat("let a = 1;\n", 10000)}, Options{}, CacheOptions{})
	r := req(h)
	w := &discard{h: http.Header{}}
	h.ServeHTTP(w, r)
	if w.status != want {
		b.Fatalf("%s %s: status %d, want %d", r.Method, r.URL, w.status, want)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		clear(w.h)
		h.ServeHTTP(w, r)
	}
}

// get returns a request builder for a GET of target with header.
func get(target string, header ...string) func(http.Handler) *http.Request {
	return func(http.Handler) *http.Request {
		req := httptest.NewRequest("GET", target, nil)
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		return req
	}
}

func BenchmarkServeSmallFile(b *testing.B) { benchServe(b, http.StatusOK, get("/page.html")) }

// BenchmarkServeNotModified revalidates with the page's own ETag.
func BenchmarkServeNotModified(b *testing.B) {
	benchServe(b, http.StatusNotModified, func(h http.Handler) *http.Request {
		w := &discard{h: http.Header{}}
		h.ServeHTTP(w, get("/page.html")(h))
		etag := w.h.Get("Etag")
		if etag == "" {
			b.Fatal("no ETag on /page.html")
		}
		return get("/page.html", "If-None-Match", etag)(h)
	})
}

func BenchmarkServeRange(b *testing.B) {
	benchServe(b, http.StatusPartialContent, get("/page.html", "Range", "bytes=10-20"))
}
func BenchmarkServeNotFound(b *testing.B) { benchServe(b, http.StatusNotFound, get("/missing.html")) }
func BenchmarkServeGzip(b *testing.B) {
	benchServe(b, http.StatusOK, get("/app.js", "Accept-Encoding", "gzip, deflate, br, zstd"))
}
