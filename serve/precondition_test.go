package serve

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestConditionalRequests(t *testing.T) {
	h, root := site(t, map[string]string{"f.txt": "content"}, Options{}, CacheOptions{})
	mod := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	if err := os.Chtimes(filepath.Join(root, "f.txt"), mod, mod); err != nil {
		t.Fatal(err)
	}
	etag := do(h, "GET", "/f.txt").Header.Get("Etag")
	weak := "W/" + etag
	lm := mod.Format(http.TimeFormat)
	before := mod.Add(-time.Hour).Format(http.TimeFormat)
	after := mod.Add(time.Hour).Format(http.TimeFormat)

	tests := []struct {
		name   string
		method string
		header []string
		status int
	}{
		{"no conditions", "GET", nil, 200},
		{"If-None-Match match", "GET", []string{"If-None-Match", etag}, 304},
		{"If-None-Match weak comparison", "GET", []string{"If-None-Match", weak}, 304},
		{"If-None-Match star", "GET", []string{"If-None-Match", "*"}, 304},
		{"If-None-Match list", "GET", []string{"If-None-Match", `"a", "b" ,` + etag}, 304},
		{"If-None-Match split over lines", "GET", []string{"If-None-Match", `"a"`, "If-None-Match", etag}, 304},
		{"If-None-Match other", "GET", []string{"If-None-Match", `"other"`}, 200},
		{"If-None-Match malformed", "GET", []string{"If-None-Match", `abc`}, 200},
		{"If-None-Match HEAD", "HEAD", []string{"If-None-Match", etag}, 304},
		{"If-Modified-Since equal", "GET", []string{"If-Modified-Since", lm}, 304},
		{"If-Modified-Since later", "GET", []string{"If-Modified-Since", after}, 304},
		{"If-Modified-Since earlier", "GET", []string{"If-Modified-Since", before}, 200},
		{"If-Modified-Since invalid", "GET", []string{"If-Modified-Since", "yesterday"}, 200},
		{"If-Modified-Since RFC 850", "GET", []string{"If-Modified-Since", mod.Format("Monday, 02-Jan-06 15:04:05 GMT")}, 304},
		{"If-Modified-Since asctime", "GET", []string{"If-Modified-Since", mod.Format(time.ANSIC)}, 304},
		{"If-Modified-Since ignored with If-None-Match", "GET", []string{"If-None-Match", `"other"`, "If-Modified-Since", lm}, 200},
		{"If-Match match", "GET", []string{"If-Match", etag}, 200},
		{"If-Match star", "GET", []string{"If-Match", "*"}, 200},
		{"If-Match other", "GET", []string{"If-Match", `"other"`}, 412},
		{"If-Match weak never matches", "GET", []string{"If-Match", weak}, 412},
		{"If-Match list", "GET", []string{"If-Match", `"x", ` + etag}, 200},
		{"If-Unmodified-Since later", "GET", []string{"If-Unmodified-Since", after}, 200},
		{"If-Unmodified-Since equal", "GET", []string{"If-Unmodified-Since", lm}, 200},
		{"If-Unmodified-Since earlier", "GET", []string{"If-Unmodified-Since", before}, 412},
		{"If-Unmodified-Since invalid", "GET", []string{"If-Unmodified-Since", "nope"}, 200},
		{"If-Unmodified-Since ignored with If-Match", "GET", []string{"If-Match", etag, "If-Unmodified-Since", before}, 200},
		{"If-Match before If-None-Match", "GET", []string{"If-Match", `"other"`, "If-None-Match", etag}, 412},
		{"If-Match true then If-None-Match", "GET", []string{"If-Match", etag, "If-None-Match", etag}, 304},
		{"If-Unmodified-Since before If-None-Match", "GET", []string{"If-Unmodified-Since", before, "If-None-Match", etag}, 412},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := do(h, tt.method, "/f.txt", tt.header...)
			if res.StatusCode != tt.status {
				t.Fatalf("status %d, want %d", res.StatusCode, tt.status)
			}
			if tt.status == 304 {
				// RFC 9110 15.4.5: the fields a 200 would carry, no body.
				for _, k := range []string{"Etag", "Last-Modified", "Cache-Control"} {
					if res.Header.Get(k) == "" {
						t.Errorf("304 lacks %s", k)
					}
				}
				if res.Header.Get("Etag") != etag || res.Header.Get("Last-Modified") != lm {
					t.Errorf("304 validators %q %q", res.Header.Get("Etag"), res.Header.Get("Last-Modified"))
				}
				if b := body(t, res); b != "" {
					t.Errorf("304 has a body %q", b)
				}
			}
		})
	}
}

func TestPreconditionsIgnoredFor404(t *testing.T) {
	h, _ := site(t, map[string]string{}, Options{}, CacheOptions{})
	if res := do(h, "GET", "/nope", "If-Match", `"x"`); res.StatusCode != 404 {
		t.Fatalf("status %d, want 404 (RFC 9110 13.2.1)", res.StatusCode)
	}
	if res := do(h, "GET", "/nope", "If-None-Match", "*"); res.StatusCode != 404 {
		t.Fatalf("status %d, want 404", res.StatusCode)
	}
}

func TestScanETag(t *testing.T) {
	tests := []struct{ in, tag, rest string }{
		{`"abc"`, `"abc"`, ""},
		{`W/"abc", "d"`, `W/"abc"`, `, "d"`},
		{`""`, `""`, ""},
		{`"a b"`, "", ""},
		{`abc`, "", ""},
		{`"unterminated`, "", ""},
		{`W/abc`, "", ""},
	}
	for _, tt := range tests {
		tag, rest := scanETag(tt.in)
		if tag != tt.tag || rest != tt.rest {
			t.Errorf("scanETag(%q) = %q, %q; want %q, %q", tt.in, tag, rest, tt.tag, tt.rest)
		}
	}
}

func FuzzPreconditions(f *testing.F) {
	f.Add(`"abc"`, `W/"abc", "x"`, "Sun, 06 Nov 1994 08:49:37 GMT", "*", `"abc"`)
	f.Add("*", "", "", "garbage", `W/"x"`)
	f.Add(`"a",,,`, `,"b"`, "Sunday, 06-Nov-94 08:49:37 GMT", "Sun Nov  6 08:49:37 1994", "")
	v := validators{ETag: `"abc"`, ModTime: time.Date(1994, 11, 6, 8, 49, 37, 0, time.UTC), Current: []string{`"abc-br"`}}
	f.Fuzz(func(t *testing.T, im, inm, ims, ius, ir string) {
		h := http.Header{}
		for k, s := range map[string]string{"If-Match": im, "If-None-Match": inm, "If-Modified-Since": ims, "If-Unmodified-Since": ius} {
			if s != "" {
				h[k] = []string{s}
			}
		}
		st, tag := checkPreconditions("GET", h, v)
		switch st {
		case 0, 412:
		case 304:
			if tag != v.ETag && tag != v.Current[0] {
				t.Fatalf("304 names %q, not a current tag", tag)
			}
		default:
			t.Fatalf("status %d", st)
		}
		if checkIfRange([]string{ir}, v) == condTrue && strings.TrimSpace(ir) != `"abc"` {
			if _, err := http.ParseTime(ir); err != nil {
				t.Fatalf("If-Range %q matched", ir)
			}
		}
	})
}
