package serve

import (
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

const digits = "0123456789abcdefghijklmnopqrstuvwxyz" // 36 bytes

func TestParseRange(t *testing.T) {
	const size = 100
	tests := []struct {
		in   string
		want []byteRange
		err  error
	}{
		{"bytes=0-9", []byteRange{{0, 10}}, nil},
		{"bytes=90-", []byteRange{{90, 10}}, nil},
		{"bytes=-10", []byteRange{{90, 10}}, nil},
		{"bytes=-200", []byteRange{{0, 100}}, nil},
		{"bytes=50-500", []byteRange{{50, 50}}, nil},
		{"BYTES = 0-0", []byteRange{{0, 1}}, nil},
		{"bytes=0-0, 99-99", []byteRange{{0, 1}, {99, 1}}, nil},
		{"bytes=50-59,0-9", []byteRange{{50, 10}, {0, 10}}, nil}, // requested order kept
		{"bytes=0-9,5-19", []byteRange{{0, 20}}, nil},            // overlap coalesced
		{"bytes=0-9,10-19", []byteRange{{0, 20}}, nil},           // adjacent coalesced
		{"bytes=20-29,0-9,5-14", []byteRange{{0, 15}, {20, 10}}, nil},
		{"bytes=0-9,,20-29", []byteRange{{0, 10}, {20, 10}}, nil},
		{"bytes=100-", nil, errUnsatisfiable},
		{"bytes=100-200", nil, errUnsatisfiable},
		{"bytes=-0", nil, errUnsatisfiable},
		{"bytes=200-300, -0", nil, errUnsatisfiable},
		{"bytes=200-300, 0-0", []byteRange{{0, 1}}, nil},
		{"bytes=9-0", nil, nil},                    // invalid: ignored
		{"bytes=a-b", nil, nil},                    // invalid
		{"bytes=-", nil, nil},                      // invalid
		{"bytes=1", nil, nil},                      // invalid
		{"bytes=+1-2", nil, nil},                   // invalid
		{"bytes= ", nil, nil},                      // no ranges
		{"items=0-1", nil, nil},                    // other unit
		{"0-1", nil, nil},                          // no unit
		{"bytes=0-99999999999999999999", nil, nil}, // overflow
		{"bytes=0-,0-", nil, nil},                  // more than the whole: sent whole
		{"bytes=" + strings.Repeat("0-0,", 101), nil, nil},
	}
	for _, tt := range tests {
		got, err := parseRange(tt.in, size)
		if err != tt.err || len(got) != len(tt.want) {
			t.Errorf("parseRange(%q) = %v, %v; want %v, %v", tt.in, got, err, tt.want, tt.err)
			continue
		}
		for i := range got {
			if got[i] != tt.want[i] {
				t.Errorf("parseRange(%q) = %v; want %v", tt.in, got, tt.want)
			}
		}
	}
	if got, err := parseRange("bytes=0-", 0); err != errUnsatisfiable {
		t.Errorf("empty file: %v %v, want 416", got, err)
	}
	many := "bytes="
	for i := range 40 {
		many += strconv.Itoa(i*2) + "-" + strconv.Itoa(i*2) + ","
	}
	if got, err := parseRange(many, size); got != nil || err != nil {
		t.Errorf("40 tiny parts: %v %v, want ignored", got, err)
	}
}

// TestRanges runs the same table against a file held in memory and one
// streamed from disk.
func TestRanges(t *testing.T) {
	for _, mode := range []struct {
		name    string
		maxFile int64
	}{{"memory", 0}, {"disk", -1}} {
		t.Run(mode.name, func(t *testing.T) { testRanges(t, mode.maxFile) })
	}
}

func testRanges(t *testing.T, maxFile int64) {
	h, root := site(t, map[string]string{"f.txt": digits}, Options{}, CacheOptions{MaxFileBytes: maxFile})
	mod := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	os.Chtimes(filepath.Join(root, "f.txt"), mod, mod)
	etag := do(h, "GET", "/f.txt").Header.Get("Etag")
	lm := mod.Format(http.TimeFormat)

	tests := []struct {
		name         string
		method       string
		header       []string
		status       int
		body         string
		contentRange string
	}{
		{"first bytes", "GET", []string{"Range", "bytes=0-4"}, 206, "01234", "bytes 0-4/36"},
		{"open end", "GET", []string{"Range", "bytes=30-"}, 206, "uvwxyz", "bytes 30-35/36"},
		{"suffix", "GET", []string{"Range", "bytes=-3"}, 206, "xyz", "bytes 33-35/36"},
		{"clipped", "GET", []string{"Range", "bytes=34-1000"}, 206, "yz", "bytes 34-35/36"},
		{"unsatisfiable", "GET", []string{"Range", "bytes=36-"}, 416, "", "bytes */36"},
		{"zero suffix", "GET", []string{"Range", "bytes=-0"}, 416, "", "bytes */36"},
		{"invalid ignored", "GET", []string{"Range", "bytes=5-1"}, 200, digits, ""},
		{"other unit ignored", "GET", []string{"Range", "pages=1-2"}, 200, digits, ""},
		{"HEAD ignores Range", "HEAD", []string{"Range", "bytes=0-4"}, 200, "", ""},
		{"overlap coalesced", "GET", []string{"Range", "bytes=0-5,3-9"}, 206, "0123456789", "bytes 0-9/36"},
		{"If-Range etag", "GET", []string{"Range", "bytes=0-1", "If-Range", etag}, 206, "01", "bytes 0-1/36"},
		{"If-Range other etag", "GET", []string{"Range", "bytes=0-1", "If-Range", `"old"`}, 200, digits, ""},
		{"If-Range weak etag", "GET", []string{"Range", "bytes=0-1", "If-Range", "W/" + etag}, 200, digits, ""},
		{"If-Range date", "GET", []string{"Range", "bytes=0-1", "If-Range", lm}, 206, "01", "bytes 0-1/36"},
		{"If-Range other date", "GET", []string{"Range", "bytes=0-1", "If-Range", mod.Add(-time.Second).Format(http.TimeFormat)}, 200, digits, ""},
		{"If-Range without Range", "GET", []string{"If-Range", etag}, 200, digits, ""},
		{"Range after failed If-None-Match", "GET", []string{"Range", "bytes=0-1", "If-None-Match", etag}, 304, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := do(h, tt.method, "/f.txt", tt.header...)
			b := body(t, res)
			if res.StatusCode != tt.status {
				t.Fatalf("status %d, want %d", res.StatusCode, tt.status)
			}
			if tt.body != "" && b != tt.body {
				t.Errorf("body %q, want %q", b, tt.body)
			}
			if got := res.Header.Get("Content-Range"); got != tt.contentRange {
				t.Errorf("Content-Range %q, want %q", got, tt.contentRange)
			}
			if tt.status == 206 || tt.status == 200 && tt.method == "GET" {
				if cl := res.Header.Get("Content-Length"); cl != strconv.Itoa(len(b)) {
					t.Errorf("Content-Length %s for %d bytes", cl, len(b))
				}
			}
		})
	}

	t.Run("multipart", func(t *testing.T) {
		res := do(h, "GET", "/f.txt", "Range", "bytes=30-31, 0-1,10-12")
		raw := body(t, res)
		if res.StatusCode != 206 || res.Header.Get("Content-Length") != strconv.Itoa(len(raw)) {
			t.Fatalf("status %d, Content-Length %s for %d bytes", res.StatusCode, res.Header.Get("Content-Length"), len(raw))
		}
		mt, params, err := mime.ParseMediaType(res.Header.Get("Content-Type"))
		if err != nil || mt != "multipart/byteranges" {
			t.Fatalf("Content-Type %q", res.Header.Get("Content-Type"))
		}
		mr := multipart.NewReader(strings.NewReader(raw), params["boundary"])
		want := []struct{ body, cr string }{{"uv", "bytes 30-31/36"}, {"01", "bytes 0-1/36"}, {"abc", "bytes 10-12/36"}}
		for i, w := range want {
			p, err := mr.NextPart()
			if err != nil {
				t.Fatalf("part %d: %v", i, err)
			}
			pb, _ := io.ReadAll(p)
			if string(pb) != w.body || p.Header.Get("Content-Range") != w.cr || p.Header.Get("Content-Type") != "text/plain; charset=utf-8" {
				t.Errorf("part %d: %q %q %q", i, pb, p.Header.Get("Content-Range"), p.Header.Get("Content-Type"))
			}
		}
		if _, err := mr.NextPart(); err != io.EOF {
			t.Errorf("after the parts: %v", err)
		}
	})
}

func FuzzParseRange(f *testing.F) {
	for _, s := range []string{"bytes=0-9", "bytes=-5", "bytes=5-", "bytes=0-1,3-4,2-2", "bytes=,,", "bytes=99999999999999999999-", "BYTES=1-2, -3"} {
		f.Add(s, int64(100))
	}
	f.Fuzz(func(t *testing.T, s string, size int64) {
		if size < 0 {
			size = -size
		}
		if size < 0 {
			return
		}
		rs, err := parseRange(s, size)
		if err != nil && err != errUnsatisfiable {
			t.Fatalf("error %v", err)
		}
		if len(rs) > maxRangeParts {
			t.Fatalf("%d parts", len(rs))
		}
		var sum int64
		for _, r := range rs {
			if r.start < 0 || r.length <= 0 || r.end() > size {
				t.Fatalf("range %+v outside size %d", r, size)
			}
			sum += r.length
		}
		if len(rs) > 1 && sum > size {
			t.Fatalf("ranges total %d > size %d", sum, size)
		}
	})
}
