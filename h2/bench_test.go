package h2

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"strconv"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"appliance/h2/h2test"
)

// cachedPage answers as serve does from its cache: header values built
// once and shared, the body written from memory in one Write.
func cachedPage(body []byte) http.Handler {
	ct, cl := []string{"text/html; charset=utf-8"}, []string{strconv.Itoa(len(body))}
	etag, ar := []string{`"0123456789abcdef"`}, []string{"bytes"}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h["Content-Type"], h["Content-Length"], h["Etag"], h["Accept-Ranges"] = ct, cl, etag, ar
		w.WriteHeader(http.StatusOK)
		w.Write(body)
	})
}

// BenchmarkCachedPage serves a 1 KB page from memory over TLS on
// loopback to a client that keeps 10 streams in flight, as h2load -m10
// does; allocations and CPU (µs per request, server and client
// together, from getrusage) are per request.
func BenchmarkCachedPage(b *testing.B) {
	body := make([]byte, 1024)
	srv := &Server{}
	addr := start(b, srv, cachedPage(body))
	r := dialRaw(b, addr, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1 << 30})
	r.fr.WriteWindowUpdate(0, 1<<30)
	r.c.SetDeadline(time.Time{})
	bw := bufio.NewWriter(r.c)
	r.fr = http2.NewFramer(bw, bufio.NewReader(r.c))
	r.fr.SetReuseFrames()
	const inFlight = 10
	id := uint32(1)
	var got uint32 // bytes of DATA since the last WINDOW_UPDATE
	b.ReportAllocs()
	var ru0, ru1 syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	b.ResetTimer()
	for n := 0; n < b.N; n += inFlight {
		for range inFlight {
			r.request(id)
			id += 2
		}
		bw.Flush()
		for done := 0; done < inFlight; {
			f, err := r.fr.ReadFrame()
			if err != nil {
				b.Fatal(err)
			}
			switch f := f.(type) {
			case *http2.DataFrame:
				got += f.Length
				if f.StreamEnded() {
					done++
				}
			case *http2.RSTStreamFrame, *http2.GoAwayFrame:
				b.Fatalf("%v", f)
			}
		}
		if got > 1<<20 {
			r.fr.WriteWindowUpdate(0, got)
			bw.Flush()
			got = 0
		}
	}
	b.StopTimer()
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	cpu := time.Duration(ru1.Utime.Nano() + ru1.Stime.Nano() - ru0.Utime.Nano() - ru0.Stime.Nano())
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/req")
	b.ReportMetric(float64(srv.handoffs.Load()), "handoffs")
}

// BenchmarkServeMemory is the server's side of BenchmarkCachedPage
// alone, on one goroutine: the connection reads batches of 10 requests
// for a 1 KB page with the header fields serve sends for it from a
// client that never waits, and writes to nowhere (no TLS, no socket).
// Allocations are the server's own per request; under
// `valgrind --tool=callgrind` its instructions per request are stable
// on a loaded machine (bench/RESULTS.md).
func BenchmarkServeMemory(b *testing.B) {
	body := make([]byte, 1024)
	ct, cl := []string{"text/html; charset=utf-8"}, []string{"1024"}
	etag, ar := []string{`"0123456789abcdef"`}, []string{"bytes"}
	lm, cc := []string{"Tue, 01 Dec 2026 10:00:00 GMT"}, []string{"public, max-age=0, must-revalidate"}
	nosniff, vary := []string{"nosniff"}, []string{"Accept-Encoding"}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd["Vary"], hd["Content-Type"], hd["Content-Length"], hd["Etag"] = vary, ct, cl, etag
		hd["Last-Modified"], hd["Accept-Ranges"], hd["Cache-Control"], hd["X-Content-Type-Options"] = lm, ar, cc, nosniff
		w.WriteHeader(http.StatusOK)
		w.Write(body)
	})
	srv := &Server{Handler: h, InlineLimit: time.Hour} // nothing here waits; valgrind is slow
	srv.init()
	defer srv.Close()
	b.ReportAllocs()
	b.ResetTimer()
	// h2load's fields and a browser's accept-encoding, as before the
	// client moved to h2test (the figures in bench/RESULTS.md)
	fields := append(h2test.H2load("localhost", "/page.html"), hpack.HeaderField{Name: "accept-encoding", Value: "gzip, deflate, br"})
	m := h2test.NewMemConn(b.N, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 443}, fields)
	srv.ServeConn(context.Background(), m, nil, "192.0.2.1:1")
	b.StopTimer()
	if m.Left() > 0 || m.Written < int64(b.N)*1024 {
		b.Fatalf("%d requests left, %d bytes written", m.Left(), m.Written)
	}
	if n := srv.handoffs.Load(); n > 0 {
		b.Fatalf("%d handlers left the reader", n)
	}
}
