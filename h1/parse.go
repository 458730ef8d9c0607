package h1

import (
	"bytes"
	"net/http"
	"net/textproto"
	"net/url"
	"strings"
)

// request is what the parser extracts from one request head. A
// connection reuses one for all its requests: the header map is cleared
// and the values' backing array kept.
type request struct {
	method    string
	target    string
	host      string
	header    http.Header
	values    []string // backing array of the header's values
	close     bool     // Connection: close
	headBytes int      // length of the head, CRLFCRLF included
}

// Outcomes of parse.
const (
	parsed   = iota // a request
	needMore        // the head is not complete yet
	fallback        // not the fast path's business: hand the connection to net/http
	reject          // framing no server may trust: answer 400 and close (headBytes set)
)

// parse reads one request head from b into req, reusing its header map
// and values. It accepts only the strict common subset: GET or HEAD,
// origin-form target of visible ASCII, HTTP/1.1,
// CRLF line endings, token field names, no obs-fold, exactly one valid
// Host, and no body framing (Content-Length other than 0,
// Transfer-Encoding), Expect or Upgrade. Everything else returns fallback,
// so net/http answers it, errors included; but a head whose body framing
// is ambiguous (see badFraming), which net/http would serve and then read
// the connection on, returns reject.
func (req *request) parse(b []byte) int {
	st := req.parseFast(b)
	if st == fallback {
		return req.decline(b)
	}
	return st
}

// decline checks a head the fast path declines before net/http gets it.
// It runs only off the fast path.
func (req *request) decline(b []byte) int {
	n := headEnd(b)
	if n > 0 && badFraming(b[:n]) {
		req.headBytes = n
		return reject
	}
	return fallback
}

// parseFast is parse on the fast path: every head it does not take
// returns fallback.
func (req *request) parseFast(b []byte) int {
	end := bytes.Index(b, crlfcrlf)
	if end < 0 {
		// Without CRLFCRLF, a head can only have ended with a bare LF,
		// which net/http accepts: hand it over once it is complete.
		if headEnd(b) > 0 {
			return fallback
		}
		return needMore
	}
	// One conversion: the target, names and values are slices of it.
	// The head is a new string per request, so a value a handler keeps
	// stays valid.
	head := string(b[:end+2]) // through the last field line's CRLF
	lineEnd := strings.Index(head, "\r\n")
	header, values := req.header, req.values
	*req = request{headBytes: end + 4}
	if !req.parseRequestLine(head[:lineEnd]) {
		return fallback
	}
	return req.parseFields(head[lineEnd+2:], header, values)
}

// parseRequestLine takes the method and target of a GET or HEAD request
// line of HTTP/1.1 with an origin-form target of visible ASCII.
func (req *request) parseRequestLine(line string) bool {
	method, rest, ok := strings.Cut(line, " ")
	switch {
	case !ok:
		return false
	case method == "GET":
		req.method = http.MethodGet
	case method == "HEAD":
		req.method = http.MethodHead
	default:
		return false
	}
	target, version, ok := strings.Cut(rest, " ")
	if !ok || version != "HTTP/1.1" || target == "" || target[0] != '/' {
		return false
	}
	for i := 0; i < len(target); i++ {
		if c := target[i]; c <= ' ' || c >= 0x7f || c == '#' {
			return false
		}
	}
	req.target = target
	return true
}

// parseFields takes the field lines of a head, each ending in CRLF, into
// header, reusing its map and the backing array values.
func (req *request) parseFields(fields string, header http.Header, values []string) int {
	n := strings.Count(fields, "\r\n")
	if cap(values) < n {
		values = make([]string, n) // one backing array for every field's value
	}
	values = values[:n]
	if header == nil {
		header = make(http.Header, n)
	} else {
		clear(header)
	}
	req.header, req.values = header, values
	hosts := 0
	for i := 0; len(fields) > 0; i++ {
		j := strings.Index(fields, "\r\n")
		fl := fields[:j]
		fields = fields[j+2:]
		key, value, ok := splitField(fl)
		if !ok {
			return fallback
		}
		if key == "Host" {
			hosts++
			if !validHost(value) {
				return fallback
			}
			req.host = value
			continue
		}
		if !req.takeField(key, value) {
			return fallback
		}
		values[i] = value
		if prev, dup := req.header[key]; dup {
			req.header[key] = append(prev[:len(prev):len(prev)], value)
		} else {
			req.header[key] = values[i : i+1 : i+1]
		}
	}
	if hosts != 1 {
		return fallback
	}
	return parsed
}

// splitField returns the canonical name and the value of a field line:
// a token, a colon, then a value of visible characters, spaces and tabs.
// It is not ok for any other line, obs-fold included.
func splitField(fl string) (key, value string, ok bool) {
	colon := strings.IndexByte(fl, ':')
	if colon <= 0 {
		return "", "", false // also obs-fold: a line starting with SP or HTAB
	}
	name := fl[:colon]
	for k := 0; k < len(name); k++ {
		if !isTokenChar(name[k]) {
			return "", "", false
		}
	}
	value = strings.Trim(fl[colon+1:], " \t")
	for k := 0; k < len(value); k++ {
		if c := value[k]; c < ' ' && c != '\t' || c == 0x7f {
			return "", "", false
		}
	}
	return canonicalKey(name), value, true
}

// takeField reports whether the fast path takes a field other than Host:
// not one that frames a body (Content-Length other than 0,
// Transfer-Encoding), nor Expect or Upgrade; Connection: close is noted.
func (req *request) takeField(key, value string) bool {
	switch key {
	case "Content-Length":
		return value == "0"
	case "Transfer-Encoding", "Expect", "Upgrade":
		return false
	case "Connection":
		for tok := range strings.SplitSeq(value, ",") {
			switch tok = strings.Trim(tok, " \t"); {
			case strings.EqualFold(tok, "close"):
				req.close = true
			case strings.EqualFold(tok, "upgrade"):
				return false
			}
		}
	}
	return true
}

var crlfcrlf = []byte("\r\n\r\n")

// headEnd returns the length of the head at the start of b, through the
// empty line that ends it, as net/http reads heads: lines end in LF with
// an optional CR before it. It returns -1 while no line is empty. Of
// heads with CRLF line endings only, it finds the same end as CRLFCRLF.
func headEnd(b []byte) int {
	for i := 0; ; {
		j := bytes.IndexByte(b[i:], '\n')
		if j < 0 {
			return -1
		}
		i += j + 1
		switch {
		case i < len(b) && b[i] == '\n':
			return i + 1
		case i+1 < len(b) && b[i] == '\r' && b[i+1] == '\n':
			return i + 2
		}
	}
}

// badFraming reports a head that RFC 9112 6.1 says to treat as an error
// and close the connection after: Transfer-Encoding together with
// Content-Length (request smuggling: a proxy in front may have framed the
// body by the other one), or Transfer-Encoding in an HTTP/1.0 request
// (which net/http ignores, reading the body as the next request). The head
// may have bare LF line endings, as net/http would read it.
func badFraming(head []byte) bool {
	var te, cl bool
	line, rest, _ := bytes.Cut(head, []byte("\n"))
	line = bytes.TrimSuffix(line, []byte("\r"))
	http10 := bytes.HasSuffix(line, []byte(" HTTP/1.0"))
	for len(rest) > 0 {
		line, rest, _ = bytes.Cut(rest, []byte("\n"))
		name, _, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		switch {
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			te = true
		case bytes.EqualFold(name, []byte("Content-Length")):
			cl = true
		}
	}
	return te && (cl || http10)
}

// parseURL sets u to the parsed request target; percent-encoded targets
// go through net/url exactly as net/http would parse them.
func (r *request) parseURL(u *url.URL) bool {
	path, query, _ := cutByte(r.target, '?')
	for i := 0; i < len(path); i++ {
		if path[i] == '%' {
			parsed, err := url.ParseRequestURI(r.target)
			if err != nil {
				return false
			}
			*u = *parsed
			return true
		}
	}
	*u = url.URL{Path: path, RawQuery: query}
	return true
}

func cutByte(s string, c byte) (string, string, bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}

// isTokenChar reports whether c may appear in a field name (RFC 9110 5.6.2).
func isTokenChar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	switch c {
	case '!', '#', '$', '%', '&', '\'', '*', '+', '-', '.', '^', '_', '`', '|', '~':
		return true
	}
	return false
}

// validHost accepts reg-name, IPv4 and bracketed IPv6 hosts with an
// optional port; anything stranger goes to net/http.
func validHost(v string) bool {
	if len(v) == 0 || len(v) > 255 {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '.', c == '-', c == ':', c == '[', c == ']', c == '_':
		default:
			return false
		}
	}
	return true
}

// commonKeys avoids allocating the names of the usual request fields.
var commonKeys = func() map[string]string {
	m := map[string]string{}
	for _, k := range []string{"Host", "Accept", "Accept-Encoding", "Accept-Language", "Cache-Control",
		"Connection", "Content-Length", "Cookie", "If-Match", "If-Modified-Since", "If-None-Match",
		"If-Range", "If-Unmodified-Since", "Pragma", "Range", "Referer", "User-Agent", "Upgrade",
		"Transfer-Encoding", "Expect", "Authorization", "Origin", "Dnt", "Priority",
		"Sec-Fetch-Dest", "Sec-Fetch-Mode", "Sec-Fetch-Site", "Sec-Fetch-User", "Sec-Ch-Ua",
		"Sec-Ch-Ua-Mobile", "Sec-Ch-Ua-Platform", "Upgrade-Insecure-Requests", "X-Forwarded-For"} {
		m[k] = k
	}
	return m
}()

func canonicalKey(name string) string {
	if k, ok := commonKeys[name]; ok {
		return k
	}
	k := textproto.CanonicalMIMEHeaderKey(name)
	if c, ok := commonKeys[k]; ok {
		return c
	}
	return k
}
