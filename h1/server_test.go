package h1

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// start serves h on the fast path with a net/http fallback, and reports
// which of the two answered through the X-Via header.
func start(t *testing.T, h http.Handler, configure ...func(*Server)) (*Server, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	via := func(name string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Via", name)
			h.ServeHTTP(w, r)
		})
	}
	s := &Server{Handler: via("fast")}
	s.ConfigureFallback(&http.Server{Handler: via("net/http")})
	for _, f := range configure {
		f(s)
	}
	done := make(chan struct{})
	go func() { s.Serve(ln); close(done) }()
	t.Cleanup(func() { s.Close(); <-done })
	return s, ln.Addr().String()
}

// exchange writes raw bytes and reads n responses, given the methods.
func exchange(t *testing.T, addr, raw string, methods ...string) []*http.Response {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, raw)
	br := bufio.NewReader(c)
	var out []*http.Response
	for _, m := range methods {
		res, err := http.ReadResponse(br, &http.Request{Method: m})
		if err != nil {
			t.Fatalf("response %d: %v", len(out)+1, err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body = io.NopCloser(strings.NewReader(string(b)))
		out = append(out, res)
	}
	return out
}

func text(res *http.Response) string {
	b, _ := io.ReadAll(res.Body)
	return string(b)
}

var hello = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/chunked":
		io.WriteString(w, "part one, ")
		w.(http.Flusher).Flush()
		io.WriteString(w, "part two")
	case "/short":
		w.Header().Set("Content-Length", "10")
		io.WriteString(w, "abc")
	case "/nobody":
		w.WriteHeader(http.StatusNoContent)
	case "/inject":
		w.Header().Set("X-Bad", "a\r\nSet-Cookie: evil=1")
		io.WriteString(w, "ok")
	default:
		w.Header().Set("Content-Length", "5")
		io.WriteString(w, "hello")
	}
})

func TestFastAndFallback(t *testing.T) {
	_, addr := start(t, hello)
	tests := []struct {
		name, raw, via string
		status         int
	}{
		{"GET", "GET / HTTP/1.1\r\nHost: a\r\n\r\n", "fast", 200},
		{"HEAD", "HEAD / HTTP/1.1\r\nHost: a\r\n\r\n", "fast", 200},
		{"POST", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc", "net/http", 200},
		{"HTTP/1.0", "GET / HTTP/1.0\r\n\r\n", "net/http", 200},
		{"absolute-form", "GET http://a/ HTTP/1.1\r\nHost: a\r\n\r\n", "net/http", 200},
		{"no Host", "GET / HTTP/1.1\r\n\r\n", "", 400},
		// net/http folds obs-fold; the fast path stays out.
		{"obs-fold", "GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n", "net/http", 200},
		// net/http would let chunked framing win over Content-Length and
		// read on (RFC 9112 6.1 says close); the fast path refuses it.
		{"CL and TE", "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "", 400},
		{"bare LF", "GET / HTTP/1.1\r\nHost: a\r\n\n", "net/http", 200},
		{"bad method", "G@T / HTTP/1.1\r\nHost: a\r\n\r\n", "", 400},
	}
	for _, tt := range tests {
		method := strings.Fields(tt.raw)[0]
		res := exchange(t, addr, tt.raw, method)[0]
		if res.StatusCode != tt.status || res.Header.Get("X-Via") != tt.via {
			t.Errorf("%s: %d via %q, want %d via %q", tt.name, res.StatusCode, res.Header.Get("X-Via"), tt.status, tt.via)
		}
		if tt.status == 200 && method != "HEAD" && text(res) != "hello" {
			t.Errorf("%s: wrong body", tt.name)
		}
	}
}

func TestKeepAliveAndPipelining(t *testing.T) {
	_, addr := start(t, hello)
	raw := "GET / HTTP/1.1\r\nHost: a\r\n\r\nHEAD / HTTP/1.1\r\nHost: a\r\n\r\nGET /chunked HTTP/1.1\r\nHost: a\r\n\r\n" +
		"GET /nobody HTTP/1.1\r\nHost: a\r\n\r\nPOST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
	rs := exchange(t, addr, raw, "GET", "HEAD", "GET", "GET", "POST", "GET")
	want := []struct {
		status   int
		body     string
		via      string
		chunked  bool
		closeHdr bool
	}{
		{200, "hello", "fast", false, false},
		{200, "", "fast", false, false},
		{200, "part one, part two", "fast", true, false},
		{204, "", "fast", false, false},
		{200, "hello", "net/http", false, false}, // the rest of the connection is net/http's
		{200, "hello", "net/http", false, true},
	}
	for i, w := range want {
		r := rs[i]
		if r.StatusCode != w.status || text(r) != w.body || r.Header.Get("X-Via") != w.via ||
			(len(r.TransferEncoding) > 0) != w.chunked || r.Close != w.closeHdr {
			t.Errorf("response %d: %d %v %v close=%v", i+1, r.StatusCode, r.Header, r.TransferEncoding, r.Close)
		}
		if r.Header.Get("Date") == "" {
			t.Errorf("response %d has no Date", i+1)
		}
	}
}

// TestRequestStateIsFresh: the connection reuses its request state, so
// nothing of one request may show in the next: headers, URL, query.
func TestRequestStateIsFresh(t *testing.T) {
	_, addr := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var keys []string
		for k := range r.Header {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		fmt.Fprintf(w, "%s %s?%s %v %s", r.Method, r.URL.Path, r.URL.RawQuery, keys, r.Header.Get("X-B"))
	}))
	raw := "GET /a%20b?q=1 HTTP/1.1\r\nHost: a\r\nX-A: 1\r\nX-B: one\r\nX-B: two\r\n\r\n" +
		"HEAD /c HTTP/1.1\r\nHost: a\r\n\r\n" +
		"GET /d HTTP/1.1\r\nHost: a\r\nX-B: three\r\nConnection: close\r\n\r\n"
	rs := exchange(t, addr, raw, "GET", "HEAD", "GET")
	for i, want := range []string{"GET /a b?q=1 [X-A X-B] one", "", "GET /d? [Connection X-B] three"} {
		if got := text(rs[i]); got != want {
			t.Errorf("request %d saw %q, want %q", i+1, got, want)
		}
	}
}

func TestConnectionClose(t *testing.T) {
	_, addr := start(t, hello)
	c, _ := net.Dial("tcp", addr)
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
	b, err := io.ReadAll(c) // returns only once the server closes
	if err != nil || !strings.Contains(string(b), "Connection: close\r\n") || !strings.HasSuffix(string(b), "hello") {
		t.Fatalf("%q %v", b, err)
	}
}

func TestShortBodyClosesConnection(t *testing.T) {
	_, addr := start(t, hello)
	c, _ := net.Dial("tcp", addr)
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "GET /short HTTP/1.1\r\nHost: a\r\n\r\n")
	b, _ := io.ReadAll(c)
	if !strings.HasSuffix(string(b), "abc") {
		t.Fatalf("%q", b)
	}
}

func TestHeaderInjection(t *testing.T) {
	_, addr := start(t, hello)
	res := exchange(t, addr, "GET /inject HTTP/1.1\r\nHost: a\r\n\r\n", "GET")[0]
	if res.Header.Get("Set-Cookie") != "" {
		t.Fatal("a CR LF in a field value split the response")
	}
}

func TestLargeHeaderFallsBackTo431(t *testing.T) {
	_, addr := start(t, hello, func(s *Server) { s.MaxHeaderBytes = 1024; s.fallbackServer.MaxHeaderBytes = 1024 })
	res := exchange(t, addr, "GET / HTTP/1.1\r\nHost: a\r\nX: "+strings.Repeat("x", 8000)+"\r\n\r\n", "GET")[0]
	if res.StatusCode != 431 {
		t.Fatalf("%d", res.StatusCode)
	}
}

// TestHeadLimitHolds: a head a little over the limit, in many small
// fields, is refused even though the read buffer grows in size classes.
func TestHeadLimitHolds(t *testing.T) {
	_, addr := start(t, hello, func(s *Server) { s.MaxHeaderBytes = 32 << 10; s.fallbackServer.MaxHeaderBytes = 32 << 10 })
	res := exchange(t, addr, "GET / HTTP/1.1\r\nHost: a\r\n"+strings.Repeat("X-A: b\r\n", 5000)+"\r\n", "GET")[0]
	if res.StatusCode != 431 || res.Header.Get("X-Via") == "fast" {
		t.Fatalf("%d via %q", res.StatusCode, res.Header.Get("X-Via"))
	}
}

func TestSendfile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "big")
	data := strings.Repeat("0123456789", 300000)
	os.WriteFile(p, []byte(data), 0o644)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f, _ := os.Open(p)
		defer f.Close()
		w.Header().Set("Content-Length", "3000000")
		io.CopyN(w, f, 1000000) // a LimitedReader of an *os.File: sendfile
		io.Copy(w, f)
	})
	_, addr := start(t, h)
	res := exchange(t, addr, "GET / HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", "GET", "GET")
	for i, r := range res {
		if b := text(r); b != data {
			t.Fatalf("response %d: %d bytes", i+1, len(b))
		}
	}
}

func TestIdleTimeout(t *testing.T) {
	_, addr := start(t, hello, func(s *Server) { s.IdleTimeout = time.Millisecond })
	c, _ := net.Dial("tcp", addr)
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	b, err := io.ReadAll(c) // the reaper closes the idle connection
	if err != nil || !strings.HasSuffix(string(b), "hello") {
		t.Fatalf("%q %v", b, err)
	}
}

func TestSlowHeaderTimeout(t *testing.T) {
	_, addr := start(t, hello, func(s *Server) { s.ReadHeaderTimeout = time.Millisecond })
	c, _ := net.Dial("tcp", addr)
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, "GET / HTTP/1.1\r\nHost:") // and never finish
	if b, err := io.ReadAll(c); err != nil || len(b) != 0 {
		t.Fatalf("%q %v", b, err)
	}
}

func TestGracefulShutdown(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			close(entered)
			<-release
		}
		io.WriteString(w, "done")
	})
	s, addr := start(t, h)
	idle, _ := net.Dial("tcp", addr)
	defer idle.Close()
	idle.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(idle, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	br := bufio.NewReader(idle)
	if res, err := http.ReadResponse(br, nil); err != nil || text(res) != "done" {
		t.Fatal(err) // now a keep-alive connection between requests
	}
	fresh, _ := net.Dial("tcp", addr) // accepted, its request still to come
	defer fresh.Close()
	fresh.SetDeadline(time.Now().Add(10 * time.Second))
	busy, _ := net.Dial("tcp", addr)
	defer busy.Close()
	busy.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(busy, "GET /slow HTTP/1.1\r\nHost: a\r\n\r\n")
	<-entered

	stopped := make(chan error)
	go func() { stopped <- s.Shutdown(context.Background()) }()
	if _, err := io.ReadAll(br); err != nil { // the idle connection is closed
		t.Fatal(err)
	}
	if _, err := net.Dial("tcp", addr); err == nil {
		t.Error("still accepting after Shutdown")
	}
	// A connection accepted just before Shutdown is still served, and told
	// that the server closes it.
	io.WriteString(fresh, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	if res, err := http.ReadResponse(bufio.NewReader(fresh), nil); err != nil || text(res) != "done" || !res.Close {
		t.Fatalf("new connection during shutdown: %v", err)
	}
	close(release)
	res, err := http.ReadResponse(bufio.NewReader(busy), nil)
	if err != nil || text(res) != "done" {
		t.Fatalf("in-flight request: %v", err)
	}
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
}

func BenchmarkParse(b *testing.B) {
	req := []byte("GET /index.html HTTP/1.1\r\nHost: example.test\r\nUser-Agent: bench\r\nAccept: */*\r\nAccept-Encoding: gzip, br\r\n\r\n")
	b.ReportAllocs()
	for range b.N {
		parse(req)
	}
}

// TestConfigureFallbackOnce: a second ConfigureFallback would chain the
// fallback's hooks twice; it panics instead.
func TestConfigureFallbackOnce(t *testing.T) {
	s := &Server{}
	fb := &http.Server{}
	s.ConfigureFallback(fb)
	if fb.Handler == nil || fb.ConnContext == nil || fb.ConnState == nil {
		t.Fatal("ConfigureFallback left a hook of the fallback unset")
	}
	defer func() {
		if recover() == nil {
			t.Error("a second ConfigureFallback did not panic")
		}
	}()
	s.ConfigureFallback(&http.Server{})
}
