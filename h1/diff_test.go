package h1

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// diffHandler does what a static server does: a file with validators
// (conditional requests, ranges, HEAD) and 404 for the rest.
var diffHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/", "/end":
		w.Header().Set("ETag", `"v1"`)
		http.ServeContent(w, r, "index.html", time.Unix(1e9, 0), strings.NewReader("hello, world"))
	default:
		http.NotFound(w, r)
	}
})

const (
	get     = "GET / HTTP/1.1\r\nHost: a\r\n\r\n"
	head    = "HEAD / HTTP/1.1\r\nHost: a\r\n\r\n"
	noHost  = "GET / HTTP/1.1\r\n\r\n" // net/http: 400, close
	endConn = "GET /end HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
)

// diffCases are pipelined request sequences. The fast path must answer
// each as net/http does, except where ref differs: there a head with
// ambiguous framing, which net/http would serve and read on, is to be
// answered as net/http answers a request without Host (400 and close).
// Every sequence ends with endConn, whose response shows that the
// connection was still open.
var diffCases = []struct {
	name string
	reqs []string
	ref  []string // what net/http is sent instead; nil: reqs
}{
	{"GET, HEAD, 404, conditional, range", []string{get, head,
		"GET /missing HTTP/1.1\r\nHost: a\r\n\r\n",
		"HEAD /missing?x=1 HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nIf-None-Match: \"v1\"\r\n\r\n",
		"HEAD / HTTP/1.1\r\nHost: a\r\nIf-None-Match: *\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nRange: bytes=0-4\r\n\r\n",
		"GET /%68ello HTTP/1.1\r\nHost: a\r\n\r\n",
	}, nil},
	{"many small responses", append(
		strings.SplitAfter(strings.Repeat(head, 15), "\r\n\r\n")[:15],
		strings.SplitAfter(strings.Repeat("GET / HTTP/1.1\r\nHost: a\r\nIf-None-Match: *\r\n\r\n", 5), "\r\n\r\n")[:5]...,
	), nil},
	{"Connection: close", []string{get, "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", get}, nil},
	{"HTTP/1.0", []string{get, "GET / HTTP/1.0\r\nHost: a\r\n\r\n", get}, nil},
	{"HTTP/1.0 keep-alive", []string{"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", head}, nil},
	{"no Host", []string{get, noHost, get}, nil},
	{"bad method", []string{head, "G@T / HTTP/1.1\r\nHost: a\r\n\r\n", get}, nil},
	{"POST with a body", []string{get, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc", head}, nil},
	{"chunked POST", []string{"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", get}, nil},
	{"bare LF", []string{get, "GET / HTTP/1.1\r\nHost: a\r\n\n", "HEAD / HTTP/1.1\nHost: a\n\n", "GET /missing HTTP/1.1\r\nHost: a\r\n\r\n"}, nil},
	{"CL and TE",
		[]string{get, "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n"},
		[]string{get, noHost, "GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n"}},
	{"HTTP/1.0 with TE",
		[]string{head, "POST / HTTP/1.0\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", get},
		[]string{head, noHost, get}},
	{"bare LF, CL and TE",
		[]string{get, "POST / HTTP/1.1\nHost: a\nContent-Length: 5\nTransfer-Encoding: chunked\n\n0\r\n\r\n", get},
		[]string{get, noHost, get}},
}

// TestDifferential sends each sequence to the fast path split in two at
// every byte, and in single bytes, plain and over TLS (split at every
// tlsStride-th byte; -short: fewer splits), pipelined and waiting for the answers to complete
// requests before sending more, and compares the responses (status, the
// fields that matter, body, whether the connection stayed open) with
// what net/http answers to it whole. Over net.Pipe, each client write
// ends exactly one server read: no timing is involved.
func TestDifferential(t *testing.T) {
	_, dialFast := startPipe(t, diffHandler)
	_, dialTLS := startPipe(t, diffHandler, func(s *Server) {
		s.TLSConfig = &tls.Config{Certificates: []tls.Certificate{testCert(t)}}
	})
	// The reference closes after chunked requests too (closeAfterChunked).
	dialRef := startRef(t, closeAfterChunked(diffHandler))
	stride, tlsStride := 1, 7
	if testing.Short() {
		stride, tlsStride = 5, 31
	}
	for _, tc := range diffCases {
		ref := tc.ref
		if ref == nil {
			ref = tc.reqs
		}
		ref = append(ref[:len(ref):len(ref)], endConn)
		reqs := append(tc.reqs[:len(tc.reqs):len(tc.reqs)], endConn)
		want, err := converse(dialRef(), ref, [][]byte{[]byte(strings.Join(ref, ""))}, false)
		if err != nil {
			t.Fatalf("%s: net/http: %v", tc.name, err)
		}
		raw := []byte(strings.Join(reqs, ""))
		check := func(how string, c net.Conn, chunks [][]byte, interactive bool) {
			t.Helper()
			got, err := converse(c, reqs, chunks, interactive)
			if err != nil {
				t.Fatalf("%s, %s (interactive=%v): %v", tc.name, how, interactive, err)
			}
			if got != want {
				t.Fatalf("%s, %s (interactive=%v):\nfast path:\n%s\nnet/http:\n%s", tc.name, how, interactive, got, want)
			}
		}
		bytewise := make([][]byte, len(raw))
		for i := range raw {
			bytewise[i] = raw[i : i+1]
		}
		check("whole", dialFast(nil), [][]byte{raw}, false)
		for _, interactive := range []bool{false, true} {
			check("byte by byte", dialFast(nil), bytewise, interactive)
			check("TLS, byte by byte", tlsClient(t, dialTLS(nil)), bytewise, interactive)
			for p := 1; p < len(raw); p++ {
				split := [][]byte{raw[:p], raw[p:]}
				if p%stride == 0 {
					check(fmt.Sprintf("split at %d", p), dialFast(nil), split, interactive)
				}
				if p%tlsStride == 0 {
					check(fmt.Sprintf("TLS, split at %d", p), tlsClient(t, dialTLS(nil)), split, interactive)
				}
			}
		}
	}
}

// startRef serves h with a plain net/http Server over in-memory
// connections.
func startRef(t *testing.T, h http.Handler) func() net.Conn {
	ln := newChanListener()
	srv := &http.Server{Handler: h}
	done := make(chan struct{})
	go func() { srv.Serve(ln); close(done) }()
	t.Cleanup(func() { srv.Close(); ln.Close(); <-done })
	return func() net.Conn {
		s, c := net.Pipe()
		if !ln.give(s) {
			t.Fatal("net/http server closed")
		}
		t.Cleanup(func() { c.Close() })
		c.SetDeadline(time.Now().Add(10 * time.Second))
		return c
	}
}

func tlsClient(t *testing.T, c net.Conn) net.Conn {
	t.Helper()
	tc := tls.Client(c, &tls.Config{InsecureSkipVerify: true})
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	return tc
}

// converse writes chunks, one Write each, while it reads the responses
// to reqs until the server closes the connection, and describes them.
// Interactive, it sends a chunk only once it has the responses to every
// request the chunks before it completed, as a client that waits for
// an answer does: a server that holds a response back until more bytes
// come stalls it.
func converse(c net.Conn, reqs []string, chunks [][]byte, interactive bool) (string, error) {
	// need[i]: the requests complete when chunks[:i+1] are sent.
	need := make([]int, len(chunks))
	for i, sent, done, end := 0, 0, 0, len(reqs[0]); i < len(chunks); i++ {
		for sent += len(chunks[i]); done < len(reqs) && end <= sent; done++ {
			if done+1 < len(reqs) {
				end += len(reqs[done+1])
			}
		}
		need[i] = done
	}
	// The reader reports how many responses it has; the writer waits for
	// them, and never the other way round: the server may answer before
	// a request is complete (a 400), and a pipe holds nothing back.
	read, wrote := make(chan int, len(reqs)+1), make(chan struct{})
	go func() {
		defer close(wrote)
		got := 0
		for i, b := range chunks {
			for interactive && i > 0 && got < need[i-1] {
				n, ok := <-read
				if !ok {
					return // the reader is done: the server closed
				}
				got = n
			}
			if _, err := c.Write(b); err != nil {
				return // the server closed: what it did not read is dropped
			}
		}
	}()
	defer func() { close(read); c.Close(); <-wrote }()
	var out strings.Builder
	br := bufio.NewReader(c)
	for n, r := range reqs {
		read <- n
		if _, err := br.Peek(1); errors.Is(err, io.EOF) || errors.Is(err, io.ErrClosedPipe) {
			break // closed between responses
		}
		method, _, _ := strings.Cut(r, " ")
		res, err := http.ReadResponse(br, &http.Request{Method: method})
		if err != nil {
			return out.String(), fmt.Errorf("response %d: %w", n+1, err)
		}
		body, err := io.ReadAll(res.Body)
		if err != nil {
			return out.String(), err
		}
		if res.StatusCode == http.StatusBadRequest {
			body = nil // net/http says why; the fast path does not
		}
		fmt.Fprintf(&out, "%d close=%v body=%q", res.StatusCode, res.Close, body)
		for _, k := range []string{"Content-Type", "Etag", "Last-Modified", "Accept-Ranges", "Content-Range", "X-Content-Type-Options"} {
			if v := res.Header.Get(k); v != "" {
				fmt.Fprintf(&out, " %s=%q", k, v)
			}
		}
		out.WriteString("\n")
	}
	rest, err := io.ReadAll(br)
	if err != nil && !errors.Is(err, io.ErrClosedPipe) {
		return out.String(), err
	}
	fmt.Fprintf(&out, "closed; then %q", rest)
	return out.String(), nil
}
