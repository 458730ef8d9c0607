package main

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"appliance/config"
)

var binary string

// TestMain builds the binary once; the integration tests run it for real.
// APPLIANCE_TEST_BINARY names one built already (bench/callgrind.sh: a
// child process upsets valgrind).
func TestMain(m *testing.M) {
	if binary = os.Getenv("APPLIANCE_TEST_BINARY"); binary != "" {
		os.Exit(m.Run())
	}
	dir, err := os.MkdirTemp("", "appliance-test")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "appliance")
	out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func TestVersion(t *testing.T) {
	out, err := exec.Command(binary, "version").Output()
	if err != nil || !strings.HasPrefix(string(out), "appliance ") {
		t.Fatalf("%q %v", out, err)
	}
}

func TestCheck(t *testing.T) {
	dir := t.TempDir()
	good := writeFile(t, dir, "good.toml", "[server]\nhttp = \"127.0.0.1:0\"\n[[site]]\nroot = \""+dir+"\"\n")
	out, err := exec.Command(binary, "check", "-config", good).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "ok") {
		t.Fatalf("good config: %v %s", err, out)
	}
	bad := writeFile(t, dir, "bad.toml", "[server]\nhttp = \"127.0.0.1:0\"\n[[site]]\nroot = \"/does/not/exist\"\nbogus = 1\n")
	out, err = exec.Command(binary, "check", "-config", bad).CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Fatalf("bad config: %v", err)
	}
	for _, want := range []string{bad + ":4: root", bad + `:5: unknown key "site.bogus"`} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output %q lacks %q", out, want)
		}
	}
	if err := exec.Command(binary, "check").Run(); err == nil {
		t.Error("check without -config succeeded")
	}
	if err := exec.Command(binary, "frobnicate").Run(); err == nil {
		t.Error("unknown command succeeded")
	}
}

func writeFile(t testing.TB, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	os.MkdirAll(filepath.Dir(p), 0o755)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// proc is a running appliance and its log lines.
type proc struct {
	cmd   *exec.Cmd
	addr  string
	lines chan string
	log   bytes.Buffer
}

var addrRe = regexp.MustCompile(`http=http://(\S+)`)

func start(t *testing.T, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(binary, args...), lines: make(chan string, 100)}
	startProc(t, p)
	return p
}

// startProc starts p.cmd and waits until it serves.
func startProc(t *testing.T, p *proc) {
	t.Helper()
	stderr, _ := p.cmd.StderrPipe()
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		p.cmd.Wait()
	})
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
		close(p.lines)
	}()
	line := p.waitLog(t, "msg=serving")
	if m := addrRe.FindStringSubmatch(line); m != nil { // none when HTTPS only
		p.addr = m[1]
	}
}

// waitLog returns the first log line containing s.
func (p *proc) waitLog(t *testing.T, s string) string {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		select {
		case line, ok := <-p.lines:
			if !ok {
				t.Fatalf("process exited before logging %q:\n%s", s, p.log.String())
			}
			p.log.WriteString(line + "\n")
			if strings.Contains(line, s) {
				return line
			}
		case <-deadline:
			t.Fatalf("no log line %q:\n%s", s, p.log.String())
		}
	}
}

// raw sends bytes on a new connection and reads n responses.
func raw(t *testing.T, addr, request string, n int) []*http.Response {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, request); err != nil {
		t.Fatal(err)
	}
	// Parse our own requests so that a HEAD response is read without a body.
	var reqs []*http.Request
	rr := bufio.NewReader(strings.NewReader(request))
	for {
		req, err := http.ReadRequest(rr)
		if err != nil {
			break
		}
		io.Copy(io.Discard, req.Body)
		reqs = append(reqs, req)
	}
	br := bufio.NewReader(conn)
	var out []*http.Response
	for i := range n {
		var req *http.Request
		if i < len(reqs) {
			req = reqs[i]
		}
		res, err := http.ReadResponse(br, req)
		if err != nil {
			t.Fatalf("response %d: %v", len(out)+1, err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body = io.NopCloser(bytes.NewReader(b))
		out = append(out, res)
	}
	return out
}

func readBody(res *http.Response) string {
	b, _ := io.ReadAll(res.Body)
	return string(b)
}

func TestServeIntegration(t *testing.T) {
	for _, fast := range []bool{true, false} {
		t.Run(fmt.Sprintf("fast_http1=%v", fast), func(t *testing.T) { testServeIntegration(t, fast) })
	}
}

func testServeIntegration(t *testing.T, fast bool) {
	dir := t.TempDir()
	big := make([]byte, 3<<20+17)
	rand.Read(big)
	writeFile(t, dir, "a/index.html", "site A")
	writeFile(t, dir, "a/big.bin", string(big))
	writeFile(t, dir, "b/index.html", "site B")
	cfgPath := writeFile(t, dir, "appliance.toml", fmt.Sprintf(`[server]
http = "127.0.0.1:0"
max_header_bytes = "4KiB"
fast_http1 = %v
[[site]]
hosts = ["a.test"]
root = %q
[[site]]
hosts = ["b.test", "*.b.test"]
root = %q
`, fast, filepath.Join(dir, "a"), filepath.Join(dir, "b")))
	p := start(t, "-config", cfgPath)

	get := func(host, path string, header ...string) *http.Response {
		req, _ := http.NewRequest("GET", "http://"+p.addr+path, nil)
		req.Host = host
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { res.Body.Close() })
		return res
	}

	t.Run("virtual hosts", func(t *testing.T) {
		for host, want := range map[string]string{"a.test": "site A", "B.TEST:80": "site B", "x.b.test": "site B"} {
			if b := readBody(get(host, "/")); b != want {
				t.Errorf("%s: %q, want %q", host, b, want)
			}
		}
		res := get("c.test", "/")
		if b := readBody(res); res.StatusCode != 404 || strings.Contains(b, "test") {
			t.Errorf("unknown host: %d %q", res.StatusCode, b)
		}
	})

	t.Run("304 carries validators and Date", func(t *testing.T) {
		res := get("a.test", "/")
		etag := res.Header.Get("Etag")
		res = get("a.test", "/", "If-None-Match", etag)
		if res.StatusCode != 304 {
			t.Fatalf("status %d", res.StatusCode)
		}
		for _, h := range []string{"Etag", "Last-Modified", "Cache-Control", "Date"} {
			if res.Header.Get(h) == "" {
				t.Errorf("304 without %s", h)
			}
		}
	})

	t.Run("large file", func(t *testing.T) {
		res := get("a.test", "/big.bin")
		b, _ := io.ReadAll(res.Body)
		if !bytes.Equal(b, big) {
			t.Fatalf("got %d bytes, want %d", len(b), len(big))
		}
		res = get("a.test", "/big.bin", "Range", "bytes=1000000-1000009")
		b, _ = io.ReadAll(res.Body)
		if res.StatusCode != 206 || !bytes.Equal(b, big[1000000:1000010]) {
			t.Fatalf("range: %d %x", res.StatusCode, b)
		}
	})

	t.Run("keep-alive and pipelining", func(t *testing.T) {
		req := "GET / HTTP/1.1\r\nHost: a.test\r\n\r\n" +
			"HEAD / HTTP/1.1\r\nHost: b.test\r\n\r\n" +
			"GET /missing HTTP/1.1\r\nHost: b.test\r\n\r\n" +
			"GET / HTTP/1.1\r\nHost: b.test\r\nConnection: close\r\n\r\n"
		rs := raw(t, p.addr, req, 4)
		want := []struct {
			status int
			body   string
		}{{200, "site A"}, {200, ""}, {404, "404 Not Found\n"}, {200, "site B"}}
		for i, w := range want {
			if rs[i].StatusCode != w.status || readBody(rs[i]) != w.body {
				t.Errorf("response %d: %d", i+1, rs[i].StatusCode)
			}
		}
	})

	t.Run("malformed requests", func(t *testing.T) {
		tests := []struct {
			name, req string
			status    int
			body      string
		}{
			{"HTTP/1.1 without Host", "GET / HTTP/1.1\r\n\r\n", 400, ""},
			{"absolute-form uses its authority", "GET http://b.test/ HTTP/1.1\r\nHost: a.test\r\n\r\n", 200, "site B"},
			{"header too large", "GET / HTTP/1.1\r\nHost: a.test\r\nX-Big: " + strings.Repeat("x", 10000) + "\r\n\r\n", 431, ""},
			{"bad method token", "G(T / HTTP/1.1\r\nHost: a.test\r\n\r\n", 400, ""},
			{"traversal", "GET /../../etc/passwd HTTP/1.1\r\nHost: a.test\r\n\r\n", 400, ""},
			{"encoded traversal", "GET /%2e%2e/%2e%2e/etc/passwd HTTP/1.1\r\nHost: a.test\r\n\r\n", 400, ""},
			{"TRACE", "TRACE / HTTP/1.1\r\nHost: a.test\r\n\r\n", 405, ""},
			{"POST with a body", "POST / HTTP/1.1\r\nHost: a.test\r\nContent-Length: 5\r\n\r\nhello", 405, ""},
		}
		for _, tt := range tests {
			rs := raw(t, p.addr, tt.req, 1)
			if rs[0].StatusCode != tt.status || tt.body != "" && readBody(rs[0]) != tt.body {
				t.Errorf("%s: %d, want %d", tt.name, rs[0].StatusCode, tt.status)
			}
		}
	})

	t.Run("reload", func(t *testing.T) {
		os.WriteFile(cfgPath, []byte(fmt.Sprintf("[server]\nhttp = \"127.0.0.1:0\"\n[[site]]\nhosts = [\"a.test\"]\nroot = %q\n", filepath.Join(dir, "b"))), 0o644)
		p.cmd.Process.Signal(syscall.SIGHUP)
		p.waitLog(t, "msg=reloaded")
		if b := readBody(get("a.test", "/")); b != "site B" {
			t.Fatalf("after reload: %q", b)
		}
		os.WriteFile(cfgPath, []byte("[server]\nhttp = \"127.0.0.1:0\"\n[[site]]\nroot = \"/nope\"\n"), 0o644)
		p.cmd.Process.Signal(syscall.SIGHUP)
		line := p.waitLog(t, "reload refused")
		if !strings.Contains(line, cfgPath+":4:") {
			t.Errorf("refusal without file:line: %s", line)
		}
		if b := readBody(get("a.test", "/")); b != "site B" {
			t.Fatalf("after a refused reload: %q", b)
		}
	})

	t.Run("graceful stop", func(t *testing.T) {
		p.cmd.Process.Signal(syscall.SIGTERM)
		if err := p.cmd.Wait(); err != nil {
			t.Fatalf("exit: %v\n%s", err, p.log.String())
		}
	})
}

func TestDemoSite(t *testing.T) {
	srv, err := newServer(config.Default(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.plainFallback.Handler)
	defer ts.Close()
	for path, want := range map[string]struct {
		status int
		text   string
	}{
		"/":            {200, "appliance is running"},
		"/about":       {200, "About this page"},
		"/style.css":   {200, "prefers-color-scheme"},
		"/favicon.svg": {200, "<svg"},
		"/nope":        {404, "nothing here"},
	} {
		res, err := http.Get(ts.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		b := readBody(res)
		res.Body.Close()
		if res.StatusCode != want.status || !strings.Contains(b, want.text) {
			t.Errorf("%s: %d, body lacks %q", path, res.StatusCode, want.text)
		}
	}
}

func TestRulesIntegration(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "site/index.html", "app shell")
	writeFile(t, dir, "site/assets/app.js", strings.Repeat("console.log('appliance');\n", 100))
	writeFile(t, dir, "site/private/report.html", "secret report")
	hash := rewriteHash(t, "letmein")
	cfg := writeFile(t, dir, "appliance.toml", fmt.Sprintf(`[server]
http = "127.0.0.1:0"
[[site]]
hosts = ["example.test"]
root = %q
fallback = "/index.html"
security_headers = "basic"

[[site.redirect]]
from = "^/blog/(\\d+)/(.*)$"
to = "https://blog.example.test/$1/$2"

[[site.headers]]
path = "/assets/**"
set = { "Cache-Control" = "public, max-age=31536000, immutable" }

[[site.auth]]
path = "/private/"
realm = "staff"
users = { alice = %q }

[[site]]
hosts = ["www.example.test"]
root = %q
redirect_to = "https://example.test"
`, filepath.Join(dir, "site"), hash, filepath.Join(dir, "site")))
	p := start(t, "-config", cfg)
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(host, path string, header ...string) *http.Response {
		req, _ := http.NewRequest("GET", "http://"+p.addr+path, nil)
		req.Host = host
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { res.Body.Close() })
		return res
	}
	if res := get("example.test", "/blog/7/hi?x=1"); res.StatusCode != 301 || res.Header.Get("Location") != "https://blog.example.test/7/hi?x=1" {
		t.Errorf("redirect: %d %q", res.StatusCode, res.Header.Get("Location"))
	}
	if res := get("www.example.test", "/a?b"); res.StatusCode != 301 || res.Header.Get("Location") != "https://example.test/a?b" {
		t.Errorf("redirect_to: %d %q", res.StatusCode, res.Header.Get("Location"))
	}
	if res := get("example.test", "/settings/profile"); res.StatusCode != 200 || readBody(res) != "app shell" {
		t.Errorf("fallback: %d", res.StatusCode)
	}
	if res := get("example.test", "/missing.png"); res.StatusCode != 404 {
		t.Errorf("missing asset: %d", res.StatusCode)
	}
	res := get("example.test", "/assets/app.js", "Accept-Encoding", "gzip")
	if res.Header.Get("Cache-Control") != "public, max-age=31536000, immutable" || res.Header.Get("Content-Encoding") != "gzip" ||
		res.Header.Get("Referrer-Policy") == "" {
		t.Errorf("headers: %v", res.Header)
	}
	etag := res.Header.Get("Etag")
	if res := get("example.test", "/assets/app.js", "Accept-Encoding", "gzip", "If-None-Match", etag); res.StatusCode != 304 ||
		res.Header.Get("Cache-Control") != "public, max-age=31536000, immutable" {
		t.Errorf("304 with header rules: %d %v", res.StatusCode, res.Header)
	}
	if res := get("example.test", "/private/report.html"); res.StatusCode != 401 || !strings.Contains(res.Header.Get("WWW-Authenticate"), `realm="staff"`) {
		t.Errorf("auth: %d", res.StatusCode)
	}
	req, _ := http.NewRequest("GET", "http://"+p.addr+"/private/report.html", nil)
	req.Host = "example.test"
	req.SetBasicAuth("alice", "letmein")
	res, err := client.Do(req)
	if err != nil || res.StatusCode != 200 || readBody(res) != "secret report" {
		t.Errorf("authorised: %v", err)
	}
}

// rewriteHash runs `appliance hash-password` as an operator would.
func rewriteHash(t *testing.T, pw string) string {
	cmd := exec.Command(binary, "hash-password")
	cmd.Stdin = strings.NewReader(pw + "\n")
	out, err := cmd.Output()
	if err != nil || !strings.HasPrefix(string(out), "$argon2id$") {
		t.Fatalf("hash-password: %q %v", out, err)
	}
	return strings.TrimSpace(string(out))
}

// loadLoop keeps four clients requesting url until the returned stop is
// called, which reports the successes, the failures and the bodies seen.
func loadLoop(client *http.Client, url string) (stop func() (ok, failed int64, seen map[string]bool), ok func() int64) {
	var okN, failedN atomic.Int64
	var mu sync.Mutex
	seen := map[string]bool{}
	done := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-done:
					return
				default:
				}
				res, err := client.Get(url)
				if err != nil {
					failedN.Add(1)
					continue
				}
				b := readBody(res)
				res.Body.Close()
				if res.StatusCode != 200 {
					failedN.Add(1)
					continue
				}
				okN.Add(1)
				mu.Lock()
				seen[b] = true
				mu.Unlock()
			}
		}()
	}
	return func() (int64, int64, map[string]bool) {
		close(done)
		wg.Wait()
		return okN.Load(), failedN.Load(), seen
	}, okN.Load
}
