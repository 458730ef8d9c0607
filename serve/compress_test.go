package serve

import (
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"appliance/compress"
)

// jsText is compressible text of about 20 KB.
var jsText = strings.Repeat("function add(a, b) { return a + b; } // appliance\n", 400)

// decode undoes a content coding with a decoder independent of our
// encoders: the standard library for gzip and deflate, Debian's brotli
// and zstd tools for the others.
func decode(t *testing.T, coding string, b []byte) []byte {
	t.Helper()
	var r io.Reader
	var err error
	switch coding {
	case "", "identity":
		return b
	case "gzip":
		r, err = gzip.NewReader(bytes.NewReader(b))
	case "deflate":
		r, err = zlib.NewReader(bytes.NewReader(b))
	case "br", "zstd":
		tool := map[string]string{"br": "brotli", "zstd": "zstd"}[coding]
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (apt-get install %s); .ci/run installs it", tool, tool)
		}
		cmd := exec.Command(tool, "-d", "-c")
		cmd.Stdin = bytes.NewReader(b)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%s -d: %v", tool, err)
		}
		return out
	default:
		t.Fatalf("unknown coding %q", coding)
	}
	if err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestCompressionRoundTrip(t *testing.T) {
	for _, mode := range []struct {
		name string
		co   CacheOptions
	}{
		{"cached from memory", CacheOptions{}},
		{"cached from disk", CacheOptions{MaxFileBytes: -1}},
		{"streamed", CacheOptions{MaxFileBytes: -1, MaxCompressBytes: 1000}},
	} {
		t.Run(mode.name, func(t *testing.T) {
			h, _ := site(t, map[string]string{"app.js": jsText}, Options{}, mode.co)
			tags := map[string]string{}
			for _, coding := range []string{"zstd", "br", "gzip", "deflate", "identity"} {
				t.Run(coding, func(t *testing.T) {
					get := do(h, "GET", "/app.js", "Accept-Encoding", coding)
					raw := []byte(body(t, get))
					head := do(h, "HEAD", "/app.js", "Accept-Encoding", coding)
					if get.StatusCode != 200 || get.Header.Get("Vary") != "Accept-Encoding" {
						t.Fatalf("status %d, Vary %q", get.StatusCode, get.Header.Get("Vary"))
					}
					if !equalHeader(get.Header, head.Header) {
						t.Errorf("HEAD header %v, GET header %v", head.Header, get.Header)
					}
					ce := get.Header.Get("Content-Encoding")
					if coding == "identity" && ce != "" || coding != "identity" && ce != coding {
						t.Fatalf("Content-Encoding %q for %s", ce, coding)
					}
					if cl := get.Header.Get("Content-Length"); cl != "" && cl != strconv.Itoa(len(raw)) {
						t.Errorf("Content-Length %s for %d bytes", cl, len(raw))
					}
					if mode.name == "streamed" && coding != "identity" {
						if get.Header.Get("Content-Length") != "" || get.Header.Get("Accept-Ranges") != "" || !strings.HasPrefix(get.Header.Get("Etag"), "W/") {
							t.Errorf("stream headers %v", get.Header)
						}
					} else if coding != "identity" && len(raw) >= len(jsText) {
						t.Errorf("%s: %d bytes, not smaller than %d", coding, len(raw), len(jsText))
					}
					if got := decode(t, coding, raw); string(got) != jsText {
						t.Fatalf("%s does not decode to the file (%d bytes)", coding, len(got))
					}
					tag := get.Header.Get("Etag")
					if nm := do(h, "GET", "/app.js", "Accept-Encoding", coding, "If-None-Match", tag); nm.StatusCode != 304 ||
						nm.Header.Get("Etag") != tag || nm.Header.Get("Vary") != "Accept-Encoding" {
						t.Errorf("If-None-Match its own tag: %d %v", nm.StatusCode, nm.Header)
					}
					if get.Header.Get("Accept-Ranges") == "bytes" {
						pr := do(h, "GET", "/app.js", "Accept-Encoding", coding, "Range", "bytes=5-14", "If-Range", tag)
						if b := body(t, pr); pr.StatusCode != 206 || b != string(raw[5:15]) || pr.Header.Get("Vary") != "Accept-Encoding" ||
							pr.Header.Get("Content-Range") != fmt.Sprintf("bytes 5-14/%d", len(raw)) {
							t.Errorf("range of %s: %d %v", coding, pr.StatusCode, pr.Header)
						}
					} else if pr := do(h, "GET", "/app.js", "Accept-Encoding", coding, "Range", "bytes=5-14"); pr.StatusCode != 206 || pr.Header.Get("Content-Encoding") != "" {
						t.Errorf("range request for a stream: %d %q, want 206 of identity", pr.StatusCode, pr.Header.Get("Content-Encoding"))
					}
					for other, ot := range tags {
						if ot == tag {
							t.Errorf("%s and %s share the ETag %s", coding, other, tag)
						}
					}
					tags[coding] = tag
				})
			}
		})
	}
}

func TestCompressionConditionalsAndRanges(t *testing.T) {
	h, _ := site(t, map[string]string{"app.js": jsText}, Options{}, CacheOptions{})
	id := do(h, "GET", "/app.js")
	gz := do(h, "GET", "/app.js", "Accept-Encoding", "gzip")
	gzBody := body(t, gz)
	br := do(h, "GET", "/app.js", "Accept-Encoding", "br")
	idTag, gzTag, brTag := id.Header.Get("Etag"), gz.Header.Get("Etag"), br.Header.Get("Etag")
	if !strings.HasSuffix(gzTag, `-gz"`) || !strings.HasSuffix(brTag, `-br"`) || strings.HasPrefix(gzTag, "W/") {
		t.Fatalf("tags %s %s %s", idTag, gzTag, brTag)
	}

	tests := []struct {
		name     string
		header   []string
		status   int
		etag     string
		encoding string
	}{
		{"gzip tag, gzip accepted", []string{"Accept-Encoding", "gzip", "If-None-Match", gzTag}, 304, gzTag, ""},
		{"identity tag while gzip is chosen", []string{"Accept-Encoding", "gzip", "If-None-Match", idTag}, 304, idTag, ""},
		{"br tag while gzip is chosen", []string{"Accept-Encoding", "gzip", "If-None-Match", brTag}, 304, brTag, ""},
		{"weak form of the gzip tag", []string{"Accept-Encoding", "gzip", "If-None-Match", "W/" + gzTag}, 304, gzTag, ""},
		{"stale tag", []string{"Accept-Encoding", "gzip", "If-None-Match", `"old-gz"`}, 200, gzTag, "gzip"},
		{"If-Match any current tag", []string{"Accept-Encoding", "gzip", "If-Match", brTag}, 200, gzTag, "gzip"},
		{"If-Match stale", []string{"Accept-Encoding", "gzip", "If-Match", `"old"`}, 412, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := do(h, "GET", "/app.js", tt.header...)
			if res.StatusCode != tt.status || tt.etag != "" && res.Header.Get("Etag") != tt.etag ||
				res.Header.Get("Content-Encoding") != tt.encoding {
				t.Fatalf("%d, ETag %s, Content-Encoding %q; want %d, %s, %q", res.StatusCode, res.Header.Get("Etag"),
					res.Header.Get("Content-Encoding"), tt.status, tt.etag, tt.encoding)
			}
			if tt.status != 412 && res.Header.Get("Vary") != "Accept-Encoding" {
				t.Errorf("no Vary on %d", res.StatusCode)
			}
		})
	}

	t.Run("range of the gzip representation", func(t *testing.T) {
		res := do(h, "GET", "/app.js", "Accept-Encoding", "gzip", "Range", "bytes=10-19")
		b := body(t, res)
		if res.StatusCode != 206 || b != gzBody[10:20] || res.Header.Get("Content-Encoding") != "gzip" ||
			res.Header.Get("Content-Range") != fmt.Sprintf("bytes 10-19/%d", len(gzBody)) || res.Header.Get("Vary") != "Accept-Encoding" {
			t.Fatalf("%d %v", res.StatusCode, res.Header)
		}
	})
	t.Run("If-Range with another representation's tag", func(t *testing.T) {
		res := do(h, "GET", "/app.js", "Accept-Encoding", "gzip", "Range", "bytes=0-9", "If-Range", idTag)
		if res.StatusCode != 200 || body(t, res) != gzBody {
			t.Fatalf("%d: a range of gzip bytes validated by the identity tag", res.StatusCode)
		}
	})
}

func TestCompressionSelection(t *testing.T) {
	png := strings.Repeat("\x89PNG....", 200)
	files := map[string]string{"app.js": jsText, "small.js": "let x = 1;", "img.png": png, "page.html": jsText}
	h, _ := site(t, files, Options{}, CacheOptions{})
	tests := []struct {
		name, path, accept, encoding string
		status                       int
		vary                         bool
	}{
		{"below the minimum size", "/small.js", "gzip", "", 200, false},
		{"not compressible", "/img.png", "gzip, br", "", 200, false},
		{"not compressible, identity refused", "/img.png", "gzip, identity;q=0", "", 406, true},
		{"identity refused, coding available", "/app.js", "identity;q=0, br", "br", 200, true},
		{"nothing acceptable", "/app.js", "identity;q=0, lzma", "", 406, true},
		{"html", "/page.html", "br", "br", 200, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := do(h, "GET", tt.path, "Accept-Encoding", tt.accept)
			if res.StatusCode != tt.status || res.Header.Get("Content-Encoding") != tt.encoding || (res.Header.Get("Vary") != "") != tt.vary {
				t.Fatalf("%d, Content-Encoding %q, Vary %q", res.StatusCode, res.Header.Get("Content-Encoding"), res.Header.Get("Vary"))
			}
		})
	}

	h2, _ := site(t, files, Options{Encodings: compress.SetOf(compress.Gzip)}, CacheOptions{})
	if res := do(h2, "GET", "/app.js", "Accept-Encoding", "br, zstd, gzip;q=0.1"); res.Header.Get("Content-Encoding") != "gzip" {
		t.Errorf("restricted site sent %q", res.Header.Get("Content-Encoding"))
	}
	h3, _ := site(t, files, Options{Encodings: compress.SetOf(compress.Identity)}, CacheOptions{})
	if res := do(h3, "GET", "/app.js", "Accept-Encoding", "gzip"); res.Header.Get("Content-Encoding") != "" || res.Header.Get("Vary") != "" {
		t.Errorf("site without compression sent %v", res.Header)
	}
}

// TestCrossSiteHTMLOverTLS: an HTML page over TLS is not compressed for
// requests another site can trigger and measure (BREACH, see crossSite).
func TestCrossSiteHTMLOverTLS(t *testing.T) {
	h, _ := site(t, map[string]string{"app.js": jsText, "page.html": jsText}, Options{}, CacheOptions{})
	const google = "https://google.com/"
	tests := []struct {
		name, target, encoding string
		header                 []string
	}{
		{"no Referer", "https://a.example/page.html", "br", nil},
		{"cross-site Referer (testssl's probe)", "https://a.example/page.html", "", []string{"Referer", google}},
		{"identity refused", "https://a.example/page.html", "br", []string{"Referer", google, "Accept-Encoding", "identity;q=0"}},
		{"same-host Referer", "https://a.example/page.html", "br", []string{"Referer", "https://A.example:8443/x"}},
		{"plain HTTP", "http://a.example/page.html", "br", []string{"Referer", google}},
		{"not HTML", "https://a.example/app.js", "br", []string{"Referer", google}},
		{"cross-site image", "https://a.example/page.html", "", []string{"Sec-Fetch-Site", "cross-site", "Sec-Fetch-Mode", "no-cors", "Sec-Fetch-Dest", "image"}},
		{"cross-site frame", "https://a.example/page.html", "", []string{"Sec-Fetch-Site", "cross-site", "Sec-Fetch-Mode", "navigate", "Sec-Fetch-Dest", "iframe"}},
		{"link from a search engine", "https://a.example/page.html", "br", []string{"Sec-Fetch-Site", "cross-site", "Sec-Fetch-Mode", "navigate", "Sec-Fetch-Dest", "document", "Referer", google}},
		{"same-site fetch", "https://a.example/page.html", "br", []string{"Sec-Fetch-Site", "same-site", "Sec-Fetch-Mode", "cors", "Referer", "https://b.a.example/"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			header := append([]string{"Accept-Encoding", "br, gzip"}, tt.header...)
			res := do(h, "GET", tt.target, header...)
			if res.StatusCode != 200 || res.Header.Get("Content-Encoding") != tt.encoding || res.Header.Get("Vary") != "Accept-Encoding" {
				t.Fatalf("%d, Content-Encoding %q, Vary %q; want %q", res.StatusCode, res.Header.Get("Content-Encoding"), res.Header.Get("Vary"), tt.encoding)
			}
			if b := decode(t, res.Header.Get("Content-Encoding"), []byte(body(t, res))); string(b) != jsText {
				t.Fatalf("body differs")
			}
		})
	}
}

func TestSidecars(t *testing.T) {
	h, root := site(t, map[string]string{"app.js": jsText, "logo.png": "png"}, Options{}, CacheOptions{Revalidate: time.Nanosecond})
	// Sidecars whose bytes we can recognise: precompressed content is
	// served as it is, never compressed again.
	var gzBuf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&gzBuf, gzip.NoCompression)
	zw.Write([]byte(jsText))
	zw.Close()
	future := time.Now().Add(time.Hour)
	write := func(name string, b []byte, mtime time.Time) {
		p := filepath.Join(root, name)
		os.WriteFile(p, b, 0o644)
		os.Chtimes(p, mtime, mtime)
	}
	write("app.js.gz", gzBuf.Bytes(), future)
	res := do(h, "GET", "/app.js", "Accept-Encoding", "gzip")
	b := body(t, res)
	if b != gzBuf.String() || res.Header.Get("Content-Encoding") != "gzip" || res.Header.Get("Content-Type") != "text/javascript; charset=utf-8" {
		t.Fatalf("sidecar not served: %v", res.Header)
	}
	if string(decode(t, "gzip", []byte(b))) != jsText {
		t.Fatal("sidecar does not decode")
	}

	// A stale sidecar (older than the file) is ignored.
	write("app.js.gz", []byte("stale"), time.Unix(1e9, 0))
	if b := body(t, do(h, "GET", "/app.js", "Accept-Encoding", "gzip")); b == "stale" {
		t.Fatal("stale sidecar served")
	}

	// Sidecars make even an incompressible type negotiable.
	write("logo.png.br", []byte("brotli-bytes"), future)
	res = do(h, "GET", "/logo.png", "Accept-Encoding", "br")
	if body(t, res) != "brotli-bytes" || res.Header.Get("Content-Encoding") != "br" || res.Header.Get("Vary") != "Accept-Encoding" {
		t.Fatalf("png sidecar: %v", res.Header)
	}
	if res := do(h, "GET", "/logo.png", "Accept-Encoding", "gzip"); body(t, res) != "png" || res.Header.Get("Content-Encoding") != "" {
		t.Fatalf("png without a matching sidecar: %v", res.Header)
	}
	// The sidecar itself is an ordinary file.
	if res := do(h, "GET", "/logo.png.br"); res.Header.Get("Content-Encoding") != "" {
		t.Fatal("a sidecar requested by name was sent with Content-Encoding")
	}
}

func TestCompressedVariantsAreCachedOnce(t *testing.T) {
	h, _ := site(t, map[string]string{"app.js": jsText}, Options{}, CacheOptions{Revalidate: time.Hour})
	first := body(t, do(h, "GET", "/app.js", "Accept-Encoding", "br"))
	_, bytesAfterFirst := h.cache.Stats()
	for range 50 {
		if body(t, do(h, "GET", "/app.js", "Accept-Encoding", "br")) != first {
			t.Fatal("variant changed between requests")
		}
	}
	if _, b := h.cache.Stats(); b != bytesAfterFirst || b < int64(len(jsText)+len(first)) {
		t.Fatalf("cache holds %d bytes, %d after the first request; want the file and its variant once", b, bytesAfterFirst)
	}
}

// FuzzCrossSite: the BREACH guard's reading of untrusted headers never
// panics, never calls a request cross-site without a reason, and always
// trusts Fetch Metadata over the Referer.
func FuzzCrossSite(f *testing.F) {
	f.Add("a.example", "https://google.com/", "", "", "")
	f.Add("a.example:8443", "https://A.EXAMPLE/x", "", "", "")
	f.Add("[::1]:443", "https://[::1]/", "", "", "")
	f.Add("a.example", "https://google.com/", "cross-site", "navigate", "document")
	f.Add("a.example", "", "cross-site", "no-cors", "image")
	f.Add("a.example", "//evil/%zz", "same-origin", "cors", "empty")
	f.Fuzz(func(t *testing.T, host, referer, site, mode, dest string) {
		r := &http.Request{Host: host, Header: http.Header{}}
		for k, v := range map[string]string{"Referer": referer, "Sec-Fetch-Site": site, "Sec-Fetch-Mode": mode, "Sec-Fetch-Dest": dest} {
			if v != "" {
				r.Header.Set(k, v)
			}
		}
		got := crossSite(r)
		switch {
		case site != "" && site != "cross-site" && got:
			t.Fatalf("Sec-Fetch-Site %q called cross-site", site)
		case site == "cross-site" && mode == "navigate" && dest == "document" && got:
			t.Fatal("a top-level navigation called cross-site")
		case site == "" && referer == "" && got:
			t.Fatal("no Referer and no Fetch Metadata called cross-site")
		}
	})
}
