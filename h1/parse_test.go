package h1

import (
	"bufio"
	"bytes"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name, in string
		want     int
	}{
		{"simple", "GET / HTTP/1.1\r\nHost: a\r\n\r\n", parsed},
		{"head", "HEAD /x?y=1 HTTP/1.1\r\nHost: a.test:8080\r\nAccept: */*\r\n\r\n", parsed},
		{"content-length 0", "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n", parsed},
		{"incomplete", "GET / HTTP/1.1\r\nHost: a\r\n", needMore},
		{"empty", "", needMore},
		{"post", "POST / HTTP/1.1\r\nHost: a\r\n\r\n", fallback},
		{"options", "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", fallback},
		{"lower-case method", "get / HTTP/1.1\r\nHost: a\r\n\r\n", fallback},
		{"HTTP/1.0", "GET / HTTP/1.0\r\n\r\n", fallback},
		{"HTTP/2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", fallback},
		{"absolute-form", "GET http://a/ HTTP/1.1\r\nHost: a\r\n\r\n", fallback},
		{"no Host", "GET / HTTP/1.1\r\n\r\n", fallback},
		{"two Hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", fallback},
		{"bad Host", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", fallback},
		{"body", "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello", fallback},
		{"chunked", "GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", fallback},
		{"expect", "GET / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n\r\n", fallback},
		{"upgrade", "GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n", fallback},
		{"obs-fold", "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n c\r\n\r\n", fallback},
		{"space before colon", "GET / HTTP/1.1\r\nHost : a\r\n\r\n", fallback},
		{"bare LF", "GET / HTTP/1.1\nHost: a\n\n", fallback},
		{"control in value", "GET / HTTP/1.1\r\nHost: a\r\nX: a\x01b\r\n\r\n", fallback},
		{"space in target", "GET /a b HTTP/1.1\r\nHost: a\r\n\r\n", fallback},
		{"fragment", "GET /a#b HTTP/1.1\r\nHost: a\r\n\r\n", fallback},
		{"non-ASCII target", "GET /\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n", fallback},
		{"double space", "GET  / HTTP/1.1\r\nHost: a\r\n\r\n", fallback},
		// Heads that end with a bare LF go to net/http once complete.
		{"CRLF then LF", "GET / HTTP/1.1\r\nHost: a\r\n\n", fallback},
		{"LF fields after CRLF", "GET / HTTP/1.1\r\nHost: a\nX: b\n\n", fallback},
		{"LF then CRLF", "GET / HTTP/1.1\nHost: a\n\r\n", fallback},
		{"bare LF incomplete", "GET / HTTP/1.1\nHost: a\n", needMore},
		{"bare LF in a field", "GET / HTTP/1.1\r\nHost: a\nX: b\r\n", needMore},
		// RFC 9112 6.1: ambiguous framing is answered 400 and closed.
		{"CL and TE", "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", reject},
		{"TE and CL 0", "GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 0\r\n\r\n", reject},
		{"POST CL and TE", "POST /x HTTP/1.1\r\nHost: a\r\ncontent-length: 5\r\ntransfer-encoding: chunked\r\n\r\n", reject},
		{"HTTP/1.0 TE", "GET / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", reject},
		{"HTTP/1.0 TE obs-fold", "POST / HTTP/1.0\r\nTransfer-Encoding:\r\n chunked\r\n\r\n", reject},
		{"bare LF CL and TE", "POST / HTTP/1.1\nHost: a\nContent-Length: 3\nTransfer-Encoding: chunked\n\n", reject},
		{"CRLF then LF CL and TE", "GET / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\n", reject},
		{"HTTP/1.1 TE alone", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n", fallback},
		{"HTTP/1.0 CL alone", "POST / HTTP/1.0\r\nContent-Length: 3\r\n\r\nabc", fallback},
		{"TE in the next head", "GET / HTTP/1.0\r\n\r\nPOST / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", fallback},
		{"TE in a value", "GET / HTTP/1.0\r\nX: Transfer-Encoding: chunked\r\n\r\n", fallback},
	}
	for _, tt := range tests {
		_, st := parse([]byte(tt.in))
		if st != tt.want {
			t.Errorf("%s: %d, want %d", tt.name, st, tt.want)
		}
	}
	req, _ := parse([]byte("GET /a%20b?q=1 HTTP/1.1\r\nhost: Example.test\r\nconnection: keep-alive, Close\r\nif-none-match: \"x\"\r\nX-Custom:  v  \r\n\r\n"))
	u, ok := req.url()
	if !ok || u.Path != "/a b" || u.RawQuery != "q=1" || req.host != "Example.test" || !req.close ||
		req.header.Get("If-None-Match") != `"x"` || req.header.Get("X-Custom") != "v" || req.header["Host"] != nil {
		t.Fatalf("%+v %+v", req, u)
	}
}

// FuzzParse checks the fast parser against net/http's: whatever the fast
// path accepts, http.ReadRequest reads the same way.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
		"HEAD /x?y HTTP/1.1\r\nHost: [::1]:80\r\nRange: bytes=0-1\r\n\r\n",
		"GET /%2e%2e/ HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nIf-None-Match: \"x\", W/\"y\"\r\n\r\n",
		"GET / HTTP/1.1\r\nhost: a\r\nX: \xff\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		"GET / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\n\n",
		"GET / HTTP/1.1\r\nHost: a\nX: b\n\n",
		"HEAD / HTTP/1.1\nHost: a\nContent-Length: 0\nTransfer-Encoding: chunked\n\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		req, st := parse(b)
		if st == reject && (req.headBytes <= 0 || req.headBytes > len(b)) {
			t.Fatalf("rejected a head of %d bytes in %d: %q", req.headBytes, len(b), b)
		}
		if st != parsed {
			return
		}
		u, ok := req.url()
		if !ok {
			return
		}
		std, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(b)))
		if err != nil {
			t.Fatalf("fast path accepted what net/http refuses (%v): %q", err, b)
		}
		if std.Method != req.method || std.Host != req.host || std.URL.Path != u.Path ||
			std.URL.RawQuery != u.RawQuery || std.RequestURI != req.target || std.Close != req.close {
			t.Fatalf("parsed differently: %q\nnet/http %s %q %q %v\nfast     %s %q %q %v", b,
				std.Method, std.Host, std.URL.Path, std.Close, req.method, req.host, u.Path, req.close)
		}
		for k, v := range std.Header {
			if strings.Join(v, "\n") != strings.Join(req.header[k], "\n") {
				t.Fatalf("field %s: net/http %q, fast %q", k, v, req.header[k])
			}
		}
		if len(std.Header) != len(req.header) {
			t.Fatalf("net/http %v, fast %v", std.Header, req.header)
		}
		if std.ContentLength > 0 || len(std.TransferEncoding) > 0 {
			t.Fatalf("fast path accepted a body: %q", b)
		}
	})
}

// parse parses b into a new request.
func parse(b []byte) (*request, int) {
	req := new(request)
	st := req.parse(b)
	return req, st
}

// url returns the parsed request target.
func (r *request) url() (*url.URL, bool) {
	u := new(url.URL)
	return u, r.parseURL(u)
}
