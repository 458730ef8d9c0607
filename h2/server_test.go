package h2

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

var testCert = sync.OnceValue(func() tls.Certificate {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "localhost"},
		DNSNames: []string{"localhost"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		panic(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
})

// start serves h with srv over TLS on a loopback listener, as h1 hands
// h2 connections over, and returns the address.
func start(t testing.TB, srv *Server, h http.Handler) string {
	t.Helper()
	srv.Handler = h
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{testCert()}, NextProtos: []string{"h2"}}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			if smallBuffers.Load() {
				nc.(*net.TCPConn).SetWriteBuffer(4096)
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				tc := tls.Server(nc, cfg)
				if tc.Handshake() != nil {
					nc.Close()
					return
				}
				st := tc.ConnectionState()
				srv.ServeConn(context.Background(), tc, &st, nc.RemoteAddr().String())
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		srv.Close()
		wg.Wait()
	})
	return ln.Addr().String()
}

func client(addr string) *http.Client {
	return &http.Client{Transport: &http2.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"h2"}},
		DialTLSContext: func(ctx context.Context, network, _ string, cfg *tls.Config) (net.Conn, error) {
			return tls.Dial(network, addr, cfg)
		},
	}, Timeout: 20 * time.Second}
}

func get(t *testing.T, c *http.Client, method, url string, body io.Reader) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, body)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

func testHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/small", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprintf(w, "hello %s %s %v", r.Host, r.Proto, r.TLS != nil)
	})
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "1048576")
		io.Copy(w, io.LimitReader(repeatReader('x'), 1<<20))
	})
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		io.Copy(w, r.Body)
	})
	mux.HandleFunc("/deadline", func(w http.ResponseWriter, r *http.Request) {
		// A response stalled past the stream's first deadline goes on
		// once the handler moves it, as serve does for large files.
		rc := http.NewResponseController(w)
		if err := rc.SetWriteDeadline(time.Now().Add(10 * time.Second)); err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		time.Sleep(1500 * time.Millisecond) // past the server's WriteTimeout of 1 s
		io.WriteString(w, "late")
	})
	mux.HandleFunc("/304", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Etag", `"x"`)
		w.WriteHeader(http.StatusNotModified)
	})
	mux.HandleFunc("/hdr", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "close")
		w.Header().Set("X-Cookie", r.Header.Get("Cookie"))
		w.Header().Set("X-Length", fmt.Sprint(r.ContentLength))
	})
	return mux
}

type repeatReader byte

func (r repeatReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(r)
	}
	return len(p), nil
}

func TestServe(t *testing.T) {
	addr := start(t, &Server{WriteTimeout: time.Second}, testHandler())
	c := client(addr)
	base := "https://localhost"
	resp, body := get(t, c, "GET", base+"/small", nil)
	if resp.StatusCode != 200 || body != "hello localhost HTTP/2.0 true" || resp.Header.Get("Content-Length") != "29" || resp.Header.Get("Date") == "" {
		t.Errorf("small: %d %q %v", resp.StatusCode, body, resp.Header)
	}
	resp, body = get(t, c, "HEAD", base+"/small", nil)
	if resp.StatusCode != 200 || body != "" {
		t.Errorf("HEAD: %d %q", resp.StatusCode, body)
	}
	resp, body = get(t, c, "GET", base+"/big", nil)
	if len(body) != 1<<20 || strings.Trim(body, "x") != "" {
		t.Errorf("big: %d bytes", len(body))
	}
	payload := strings.Repeat("y", 300<<10) // past every window: WINDOW_UPDATE both ways
	resp, body = get(t, c, "POST", base+"/echo", strings.NewReader(payload))
	if body != payload {
		t.Errorf("echo: %d bytes", len(body))
	}
	resp, body = get(t, c, "GET", base+"/304", nil)
	if resp.StatusCode != 304 || body != "" || resp.Header.Get("Etag") != `"x"` {
		t.Errorf("304: %d %q %v", resp.StatusCode, body, resp.Header)
	}
	resp, body = get(t, c, "GET", base+"/deadline", nil)
	if resp.StatusCode != 200 || body != "late" {
		t.Errorf("deadline: %d %q", resp.StatusCode, body)
	}
	req, _ := http.NewRequest("GET", base+"/hdr", nil)
	req.Header.Add("Cookie", "a=1")
	req.Header.Add("Cookie", "b=2")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Header.Get("Connection") != "" || resp.Header.Get("X-Cookie") != "a=1; b=2" || resp.Header.Get("X-Length") != "0" {
		t.Errorf("hdr: %v", resp.Header)
	}
}

// TestConcurrentStreams runs 300 requests at once: more than
// MaxConcurrentStreams, so the client opens more connections, and no
// connection has more than 10 handlers running.
func TestConcurrentStreams(t *testing.T) {
	var mu sync.Mutex
	running, peak := map[string]int{}, 0
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		running[r.RemoteAddr]++
		peak = max(peak, running[r.RemoteAddr])
		mu.Unlock()
		w.Write(bytes.Repeat([]byte{'z'}, 20000))
		mu.Lock()
		running[r.RemoteAddr]--
		mu.Unlock()
	})
	addr := start(t, &Server{MaxConcurrentStreams: 10}, h)
	c := client(addr)
	// One request first: the client then knows the limit from SETTINGS.
	get(t, c, "GET", "https://localhost/", nil)
	var wg sync.WaitGroup
	errs := make(chan error, 300)
	for range 300 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := c.Get("https://localhost/")
			if err != nil {
				errs <- err
				return
			}
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || len(b) != 20000 {
				errs <- fmt.Errorf("%d bytes, %v", len(b), err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if peak > 10 {
		t.Errorf("%d handlers at once on a connection, want at most 10", peak)
	}
}

// TestShutdownFinishesStreams: Shutdown sends GOAWAY, the stream in
// flight finishes, and the connection then closes.
func TestShutdownFinishesStreams(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-release
		io.WriteString(w, "done")
	})
	srv := &Server{}
	addr := start(t, srv, h)
	c := client(addr)
	got := make(chan string, 1)
	go func() {
		resp, err := c.Get("https://localhost/")
		if err != nil {
			got <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		got <- string(b)
	}()
	<-entered
	shut := make(chan error, 1)
	go func() { shut <- srv.Shutdown(context.Background()) }()
	for {
		srv.mu.Lock()
		var sent bool
		for c := range srv.conns {
			c.mu.Lock()
			sent = c.goAwaySent
			c.mu.Unlock()
		}
		srv.mu.Unlock()
		if sent {
			break
		}
		time.Sleep(time.Millisecond)
	}
	close(release)
	if b := <-got; b != "done" {
		t.Errorf("in-flight response: %q", b)
	}
	if err := <-shut; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
}

// TestIdleTimeout: a connection with no stream open gets GOAWAY
// NO_ERROR after IdleTimeout, and closes.
func TestIdleTimeout(t *testing.T) {
	addr := start(t, &Server{IdleTimeout: 300 * time.Millisecond}, testHandler())
	r := dialRaw(t, addr)
	r.request(1) // "/": 404 from testHandler
	if s := r.outcome(1); s != "404" {
		t.Fatalf("status %q", s)
	}
	if code, ok := r.goAway(); !ok || code != http2.ErrCodeNo {
		t.Errorf("GOAWAY %v %v, want NO_ERROR", code, ok)
	}
}

// requestPath opens stream id with a GET of path on r.
func (r *rawConn) requestPath(id uint32, path string) {
	r.buf.Reset()
	for _, f := range [][2]string{{":method", "GET"}, {":scheme", "https"}, {":authority", "localhost"}, {":path", path}} {
		r.enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	r.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: r.buf.Bytes(), EndStream: true, EndHeaders: true})
}

// readUntilEnd reads frames until stream id ends, adding up the DATA of
// every stream in got.
func (r *rawConn) readUntilEnd(id uint32, got map[uint32]int) {
	r.t.Helper()
	for {
		f, err := r.fr.ReadFrame()
		if err != nil {
			r.t.Fatal(err)
		}
		switch f := f.(type) {
		case *http2.DataFrame:
			got[f.StreamID] += len(f.Data())
			if f.StreamEnded() && f.StreamID == id {
				return
			}
		case *http2.MetaHeadersFrame:
			if f.StreamEnded() && f.StreamID == id {
				return
			}
		case *http2.RSTStreamFrame, *http2.GoAwayFrame:
			r.t.Fatalf("%v", f)
		}
	}
}

// TestCachedBodyParksOnWindow: a response from memory larger than the
// client's window goes out as far as the window allows; the stream
// then waits off the connection's reader (one hand-over), so that a
// second stream is answered in full meanwhile, and it ends once the
// client opens its window.
func TestCachedBodyParksOnWindow(t *testing.T) {
	big := bytes.Repeat([]byte{'b'}, 100<<10)
	mux := http.NewServeMux()
	mux.Handle("/big", cachedPage(big))
	mux.Handle("/small", cachedPage(make([]byte, 1024)))
	srv := &Server{}
	addr := start(t, srv, mux)
	r := dialRaw(t, addr, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 2000})
	r.requestPath(1, "/big")
	r.requestPath(3, "/small")
	got := map[uint32]int{}
	r.readUntilEnd(3, got)
	if got[3] != 1024 || got[1] > 2000 {
		t.Fatalf("before WINDOW_UPDATE: stream 1 got %d bytes (window 2000), stream 3 %d of 1024", got[1], got[3])
	}
	r.fr.WriteWindowUpdate(0, 1<<20)
	r.fr.WriteWindowUpdate(1, 1<<20)
	r.readUntilEnd(1, got)
	if got[1] != len(big) {
		t.Fatalf("stream 1 got %d bytes, want %d", got[1], len(big))
	}
	if n := srv.handoffs.Load(); n != 1 {
		t.Errorf("%d hand-overs of the reader, want 1", n)
	}
}

// TestSlowHandlerLeavesReader: a handler that waits (as an auth hash
// or a file read does) hands the connection's reading over after
// InlineLimit, so that the next stream is answered while it waits.
func TestSlowHandlerLeavesReader(t *testing.T) {
	release := make(chan struct{})
	mux := http.NewServeMux()
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		<-release
		io.WriteString(w, "slow")
	})
	mux.Handle("/small", cachedPage(make([]byte, 1024)))
	srv := &Server{}
	addr := start(t, srv, mux)
	slowHandedOver(t, srv, addr, release)
}

// TestIdleWorkersLeaveRoom: workers waiting in the pool for work run no
// handler, so they neither refuse a handler the reader hands over nor
// count as a saturated pool (which resets stalled responses sooner):
// with Workers 2, both started and idle, a slow handler still leaves
// the reader and the next stream is answered.
func TestIdleWorkersLeaveRoom(t *testing.T) {
	release := make(chan struct{})
	var both sync.WaitGroup
	both.Add(2)
	mux := http.NewServeMux()
	mux.HandleFunc("/post", func(w http.ResponseWriter, r *http.Request) {
		both.Done()
		both.Wait() // both requests on a worker at once: two workers started
	})
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		<-release
		io.WriteString(w, "slow")
	})
	mux.Handle("/small", cachedPage(make([]byte, 1024)))
	srv := &Server{Workers: 2}
	addr := start(t, srv, mux)
	c := client(addr)
	var posts sync.WaitGroup
	for range 2 {
		posts.Add(1)
		go func() {
			defer posts.Done()
			resp, err := c.Post("https://localhost/post", "text/plain", strings.NewReader("body"))
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
		}()
	}
	posts.Wait()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		srv.qmu.Lock()
		running, idle := srv.running, srv.idle
		srv.qmu.Unlock()
		if running == 2 && idle == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d workers running, %d idle; want 2 and 2", running, idle)
		}
	}
	if srv.saturated() {
		t.Error("two idle workers of two count as a saturated pool")
	}
	slowHandedOver(t, srv, addr, release)
}

// slowHandedOver requests /slow (held until release is closed) then
// /small on one connection: /small is answered while /slow waits, its
// handler handed over from the reader once.
func slowHandedOver(t *testing.T, srv *Server, addr string, release chan struct{}) {
	t.Helper()
	r := dialRaw(t, addr)
	r.requestPath(1, "/slow")
	r.requestPath(3, "/small")
	got := map[uint32]int{}
	r.readUntilEnd(3, got)
	close(release)
	r.readUntilEnd(1, got)
	if got[1] != 4 || got[3] != 1024 {
		t.Fatalf("got %v", got)
	}
	if n := srv.handoffs.Load(); n != 1 {
		t.Errorf("%d hand-overs of the reader, want 1", n)
	}
}
