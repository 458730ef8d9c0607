package h1

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// startPipe serves h on the fast path (net/http as fallback) over
// in-memory connections: dial returns the client end of a new one. A
// net.Pipe delivers each client Write to the server's Reads alone, so a
// test decides exactly where the server's reads end, and a server Write
// blocks until the client reads it, as a full socket would.
func startPipe(t *testing.T, h http.Handler, configure ...func(*Server)) (s *Server, dial func(wrap func(net.Conn) net.Conn) net.Conn) {
	t.Helper()
	ln := newChanListener()
	s = &Server{Handler: h}
	s.ConfigureFallback(&http.Server{Handler: h})
	for _, f := range configure {
		f(s)
	}
	done := make(chan struct{})
	go func() { s.Serve(ln); close(done) }()
	t.Cleanup(func() { s.Close(); <-done })
	dial = func(wrap func(net.Conn) net.Conn) net.Conn {
		srv, cli := net.Pipe()
		var sc net.Conn = srv
		if wrap != nil {
			sc = wrap(srv)
		}
		if !ln.give(sc) {
			t.Fatal("server closed")
		}
		t.Cleanup(func() { cli.Close() })
		cli.SetDeadline(time.Now().Add(20 * time.Second))
		return cli
	}
	return s, dial
}

// watchConn counts what the server reads and writes, and reports its
// first write.
type watchConn struct {
	net.Conn
	read, written atomic.Int64
	maxWrite      atomic.Int64
	firstWrite    chan int64 // bytes read when the server first wrote
}

func (c *watchConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.read.Add(int64(n))
	return n, err
}

func (c *watchConn) Write(p []byte) (int, error) {
	if int64(len(p)) > c.maxWrite.Load() {
		c.maxWrite.Store(int64(len(p))) // only the serving goroutine writes
	}
	select {
	case c.firstWrite <- c.read.Load():
	default:
	}
	n, err := c.Conn.Write(p)
	c.written.Add(int64(n))
	return n, err
}

// TestPipelinedOutputIsBounded: a client that pipelines thousands of HEAD
// requests, every write ending in the middle of a request, and does not
// read, gets its responses written as they come, and the server stops
// reading while they are not taken. Before, none was written until a
// read happened to end between requests (here: the very last), so the
// responses piled up in the connection's buffer without bound.
//
// The bound: the server never holds more than writeBufSize (4 KiB) plus
// one response of output (every write is at most that, and the response
// buffer's capacity stays within 2*writeBufSize), and it has read at
// most two read buffers (8 KiB) of requests when its first write blocks
// on the client that does not read.
func TestPipelinedOutputIsBounded(t *testing.T) {
	s, dial := startPipe(t, hello)
	w := &watchConn{firstWrite: make(chan int64, 1)}
	c := dial(func(nc net.Conn) net.Conn { w.Conn = nc; return w })

	const n = 20000
	req := "HEAD / HTTP/1.1\r\nHost: a\r\n\r\n"
	stream := strings.Repeat(req, n)
	// Writes of half a request, then of 1, 4 and 61 requests' length
	// (61 responses are more than writeBufSize), and so on: every one
	// ends mid-request but the last.
	var chunks []string
	for rest, i := stream, 0; len(rest) > 0; i++ {
		size := len(req) / 2
		if i > 0 {
			size = []int{1, 4, 61}[i%3] * len(req)
		}
		size = min(size, len(rest))
		chunks = append(chunks, rest[:size])
		rest = rest[size:]
	}
	wrote := make(chan error, 1)
	go func() {
		for _, ch := range chunks {
			if _, err := io.WriteString(c, ch); err != nil {
				wrote <- err
				return
			}
		}
		wrote <- nil
	}()

	// The server's first write blocks: nobody reads yet. Until it
	// returns, the server's state holds still.
	readAhead := <-w.firstWrite
	if readAhead > 2*readBufSize {
		t.Errorf("the server read %d bytes of requests before its first write; want <= %d", readAhead, 2*readBufSize)
	}
	s.mu.Lock()
	for sc := range s.conns {
		if got := cap(sc.w.buf); got > 2*writeBufSize {
			t.Errorf("response buffer capacity %d, want <= %d", got, 2*writeBufSize)
		}
	}
	s.mu.Unlock()

	br := bufio.NewReader(c)
	head := &http.Request{Method: http.MethodHead}
	for i := range n {
		res, err := http.ReadResponse(br, head)
		if err != nil {
			t.Fatalf("response %d: %v", i+1, err)
		}
		if res.StatusCode != 200 {
			t.Fatalf("response %d: %d", i+1, res.StatusCode)
		}
	}
	if err := <-wrote; err != nil {
		t.Fatal(err)
	}
	c.Close()
	one := w.written.Load() / n // every response is the same size
	if got, bound := w.maxWrite.Load(), int64(writeBufSize)+one; got > bound {
		t.Errorf("largest write %d bytes, want <= %d (writeBufSize plus one response)", got, bound)
	}
}

// TestCompleteRequestAnsweredBeforePartial: a complete request followed
// by the start of the next is answered without waiting for the rest, as
// net/http does.
func TestCompleteRequestAnsweredBeforePartial(t *testing.T) {
	for _, method := range []string{"GET", "HEAD"} {
		_, dial := startPipe(t, hello)
		c := dial(nil)
		go io.WriteString(c, method+" / HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHo")
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		res, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: method})
		if err != nil {
			t.Fatalf("%s: %v", method, err)
		}
		if res.StatusCode != 200 {
			t.Fatalf("%s: %d", method, res.StatusCode)
		}
	}
}
