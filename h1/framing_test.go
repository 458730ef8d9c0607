package h1

import (
	"bufio"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// badFramingHeads have body framing that RFC 9112 6.1 says to treat as
// an error, closing the connection after the response.
var badFramingHeads = map[string]string{
	"CL and TE":            "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
	"POST TE and CL":       "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n",
	"HTTP/1.0 TE":          "GET / HTTP/1.0\r\nHost: a\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
	"bare LF, CL and TE":   "POST / HTTP/1.1\nHost: a\nContent-Length: 5\nTransfer-Encoding: chunked\n\n0\r\n\r\n",
	"CRLF LF, CL and TE":   "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\n0\r\n\r\n",
	"HTTP/1.0 TE, no CL":   "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
	"TE obs-fold and CL":   "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n",
	"lower-case CL and TE": "GET / HTTP/1.1\r\nHost: a\r\ncontent-length: 5\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n",
}

// TestBadFramingRejected: after a request served on the fast path, a head
// with Content-Length and Transfer-Encoding, or Transfer-Encoding in
// HTTP/1.0, gets 400 with Connection: close, and the connection ends
// there: the request smuggled after it is never read. Plain and TLS.
func TestBadFramingRejected(t *testing.T) {
	for _, secure := range []bool{false, true} {
		_, addr := start(t, hello, func(s *Server) {
			if secure {
				s.TLSConfig = &tls.Config{Certificates: []tls.Certificate{testCert(t)}}
			}
		})
		for name, bad := range badFramingHeads {
			var c net.Conn
			var err error
			if secure {
				c, err = tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true})
			} else {
				c, err = net.Dial("tcp", addr)
			}
			if err != nil {
				t.Fatal(err)
			}
			c.SetDeadline(time.Now().Add(10 * time.Second))
			io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n"+bad+"GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n")
			br := bufio.NewReader(c)
			first, err := http.ReadResponse(br, nil)
			if err != nil || first.StatusCode != 200 || text(first) != "hello" {
				t.Fatalf("tls=%v %s: first response: %v", secure, name, err)
			}
			res, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("tls=%v %s: %v", secure, name, err)
			}
			body := text(res)
			if res.StatusCode != 400 || !res.Close || body != "400 Bad Request" || res.Header.Get("Date") == "" {
				t.Errorf("tls=%v %s: %d close=%v %q %v", secure, name, res.StatusCode, res.Close, body, res.Header)
			}
			rest, err := io.ReadAll(br) // the server closes: EOF (after close_notify on TLS)
			if err != nil || len(rest) != 0 {
				t.Errorf("tls=%v %s: after the 400: %q %v", secure, name, rest, err)
			}
			c.Close()
		}
	}
}

// TestBareLFHeadAnswered: a head ending in a bare LF is handed to
// net/http, which answers it, as soon as it is complete; before, the fast
// path waited for a CRLFCRLF that never came.
func TestBareLFHeadAnswered(t *testing.T) {
	_, addr := start(t, hello)
	for raw, n := range map[string]int{
		"GET / HTTP/1.1\r\nHost: a\r\n\n":                                  1,
		"GET / HTTP/1.1\r\nHost: a\nAccept: */*\n\n":                       1,
		"GET / HTTP/1.1\nHost: a\n\r\n":                                    1,
		"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\n": 2,
	} {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(c, raw) // and nothing more
		br := bufio.NewReader(c)
		for range n {
			res, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("%q: %v", raw, err)
			}
			if res.StatusCode != 200 || text(res) != "hello" {
				t.Errorf("%q: %d", raw, res.StatusCode)
			}
		}
		c.Close()
	}
}

// TestHandedOffChunkedCloses: on a connection handed to net/http (after a
// POST), a head with Content-Length and Transfer-Encoding is served by
// the chunked body, and the connection closed after it: the request
// smuggled behind it is never read.
func TestHandedOffChunkedCloses(t *testing.T) {
	_, addr := start(t, hello)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n"+
		"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"+
		"GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n")
	br := bufio.NewReader(c)
	for i, wantClose := range []bool{false, true} {
		res, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("response %d: %v", i+1, err)
		}
		if res.StatusCode != 200 || res.Close != wantClose || res.Header.Get("X-Via") != "net/http" {
			t.Errorf("response %d: %d close=%v via %q", i+1, res.StatusCode, res.Close, res.Header.Get("X-Via"))
		}
		text(res)
	}
	if rest, err := io.ReadAll(br); err != nil || len(rest) != 0 {
		t.Errorf("after the chunked request: %q %v", rest, err)
	}
}

// TestHTTP10TransferEncodingNotSmuggled: net/http ignores Transfer-Encoding
// in HTTP/1.0 and would read a chunked body as the next request; every
// HTTP/1.0 request net/http serves closes its connection instead, on a
// connection the fast path handed off and with the fast path off.
func TestHTTP10TransferEncodingNotSmuggled(t *testing.T) {
	for _, all := range []bool{false, true} {
		_, addr := start(t, hello, func(s *Server) { s.HandOffAll = all })
		for _, first := range []string{
			"GET / HTTP/1.0\r\nHost: a\r\nConnection: keep-alive\r\n\r\n",
			"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n",
		} {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			c.SetDeadline(time.Now().Add(10 * time.Second))
			io.WriteString(c, first+
				"POST / HTTP/1.0\r\nHost: a\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n"+
				"GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n")
			b, _ := io.ReadAll(c)
			c.Close()
			if n := strings.Count(string(b), "HTTP/1."); n > 2 || strings.Contains(string(b), "smuggled") {
				t.Errorf("HandOffAll=%v, %q first: %d responses, the smuggled request among them:\n%s", all, strings.SplitN(first, "\r\n", 2)[0], n, b)
			}
		}
	}
}
