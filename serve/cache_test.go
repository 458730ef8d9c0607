package serve

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"testing/fstest"
	"time"

	"appliance/internal/clock"
)

// countingFS counts the system calls the handler makes.
type countingFS struct {
	fs.FS
	opens, stats atomic.Int64
}

func (c *countingFS) Open(name string) (fs.File, error) { c.opens.Add(1); return c.FS.Open(name) }
func (c *countingFS) Stat(name string) (fs.FileInfo, error) {
	c.stats.Add(1)
	return fs.Stat(c.FS, name)
}

func TestFreshEntryCostsNoSyscall(t *testing.T) {
	cfs := &countingFS{FS: fstest.MapFS{"index.html": {Data: []byte("hi")}}}
	h := New(cfs, Options{}, NewCache(CacheOptions{Revalidate: time.Hour}))
	var stats int64
	for i := range 100 {
		if res := do(h, "GET", "/"); res.StatusCode != 200 {
			t.Fatal(res.StatusCode)
		}
		do(h, "GET", "/missing")
		if i == 0 {
			stats = cfs.stats.Load()
		}
	}
	if o, s := cfs.opens.Load(), cfs.stats.Load(); o != 1 || s != stats {
		t.Fatalf("%d opens and %d stats (%d after the first round); want 1 open (to hash once) and no more stats", o, s, stats)
	}
}

// TestChangesAreSeen edits, adds and deletes files under a running handler
// whose entries are revalidated on every request.
func TestChangesAreSeen(t *testing.T) {
	for _, mode := range []struct {
		name    string
		maxFile int64
	}{{"memory", 0}, {"disk", -1}} {
		t.Run(mode.name, func(t *testing.T) {
			h, root := site(t, map[string]string{"a.txt": "version one"}, Options{}, CacheOptions{Revalidate: time.Nanosecond, MaxFileBytes: mode.maxFile})
			res := do(h, "GET", "/a.txt")
			etag1 := res.Header.Get("Etag")
			if body(t, res) != "version one" {
				t.Fatal("initial body")
			}
			// Same size, new bytes, mtime forced equal: ctime and inode still differ.
			p := filepath.Join(root, "a.txt")
			fi, _ := os.Stat(p)
			os.WriteFile(p+".new", []byte("version two"), 0o644)
			os.Chtimes(p+".new", fi.ModTime(), fi.ModTime())
			os.Rename(p+".new", p)
			res = do(h, "GET", "/a.txt")
			if b := body(t, res); b != "version two" || res.Header.Get("Etag") == etag1 {
				t.Fatalf("after edit: %q, etag %s (was %s)", b, res.Header.Get("Etag"), etag1)
			}
			if res := do(h, "GET", "/b.txt"); res.StatusCode != 404 {
				t.Fatal("b.txt before it exists")
			}
			os.WriteFile(filepath.Join(root, "b.txt"), []byte("new file"), 0o644)
			if res := do(h, "GET", "/b.txt"); res.StatusCode != 200 || body(t, res) != "new file" {
				t.Fatal("added file not served")
			}
			os.Remove(p)
			if res := do(h, "GET", "/a.txt"); res.StatusCode != 404 {
				t.Fatalf("deleted file: %d", res.StatusCode)
			}
		})
	}
}

// TestLargeFileReplacedBetweenChecks: a streamed file that changes while
// its entry is still trusted is never sent with the old length or ETag.
func TestLargeFileReplacedBetweenChecks(t *testing.T) {
	h, root := site(t, map[string]string{"big.bin": strings.Repeat("a", 1000)}, Options{}, CacheOptions{Revalidate: time.Hour, MaxFileBytes: -1})
	old := do(h, "GET", "/big.bin")
	body(t, old)
	os.WriteFile(filepath.Join(root, "big.bin"), []byte(strings.Repeat("b", 500)), 0o644)
	res := do(h, "GET", "/big.bin")
	b := body(t, res)
	if res.StatusCode != 200 || b != strings.Repeat("b", 500) || res.Header.Get("Content-Length") != "500" || res.Header.Get("Etag") == old.Header.Get("Etag") {
		t.Fatalf("status %d, %d bytes, Content-Length %s", res.StatusCode, len(b), res.Header.Get("Content-Length"))
	}
}

func TestETagIsDerivedFromContent(t *testing.T) {
	h1, _ := site(t, map[string]string{"x.txt": "same bytes", "y.txt": "other bytes"}, Options{}, CacheOptions{})
	h2, root2 := site(t, map[string]string{"z/x.txt": "same bytes"}, Options{}, CacheOptions{MaxFileBytes: -1})
	os.Chtimes(filepath.Join(root2, "z/x.txt"), time.Unix(1e9, 0), time.Unix(1e9, 0))
	a, b, c := do(h1, "GET", "/x.txt").Header.Get("Etag"), do(h2, "GET", "/z/x.txt").Header.Get("Etag"), do(h1, "GET", "/y.txt").Header.Get("Etag")
	if a != b || a == c || !strings.HasPrefix(a, `"`) || strings.HasPrefix(a, "W/") {
		t.Fatalf("etags %s %s %s: identical bytes must share a strong tag", a, b, c)
	}
	// A stable value: a change of algorithm breaks every client's cache.
	if a != `"WBANyPwGVizj5Xgj"` {
		t.Errorf("ETag of %q changed to %s", "same bytes", a)
	}
}

func TestCacheBudget(t *testing.T) {
	files := map[string]string{}
	for i := range 200 {
		files[fmt.Sprintf("f%03d.txt", i)] = strings.Repeat("x", 1000)
	}
	c := NewCache(CacheOptions{MaxBytes: 20000, MaxFileBytes: 2000})
	root := t.TempDir()
	writeFiles(t, root, files)
	d, _ := OpenDir(root, time.Hour)
	h := New(d, Options{}, c)
	for name, want := range files {
		if res := do(h, "GET", "/"+name); body(t, res) != want {
			t.Fatalf("%s: wrong body", name)
		}
		if _, b := c.Stats(); b > 20000 {
			t.Fatalf("cache holds %d bytes, budget 20000", b)
		}
	}
	if n, _ := c.Stats(); n < 5 {
		t.Errorf("only %d entries kept", n)
	}
}

// TestRootSwap follows a deploy that swaps the root symlink atomically.
func TestRootSwap(t *testing.T) {
	base := t.TempDir()
	writeFiles(t, filepath.Join(base, "v1"), map[string]string{"index.html": "v1"})
	writeFiles(t, filepath.Join(base, "v2"), map[string]string{"index.html": "v2"})
	link := filepath.Join(base, "current")
	os.Symlink("v1", link)
	d, err := OpenDir(link, time.Nanosecond)
	if err != nil {
		t.Fatal(err)
	}
	h := New(d, Options{}, NewCache(CacheOptions{Revalidate: time.Nanosecond}))
	if b := body(t, do(h, "GET", "/")); b != "v1" {
		t.Fatal(b)
	}
	os.Symlink("v2", link+".tmp")
	os.Rename(link+".tmp", link)
	if b := body(t, do(h, "GET", "/")); b != "v2" {
		t.Fatalf("after swap: %q", b)
	}
}

func TestMissFloodKeepsHotFiles(t *testing.T) {
	cfs := &countingFS{FS: fstest.MapFS{"hot.html": {Data: []byte("hot")}}}
	c := NewCache(CacheOptions{Revalidate: time.Hour, MaxBytes: 2 << 20})
	h := New(cfs, Options{}, c)
	do(h, "GET", "/hot.html")
	for i := range 3 * maxNegatives {
		do(h, "GET", fmt.Sprintf("/random-%d", i))
	}
	if n, _ := c.Stats(); n > maxNegatives+1 {
		t.Fatalf("%d entries after a flood of misses", n)
	}
	do(h, "GET", "/hot.html")
	if o := cfs.opens.Load(); o != 1 {
		t.Fatalf("hot file opened %d times; the flood evicted it", o)
	}
}

func TestConcurrentFirstRequestsHashOnce(t *testing.T) {
	cfs := &countingFS{FS: fstest.MapFS{"big.bin": {Data: make([]byte, 4<<20)}}}
	h := New(cfs, Options{}, NewCache(CacheOptions{Revalidate: time.Hour, MaxFileBytes: -1}))
	start := make(chan struct{})
	done := make(chan int)
	for range 8 {
		go func() {
			<-start
			done <- do(h, "HEAD", "/big.bin").StatusCode
		}()
	}
	close(start)
	for range 8 {
		if st := <-done; st != 200 {
			t.Fatal(st)
		}
	}
	// HEAD opens nothing after the load, which all requests share.
	if o := cfs.opens.Load(); o != 1 {
		t.Errorf("%d opens for 8 concurrent first requests", o)
	}
}

// TestEvictedLargeFileIsNotHashedAgain: a file too large to hold is read
// and hashed once per version, even when other traffic evicts its entry
// (an attacker's cheap requests must not buy a read of the whole file);
// a new version is hashed again.
func TestEvictedLargeFileIsNotHashedAgain(t *testing.T) {
	files := map[string]string{"big.bin": strings.Repeat("b", 64<<10)}
	for i := range 64 {
		files[fmt.Sprintf("s%d.txt", i)] = strings.Repeat("s", 1000)
	}
	h, root := site(t, files, Options{}, CacheOptions{MaxBytes: 16 << 10, MaxFileBytes: 1 << 10, Revalidate: time.Hour})
	etag := do(h, "HEAD", "/big.bin").Header.Get("Etag")
	rebuilds := h.cache.rebuilds.Load()
	for i := range 64 {
		do(h, "HEAD", fmt.Sprintf("/s%d.txt", i)) // 64 KB of small files through a 16 KiB cache
	}
	if res := do(h, "HEAD", "/big.bin"); res.Header.Get("Etag") != etag {
		t.Fatalf("ETag changed: %q, was %q", res.Header.Get("Etag"), etag)
	}
	if h.cache.rebuilds.Load() < rebuilds+65 {
		t.Fatalf("big.bin's entry was not evicted (%d rebuilds): the test proves nothing", h.cache.rebuilds.Load()-rebuilds)
	}
	if n := h.cache.largeHashed.Load(); n != 1 {
		t.Fatalf("big.bin read and hashed %d times, want 1", n)
	}
	// A new version (same size) is a new identity: hashed again.
	if err := os.WriteFile(filepath.Join(root, "big.bin"), []byte(strings.Repeat("c", 64<<10)), 0o644); err != nil {
		t.Fatal(err)
	}
	h.cache.mu.Lock()
	clear(h.cache.m) // as if evicted again
	h.cache.bytes = 0
	h.cache.mu.Unlock()
	if res := do(h, "HEAD", "/big.bin"); res.Header.Get("Etag") == etag || h.cache.largeHashed.Load() != 2 {
		t.Fatalf("new version: ETag %q (old %q), %d hashes", res.Header.Get("Etag"), etag, h.cache.largeHashed.Load())
	}
}

// TestPurgeSite: a handler's Purge drops its own site's entries and
// leaves the other sites' in the shared cache.
func TestPurgeSite(t *testing.T) {
	cache := NewCache(CacheOptions{})
	fsys := fstest.MapFS{"a.html": {Data: []byte("a")}, "b.html": {Data: []byte("b")}}
	one, two := New(fsys, Options{}, cache), New(fsys, Options{}, cache)
	for _, h := range []*Handler{one, two} {
		for _, p := range []string{"/a.html", "/b.html", "/missing"} {
			do(h, "GET", p)
		}
	}
	if n, _ := cache.Stats(); n != 6 {
		t.Fatalf("%d entries, want 6", n)
	}
	one.Purge()
	n, bytes := cache.Stats()
	if n != 3 {
		t.Errorf("after one site's purge: %d entries, want the other's 3", n)
	}
	two.Purge()
	if n, b := cache.Stats(); n != 0 || b != 0 || bytes == 0 {
		t.Errorf("after both: %d entries, %d bytes (%d before)", n, b, bytes)
	}
	do(one, "GET", "/missing") // negatives were uncounted: one more fits
	if n, _ := cache.Stats(); n != 1 {
		t.Errorf("after a new miss: %d entries", n)
	}
}

// TestCoarseRevalidate: with revalidate at 1 s (the default, checked on
// the coarse clock), a changed file is seen within revalidate of the
// entry's last check, plus clock.Tick, plus the scheduling of the clock's
// goroutine and of this test on a loaded machine (slack): the file is
// changed as soon as a request saw the previous change (that request
// checked the entry), and the next change must show within the bound.
func TestCoarseRevalidate(t *testing.T) {
	const revalidate, slack = time.Second, 150 * time.Millisecond
	h, root := site(t, map[string]string{"a.txt": "v0"}, Options{}, CacheOptions{Revalidate: revalidate})
	if b := body(t, do(h, "GET", "/a.txt")); b != "v0" {
		t.Fatalf("body %q", b)
	}
	p := filepath.Join(root, "a.txt")
	checked := time.Now() // the entry was checked before this
	for i := 1; i <= 2; i++ {
		next := fmt.Sprintf("v%d", i)
		os.WriteFile(p+".new", []byte(next), 0o644)
		os.Rename(p+".new", p)
		for body(t, do(h, "GET", "/a.txt")) != next {
			if time.Since(checked) > revalidate+clock.Tick+slack {
				t.Fatalf("change %d unseen %v after the entry's check", i, time.Since(checked))
			}
			runtime.Gosched()
		}
		t.Logf("change %d seen %v after the entry's check", i, time.Since(checked))
		checked = time.Now()
	}
}
