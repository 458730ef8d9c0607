package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"appliance/h2"
	"appliance/h2/h2test"
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
	s := loadServer(b, path)
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

// BenchmarkH2Page is the benchmark's HTTP/2 row inside the process: the
// HTTPS listener's HTTP/2 server with its whole handler (the metrics on,
// as with an admin listener; the 421 check, vhost, serve from its
// cache) fed batches of 10 GETs of a 1 KB page by an in-memory client
// that sent no SNI (h2load to an address), writing to nowhere: no TLS
// records, no socket. Its allocations are the server's per request;
// under `valgrind --tool=callgrind` (bench/callgrind.sh) its
// instructions per request are stable on a loaded machine.
func BenchmarkH2Page(b *testing.B) {
	dir := b.TempDir()
	root := filepath.Join(dir, "root")
	os.Mkdir(root, 0o755)
	page := []byte("<!doctype html><title>bench</title>")
	for len(page) < 1024 {
		page = append(page, "<p>static site appliance</p>\n"...)
	}
	os.WriteFile(filepath.Join(root, "page.html"), page[:1024], 0o644)
	_, certFile, keyFile := testCA(b, dir, "localhost")
	path := filepath.Join(dir, "appliance.toml")
	os.WriteFile(path, []byte(fmt.Sprintf("[server]\nhttp = \"127.0.0.1:0\"\nhttps = \"127.0.0.1:0\"\nstate_dir = %q\n[admin]\nlisten = \"127.0.0.1:0\"\n"+
		"[[site]]\nroot = %q\ntls = \"manual\"\ncert = %q\nkey = %q\nhsts = \"off\"\nhttps_redirect = false\n",
		filepath.Join(dir, "state"), root, certFile, keyFile)), 0o644)
	s := loadServer(b, path)
	srv, ok := s.httpsAccept.HTTP2.(*h2.Server)
	if !ok {
		b.Fatalf("the HTTPS listener's HTTP/2 server is %T", s.httpsAccept.HTTP2)
	}
	srv.InlineLimit = time.Hour // nothing here waits; valgrind is slow
	defer srv.Close()
	st := &tls.ConnectionState{Version: tls.VersionTLS13, HandshakeComplete: true, NegotiatedProtocol: "h2"}
	local := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 443}
	serve := func(n int) *h2test.MemConn {
		m := h2test.NewMemConn(n, local, h2test.H2load("localhost", "/page.html"))
		srv.ServeConn(context.Background(), m, st, "192.0.2.1:1")
		return m
	}
	serve(h2test.Batch) // fills serve's cache
	b.ReportAllocs()
	b.ResetTimer()
	m := serve(b.N)
	b.StopTimer()
	if m.Left() > 0 || m.Written < int64(b.N)*1024 {
		b.Fatalf("%d requests left, %d bytes written: not the page", m.Left(), m.Written)
	}
}

// loadServer loads the config at path and makes its server (not
// started), its log discarded.
func loadServer(tb testing.TB, path string) *server {
	tb.Helper()
	cfg, err := loadConfig(path)
	if err != nil {
		tb.Fatal(err)
	}
	s, err := newServer(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		tb.Fatal(err)
	}
	return s
}
