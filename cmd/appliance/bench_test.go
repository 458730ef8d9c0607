package main

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
)

// nullWriter is a ResponseWriter that keeps nothing but its header map,
// cleared for each request as the fast path does.
type nullWriter struct{ h http.Header }

func (w nullWriter) Header() http.Header       { return w.h }
func (nullWriter) Write(p []byte) (int, error) { return len(p), nil }
func (nullWriter) WriteHeader(int)             {}

// BenchmarkObservedRequest is one cached GET through the plain listener's
// whole handler with the access log and the metrics on: what observing
// costs a request beyond serving it.
func BenchmarkObservedRequest(b *testing.B) {
	dir := b.TempDir()
	os.Mkdir(filepath.Join(dir, "a"), 0o755)
	os.WriteFile(filepath.Join(dir, "a", "index.html"), []byte("site A"), 0o644)
	path := filepath.Join(dir, "appliance.toml")
	os.WriteFile(path, []byte(fmt.Sprintf("[server]\nhttp = \"127.0.0.1:0\"\naccess_log = %q\n[admin]\nlisten = \"127.0.0.1:0\"\n[[site]]\nhosts = [\"a.test\"]\nroot = %q\n",
		filepath.Join(dir, "access.log"), filepath.Join(dir, "a"))), 0o644)
	cfg, err := loadConfig(path)
	if err != nil {
		b.Fatal(err)
	}
	s, err := newServer(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.access.Close() })
	h := s.plainFallback.Handler
	r := httptest.NewRequest("GET", "/", nil)
	r.Host = "a.test"
	w := nullWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		h.ServeHTTP(w, r)
	}
}
