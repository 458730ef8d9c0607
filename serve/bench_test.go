package serve

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// discard is a minimal ResponseWriter: the benchmarks measure serve, not
// the recorder.
type discard struct{ h http.Header }

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) Write(b []byte) (int, error) { return len(b), nil }
func (d *discard) WriteHeader(int)             {}

func benchServe(b *testing.B, target string, header ...string) {
	h, _ := site(b, map[string]string{"page.html": strings.Repeat("x", 1024), "app.js": strings.Repeat("let a = 1;\n", 10000)}, Options{}, CacheOptions{})
	req := httptest.NewRequest("GET", target, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	w := &discard{h: http.Header{}}
	h.ServeHTTP(w, req)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		clear(w.h)
		h.ServeHTTP(w, req)
	}
}

func BenchmarkServeSmallFile(b *testing.B)   { benchServe(b, "/page.html") }
func BenchmarkServeNotModified(b *testing.B) { benchServe(b, "/page.html", "If-None-Match", `"x"`) }
func BenchmarkServeRange(b *testing.B)       { benchServe(b, "/page.html", "Range", "bytes=10-20") }
func BenchmarkServeNotFound(b *testing.B)    { benchServe(b, "/missing.html") }
func BenchmarkServeGzip(b *testing.B) {
	benchServe(b, "/app.js", "Accept-Encoding", "gzip, deflate, br, zstd")
}
