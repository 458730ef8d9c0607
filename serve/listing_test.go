package serve

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
	"time"
)

type jsonListing struct {
	Path      string `json:"path"`
	Truncated bool   `json:"truncated"`
	Entries   []struct {
		Name     string `json:"name"`
		Size     int64  `json:"size"`
		Modified string `json:"modified"`
		IsDir    bool   `json:"is_dir"`
		URL      string `json:"url"`
	} `json:"entries"`
}

func names(l jsonListing) string {
	var n []string
	for _, e := range l.Entries {
		n = append(n, e.Name)
	}
	return strings.Join(n, " ")
}

func TestListingJSON(t *testing.T) {
	files := map[string]string{
		"d/small.txt": "12345", "d/big.bin": strings.Repeat("x", 1234), "d/a b&<c>.txt": "", "d/sub/": "",
		"d/.hidden": "h", "d/.git/config": "x", "d/back\\slash": "x", "outside.txt": "o",
	}
	h, root := site(t, files, Options{ListDirectories: true}, CacheOptions{})
	os.WriteFile(filepath.Join(root, "d", "bad\xffutf8"), nil, 0o644)
	os.Symlink("../../outside-root", filepath.Join(root, "d", "escape"))
	os.Symlink("../outside.txt", filepath.Join(root, "d", "inside-link"))
	old := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	os.Chtimes(filepath.Join(root, "d", "big.bin"), old, old)

	get := func(target string, header ...string) jsonListing {
		t.Helper()
		res := do(h, "GET", target, header...)
		b := body(t, res)
		if res.StatusCode != 200 || res.Header.Get("Content-Type") != "application/json" || res.Header.Get("Vary") != "Accept" {
			t.Fatalf("%s: %d %v", target, res.StatusCode, res.Header)
		}
		var l jsonListing
		if err := json.Unmarshal([]byte(b), &l); err != nil {
			t.Fatalf("%s: %v\n%s", target, err, b)
		}
		return l
	}
	l := get("/d/", "Accept", "application/json")
	if l.Path != "/d/" || l.Truncated || names(l) != "a b&<c>.txt big.bin inside-link small.txt sub" {
		t.Fatalf("listing %q %v: %s", l.Path, l.Truncated, names(l))
	}
	e := l.Entries[1]
	if e.Size != 1234 || e.Modified != "2020-01-02T03:04:05Z" || e.IsDir || e.URL != "./big.bin" {
		t.Errorf("big.bin: %+v", e)
	}
	if e := l.Entries[0]; e.URL != "./a%20b&%3Cc%3E.txt" {
		t.Errorf("url not escaped: %q", e.URL)
	}
	if e := l.Entries[4]; !e.IsDir || e.Size != 0 || e.URL != "./sub/" {
		t.Errorf("sub: %+v", e)
	}
	for _, c := range []struct{ query, want string }{
		{"?sort=name&order=desc", "sub small.txt inside-link big.bin a b&<c>.txt"},
		{"?sort=size", "a b&<c>.txt sub inside-link small.txt big.bin"},
		{"?sort=size&order=desc", "big.bin small.txt inside-link sub a b&<c>.txt"},
		{"?order=desc&utm=1", "sub small.txt inside-link big.bin a b&<c>.txt"},
	} {
		if got := names(get("/d/"+c.query, "Accept", "application/json")); got != c.want {
			t.Errorf("%s: %s, want %s", c.query, got, c.want)
		}
	}
	if got := names(get("/d/?sort=time", "Accept", "application/json")); !strings.HasPrefix(got, "big.bin ") {
		t.Errorf("sort=time: %s", got)
	}

	for _, c := range []struct{ query, msg string }{
		{"?sort=owner", "sort must be name, size or time"},
		{"?order=up", "order must be asc or desc"},
	} {
		res := do(h, "GET", "/d/"+c.query, "Accept", "application/json")
		if b := body(t, res); res.StatusCode != 400 || !strings.Contains(b, c.msg) {
			t.Errorf("%s: %d %q", c.query, res.StatusCode, b)
		}
	}
	head := do(h, "HEAD", "/d/", "Accept", "application/json")
	if head.StatusCode != 200 || head.Header.Get("Content-Type") != "application/json" || body(t, head) != "" {
		t.Errorf("HEAD: %d %v", head.StatusCode, head.Header)
	}

	res := do(h, "GET", "/d/", "Accept", "text/html")
	b := body(t, res)
	if res.Header.Get("Content-Type") != "text/html; charset=utf-8" || res.Header.Get("Vary") != "Accept" {
		t.Fatalf("HTML: %v", res.Header)
	}
	for _, want := range []string{`title="1234 bytes">1.2 KiB<`, `>5 B<`, "2020-01-02 03:04", `href="?sort=name&amp;order=desc"`, `href="?sort=size"`} {
		if !strings.Contains(b, want) {
			t.Errorf("HTML lacks %q:\n%s", want, b)
		}
	}
	for _, hidden := range []string{"hidden", ".git", "slash", "utf8", "escape"} {
		if strings.Contains(b, hidden) {
			t.Errorf("HTML lists %q", hidden)
		}
	}
}

// TestListingHidesWellKnown: /.well-known/ is served, but a listing of
// the root does not show it, as no dotfile.
func TestListingHidesWellKnown(t *testing.T) {
	h, _ := site(t, map[string]string{".well-known/security.txt": "x", "a.txt": "a"}, Options{ListDirectories: true}, CacheOptions{})
	res := do(h, "GET", "/", "Accept", "application/json")
	if b := body(t, res); strings.Contains(b, "well-known") || !strings.Contains(b, `"a.txt"`) || res.Header.Get("Cache-Control") != "no-cache" {
		t.Errorf("%v\n%s", res.Header, b)
	}
	if res := do(h, "GET", "/.well-known/security.txt"); res.StatusCode != 200 {
		t.Errorf("/.well-known/security.txt: %d", res.StatusCode)
	}
}

// TestListingRefusesLinks: with follow_symlinks = false, a link inside
// the root is not listed either.
func TestListingRefusesLinks(t *testing.T) {
	h, root := site(t, map[string]string{"d/f.txt": "f", "t.txt": "t"}, Options{ListDirectories: true, RefuseSymlinks: true}, CacheOptions{})
	if err := os.Symlink("../t.txt", filepath.Join(root, "d", "link")); err != nil {
		t.Fatal(err)
	}
	if b := body(t, do(h, "GET", "/d/")); strings.Contains(b, "link") || !strings.Contains(b, "f.txt") {
		t.Errorf("listing:\n%s", b)
	}
}

// TestListingBound: a directory of more than maxListing (10,000)
// entries lists the first 10,000 in the requested order and says it was
// cut.
func TestListingBound(t *testing.T) {
	if maxListing != 10000 {
		t.Fatalf("maxListing %d: the README states 10,000", maxListing)
	}
	// In memory: creating forty thousand files takes seconds here. Past
	// 2 x maxListing entries the best maxListing are kept and reading
	// goes on: n makes that happen twice, and the entries kept must
	// still be the first in each order.
	const n = 4*maxListing + 2*listBatch + 7
	fsys := fstest.MapFS{}
	for i := range n {
		fsys[fmt.Sprintf("big/f%05d", i)] = &fstest.MapFile{Data: []byte("x")}
	}
	h := New(fsys, Options{ListDirectories: true}, NewCache(CacheOptions{}))
	for _, c := range []struct{ query, first, last string }{
		{"", "f00000", fmt.Sprintf("f%05d", maxListing-1)},
		{"?order=desc", fmt.Sprintf("f%05d", n-1), fmt.Sprintf("f%05d", n-maxListing)},
	} {
		res := do(h, "GET", "/big/"+c.query, "Accept", "application/json")
		var l jsonListing
		if err := json.Unmarshal([]byte(body(t, res)), &l); err != nil {
			t.Fatal(err)
		}
		if len(l.Entries) != maxListing || !l.Truncated || l.Entries[0].Name != c.first || l.Entries[maxListing-1].Name != c.last {
			t.Errorf("%q: %d entries, truncated %v, %s..%s", c.query, len(l.Entries), l.Truncated, l.Entries[0].Name, l.Entries[len(l.Entries)-1].Name)
		}
	}
	if b := body(t, do(h, "GET", "/big/")); strings.Count(b, "<tr>") != maxListing+2 || !strings.Contains(b, "Only the first 10000 entries") {
		t.Errorf("HTML: %d rows", strings.Count(b, "<tr>"))
	}
}

func TestHumanSize(t *testing.T) {
	for n, want := range map[int64]string{
		0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 1234: "1.2 KiB", 10 * 1024: "10 KiB", 1048575: "1.0 MiB",
		5 << 20: "5.0 MiB", 123 << 30: "123 GiB", 1 << 62: "4.0 EiB",
	} {
		if got := humanSize(n); got != want {
			t.Errorf("%d: %q, want %q", n, got, want)
		}
	}
}

func TestPrefersJSON(t *testing.T) {
	for _, c := range []struct {
		accept []string
		json   bool
	}{
		{nil, false},
		{[]string{"application/json"}, true},
		{[]string{"Application/JSON"}, true},
		{[]string{"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}, false}, // a browser
		{[]string{"application/json, text/plain, */*"}, true},                                // fetch libraries
		{[]string{"*/*"}, false},
		{[]string{"application/*"}, true},
		{[]string{"text/html, application/json"}, false}, // equal: HTML
		{[]string{"application/json;q=0.5, text/html"}, false},
		{[]string{"text/html;q=0.1, application/json"}, true},
		{[]string{"text/html;q=0.1", "application/json"}, true}, // lines are one list
		{[]string{"application/json;q=0, */*"}, false},
		{[]string{"application/json;q=0"}, false},
		{[]string{"image/png"}, false},
		{[]string{"application/json;q=2"}, false}, // malformed: skipped
		{[]string{"*/json"}, false},
		{[]string{"application/json;charset=utf-8;q=0.9, text/*;q=0.8"}, true},
	} {
		if got := prefersJSON(c.accept); got != c.json {
			t.Errorf("%q: %v, want %v", c.accept, got, c.json)
		}
	}
}

// FuzzListingAccept: no Accept field makes a listing fail, and JSON is
// chosen only when the field names it or a range covering it.
func FuzzListingAccept(f *testing.F) {
	for _, s := range []string{"application/json", "text/html;q=0.1, application/json", "*/*;q=0.8", "application/*;q=1.0, text/html;q=1", ";;,/,*/", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if prefersJSON([]string{s}) && !strings.Contains(strings.ToLower(s), "application/") && !strings.Contains(s, "*/*") {
			t.Fatalf("%q chose JSON", s)
		}
	})
}
