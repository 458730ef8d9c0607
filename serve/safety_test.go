package serve

import (
	"bufio"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"appliance/internal/httpx"
)

const secret = "TOP-SECRET-OUTSIDE-ROOT"

// jail makes a root with a secret beside it and symlinks in and out.
func jail(t testing.TB, opts Options) (*Handler, string) {
	t.Helper()
	h, root := site(t, map[string]string{"index.html": "home", "in/target.txt": "inside"}, opts, CacheOptions{})
	parent := filepath.Dir(root)
	os.WriteFile(filepath.Join(parent, "secret.txt"), []byte(secret), 0o644)
	os.MkdirAll(filepath.Join(parent, "outdir"), 0o755)
	os.WriteFile(filepath.Join(parent, "outdir", "index.html"), []byte(secret), 0o644)
	for link, target := range map[string]string{
		"out.txt":       "../secret.txt",
		"abs.txt":       filepath.Join(parent, "secret.txt"),
		"outdir":        "../outdir",
		"in/link.txt":   "target.txt",
		"in/up.txt":     "../index.html",
		"loop":          "loop",
		"in/escape.txt": "../../secret.txt",
	} {
		if err := os.Symlink(target, filepath.Join(root, link)); err != nil {
			t.Fatal(err)
		}
	}
	return h, root
}

func TestCleanPath(t *testing.T) {
	tests := []struct {
		in, out string
		status  int
	}{
		{"/", "/", 0},
		{"/a/b.html", "/a/b.html", 0},
		{"/a/", "/a/", 0},
		{"//a//b/", "/a/b/", 0},
		{"/a/./b", "/a/b", 0},
		{"/.well-known/acme-challenge/x", "/.well-known/acme-challenge/x", 0},
		{"", "", 400},
		{"a", "", 400},
		{"/..", "", 400},
		{"/a/../b", "", 400},
		{"/a/..", "", 400},
		{"/a\\b", "", 400},
		{"/a\x00b", "", 400},
		{"/\xff", "", 400},
		{"/" + strings.Repeat("a", httpx.MaxPathLen), "", 414},
		{"/.env", "", 404},
		{"/a/.git/config", "", 404},
		{"/a/.well-known/x", "", 404},
		{"/.well-known/.x", "", 404},
		{"/..a", "", 404},
		{"/a./b", "/a./b", 0},
	}
	for _, tt := range tests {
		out, status := cleanPath(tt.in)
		if out != tt.out || status != tt.status {
			t.Errorf("cleanPath(%q) = %q, %d; want %q, %d", tt.in, out, status, tt.out, tt.status)
		}
	}
}

func TestTraversalAndSymlinks(t *testing.T) {
	h, _ := jail(t, Options{})
	tests := []struct {
		target string
		status int
		body   string
	}{
		{"/index.html", 200, "home"},
		{"/in/link.txt", 200, "inside"},
		{"/in/up.txt", 200, "home"},
		{"/out.txt", 404, ""},
		{"/abs.txt", 404, ""},
		{"/outdir/", 404, ""},
		{"/outdir/index.html", 404, ""},
		{"/in/escape.txt", 404, ""},
		{"/loop", 404, ""},
		{"/../secret.txt", 400, ""},
		{"/in/../../secret.txt", 400, ""},
		{"/%2e%2e/secret.txt", 400, ""},
		{"/%2E%2E%2Fsecret.txt", 400, ""},
		{"/in%2f..%2f..%2fsecret.txt", 400, ""},
		{"/..%5csecret.txt", 400, ""},
		{"/%5c..%5csecret.txt", 400, ""},
		{"/index.html%00.txt", 400, ""},
		{"/%c0%ae%c0%ae/secret.txt", 400, ""}, // overlong UTF-8 dots
		{"/%252e%252e/secret.txt", 404, ""},   // double encoding stays literal
	}
	for _, tt := range tests {
		t.Run(tt.target, func(t *testing.T) {
			req := httptest.NewRequest("GET", "/", nil)
			u, err := url.Parse(tt.target)
			if err != nil {
				t.Fatal(err)
			}
			req.URL = u
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tt.status {
				t.Errorf("status %d, want %d", rec.Code, tt.status)
			}
			if strings.Contains(rec.Body.String(), secret) {
				t.Fatalf("served the secret")
			}
			if tt.body != "" && rec.Body.String() != tt.body {
				t.Errorf("body %q, want %q", rec.Body.String(), tt.body)
			}
		})
	}
}

func TestRefuseSymlinks(t *testing.T) {
	h, _ := jail(t, Options{RefuseSymlinks: true})
	for target, status := range map[string]int{"/index.html": 200, "/in/target.txt": 200, "/in/link.txt": 404, "/in/up.txt": 404, "/out.txt": 404} {
		if res := do(h, "GET", target); res.StatusCode != status {
			t.Errorf("%s: %d, want %d", target, res.StatusCode, status)
		}
	}
}

// TestRawTraversal sends request targets byte for byte over a real
// connection, past any client-side normalisation.
func TestRawTraversal(t *testing.T) {
	h, _ := jail(t, Options{})
	srv := httptest.NewServer(h)
	defer srv.Close()
	for _, target := range []string{
		"/../secret.txt", "/../../../../etc/passwd", "/%2e%2e/secret.txt", "/in/..%2f..%2fsecret.txt",
		"/..\\secret.txt", "/%2e%2e%5csecret.txt", "/out.txt", "/./../secret.txt", "http://x/../secret.txt",
	} {
		conn, err := net.Dial("tcp", srv.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		conn.Write([]byte("GET " + target + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"))
		res, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatalf("%s: %v", target, err)
		}
		b := body(t, res)
		conn.Close()
		if res.StatusCode < 400 || res.StatusCode >= 500 || strings.Contains(b, secret) {
			t.Errorf("%s: %d %q", target, res.StatusCode, b)
		}
	}
}

// FuzzServePath checks that no request path reaches outside the root.
func FuzzServePath(f *testing.F) {
	for _, s := range []string{"/", "/../secret.txt", "/out.txt", "/in/../../secret.txt", "/%2e%2e/x", "/outdir/", "/in/escape.txt", "/.well-known/../x"} {
		f.Add(s)
	}
	h, _ := jail(f, Options{ListDirectories: true})
	f.Fuzz(func(t *testing.T, p string) {
		req := httptest.NewRequest("GET", "/", nil)
		req.URL = &url.URL{Path: p}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if strings.Contains(rec.Body.String(), secret) {
			t.Fatalf("path %q served the secret", p)
		}
		if out, st := cleanPath(p); st == 0 {
			if name := fsName(out); !strings.HasPrefix(out, "/") || strings.Contains("/"+name+"/", "/../") {
				t.Fatalf("cleanPath(%q) = %q", p, out)
			}
		}
	})
}
