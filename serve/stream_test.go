package serve

import (
	"compress/gzip"
	"crypto/sha256"
	"io"
	"io/fs"
	"math/rand"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/andybalholm/brotli"

	"appliance/compress"
)

// gatedFS serves an fs.FS; once armed, every reader of one file is held
// after its first free bytes, telling arrived, until gate is closed.
type gatedFS struct {
	fs.FS
	name    string
	free    int64
	armed   atomic.Bool
	arrived chan struct{}
	gate    chan struct{}
}

func (g *gatedFS) Open(name string) (fs.File, error) {
	f, err := g.FS.Open(name)
	if err != nil || name != g.name || !g.armed.Load() {
		return f, err
	}
	return &gatedFile{File: f, g: g}, nil
}

type gatedFile struct {
	fs.File
	g    *gatedFS
	n    int64
	held bool
}

func (f *gatedFile) Read(p []byte) (int, error) {
	if !f.held {
		if f.n >= f.g.free {
			f.held = true
			f.g.arrived <- struct{}{}
			<-f.g.gate
		} else if rest := f.g.free - f.n; int64(len(p)) > rest {
			p = p[:rest]
		}
	}
	n, err := f.File.Read(p)
	f.n += int64(n)
	return n, err
}

func (f *gatedFile) Seek(off int64, whence int) (int64, error) {
	return f.File.(io.Seeker).Seek(off, whence)
}

// TestStreamingCompressionIsBounded: 50 concurrent downloads of a file
// compressed per request, all asking for "br, gzip", are held by the
// server after their first 1.25 MiB (past brotli's 1 MiB window, so every
// encoder is at full size) until all 50 have started. The brotli
// encoders live then are what the streaming budget holds (4 of the
// default 40 MiB), the next 5 get gzip, and the rest identity; the heap
// grows by no more than the budget and the connections' buffers. Every
// response then decodes to the file, with the headers of its coding.
func TestStreamingCompressionIsBounded(t *testing.T) {
	const clients = 50
	content := make([]byte, 2<<20)
	rng := rand.New(rand.NewSource(1))
	words := strings.Fields("static site served exactly as RFC 9110 says with validators ranges and codings for every file <p> </p> {} ;")
	for i := 0; i < len(content); {
		i += copy(content[i:], words[rng.Intn(len(words))]+" ")
	}
	want := sha256.Sum256(content)
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "big.txt"), content, 0o644); err != nil {
		t.Fatal(err)
	}
	d, err := OpenDir(root, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	g := &gatedFS{FS: d, name: "big.txt", free: 1<<20 + 1<<18, arrived: make(chan struct{}, clients), gate: make(chan struct{})}
	h := New(g, Options{}, NewCache(CacheOptions{MaxFileBytes: -1, MaxCompressBytes: 64 << 10, Revalidate: time.Hour}))
	srv := httptest.NewServer(h)
	defer srv.Close()
	open := sync.OnceFunc(func() { close(g.gate) })
	defer open() // before srv.Close, which waits for the handlers

	if res := do(h, "HEAD", "/big.txt"); res.StatusCode != 200 { // read and hash the file before arming
		t.Fatalf("HEAD: %d", res.StatusCode)
	}
	baseTag := do(h, "HEAD", "/big.txt").Header.Get("Etag")
	g.armed.Store(true)
	budget := int64(compress.DefaultStreamBudget)
	wantBr := budget / compress.StreamCost(compress.Brotli)
	wantGz := (budget - wantBr*compress.StreamCost(compress.Brotli)) / compress.StreamCost(compress.Gzip)

	tr := &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: clients}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	var before runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&before)

	type result struct {
		header http.Header
		status int
		sum    [32]byte
		err    error
	}
	results := make(chan result, clients)
	for range clients {
		go func() {
			req, _ := http.NewRequest("GET", srv.URL+"/big.txt", nil)
			req.Header.Set("Accept-Encoding", "br, gzip")
			res, err := client.Do(req)
			if err != nil {
				results <- result{err: err}
				return
			}
			defer res.Body.Close()
			var r io.Reader = res.Body
			switch res.Header.Get("Content-Encoding") {
			case "br":
				r = brotli.NewReader(r)
			case "gzip":
				if r, err = gzip.NewReader(r); err != nil {
					results <- result{err: err}
					return
				}
			}
			hash := sha256.New()
			_, err = io.Copy(hash, r) // as slowly as the server sends
			results <- result{header: res.Header, status: res.StatusCode, sum: [32]byte(hash.Sum(nil)), err: err}
		}()
	}
	watchdog := time.After(2 * time.Minute) // only if the test is broken
	for i := range clients {
		select {
		case <-g.arrived:
		case <-watchdog:
			t.Fatalf("only %d of %d downloads started", i, clients)
		}
	}
	live, held, _ := compress.StreamStats()
	var during runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&during)
	growth := int64(during.HeapAlloc) - int64(before.HeapAlloc)
	const slack = 16 << 20 // 50 connections' buffers on both ends, 4 brotli decoders
	t.Logf("%d downloads in flight: live encoders %v (zstd, br, gzip, deflate), %.1f MiB of budget held, heap grew %.1f MiB",
		clients, live[:compress.Identity], float64(held)/(1<<20), float64(growth)/(1<<20))
	if live[compress.Brotli] != wantBr || live[compress.Gzip] != wantGz || held > budget {
		t.Errorf("live encoders %v holding %d bytes; want %d brotli and %d gzip within %d", live, held, wantBr, wantGz, budget)
	}
	if growth > budget+slack {
		t.Errorf("heap grew %d bytes with %d downloads in flight; want at most %d", growth, clients, budget+slack)
	}
	open()

	count := map[string]int64{}
	for range clients {
		r := <-results
		if r.err != nil {
			t.Error(r.err)
			continue
		}
		ce := r.header.Get("Content-Encoding")
		count[ce]++
		if r.status != 200 || r.sum != want || r.header.Get("Vary") != "Accept-Encoding" {
			t.Errorf("%q: status %d, Vary %q, body matches %v", ce, r.status, r.header.Get("Vary"), r.sum == want)
		}
		tag, cl := r.header.Get("Etag"), r.header.Get("Content-Length")
		switch ce {
		case "":
			if tag != baseTag || cl != strconv.Itoa(len(content)) || r.header.Get("Accept-Ranges") != "bytes" {
				t.Errorf("identity: ETag %s (file %s), Content-Length %q, Accept-Ranges %q", tag, baseTag, cl, r.header.Get("Accept-Ranges"))
			}
		case "br", "gzip":
			suffix := map[string]string{"br": `-br"`, "gzip": `-gz"`}[ce]
			if tag != "W/"+strings.TrimSuffix(baseTag, `"`)+suffix || cl != "" || r.header.Get("Accept-Ranges") != "" {
				t.Errorf("%s stream: ETag %s (file %s), Content-Length %q, Accept-Ranges %q", ce, tag, baseTag, cl, r.header.Get("Accept-Ranges"))
			}
		default:
			t.Errorf("Content-Encoding %q", ce)
		}
	}
	if count["br"] != wantBr || count["gzip"] != wantGz || count[""] != clients-wantBr-wantGz {
		t.Errorf("codings sent %v; want %d br, %d gzip, the rest identity", count, wantBr, wantGz)
	}
	if live, held, _ := compress.StreamStats(); live != [compress.NumCodings]int64{} || held != 0 {
		t.Errorf("after the downloads: live %v, %d bytes held", live, held)
	}
}

// TestStreamingBudgetFallbacks: with no room for an encoder, a request
// gets the next coding it accepts that has room, else identity, else
// 503 with Retry-After; each with its own headers and validators, HEAD
// as GET.
func TestStreamingBudgetFallbacks(t *testing.T) {
	h, _ := site(t, map[string]string{"app.js": jsText}, Options{}, CacheOptions{MaxFileBytes: -1, MaxCompressBytes: 1000})
	defer compress.SetStreamBudget(compress.SetStreamBudget(0))
	baseTag := do(h, "GET", "/app.js").Header.Get("Etag")

	for _, method := range []string{"GET", "HEAD"} {
		res := do(h, method, "/app.js", "Accept-Encoding", "zstd, br, gzip, deflate")
		b := body(t, res)
		if res.StatusCode != 200 || res.Header.Get("Content-Encoding") != "" || res.Header.Get("Etag") != baseTag ||
			res.Header.Get("Vary") != "Accept-Encoding" || res.Header.Get("Content-Length") != strconv.Itoa(len(jsText)) ||
			res.Header.Get("Accept-Ranges") != "bytes" || method == "GET" && b != jsText {
			t.Errorf("%s, budget 0: %d %v, %d bytes", method, res.StatusCode, res.Header, len(b))
		}
	}
	if res := do(h, "GET", "/app.js", "Accept-Encoding", "br", "If-None-Match", baseTag); res.StatusCode != 304 || res.Header.Get("Etag") != baseTag {
		t.Errorf("If-None-Match the identity tag, budget 0: %d %v", res.StatusCode, res.Header)
	}
	for _, accept := range []string{"identity;q=0, br, gzip", "*;q=0, zstd"} {
		res := do(h, "GET", "/app.js", "Accept-Encoding", accept)
		if res.StatusCode != 503 || res.Header.Get("Retry-After") != "1" || res.Header.Get("Vary") != "Accept-Encoding" || res.Header.Get("Etag") != "" {
			t.Errorf("%q, budget 0: %d %v", accept, res.StatusCode, res.Header)
		}
	}
	if res := do(h, "GET", "/app.js", "Accept-Encoding", "identity;q=0, lzma"); res.StatusCode != 406 {
		t.Errorf("nothing acceptable: %d, want 406 (not 503)", res.StatusCode)
	}

	compress.SetStreamBudget(compress.StreamCost(compress.Gzip)) // room for gzip, not brotli
	for _, method := range []string{"GET", "HEAD"} {
		res := do(h, method, "/app.js", "Accept-Encoding", "br, gzip")
		raw := []byte(body(t, res))
		if res.StatusCode != 200 || res.Header.Get("Content-Encoding") != "gzip" || res.Header.Get("Etag") != "W/"+strings.TrimSuffix(baseTag, `"`)+`-gz"` ||
			res.Header.Get("Content-Length") != "" || method == "GET" && string(decode(t, "gzip", raw)) != jsText {
			t.Errorf("%s, room for gzip: %d %v", method, res.StatusCode, res.Header)
		}
	}
	if res := do(h, "GET", "/app.js", "Accept-Encoding", "br, zstd"); res.StatusCode != 200 || res.Header.Get("Content-Encoding") != "" || body(t, res) != jsText {
		t.Errorf("room for gzip only, br or zstd asked: %d %v", res.StatusCode, res.Header)
	}

	compress.SetStreamBudget(compress.DefaultStreamBudget)
	if res := do(h, "GET", "/app.js", "Accept-Encoding", "br, gzip"); res.Header.Get("Content-Encoding") != "br" {
		t.Errorf("room for brotli: %v", res.Header)
	}
	if live, held, _ := compress.StreamStats(); live != [compress.NumCodings]int64{} || held != 0 {
		t.Errorf("after the requests: live %v, %d bytes held", live, held)
	}
}
