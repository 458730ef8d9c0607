package accesslog

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

var at = time.Date(2026, 11, 22, 21, 7, 50, 123456789, time.UTC)

func handler(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/missing":
		http.Error(w, "not found", 404)
	case "/file":
		f := strings.NewReader(strings.Repeat("x", 1000))
		w.(io.ReaderFrom).ReadFrom(f)
	default:
		io.WriteString(w, "hello")
	}
}

// run logs requests to a file and returns its lines.
func run(t *testing.T, format Format, reqs ...*http.Request) []string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "access.log")
	l, err := Open(path, format, 16, Roll{})
	if err != nil {
		t.Fatal(err)
	}
	l.now = func() time.Time { return at }
	h := Observe(http.HandlerFunc(handler), func(r *http.Request, rec *Recorder, _ time.Time) { l.Log("example", r, rec, at) })
	for _, r := range reqs {
		h.ServeHTTP(httptest.NewRecorder(), r)
	}
	l.Close()
	b, _ := os.ReadFile(path)
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

func request(method, target string, header ...string) *http.Request {
	r := httptest.NewRequest(method, target, nil)
	r.RemoteAddr = "192.0.2.7:51234"
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Set(header[i], header[i+1])
	}
	return r
}

func TestCombinedGolden(t *testing.T) {
	lines := run(t, Combined,
		request("GET", "/index.html?a=1", "Referer", "https://ref.test/", "User-Agent", "curl/8.0"),
		request("GET", "/missing"),
		request("HEAD", "/"),
		request("GET", "/file"),
		request("GET", "/x", "User-Agent", "evil\" \"injected\nline\\"),
	)
	want := []string{
		`192.0.2.7 - - [22/Nov/2026:21:07:50 +0000] "GET /index.html?a=1 HTTP/1.1" 200 5 "https://ref.test/" "curl/8.0" "example"`,
		`192.0.2.7 - - [22/Nov/2026:21:07:50 +0000] "GET /missing HTTP/1.1" 404 10 "-" "-" "example"`,
		`192.0.2.7 - - [22/Nov/2026:21:07:50 +0000] "HEAD / HTTP/1.1" 200 5 "-" "-" "example"`,
		`192.0.2.7 - - [22/Nov/2026:21:07:50 +0000] "GET /file HTTP/1.1" 200 1000 "-" "-" "example"`,
		`192.0.2.7 - - [22/Nov/2026:21:07:50 +0000] "GET /x HTTP/1.1" 200 5 "-" "evil\x22 \x22injected\x0Aline\x5C" "example"`,
	}
	if len(lines) != len(want) {
		t.Fatalf("%d lines:\n%s", len(lines), strings.Join(lines, "\n"))
	}
	for i := range want {
		if lines[i] != want[i] {
			t.Errorf("line %d:\n got %s\nwant %s", i+1, lines[i], want[i])
		}
	}
}

func TestJSONGolden(t *testing.T) {
	lines := run(t, JSON, request("GET", "/a?b=\"c\"", "User-Agent", "ua\x01\xff"))
	want := `{"time":"2026-11-22T21:07:50.123456789Z","remote":"192.0.2.7","site":"example","host":"example.com","method":"GET","uri":"/a?b=\"c\"","proto":"HTTP/1.1","status":200,"bytes":5,"duration_us":0,"referer":"","user_agent":"ua\u0001\ufffd"}`
	if lines[0] != want {
		t.Fatalf("\n got %s\nwant %s", lines[0], want)
	}
}

// blocked is a writer that holds every write until released, and counts
// the lines it got.
type blocked struct {
	release chan struct{}
	lines   *int
}

func (b blocked) Write(p []byte) (int, error) {
	<-b.release
	*b.lines += strings.Count(string(p), "\n")
	return len(p), nil
}
func (b blocked) Close() error { return nil }

func TestFullBufferDropsInsteadOfStalling(t *testing.T) {
	l := newLogger("", Combined, 2)
	written := 0
	w := blocked{release: make(chan struct{}), lines: &written}
	go l.write(w)
	h := logged(l, http.HandlerFunc(handler))
	for range 100 { // would hang here if a request waited for the log
		h.ServeHTTP(httptest.NewRecorder(), request("GET", "/"))
	}
	dropped := l.Dropped()
	close(w.release)
	l.Close()
	if dropped < 50 || int(dropped)+written != 100 {
		t.Fatalf("%d dropped and %d written of 100, with room for 2 waiting", dropped, written)
	}
}

func TestReopen(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "access.log")
	l, err := Open(path, Combined, 16, Roll{})
	if err != nil {
		t.Fatal(err)
	}
	h := logged(l, http.HandlerFunc(handler))
	h.ServeHTTP(httptest.NewRecorder(), request("GET", "/before"))
	os.Rename(path, path+".1") // logrotate
	if err := l.Reopen(); err != nil {
		t.Fatal(err)
	}
	h.ServeHTTP(httptest.NewRecorder(), request("GET", "/after"))
	l.Close()
	old, _ := os.ReadFile(path + ".1")
	cur, _ := os.ReadFile(path)
	if !strings.Contains(string(old), "/before") || strings.Contains(string(old), "/after") || !strings.Contains(string(cur), "/after") {
		t.Fatalf("old %q, new %q", old, cur)
	}
}

// logged logs what next answers, as the command wires it.
func logged(l *Logger, next http.Handler) http.Handler {
	return Observe(next, func(r *http.Request, rec *Recorder, start time.Time) { l.Log("s", r, rec, start) })
}

// wrapper stands for a handler's own ResponseWriter wrapper.
type wrapper struct{ http.ResponseWriter }

func (w wrapper) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func TestAttribute(t *testing.T) {
	site := &struct{ name string }{"example"}
	var got []any
	h := Observe(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/direct":
			Attribute(w, site)
		case "/wrapped":
			Attribute(wrapper{w}, site)
		}
		handler(w, r)
	}), func(_ *http.Request, rec *Recorder, _ time.Time) { got = append(got, rec.Site) })
	for _, path := range []string{"/direct", "/none", "/wrapped", "/none"} {
		h.ServeHTTP(httptest.NewRecorder(), request("GET", path))
	}
	if len(got) != 4 || got[0] != site || got[1] != nil || got[2] != site || got[3] != nil {
		t.Fatalf("sites seen: %v", got)
	}
	Attribute(httptest.NewRecorder(), site) // no Recorder: nothing to do
}

// discard is a ResponseWriter that keeps nothing.
type discard struct{ h http.Header }

func (d discard) Header() http.Header       { return d.h }
func (discard) Write(p []byte) (int, error) { return len(p), nil }
func (discard) WriteHeader(int)             {}

// observed is the command's wiring: one Observe at the edge and a site
// that attributes itself.
func observed() (http.Handler, *http.Request, http.ResponseWriter) {
	site := &struct{ n int64 }{}
	h := Observe(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		Attribute(w, site)
		w.WriteHeader(http.StatusNoContent)
	}), func(_ *http.Request, rec *Recorder, _ time.Time) { site.n += rec.Bytes })
	return h, request("GET", "/"), discard{h: http.Header{}}
}

func TestObserveAllocs(t *testing.T) {
	h, r, w := observed()
	if n := testing.AllocsPerRun(1000, func() { h.ServeHTTP(w, r) }); n != 0 {
		t.Fatalf("%v allocations per request, want 0", n)
	}
}

func BenchmarkObserve(b *testing.B) {
	h, r, w := observed()
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(w, r)
	}
}

// TestLogAllocs: a logged line, written or dropped, costs no allocation
// once the pool is warm.
func TestLogAllocs(t *testing.T) {
	l, err := Open(filepath.Join(t.TempDir(), "access.log"), Combined, 16, Roll{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	h := logged(l, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	r, w := request("GET", "/"), discard{h: http.Header{}}
	if n := testing.AllocsPerRun(1000, func() { h.ServeHTTP(w, r) }); n != 0 {
		t.Fatalf("%v allocations per logged request, want 0", n)
	}
}

// TestRollingFileIsBounded: 4 MiB written to a file rolled at 1 MiB,
// keeping 2, leave at most 3 files of at most 1 MiB each.
func TestRollingFileIsBounded(t *testing.T) {
	dir := t.TempDir()
	w := RollingFile(filepath.Join(dir, "access.log"), Roll{MaxBytes: 1 << 20, Keep: 2})
	line := []byte(strings.Repeat("x", 999) + "\n")
	for range 4 << 10 {
		if _, err := w.Write(line); err != nil {
			t.Fatal(err)
		}
	}
	w.Close()
	// Old files are removed by the library's own goroutine, after the
	// roll: wait for it, within a deadline.
	deadline := time.Now().Add(10 * time.Second)
	for {
		ents, _ := os.ReadDir(dir)
		var total int64
		for _, e := range ents {
			fi, _ := e.Info()
			if fi.Size() > 1<<20 {
				t.Fatalf("%s has %d bytes, over 1 MiB", e.Name(), fi.Size())
			}
			total += fi.Size()
		}
		if len(ents) <= 3 {
			if total < 2<<20 {
				t.Fatalf("%d bytes kept, want the newest 2 MiB or more", total)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d files, want at most 3", len(ents))
		}
		runtime.Gosched()
	}
}

// TestReopenReportsAnUnwritablePath: Reopen opens the path as it is
// now, so a path that cannot be written any more is its error, not a
// silent loss of the lines that follow.
func TestReopenReportsAnUnwritablePath(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "logs")
	os.Mkdir(dir, 0o755)
	l, err := Open(filepath.Join(dir, "access.log"), Combined, 16, Roll{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	os.Rename(dir, dir+".1")
	if err := os.WriteFile(dir, nil, 0o644); err != nil { // a file where its directory was
		t.Fatal(err)
	}
	if err := l.Reopen(); err == nil {
		t.Fatal("Reopen of a path that is a directory: no error")
	}
}
