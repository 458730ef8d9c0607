package deploy

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func sum(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

func file(path, content string) File {
	return File{Path: path, Size: int64(len(content)), Mode: 0o644, SHA256: sum(content)}
}

// put uploads contents into s.
func put(t *testing.T, s *Store, contents ...string) {
	t.Helper()
	for _, c := range contents {
		if err := s.Put(sum(c), 0, int64(len(c)), strings.NewReader(c)); err != nil {
			t.Fatal(err)
		}
	}
}

func read(t *testing.T, s *Store, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(s.Current(), name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestManifestChecks(t *testing.T) {
	lim := Limits{MaxFiles: 3, MaxFileBytes: 10, MaxSiteBytes: 15, MaxManifestBytes: 1000}
	long := strings.Repeat("a", 256)
	for _, tc := range []struct {
		name string
		m    Manifest
		want error
	}{
		{"good", Manifest{Files: []File{file("index.html", "hi"), file("a/b.css", "x")}}, nil},
		{"dotdot", Manifest{Files: []File{file("../etc/passwd", "x")}}, ErrInvalid},
		{"inner dotdot", Manifest{Files: []File{file("a/../../x", "x")}}, ErrInvalid},
		{"absolute", Manifest{Files: []File{file("/etc/passwd", "x")}}, ErrInvalid},
		{"empty segment", Manifest{Files: []File{file("a//b", "x")}}, ErrInvalid},
		{"dot", Manifest{Files: []File{file(".", "x")}}, ErrInvalid},
		{"backslash", Manifest{Files: []File{file(`a\..\b`, "x")}}, ErrInvalid},
		{"NUL", Manifest{Files: []File{file("a\x00b", "x")}}, ErrInvalid},
		{"invalid UTF-8", Manifest{Files: []File{file("a\xffb", "x")}}, ErrInvalid},
		{"long name", Manifest{Files: []File{file(long, "x")}}, ErrInvalid},
		{"twice", Manifest{Files: []File{file("a", "x"), file("a", "y")}}, ErrInvalid},
		{"file and directory", Manifest{Files: []File{file("a", "x"), file("a/b", "y")}}, ErrInvalid},
		{"device mode", Manifest{Files: []File{{Path: "d", Mode: 0o20644, SHA256: sum("")}}}, ErrInvalid},
		{"bad sum", Manifest{Files: []File{{Path: "d", SHA256: strings.ToUpper(sum(""))}}}, ErrInvalid},
		{"4 files of at most 3", Manifest{Files: []File{file("a", ""), file("b", ""), file("c", ""), file("d", "")}}, ErrTooLarge},
		{"a file of 11 bytes, at most 10", Manifest{Files: []File{file("a", "12345678901")}}, ErrTooLarge},
		{"16 bytes of a 15-byte quota", Manifest{Files: []File{file("a", "12345678"), file("b", "abcdefgh")}}, ErrQuota},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.m.Check(lim); !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
	// Invalid UTF-8 is named as such (fs.ValidPath refuses it too).
	if err := checkPath("a\xffb"); err == nil || !strings.Contains(err.Error(), "invalid UTF-8") {
		t.Errorf("invalid UTF-8: %v", err)
	}
	// The manifest's own size: 1000 bytes at most.
	big := `{"files":[{"path":"` + strings.Repeat("a", 990) + `","size":0,"mode":420,"sha256":"` + sum("") + `"}]}`
	if _, err := ParseManifest(strings.NewReader(big), lim); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("a manifest of %d bytes: %v", len(big), err)
	}
	if _, err := ParseManifest(strings.NewReader(`{"files":[],"extra":1}`), lim); !errors.Is(err, ErrInvalid) {
		t.Fatalf("unknown field: %v", err)
	}
}

func FuzzParseManifest(f *testing.F) {
	f.Add(`{"files":[{"path":"index.html","size":2,"mode":420,"sha256":"` + sum("hi") + `"}]}`)
	f.Add(`{"files":[{"path":"../x","size":0,"mode":420,"sha256":"` + sum("") + `"}]}`)
	f.Add(`{"files":[{"path":"a","size":1},{"path":"a/b"}]}`)
	f.Add(`{"files":null}`)
	f.Fuzz(func(t *testing.T, s string) {
		m, err := ParseManifest(strings.NewReader(s), Limits{MaxFiles: 50, MaxManifestBytes: 4096})
		if err != nil {
			return
		}
		for _, f := range m.Files {
			if !filepath.IsLocal(f.Path) || strings.Contains(f.Path, `\`) || !ValidSum(f.SHA256) || f.Size < 0 {
				t.Fatalf("accepted %+v", f)
			}
		}
	})
}

func TestCommitRollbackPrune(t *testing.T) {
	s, err := Open(t.TempDir(), Limits{Keep: 2, BlobGrace: -1})
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Releases(); len(got) != 0 {
		t.Fatalf("releases before a deploy: %v", got)
	}
	var ids []string
	for i := range 3 {
		v := fmt.Sprintf("version %d", i)
		m := Manifest{Files: []File{file("index.html", v), file("css/site.css", "body{}")}}
		if miss := s.Missing(m); i > 0 && len(miss) != 1 {
			t.Fatalf("deploy %d: missing %v, want only the changed file", i, miss)
		}
		if _, err := s.Commit(m); err == nil {
			t.Fatal("commit before the upload succeeded")
		} else if me := (*MissingError)(nil); !errors.As(err, &me) {
			t.Fatalf("commit before the upload: %v", err)
		}
		put(t, s, v, "body{}")
		rel, err := s.Commit(m)
		if err != nil {
			t.Fatal(err)
		}
		if rel.Files != 2 || rel.Bytes != int64(len(v)+6) || !rel.Active {
			t.Fatalf("release %+v", rel)
		}
		if got := read(t, s, "index.html"); got != v {
			t.Fatalf("serving %q after deploy %d", got, i)
		}
		ids = append(ids, rel.ID)
	}
	rels := s.Releases()
	if len(rels) != 2 || rels[0].ID != ids[2] || rels[1].ID != ids[1] || !rels[0].Active || rels[1].Active {
		t.Fatalf("keep = 2 kept %+v of %v", rels, ids)
	}
	// version 0's content was collected; the shared stylesheet was not.
	if _, err := os.Stat(s.blobPath(sum("version 0"))); err == nil {
		t.Error("the blob of a pruned release is still stored")
	}
	if want := int64(len("version 1") + len("version 2") + 6); s.Used() != want {
		t.Errorf("used %d bytes, want %d", s.Used(), want)
	}
	rel, err := s.Rollback()
	if err != nil || rel.ID != ids[1] || read(t, s, "index.html") != "version 1" {
		t.Fatalf("rollback: %+v %v, serving %q", rel, err, read(t, s, "index.html"))
	}
	if _, err := s.Rollback(); !errors.Is(err, ErrNoPrevious) {
		t.Fatalf("rollback past the oldest: %v", err)
	}
}

func TestInterruptedDeployIsCleanedUp(t *testing.T) {
	dir := t.TempDir()
	s, _ := Open(dir, Limits{})
	put(t, s, "one")
	if _, err := s.Commit(Manifest{Files: []File{file("index.html", "one")}}); err != nil {
		t.Fatal(err)
	}
	// What a process killed mid-commit leaves: a half-built tree, and a
	// renamed directory whose record was not written.
	os.MkdirAll(filepath.Join(dir, "releases", ".tmp-x", "a"), 0o755)
	os.MkdirAll(filepath.Join(dir, "releases", "20990101T000000Z"), 0o755)
	s, err := Open(dir, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(filepath.Join(dir, "releases"))
	if len(ents) != 2 || read(t, s, "index.html") != "one" {
		t.Fatalf("after reopening: %v entries, want the release and its record", len(ents))
	}
}

func TestUploadBounds(t *testing.T) {
	s, _ := Open(t.TempDir(), Limits{MaxFileBytes: 10, MaxSiteBytes: 25, MaxUploads: 2}) // BlobGrace: an hour
	if err := s.Put(sum("x"), 0, 1, strings.NewReader("y")); !errors.Is(err, ErrInvalid) {
		t.Errorf("content that does not match its name: %v", err)
	}
	if err := s.Put(sum("12345678901"), 0, -1, strings.NewReader("12345678901")); !errors.Is(err, ErrTooLarge) {
		t.Errorf("11 bytes of at most 10, size unknown: %v", err)
	}
	if err := s.Put("../../etc", 0, 1, strings.NewReader("y")); !errors.Is(err, ErrInvalid) {
		t.Errorf("a blob name that is a path: %v", err)
	}
	put(t, s, "0123456789", "abcdefghij") // 20 of 25 bytes
	if err := s.Put(sum("ABCDEFGHIJ"), 0, 10, strings.NewReader("ABCDEFGHIJ")); !errors.Is(err, ErrQuota) {
		t.Errorf("30 bytes of a 25-byte quota: %v", err)
	}
	if s.Used() != 20 {
		t.Errorf("used %d after a refused upload, want 20", s.Used())
	}
	// Unreferenced blobs past the grace are collected when the quota is short.
	s.lim.BlobGrace = -1
	put(t, s, "ABCDEFGHIJ")
	if s.Used() != 10 {
		t.Errorf("used %d after collecting, want 10", s.Used())
	}
	// Two uploads at once of MaxUploads = 2; a third is refused.
	s.uploads <- struct{}{}
	s.uploads <- struct{}{}
	if err := s.Put(sum("z"), 0, 1, strings.NewReader("z")); !errors.Is(err, ErrBusy) {
		t.Errorf("a third concurrent upload: %v", err)
	}
	<-s.uploads
	<-s.uploads
}

func TestCollectSparesRecentUploads(t *testing.T) {
	s, _ := Open(t.TempDir(), Limits{}) // BlobGrace: an hour
	put(t, s, "pending")
	put(t, s, "live")
	if _, err := s.Commit(Manifest{Files: []File{file("index.html", "live")}}); err != nil {
		t.Fatal(err)
	}
	if miss := s.Missing(Manifest{Files: []File{file("x", "pending")}}); len(miss) != 0 {
		t.Fatal("a commit collected an upload younger than the grace")
	}
}

// TestHandler runs the protocol with the client over real HTTP: auth,
// one changed file moving one blob, and refusals.
func TestHandler(t *testing.T) {
	s, _ := Open(t.TempDir(), Limits{})
	h := &Handler{Store: s, Authorized: tokenIs("good", nil)}
	srv := httptest.NewServer(h)
	defer srv.Close()
	u, _ := url.Parse(srv.URL + "/")
	src := t.TempDir()
	for i := range 20 {
		os.WriteFile(filepath.Join(src, fmt.Sprintf("f%d.html", i)), []byte(fmt.Sprint("file ", i)), 0o644)
	}
	ctx := context.Background()
	bad := &Client{Site: u, Token: "bad"}
	l, err := Scan(src)
	if err != nil {
		t.Fatal(err)
	}
	var se *StatusError
	if _, err := bad.Deploy(ctx, l); !errors.As(err, &se) || se.Code != 401 {
		t.Fatalf("wrong token: %v", err)
	}
	if n, _ := s.blobBytes(); n != 0 {
		t.Fatal("a wrong token stored something")
	}
	c := &Client{Site: u, Token: "good"}
	res, err := c.Deploy(ctx, l)
	if err != nil || res.Uploaded != 20 {
		t.Fatalf("first deploy: %+v %v", res, err)
	}
	os.WriteFile(filepath.Join(src, "f7.html"), []byte("changed"), 0o644)
	l, _ = Scan(src)
	res, err = c.Deploy(ctx, l)
	if err != nil || res.Uploaded != 1 || res.UploadedBytes != 7 {
		t.Fatalf("second deploy moved %d files (%d bytes), want 1 (7): %v", res.Uploaded, res.UploadedBytes, err)
	}
	if got := read(t, s, "f7.html"); got != "changed" {
		t.Fatalf("serving %q", got)
	}
	rels, err := c.Releases(ctx)
	if err != nil || len(rels) != 2 || !rels[0].Active || rels[0].Files != 20 {
		t.Fatalf("releases %+v %v", rels, err)
	}
	// A manifest with an escaping path is refused with 400.
	req, _ := http.NewRequest("POST", srv.URL+Prefix+"manifest", bytes.NewReader([]byte(`{"files":[{"path":"../x","size":0,"mode":420,"sha256":"`+sum("")+`"}]}`)))
	req.Header.Set("Authorization", "Bearer good")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 400 {
		t.Fatalf("escaping path: %v %v", resp.Status, err)
	}
}

func TestScanRefusals(t *testing.T) {
	for name, link := range map[string]string{"absolute": "/etc/passwd", "dangling": "nothing-here", "escaping": "../../x"} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			os.WriteFile(filepath.Join(t.TempDir(), "x"), nil, 0o644)
			os.WriteFile(filepath.Join(dir, "ok.html"), []byte("ok"), 0o644)
			os.Symlink(link, filepath.Join(dir, "link"))
			if _, err := Scan(dir); err == nil || !strings.Contains(err.Error(), name) {
				t.Fatalf("got %v", err)
			}
		})
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "ok.html"), []byte("ok"), 0o644)
	os.Symlink("ok.html", filepath.Join(dir, "alias.html"))
	l, err := Scan(dir)
	if err != nil || len(l.Files) != 2 || l.Files[0].SHA256 != l.Files[1].SHA256 {
		t.Fatalf("a link inside the folder: %+v %v", l.Files, err)
	}
}

// TestScanSkipsVCS: .git, .hg and .svn, anywhere in the folder (a Git
// submodule's .git is a file), are left out and listed; ScanWithVCS
// keeps them.
func TestScanSkipsVCS(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"index.html", ".git/config", ".git/objects/ab/cd", "sub/.hg/store", "sub/.svn/entries", "mod/.git", ".gitignore", "x.git/y"} {
		os.MkdirAll(filepath.Dir(filepath.Join(dir, f)), 0o755)
		os.WriteFile(filepath.Join(dir, f), []byte(f), 0o644)
	}
	l, err := Scan(dir)
	var paths []string
	for _, f := range l.Files {
		paths = append(paths, f.Path)
	}
	if err != nil || strings.Join(paths, " ") != ".gitignore index.html x.git/y" || strings.Join(l.Skipped, " ") != ".git mod/.git sub/.hg sub/.svn" {
		t.Fatalf("Scan: %v sent, %v skipped, %v", paths, l.Skipped, err)
	}
	if l, err = ScanWithVCS(dir); err != nil || len(l.Files) != 8 || len(l.Skipped) != 0 {
		t.Fatalf("ScanWithVCS: %d files, %v skipped, %v", len(l.Files), l.Skipped, err)
	}
}

// TestHandlerRefusals: plain HTTP from another machine, or through a
// proxy, gets 403 before
// the token is looked at; wrong methods 405, unknown operations 404,
// bodies over the bounds 413.
func TestHandlerRefusals(t *testing.T) {
	s, _ := Open(t.TempDir(), Limits{MaxFileBytes: 10, MaxManifestBytes: 200})
	checked := 0
	h := &Handler{Store: s, Authorized: tokenIs("good", &checked)}
	for _, tc := range []struct {
		method, op, remote, body string
		want                     int
	}{
		{"GET", "releases", "192.0.2.1:1234", "", 403},
		{"GET", "releases", "127.0.0.1:1234", "", 200},
		{"GET", "releases", "[::1]:1234", "", 200},
		{"GET", "releases", "127.0.0.1:1234|X-Forwarded-For", "", 403},
		{"GET", "releases", "127.0.0.1:1234|Forwarded", "", 403},
		{"DELETE", "releases", "127.0.0.1:1", "", 405},
		{"GET", "nothing", "127.0.0.1:1", "", 404},
		{"PUT", "blobs/" + sum("12345678901"), "127.0.0.1:1", "12345678901", 413},
		{"POST", "manifest", "127.0.0.1:1", `{"files":[` + strings.Repeat(" ", 200) + `]}`, 413},
		{"POST", "rollback", "127.0.0.1:1", "", 409},
	} {
		r := httptest.NewRequest(tc.method, Prefix+tc.op, strings.NewReader(tc.body))
		remote, via, _ := strings.Cut(tc.remote, "|")
		r.RemoteAddr = remote
		if via != "" { // a trusted proxy made a remote client 127.0.0.1
			r.Header.Set(via, "127.0.0.1")
		}
		r.Header.Set("Authorization", "Bearer good")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != tc.want {
			t.Errorf("%s %s from %s: %d, want %d: %s", tc.method, tc.op, tc.remote, w.Code, tc.want, w.Body)
		}
	}
	if checked != 7 {
		t.Errorf("the token was checked %d times, want 7 (not for the refused remote client)", checked)
	}
}

func TestValidSum(t *testing.T) {
	good := sum("x")
	for _, s := range []string{good, strings.Repeat("0", 64), strings.Repeat("f", 64)} {
		if !ValidSum(s) {
			t.Errorf("ValidSum(%q) = false", s)
		}
	}
	for _, s := range []string{"", good[:63], good + "0", strings.ToUpper(good), strings.Repeat("g", 64), good[:63] + "/", good[:62] + "é"} {
		if ValidSum(s) {
			t.Errorf("ValidSum(%q) = true", s)
		}
	}
}

// TestSlowUploadOutlivesReadTimeout: an upload that keeps sending a MiB
// within ReadTimeout is not cut off by the server's read_timeout, which
// bounds the whole request.
func TestSlowUploadOutlivesReadTimeout(t *testing.T) {
	s, _ := Open(t.TempDir(), Limits{})
	const timeout = 300 * time.Millisecond
	srv := httptest.NewUnstartedServer(&Handler{Store: s, Authorized: tokenIs("t", nil), ReadTimeout: timeout})
	srv.Config.ReadTimeout = timeout
	srv.Start()
	defer srv.Close()
	content := strings.Repeat("x", 4<<20)
	pr, pw := io.Pipe()
	go func() {
		for i := range 4 { // 4 MiB over about 4 x 150 ms, twice the read timeout
			time.Sleep(150 * time.Millisecond)
			pw.Write([]byte(content[i<<20 : (i+1)<<20]))
		}
		pw.Close()
	}()
	req, _ := http.NewRequest("PUT", srv.URL+Prefix+"blobs/"+sum(content), pr)
	req.ContentLength = int64(len(content))
	req.Header.Set("Authorization", "Bearer t")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("slow upload: %d", resp.StatusCode)
	}
	if m := s.Missing(Manifest{Files: []File{{Path: "a", Size: int64(len(content)), SHA256: sum(content)}}}); len(m) != 0 {
		t.Errorf("missing after the upload: %v", m)
	}
}
