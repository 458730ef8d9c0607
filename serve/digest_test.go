package serve

import (
	"crypto/sha256"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestWantSHA256(t *testing.T) {
	tests := []struct {
		name  string
		lines []string
		pref  int
		named bool
	}{
		{"one", []string{"sha-256=5"}, 5, true},
		{"zero refuses", []string{"sha-256=0"}, 0, true},
		{"among others", []string{"sha-512=3, sha-256=10"}, 10, true},
		{"other algorithm only", []string{"sha-512=3"}, 0, false},
		{"lines are one list", []string{"sha-512=3", "sha-256=1"}, 1, true},
		{"last value counts", []string{"sha-256=0, sha-256=7"}, 7, true},
		{"parameters ignored", []string{"sha-256=4;x=1;y"}, 4, true},
		{"spaces and tabs", []string{" sha-256=2 ,\tsha-512=1 "}, 2, true},
		{"above 10 invalidates the field", []string{"sha-256=3, sha-512=11"}, 0, false},
		{"negative", []string{"sha-256=-1"}, 0, false},
		{"bare key is true, not an integer", []string{"sha-256"}, 0, false},
		{"upper-case key", []string{"SHA-256=5"}, 0, false},
		{"string value", []string{`sha-256="5"`}, 0, false},
		{"decimal", []string{"sha-256=5.0"}, 0, false},
		{"empty member", []string{"sha-256=5,,"}, 0, false},
		{"junk after integer", []string{"sha-256=5x"}, 0, false},
		{"too many digits", []string{"sha-256=0000000000000001"}, 0, false},
		{"empty", []string{""}, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pref, named := wantSHA256(tt.lines)
			if pref != tt.pref || named != tt.named {
				t.Errorf("%q: %d %v, want %d %v", tt.lines, pref, named, tt.pref, tt.named)
			}
		})
	}
}

// FuzzWantReprDigest: any field gives a preference from 0 to 10, and a
// field that names sha-256 alone is read back.
func FuzzWantReprDigest(f *testing.F) {
	for _, s := range []string{"sha-256=5", "sha-512=3, sha-256=10", "sha-256=4;x=1;y", "sha-256", `sha-256="5"`, "a=1,b=2;c=?0", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		pref, named := wantSHA256([]string{s})
		if pref < 0 || pref > 10 || !named && pref != 0 {
			t.Fatalf("%q: %d %v", s, pref, named)
		}
		if _, _, ok := parseDictInteger(strings.Trim(s, " \t")); ok && !strings.Contains(s, ",") {
			again, _ := wantSHA256([]string{s})
			if again != pref {
				t.Fatalf("%q read twice: %d, %d", s, pref, again)
			}
		}
	})
}

// digestOf is the Repr-Digest value of b.
func digestOf(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha-256=:" + base64.StdEncoding.EncodeToString(sum[:]) + ":"
}

func TestReprDigest(t *testing.T) {
	page := strings.Repeat("<p>a digest of the bytes sent</p>\n", 40)
	big := strings.Repeat("x", 4096)
	files := map[string]string{"page.html": page, "big.txt": big}
	for _, on := range []bool{false, true} {
		// big.txt is larger than the memory cache (sendfile) and than
		// max_compress_bytes (compressed as a stream).
		h, _ := site(t, files, Options{ReprDigest: on}, CacheOptions{MaxFileBytes: 2048, MaxCompressBytes: 2048})
		whole := digestOf([]byte(page))
		tests := []struct {
			name, method, target string
			header               []string
			status               int
			digest               string // "" for none; "body" for the digest of the body
		}{
			{"not asked", "GET", "/page.html", nil, 200, map[bool]string{false: "", true: whole}[on]},
			{"asked", "GET", "/page.html", []string{"Want-Repr-Digest", "sha-256=3"}, 200, whole},
			{"HEAD asked", "HEAD", "/page.html", []string{"Want-Repr-Digest", "sha-256=3"}, 200, whole},
			{"refused", "GET", "/page.html", []string{"Want-Repr-Digest", "sha-256=0, sha-512=9"}, 200, ""},
			{"other algorithm", "GET", "/page.html", []string{"Want-Repr-Digest", "sha-512=9"}, 200, map[bool]string{false: "", true: whole}[on]},
			{"malformed is ignored", "GET", "/page.html", []string{"Want-Repr-Digest", "sha-256=ok"}, 200, map[bool]string{false: "", true: whole}[on]},
			{"range: the whole representation's", "GET", "/page.html", []string{"Want-Repr-Digest", "sha-256=3", "Range", "bytes=0-9"}, 206, whole},
			{"ranges", "GET", "/page.html", []string{"Want-Repr-Digest", "sha-256=3", "Range", "bytes=0-9,20-29"}, 206, whole},
			{"gzip: of the encoded bytes", "GET", "/page.html", []string{"Want-Repr-Digest", "sha-256=3", "Accept-Encoding", "gzip"}, 200, "body"},
			{"br: of the encoded bytes", "GET", "/page.html", []string{"Want-Repr-Digest", "sha-256=3", "Accept-Encoding", "br"}, 200, "body"},
			{"large file from disk", "GET", "/big.txt", []string{"Want-Repr-Digest", "sha-256=3"}, 200, digestOf([]byte(big))},
			{"stream: none", "GET", "/big.txt", []string{"Want-Repr-Digest", "sha-256=3", "Accept-Encoding", "gzip"}, 200, ""},
			{"not modified: not required", "GET", "/page.html", []string{"Want-Repr-Digest", "sha-256=3", "If-None-Match", "*"}, 304, ""},
			{"not found", "GET", "/missing", []string{"Want-Repr-Digest", "sha-256=3"}, 404, ""},
		}
		for _, tt := range tests {
			res := do(h, tt.method, tt.target, tt.header...)
			b := body(t, res)
			want := tt.digest
			if want == "body" {
				want = digestOf([]byte(b))
				if res.Header.Get("Content-Encoding") == "" || b == page {
					t.Fatalf("%s: not compressed", tt.name)
				}
			}
			if res.StatusCode != tt.status || res.Header.Get("Repr-Digest") != want {
				t.Errorf("repr_digest=%v %s: %d %q, want %d %q", on, tt.name, res.StatusCode, res.Header.Get("Repr-Digest"), tt.status, want)
			}
		}
	}
}

// TestReprDigestOfSidecar: a precompressed sidecar's digest is of its
// own bytes, the encoded representation.
func TestReprDigestOfSidecar(t *testing.T) {
	h, root := site(t, map[string]string{"app.js": "console.log(1)", "app.js.br": "pretend brotli"}, Options{}, CacheOptions{})
	later := time.Now().Add(time.Minute)
	if err := os.Chtimes(filepath.Join(root, "app.js.br"), later, later); err != nil {
		t.Fatal(err)
	}
	res := do(h, "GET", "/app.js", "Accept-Encoding", "br", "Want-Repr-Digest", "sha-256=1")
	if b := body(t, res); b != "pretend brotli" || res.Header.Get("Repr-Digest") != digestOf([]byte(b)) {
		t.Errorf("%q %q", b, res.Header.Get("Repr-Digest"))
	}
}
