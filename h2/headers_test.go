package h2

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/textproto"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// outcome reads until stream id's response head or reset: "200",
// "RST PROTOCOL_ERROR", or "GOAWAY ..." if the connection ends.
func (r *rawConn) outcome(id uint32) string {
	if o, ok := r.outcomes[id]; ok {
		delete(r.outcomes, id)
		return o
	}
	for {
		f, err := r.fr.ReadFrame()
		if err != nil {
			return "closed: " + err.Error()
		}
		var sid uint32
		var o string
		switch f := f.(type) {
		case *http2.MetaHeadersFrame:
			sid, o = f.StreamID, f.PseudoValue("status")
		case *http2.RSTStreamFrame:
			sid, o = f.StreamID, "RST "+f.ErrCode.String()
		case *http2.GoAwayFrame:
			return "GOAWAY " + f.ErrCode.String()
		default:
			continue
		}
		if sid == id {
			return o
		}
		if r.outcomes == nil {
			r.outcomes = map[uint32]string{}
		}
		if _, ok := r.outcomes[sid]; !ok { // a stream's first answer
			r.outcomes[sid] = o
		}
	}
}

// send writes a HEADERS frame of the given fields (name, value, ...)
// for stream id, with END_STREAM.
func (r *rawConn) send(id uint32, fields ...string) {
	r.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: r.block(fields...), EndStream: true, EndHeaders: true})
}

// TestMalformedRequests: a header block that is no well-formed request
// (RFC 9113 8.1.1, 8.2, 8.3) resets its stream with PROTOCOL_ERROR, and
// the connection goes on in step: the next request on it, whose fields
// the HPACK table gives by index, is answered. The header block is
// decoded by the connection's own decoder (readHeaders, emitField,
// pseudoFields, requestHeader), not x/net's MetaHeadersFrame.
func TestMalformedRequests(t *testing.T) {
	teapot := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Ok") != "yes" || r.Host != "localhost" {
			w.WriteHeader(http.StatusTeapot)
		}
	})
	// Every handler handed over from the reader (the watchdog at 1 µs):
	// the answers then come in any order (stream 1's may come last),
	// and the connection stays in step all the same.
	for _, inline := range []time.Duration{0, time.Microsecond} {
		t.Run(fmt.Sprint("inline limit ", inline), func(t *testing.T) { malformedRequests(t, start(t, &Server{InlineLimit: inline}, teapot)) })
	}
}

func malformedRequests(t *testing.T, addr string) {
	m, s, a, p := ":method", ":scheme", ":authority", ":path"
	for _, tc := range []struct {
		name   string
		fields []string
	}{
		{"upper-case name", []string{m, "GET", s, "https", a, "localhost", p, "/", "X-Up", "1"}},
		{"pseudo after regular", []string{m, "GET", s, "https", a, "localhost", "x-a", "1", p, "/"}},
		{"unknown pseudo", []string{m, "GET", s, "https", a, "localhost", p, "/", ":foo", "1"}},
		{"response pseudo", []string{":status", "200", m, "GET", s, "https", a, "localhost", p, "/"}},
		{"repeated pseudo", []string{m, "GET", s, "https", a, "localhost", p, "/", p, "/a"}},
		{"extended CONNECT", []string{m, "CONNECT", ":protocol", "websocket", s, "https", a, "localhost", p, "/"}},
		{"no :path", []string{m, "GET", s, "https", a, "localhost"}},
		{"empty :path", []string{m, "GET", s, "https", a, "localhost", p, ""}},
		{"ftp scheme", []string{m, "GET", s, "ftp", a, "localhost", p, "/"}},
		{"connection field", []string{m, "GET", s, "https", a, "localhost", p, "/", "connection", "close"}},
		{"upgrade field", []string{m, "GET", s, "https", a, "localhost", p, "/", "upgrade", "h2c"}},
		{"te gzip", []string{m, "GET", s, "https", a, "localhost", p, "/", "te", "gzip"}},
		{"te twice", []string{m, "GET", s, "https", a, "localhost", p, "/", "te", "trailers", "te", "trailers"}},
		{"NUL in a value", []string{m, "GET", s, "https", a, "localhost", p, "/", "x-a", "a\x00b"}},
		{"space in a name", []string{m, "GET", s, "https", a, "localhost", p, "/", "x a", "1"}},
		{"host unlike :authority", []string{m, "GET", s, "https", a, "localhost", p, "/", "host", "other"}},
		{"two hosts", []string{m, "GET", s, "https", p, "/", "host", "localhost", "host", "localhost"}},
		{"userinfo", []string{m, "GET", s, "https", a, "u@localhost", p, "/"}},
		{"body length without a body", []string{m, "GET", s, "https", a, "localhost", p, "/", "content-length", "5"}},
		{"two lengths without a body", []string{m, "GET", s, "https", a, "localhost", p, "/", "content-length", "0", "content-length", "5"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := dialRaw(t, addr)
			ok := []string{m, "GET", s, "https", a, "localhost", p, "/", "x-ok", "yes"}
			r.send(1, ok...)
			r.send(3, tc.fields...)
			r.send(5, ok...)
			if got := r.outcome(1); got != "200" {
				t.Fatalf("well-formed request before: %s", got)
			}
			if got := r.outcome(3); got != "RST PROTOCOL_ERROR" {
				t.Errorf("got %s, want RST PROTOCOL_ERROR", got)
			}
			if got := r.outcome(5); got != "200" {
				t.Errorf("well-formed request after: %s, want 200", got)
			}
		})
	}
	// What is well-formed: Host standing in for :authority, cookies
	// joined, TE: trailers, a Trailer field dropped.
	var got http.Header
	var host string
	addr = start(t, &Server{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, host = r.Header.Clone(), r.Host
	}))
	r := dialRaw(t, addr)
	r.send(1, m, "GET", s, "https", p, "/", "host", "example.com", "cookie", "a=1", "te", "trailers", "cookie", "b=2", "trailer", "x", "x-b", "1", "x-b", "2")
	if o := r.outcome(1); o != "200" {
		t.Fatalf("got %s", o)
	}
	want := http.Header{"Cookie": {"a=1; b=2"}, "Te": {"trailers"}, "X-B": {"1", "2"}}
	if host != "example.com" || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("host %q, header %v; want example.com, %v", host, got, want)
	}
}

// TestHeaderBlockAcrossFrames: a header block split over HEADERS and
// CONTINUATION frames is decoded as one; a frame of another stream, or
// of another type, between them ends the connection (RFC 9113 6.10).
func TestHeaderBlockAcrossFrames(t *testing.T) {
	addr := start(t, &Server{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Got", r.Header.Get("X-Long"))
	}))
	long := strings.Repeat("l", 3000)
	r := dialRaw(t, addr)
	block := r.headers("x-long", long)
	r.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block[:5], EndStream: true})
	r.fr.WriteContinuation(1, false, block[5:100])
	r.fr.WriteContinuation(1, true, block[100:])
	for {
		f, err := r.fr.ReadFrame()
		if err != nil {
			t.Fatal(err)
		}
		if h, ok := f.(*http2.MetaHeadersFrame); ok {
			for _, hf := range h.RegularFields() {
				if hf.Name == "x-got" && hf.Value != long {
					t.Fatalf("x-got: %d bytes, want %d", len(hf.Value), len(long))
				}
			}
			break
		}
	}
	for _, between := range []string{"PING", "HEADERS of stream 5"} {
		r := dialRaw(t, addr)
		block := r.headers()
		r.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 3, BlockFragment: block[:2], EndStream: true})
		if between == "PING" {
			r.fr.WritePing(false, [8]byte{})
		} else {
			r.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 5, BlockFragment: r.headers(), EndStream: true, EndHeaders: true})
		}
		if code, ok := r.goAway(); !ok || code != http2.ErrCodeProtocol {
			t.Errorf("%s in a header block: GOAWAY %v %v, want PROTOCOL_ERROR", between, code, ok)
		}
	}
}

// TestFieldCache: response fields are encoded once per connection and
// copied after; values that change per request (a header set per
// request, Content-Length of a range) are sent right, and the cache
// stays within its 64 slots of fields of at most 512 bytes
// (maxCachedField) and 8 KiB of encodings (maxCachedFieldBytes).
func TestFieldCache(t *testing.T) {
	shared := []string{"shared-value"}
	srv := &Server{}
	addr := start(t, srv, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h["X-Shared"] = shared
		h.Set("X-Unique", r.URL.Query().Get("n")+strings.Repeat("u", 100))
		h.Set("X-Big", r.URL.Query().Get("n")+strings.Repeat("b", 3000)) // never cached
		h.Set("Connection", "close")                                     // never sent
	}))
	r := dialRaw(t, addr, http2.Setting{ID: http2.SettingHeaderTableSize, Val: 0})
	const n = 1000
	for i := range n {
		id := uint32(2*i + 1)
		r.requestPath(id, "/?n="+strconv.Itoa(i))
		for {
			f, err := r.fr.ReadFrame()
			if err != nil {
				t.Fatal(err)
			}
			h, ok := f.(*http2.MetaHeadersFrame)
			if !ok || h.StreamID != id {
				continue
			}
			got := map[string]string{}
			for _, hf := range h.Fields {
				got[hf.Name] = hf.Value
			}
			if got[":status"] != "200" || got["x-shared"] != "shared-value" || got["x-unique"] != strconv.Itoa(i)+strings.Repeat("u", 100) ||
				got["x-big"] != strconv.Itoa(i)+strings.Repeat("b", 3000) ||
				got["date"] == "" || got["connection"] != "" {
				t.Fatalf("request %d: %v", i, got)
			}
			break
		}
	}
	srv.mu.Lock()
	defer srv.mu.Unlock()
	for c := range srv.conns {
		c.mu.Lock()
		entries, bytes, longest := 0, len(c.fieldBytes), 0
		for _, sl := range c.fieldCache {
			if sl.key != "" {
				entries++
				longest = max(longest, len(sl.key)+len(sl.value))
			}
		}
		c.mu.Unlock()
		t.Logf("after %d responses with new values each: %d fields cached in %d bytes, the longest %d", n, entries, bytes, longest)
		if bytes > maxCachedFieldBytes || longest > maxCachedField {
			t.Errorf("%d fields cached in %d bytes, the longest %d; want at most %d bytes, none over %d", entries, bytes, longest, maxCachedFieldBytes, maxCachedField)
		}
	}
}

// TestRequestURL: requestURL answers as url.ParseRequestURI does, for
// generated paths of every byte class (plain, escapes, '?', '#',
// control bytes, non-ASCII, characters a path escapes) and for some
// written out.
func TestRequestURL(t *testing.T) {
	check := func(path string) {
		got, gotErr := requestURL(path, new(url.URL))
		want, wantErr := url.ParseRequestURI(path)
		if (gotErr != nil) != (wantErr != nil) || gotErr == nil && !reflect.DeepEqual(got, want) {
			t.Fatalf("%q: got %#v, %v; want %#v, %v", path, got, gotErr, want, wantErr)
		}
	}
	for _, p := range []string{"/", "/a/b.html", "/a?", "/a??", "/a?b=c&d", "/?", "//x", "///x", "/a%20b", "/a b", "/a#f",
		"/a?b#c", "/a\x00", "/a?\x7f", "/é", "/a!'()*", "/a\"", "*", "a", "", "/a?b?c", "/%zz", "/a:b@c;d=e"} {
		check(p)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := []byte("aZ09-_.~$&+,/:;=@?#% !'()*\"<>\\^`{|}\x00\x1f\x7f\x80\xff")
	for range 200000 {
		b := []byte{'/'}
		for range rng.IntN(12) {
			b = append(b, alphabet[rng.IntN(len(alphabet))])
		}
		check(string(b))
	}
}

// FuzzRequestURL: requestURL, which parses what a client sends as
// :path, answers as url.ParseRequestURI does.
func FuzzRequestURL(f *testing.F) {
	for _, p := range []string{"/", "/a/b.html?x=1", "/a?", "/a??", "/%41", "/a b", "*", "//x", "/a#b"} {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, path string) {
		got, gotErr := requestURL(path, new(url.URL))
		want, wantErr := url.ParseRequestURI(path)
		if (gotErr != nil) != (wantErr != nil) || gotErr == nil && !reflect.DeepEqual(got, want) {
			t.Fatalf("%q: got %#v, %v; want %#v, %v", path, got, gotErr, want, wantErr)
		}
	})
}

// TestValidFieldsBound: the request fields a connection remembers as
// valid are at most 64 of at most 512 bytes (maxCachedField): a client
// sending a new 3000-byte field with each request pins none of them.
func TestValidFieldsBound(t *testing.T) {
	srv := &Server{}
	addr := start(t, srv, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	r := dialRaw(t, addr)
	for i := range 200 {
		id := uint32(2*i + 1)
		r.request(id, "x-big", strconv.Itoa(i)+strings.Repeat("b", 3000), "x-small", strconv.Itoa(i))
		if o := r.outcome(id); o != "200" {
			t.Fatalf("request %d: %s", i, o)
		}
	}
	srv.mu.Lock()
	defer srv.mu.Unlock()
	for c := range srv.conns {
		c.mu.Lock() // the reader is idle: nothing else touches validFields
		pinned, longest := 0, 0
		for _, f := range c.validFields {
			pinned += len(f.Name) + len(f.Value)
			longest = max(longest, len(f.Name)+len(f.Value))
		}
		c.mu.Unlock()
		t.Logf("after 200 requests with a new 3000-byte field each: %d bytes of fields remembered, the longest %d", pinned, longest)
		if longest > maxCachedField || pinned > fieldSlots*maxCachedField {
			t.Errorf("%d bytes remembered, the longest %d; want none over %d", pinned, longest, maxCachedField)
		}
	}
}

// TestNewRequestAllocs: a request is one object for the request, its
// URL and up to 16 header values (a browser's; Chromium's navigation
// fields are names known, no key is made), and its header map: Go's map
// takes 1 allocation empty, 2 up to 8 fields, 4 beyond; past 16 fields
// the values take one more. Every value and the URL are those of the
// fields.
func TestNewRequestAllocs(t *testing.T) {
	browser := []string{"user-agent", "accept", "accept-encoding", "accept-language", "sec-ch-ua", "sec-ch-ua-mobile",
		"sec-ch-ua-platform", "upgrade-insecure-requests", "sec-fetch-site", "sec-fetch-mode", "sec-fetch-user",
		"sec-fetch-dest", "referer", "cookie", "if-none-match", "if-modified-since", "priority"}
	c := &conn{reqBase: &http.Request{Proto: "HTTP/2.0", ProtoMajor: 2, Body: http.NoBody}}
	pseudo := []hpack.HeaderField{{Name: ":method", Value: "GET"}, {Name: ":scheme", Value: "https"},
		{Name: ":authority", Value: "example.test"}, {Name: ":path", Value: "/a/b.html?x=1"}}
	for _, tc := range []struct {
		regular int
		allocs  float64
	}{{0, 2}, {1, 3}, {4, 3}, {5, 3}, {8, 3}, {9, 5}, {16, 5}, {17, 6}} {
		b := &headerBlock{endStream: true, fields: slices.Clone(pseudo)}
		for i := range tc.regular {
			b.fields = append(b.fields, hpack.HeaderField{Name: browser[i], Value: strconv.Itoa(i)})
		}
		r, err := c.newRequest(b)
		if err != nil {
			t.Fatal(err)
		}
		if r.URL.Path != "/a/b.html" || r.URL.RawQuery != "x=1" || r.Host != "example.test" || len(r.Header) != tc.regular {
			t.Fatalf("%d fields: %v %q %v", tc.regular, r.URL, r.Host, r.Header)
		}
		for i := range tc.regular {
			if v := r.Header[http.CanonicalHeaderKey(browser[i])]; len(v) != 1 || v[0] != strconv.Itoa(i) {
				t.Fatalf("%d fields: field %d is %q", tc.regular, i, v)
			}
		}
		if n := testing.AllocsPerRun(100, func() { c.newRequest(b) }); n != tc.allocs {
			t.Errorf("%d regular fields: %v allocations, want %v", tc.regular, n, tc.allocs)
		}
	}
}

// TestRequestsKeptIntact: a request is its own (newRequestParts puts the
// request, its URL and its header values in one object): a handler that
// keeps the request, its URL and its Header after it returns (or that
// was handed over from the reader) sees them as they were when it last
// changed them, while later requests on the same connection come with
// other values in the same fields, at every size of the parts (0 to 20
// regular fields: the 4 and 16 boundaries), with duplicate fields and
// joined cookies; and a handler that changes its own request's header
// values changes no other's.
func TestRequestsKeptIntact(t *testing.T) {
	for _, inline := range []time.Duration{0, time.Microsecond} {
		t.Run(fmt.Sprint("inline limit ", inline), func(t *testing.T) {
			describe := func(r *http.Request) string {
				return fmt.Sprint(r.Method, " ", r.Host, " ", r.RequestURI, " ", r.URL, " ", r.URL.Query(), " ", r.Header)
			}
			var mu sync.Mutex
			kept := map[string]*http.Request{}
			seen, final := map[string]string{}, map[string]string{}
			addr := start(t, &Server{InlineLimit: inline}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				defer mu.Unlock()
				id := r.URL.Path
				kept[id], seen[id] = r, describe(r)
				// The handler's own changes: in place and appended.
				for k, vs := range r.Header {
					vs[0] = "changed " + vs[0]
					r.Header.Add(k, "added")
				}
				r.URL.RawQuery += "&changed=1"
				final[id] = describe(r)
			}))
			c := dialRaw(t, addr)
			want := map[string]string{}
			id := uint32(1)
			for round := range 2 {
				for _, n := range []int{0, 1, 3, 4, 5, 15, 16, 17, 20} {
					path := fmt.Sprintf("/r%d-%d", round, n)
					fields := []string{":method", "GET", ":scheme", "https", ":authority", "localhost", ":path", path + "?q=" + path}
					h := http.Header{}
					cookies := []string{}
					for i := range n {
						name, v := fmt.Sprintf("x-f%d", i), fmt.Sprintf("%s-%d", path, i)
						switch i % 5 {
						case 1, 3:
							name = "x-dup"
						case 2:
							name = "cookie"
							cookies = append(cookies, v)
						}
						fields = append(fields, name, v)
						if name != "cookie" {
							h.Add(name, v)
						}
					}
					if len(cookies) > 0 {
						h.Set("Cookie", strings.Join(cookies, "; "))
					}
					r := &http.Request{Method: "GET", Host: "localhost", RequestURI: path + "?q=" + path, Header: h}
					r.URL, _ = url.ParseRequestURI(r.RequestURI)
					want[path] = describe(r)
					c.send(id, fields...)
					id += 2
				}
				for s := id - 18; s < id; s += 2 {
					if o := c.outcome(s); o != "200" {
						t.Fatalf("stream %d: %s", s, o)
					}
				}
			}
			mu.Lock()
			defer mu.Unlock()
			if len(kept) != len(want) {
				t.Fatalf("%d requests handled, want %d", len(kept), len(want))
			}
			for path, w := range want {
				if seen[path] != w {
					t.Errorf("%s came as\n%s\nwant\n%s", path, seen[path], w)
				}
				if got := describe(kept[path]); got != final[path] {
					t.Errorf("%s kept after it returned:\n%s\nwas when it returned\n%s", path, got, final[path])
				}
			}
		})
	}
}

// TestCommonKeys: every field name known without making a key
// (commonKeys, Chromium's client hints among them) maps to the key
// net/textproto makes of it, so that a handler finds the field under the
// name it would look it up by.
func TestCommonKeys(t *testing.T) {
	if len(commonKeys) < 30 {
		t.Fatalf("%d names known", len(commonKeys))
	}
	for name, k := range commonKeys {
		if want := textproto.CanonicalMIMEHeaderKey(name); k != want || name != strings.ToLower(name) {
			t.Errorf("%q: key %q, textproto's %q", name, k, want)
		}
	}
}
