package main

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// malformed is a corpus of hostile and broken requests. Each must get an
// answer below 500 (or a closed connection), never a server error and
// never a hang, and none may reach a file it should not. The only 5xx
// are the two the protocol prescribes: 501 for an unknown transfer
// coding and 505 for an unsupported major version.
var malformed = []struct {
	name, raw string
	ok        func(status int) bool // nil: any status below 500
}{
	{"CL and TE", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", nil},
	{"TE and CL", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n", nil},
	{"duplicate Content-Length", "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nx", is4xx},
	{"bad Content-Length", "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", is4xx},
	// RFC 9112 6.1: a transfer coding the server does not know gets 501.
	{"TE not chunked", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", is(501)},
	{"obs-fold", "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n c\r\n\r\n", nil},
	{"bare LF", "GET / HTTP/1.1\nHost: a\n\n", nil},
	{"bare CR", "GET / HTTP/1.1\rHost: a\r\n\r\n", is4xx},
	{"space before colon", "GET / HTTP/1.1\r\nHost : a\r\n\r\n", is4xx},
	{"oversized header", "GET / HTTP/1.1\r\nHost: a\r\nX: " + strings.Repeat("x", 70000) + "\r\n\r\n", is4xx},
	{"many headers", "GET / HTTP/1.1\r\nHost: a\r\n" + strings.Repeat("X-A: b\r\n", 5000) + "\r\n", is4xx},
	{"invalid method", "G<T / HTTP/1.1\r\nHost: a\r\n\r\n", is4xx},
	{"unknown method", "BREW / HTTP/1.1\r\nHost: a\r\n\r\n", is(501)},
	{"lower-case method", "get / HTTP/1.1\r\nHost: a\r\n\r\n", is(501)},
	{"TRACE", "TRACE / HTTP/1.1\r\nHost: a\r\n\r\n", is(405)},
	{"CONNECT", "CONNECT a:443 HTTP/1.1\r\nHost: a\r\n\r\n", is4xx},
	{"no Host", "GET / HTTP/1.1\r\n\r\n", is(400)},
	{"two Hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", is(400)},
	{"bad Host", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", is(400)},
	{"absolute-URI", "GET http://a/ HTTP/1.1\r\nHost: a\r\n\r\n", is(200)},
	{"absolute-URI other host", "GET http://evil.test/ HTTP/1.1\r\nHost: a\r\n\r\n", nil},
	{"asterisk GET", "GET * HTTP/1.1\r\nHost: a\r\n\r\n", is4xx},
	{"HTTP/0.9", "GET /\r\n\r\n", nil},
	// RFC 9110 15.6.6: a major version the server does not speak gets 505.
	{"HTTP/2.0 line", "GET / HTTP/2.0\r\nHost: a\r\n\r\n", is(505)},
	{"HTTP/1.2", "GET / HTTP/1.2\r\nHost: a\r\n\r\n", nil},
	{"version garbage", "GET / HTTX/1.1\r\nHost: a\r\n\r\n", is4xx},
	{"encoded dots", "GET /%2e%2e/%2e%2e/etc/passwd HTTP/1.1\r\nHost: a\r\n\r\n", is(400)},
	{"encoded slash dots", "GET /..%2f..%2fetc%2fpasswd HTTP/1.1\r\nHost: a\r\n\r\n", is(400)},
	{"raw dots", "GET /../../etc/passwd HTTP/1.1\r\nHost: a\r\n\r\n", is(400)},
	{"backslashes", "GET /..\\..\\etc\\passwd HTTP/1.1\r\nHost: a\r\n\r\n", is4xx},
	{"overlong UTF-8 dots", "GET /%c0%ae%c0%ae/etc/passwd HTTP/1.1\r\nHost: a\r\n\r\n", is(400)},
	{"NUL", "GET /index.html%00.txt HTTP/1.1\r\nHost: a\r\n\r\n", is(400)},
	{"bad escape", "GET /%zz HTTP/1.1\r\nHost: a\r\n\r\n", is(400)},
	{"very long URI", "GET /" + strings.Repeat("a", 9000) + " HTTP/1.1\r\nHost: a\r\n\r\n", is4xx},
	{"dotfile", "GET /.env HTTP/1.1\r\nHost: a\r\n\r\n", is(404)},
	{"control in target", "GET /a\x01b HTTP/1.1\r\nHost: a\r\n\r\n", is4xx},
	{"Range garbage", "GET / HTTP/1.1\r\nHost: a\r\nRange: bytes=--,x\r\n\r\n", is(200)},
	{"Range huge", "GET / HTTP/1.1\r\nHost: a\r\nRange: bytes=0-" + strings.Repeat("9", 40) + "\r\n\r\n", is(200)},
	{"many ranges", "GET / HTTP/1.1\r\nHost: a\r\nRange: bytes=" + strings.Repeat("0-0,", 2000) + "0-0\r\n\r\n", is(200)},
	{"conditional garbage", "GET / HTTP/1.1\r\nHost: a\r\nIf-None-Match: \"\x01\"\r\nIf-Modified-Since: yesterday\r\n\r\n", nil},
	{"conditional nonsense", "GET / HTTP/1.1\r\nHost: a\r\nIf-None-Match: W/W/\"x\r\nIf-Range: soon\r\nRange: bytes=0-0\r\n\r\n", is(200)},
	{"Accept-Encoding garbage", "GET / HTTP/1.1\r\nHost: a\r\nAccept-Encoding: ;;q=,*;q=2,\xff\r\n\r\n", nil},
	{"Expect", "GET / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n\r\n", nil},
	{"Upgrade h2c", "GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n", nil},
	{"HTTP/2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", nil},
	{"empty line first", "\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", nil},
	{"binary garbage", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", nil},
}

func is4xx(s int) bool { return s >= 400 && s < 500 }

func is(want int) func(int) bool { return func(s int) bool { return s == want } }

func TestMalformedRequestCorpus(t *testing.T) {
	for _, fast := range []string{"true", "false"} {
		t.Run("fast_http1="+fast, func(t *testing.T) {
			// Incomplete heads (a TLS hello on the plain port) are closed
			// after read_header_timeout: bounded, not a hang.
			p := start(t, "-config", siteConfig(t, "fast_http1 = "+fast+"\nread_header_timeout = \"2s\"\n"))
			for _, tt := range malformed {
				c, err := net.Dial("tcp", p.addr)
				if err != nil {
					t.Fatal(err)
				}
				c.SetDeadline(time.Now().Add(10 * time.Second))
				io.WriteString(c, tt.raw)
				res, err := http.ReadResponse(bufio.NewReader(c), nil)
				c.Close()
				if err != nil {
					if ne, ok := err.(net.Error); ok && ne.Timeout() {
						t.Errorf("%s: no answer (hang)", tt.name)
					}
					continue // the server closed the connection: acceptable
				}
				body, _ := io.ReadAll(res.Body)
				if res.StatusCode >= 500 && res.StatusCode != 501 && res.StatusCode != 505 {
					t.Errorf("%s: %d", tt.name, res.StatusCode)
				}
				if tt.ok != nil && !tt.ok(res.StatusCode) {
					t.Errorf("%s: status %d", tt.name, res.StatusCode)
				}
				if strings.Contains(string(body), "root:") {
					t.Errorf("%s: served a system file", tt.name)
				}
			}
		})
	}
}
