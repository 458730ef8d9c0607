package h2

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// rawConn is an HTTP/2 client that writes frames as the test says.
type rawConn struct {
	t   testing.TB
	c   *tls.Conn
	fr  *http2.Framer
	enc *hpack.Encoder
	buf bytes.Buffer
	// outcomes holds what outcome read for streams other than the one
	// it waited for: the server answers in any order.
	outcomes map[uint32]string
}

// smallBuffers gives the sockets of start's server and of dialRaw's
// client small buffers, so that the server's answers back up after a
// few KB when the client reads nothing.
var smallBuffers atomic.Bool

func dialRaw(t testing.TB, addr string, settings ...http2.Setting) *rawConn {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	if smallBuffers.Load() {
		// The server's answers back up after a few KB.
		nc.(*net.TCPConn).SetReadBuffer(4096)
	}
	c := tls.Client(nc, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"h2"}})
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(20 * time.Second))
	io.WriteString(c, http2.ClientPreface)
	r := &rawConn{t: t, c: c, fr: http2.NewFramer(c, c)}
	r.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	r.enc = hpack.NewEncoder(&r.buf)
	r.fr.WriteSettings(settings...)
	return r
}

// headers encodes a GET of https://localhost/ with the extra fields
// (name, value, ...).
func (r *rawConn) headers(extra ...string) []byte {
	return r.block(append([]string{":method", "GET", ":scheme", "https", ":authority", "localhost", ":path", "/"}, extra...)...)
}

// block encodes the fields (name, value, ...) as they are.
func (r *rawConn) block(fields ...string) []byte {
	r.buf.Reset()
	for i := 0; i < len(fields); i += 2 {
		r.enc.WriteField(hpack.HeaderField{Name: fields[i], Value: fields[i+1]})
	}
	return r.buf.Bytes()
}

func (r *rawConn) request(id uint32, extra ...string) {
	r.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: r.headers(extra...), EndStream: true, EndHeaders: true})
}

// goAway reads until the server's GOAWAY and returns its code; false:
// the connection ended without one.
func (r *rawConn) goAway() (http2.ErrCode, bool) {
	for {
		f, err := r.fr.ReadFrame()
		if err != nil {
			return 0, false
		}
		if g, ok := f.(*http2.GoAwayFrame); ok {
			return g.ErrCode, true
		}
	}
}

// TestRapidReset: a client that opens streams and resets them at once
// (CVE-2023-44487) never has more than MaxConcurrentStreams handlers
// running, and is cut off with ENHANCE_YOUR_CALM after resetBudget
// resets beyond what it was answered.
func TestRapidReset(t *testing.T) {
	var running, peak atomic.Int32
	var served atomic.Int32
	release := make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := running.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		served.Add(1)
		<-release
		running.Add(-1)
	})
	addr := start(t, &Server{}, h)
	defer close(release)
	r := dialRaw(t, addr)
	go func() {
		for id := uint32(1); id < 20000; id += 2 {
			r.request(id)
			if r.fr.WriteRSTStream(id, http2.ErrCodeCancel) != nil {
				return
			}
		}
	}()
	code, ok := r.goAway()
	if !ok || code != http2.ErrCodeEnhanceYourCalm {
		t.Fatalf("GOAWAY %v %v, want ENHANCE_YOUR_CALM", code, ok)
	}
	if p := peak.Load(); p > defaultMaxConcurrentStreams {
		t.Errorf("%d handlers at once, want at most %d", p, defaultMaxConcurrentStreams)
	}
	t.Logf("closed after %d handlers started; at most %d running at once", served.Load(), peak.Load())
}

// TestContinuationFlood: endless CONTINUATION frames, empty or not, end
// the connection once the header block passes maxHeaderBlock bytes
// (CVE-2024-27316 class), with nothing decoded kept.
func TestContinuationFlood(t *testing.T) {
	for _, size := range []int{0, 1000} {
		srv := &Server{MaxHeaderBytes: 4096}
		addr := start(t, srv, http.NotFoundHandler())
		r := dialRaw(t, addr)
		r.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: r.headers(), EndStream: true})
		frag := make([]byte, size)
		for i := range frag {
			frag[i] = 0x40 // literal with incremental indexing, new name: a field per byte pair
		}
		sent := 0
		go func() {
			for sent < 50<<20 {
				if r.fr.WriteContinuation(1, false, frag) != nil {
					return
				}
				sent += 9 + size
			}
		}()
		code, ok := r.goAway()
		if !ok {
			t.Fatalf("fragments of %d bytes: the connection ended without GOAWAY", size)
		}
		if code != http2.ErrCodeEnhanceYourCalm && code != http2.ErrCodeProtocol && code != http2.ErrCodeCompression {
			t.Errorf("fragments of %d bytes: GOAWAY %v", size, code)
		}
		t.Logf("fragments of %d bytes: GOAWAY %v within %d bytes of header block (bound %d)", size, code, 2*4096+16384+64, 2*4096+16384+64)
	}
}

// TestHeaderListTooLarge: a header list over MaxHeaderBytes is answered
// 431 (HPACK-decoded size, RFC 9113 6.5.2); an HPACK bomb, a field
// indexed over and over from the 4 KiB table, is bounded the same way.
func TestHeaderListTooLarge(t *testing.T) {
	addr := start(t, &Server{MaxHeaderBytes: 8192}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	// Three fields of 3000 bytes: each fits, the list does not.
	r := dialRaw(t, addr)
	block := r.headers("x-a", strings.Repeat("a", 3000), "x-b", strings.Repeat("b", 3000), "x-c", strings.Repeat("c", 3000))
	r.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block, EndStream: true, EndHeaders: true})
	if s := r.outcome(1); s != "431" {
		t.Errorf("9000 bytes of fields: status %s, want 431", s)
	}
	// The bomb: one 4000-byte field in the table, then 100 references
	// to it (1 byte each): 400 KB decoded from 4 KB sent.
	r = dialRaw(t, addr)
	r.buf.Reset()
	for _, f := range [][2]string{{":method", "GET"}, {":scheme", "https"}, {":authority", "localhost"}, {":path", "/"}} {
		r.enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	r.enc.WriteField(hpack.HeaderField{Name: "x-bomb", Value: strings.Repeat("b", 4000)})
	block = append([]byte(nil), r.buf.Bytes()...)
	for range 100 {
		block = append(block, 0x80|62) // indexed: the newest dynamic entry
	}
	r.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block, EndStream: true, EndHeaders: true})
	if s := r.outcome(1); s != "431" {
		t.Errorf("bomb: status %s, want 431", s)
	}
}

// TestControlFloods: a client that sends SETTINGS or PING frames and
// reads none of the acknowledgements gets few of its frames read: the
// server writes the acknowledgements before it reads on, at most
// maxPendingWrite bytes of them queue, and the write timeout ends the
// connection. Over a net.Pipe, which buffers nothing, the numbers are
// exact.
func TestControlFloods(t *testing.T) {
	for _, kind := range []string{"ping", "settings"} {
		srv := &Server{WriteTimeout: 500 * time.Millisecond, Handler: http.NotFoundHandler()}
		client, server := net.Pipe()
		done := make(chan struct{})
		go func() {
			srv.ServeConn(context.Background(), server, nil, "192.0.2.1:1")
			close(done)
		}()
		go func() {
			// The server's SETTINGS, then nothing more is read.
			http2.NewFramer(nil, client).ReadFrame()
		}()
		io.WriteString(client, http2.ClientPreface)
		fr := http2.NewFramer(client, nil)
		fr.WriteSettings()
		sent := 0
		for ; sent < 1_000_000; sent++ {
			var err error
			if kind == "ping" {
				err = fr.WritePing(false, [8]byte{byte(sent)})
			} else {
				err = fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: uint32(sent % 1000)})
			}
			if err != nil {
				break // the server closed the connection
			}
		}
		<-done
		client.Close()
		// The server reads no more once a write of acknowledgements
		// waits on the client: at most what its 16 KiB buffer took.
		if max := 2 * 16384 / 9; sent > max {
			t.Errorf("%s: %d frames read before the server stopped, want at most %d", kind, sent, max)
		}
		if peak := srv.maxPendingSeen.Load(); peak > maxPendingWrite+64 {
			t.Errorf("%s: %d bytes queued, want at most %d", kind, peak, maxPendingWrite+64)
		}
		t.Logf("%s: %d frames read, %d bytes queued at most, closed by the write timeout", kind, sent, srv.maxPendingSeen.Load())
	}
}

// TestZeroWindowStall: a client that never opens its window holds a
// worker only until WriteTimeout, when its stream is reset; the handler
// returns and the worker is free again.
func TestZeroWindowStall(t *testing.T) {
	done := make(chan error, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, err := w.Write(make([]byte, 1<<20))
		done <- err
	})
	srv := &Server{WriteTimeout: 500 * time.Millisecond, Workers: 1}
	addr := start(t, srv, h)
	r := dialRaw(t, addr, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 0})
	r.request(1)
	var code http2.ErrCode
	for {
		f, err := r.fr.ReadFrame()
		if err != nil {
			t.Fatal(err)
		}
		if rst, ok := f.(*http2.RSTStreamFrame); ok {
			code = rst.ErrCode
			break
		}
		if df, ok := f.(*http2.DataFrame); ok && len(df.Data()) > 0 {
			t.Fatal("DATA sent into a closed window")
		}
	}
	if err := <-done; err == nil {
		t.Error("the stalled write succeeded")
	}
	if code != http2.ErrCodeInternal {
		t.Errorf("RST_STREAM %v", code)
	}
	// The only worker is free: a normal request on another connection.
	c := client(addr)
	go func() { <-done }()
	resp, err := c.Get("https://localhost/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
}

// TestMaxConcurrentStreams: a stream past the advertised limit is
// refused, and the connection goes on.
func TestMaxConcurrentStreams(t *testing.T) {
	release := make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-release })
	addr := start(t, &Server{MaxConcurrentStreams: 3}, h)
	defer close(release)
	r := dialRaw(t, addr)
	// Wait for the server's SETTINGS and acknowledge them.
	for {
		f, err := r.fr.ReadFrame()
		if err != nil {
			t.Fatal(err)
		}
		if s, ok := f.(*http2.SettingsFrame); ok && !s.IsAck() {
			r.fr.WriteSettingsAck()
			break
		}
	}
	for id := uint32(1); id <= 9; id += 2 {
		r.request(id)
	}
	var refused []uint32
	for len(refused) < 2 {
		f, err := r.fr.ReadFrame()
		if err != nil {
			t.Fatal(err)
		}
		if rst, ok := f.(*http2.RSTStreamFrame); ok {
			if rst.ErrCode != http2.ErrCodeProtocol && rst.ErrCode != http2.ErrCodeRefusedStream {
				t.Errorf("stream %d: %v", rst.StreamID, rst.ErrCode)
			}
			refused = append(refused, rst.StreamID)
		}
	}
	if refused[0] != 7 || refused[1] != 9 {
		t.Errorf("refused %v, want streams 7 and 9", refused)
	}
}

// TestEmptyDataFlood: DATA frames without payload or END_STREAM end the
// connection after maxEmptyFrames.
func TestEmptyDataFlood(t *testing.T) {
	release := make(chan struct{})
	addr := start(t, &Server{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-release }))
	defer close(release)
	r := dialRaw(t, addr)
	r.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: r.headers(), EndHeaders: true})
	go func() {
		for range 10 * maxEmptyFrames {
			if r.fr.WriteData(1, false, nil) != nil {
				return
			}
		}
	}()
	if code, ok := r.goAway(); !ok || code != http2.ErrCodeEnhanceYourCalm {
		t.Errorf("GOAWAY %v %v, want ENHANCE_YOUR_CALM", code, ok)
	}
}

// TestStalledWindowsDoNotStarveWorkers: a client that opens streams and
// never opens their flow-control windows takes every worker; while they
// are all busy, its stalled responses are reset after stalledUnderLoad
// (ENHANCE_YOUR_CALM), not at WriteTimeout, so another client's response
// that needs a worker is answered (an attacker's review found one client
// holding all 1,024 workers for the whole 60 s write timeout).
func TestStalledWindowsDoNotStarveWorkers(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write(make([]byte, 256<<10)) // more than the initial window: needs a worker to wait
	})
	addr := start(t, &Server{WriteTimeout: time.Hour, Workers: 2}, h)
	r := dialRaw(t, addr, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 0})
	r.request(1)
	r.request(3)
	r.request(5) // its reader waits for a worker too
	got := make(chan *http.Response, 1)
	errc := make(chan error, 1)
	go func() {
		resp, err := client(addr).Get("https://localhost/")
		if err != nil {
			errc <- err
			return
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		got <- resp
	}()
	r.c.SetReadDeadline(time.Now().Add(30 * time.Second)) // a guard: without the reset, no RST comes
	calm := 0
	for calm == 0 {
		f, err := r.fr.ReadFrame()
		if err != nil {
			t.Fatal("no ENHANCE_YOUR_CALM reset of the stalled streams:", err)
		}
		if rst, ok := f.(*http2.RSTStreamFrame); ok && rst.ErrCode == http2.ErrCodeEnhanceYourCalm {
			calm++
		}
	}
	select {
	case resp := <-got:
		if resp.StatusCode != 200 {
			t.Errorf("the other client: %d", resp.StatusCode)
		}
	case err := <-errc:
		t.Fatalf("the other client was not answered (the client's timeout is 20 s, WriteTimeout an hour): %v", err)
	}
}

// TestHPACKTableBound: the request decoder's dynamic table stays at
// 4 KiB; a client that announces a larger one in its header block (a
// dynamic table size update, RFC 7541 6.3) to make the server keep more
// of its fields is cut off with COMPRESSION_ERROR.
func TestHPACKTableBound(t *testing.T) {
	addr := start(t, &Server{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	r := dialRaw(t, addr)
	r.enc.SetMaxDynamicTableSizeLimit(1 << 20)
	r.enc.SetMaxDynamicTableSize(1 << 20)
	r.request(1, "x-fill", strings.Repeat("f", 8000))
	if code, ok := r.goAway(); !ok || code != http2.ErrCodeCompression {
		t.Fatalf("GOAWAY %v %v, want COMPRESSION_ERROR", code, ok)
	}
}
