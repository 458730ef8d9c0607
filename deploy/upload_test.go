package deploy

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

var errCut = errors.New("cut off")

// cut reads s, then fails, as a request body whose connection dropped.
func cut(s string) io.Reader {
	return io.MultiReader(strings.NewReader(s), iotestErr{})
}

type iotestErr struct{}

func (iotestErr) Read([]byte) (int, error) { return 0, errCut }

func partialCount(t *testing.T, s *Store) int {
	t.Helper()
	return len(s.partials())
}

// TestResumeUpload: a cut-off upload keeps its bytes (in the quota), a
// resumption must start where they end, sends only the rest, and is
// checked over the whole blob; a rest that does not belong is refused
// and the kept part dropped.
func TestResumeUpload(t *testing.T) {
	dir := t.TempDir()
	s, _ := Open(dir, Limits{})
	c := strings.Repeat("0123456789", 100) // 1000 bytes
	if err := s.Put(sum(c), 0, 1000, cut(c[:600])); !errors.Is(err, errCut) {
		t.Fatalf("cut upload: %v", err)
	}
	if s.Offset(sum(c)) != 600 || s.Used() != 600 {
		t.Fatalf("after a cut at 600: offset %d, used %d", s.Offset(sum(c)), s.Used())
	}
	if s2, _ := Open(dir, Limits{}); s2.Used() != 600 {
		t.Errorf("reopened, the store counts %d bytes, want the 600 kept", s2.Used())
	}
	var oe *OffsetError
	if err := s.Put(sum(c), 300, 700, strings.NewReader(c[300:])); !errors.As(err, &oe) || oe.Have != 600 {
		t.Fatalf("resuming at 300 of 600 kept: %v", err)
	}
	if err := s.Put(sum(c), 600, 400, strings.NewReader(c[600:])); err != nil {
		t.Fatalf("resuming at 600: %v", err)
	}
	if s.Offset(sum(c)) != 1000 || s.Used() != 1000 || partialCount(t, s) != 0 || len(s.Missing(Manifest{Files: []File{file("a", c)}})) != 0 {
		t.Fatalf("after resuming: offset %d, used %d, %d partial", s.Offset(sum(c)), s.Used(), partialCount(t, s))
	}

	// A rest of other content: 400, the kept part dropped.
	d := strings.Repeat("abcdefghij", 100)
	s.Put(sum(d), 0, 1000, cut(d[:500]))
	if err := s.Put(sum(d), 500, 500, strings.NewReader(c[500:])); !errors.Is(err, ErrInvalid) {
		t.Fatalf("a tampered rest: %v", err)
	}
	if s.Offset(sum(d)) != 0 || s.Used() != 1000 || partialCount(t, s) != 0 {
		t.Fatalf("after a tampered rest: offset %d, used %d, %d partial", s.Offset(sum(d)), s.Used(), partialCount(t, s))
	}
	// Sent whole again (offset 0), a kept part is started afresh.
	s.Put(sum(d), 0, 1000, cut(d[:500]))
	if err := s.Put(sum(d), 0, 1000, strings.NewReader(d)); err != nil || s.Used() != 2000 {
		t.Fatalf("sent whole over a kept part: %v, used %d", err, s.Used())
	}
	// Over the per-file limit with the kept part.
	if err := s.Put(sum(d+"x"), defaultMaxFileBytes, 1, strings.NewReader("x")); !errors.Is(err, ErrTooLarge) {
		t.Errorf("a rest past max_file_bytes: %v", err)
	}
}

// TestPartialUploadsBounded: at most MaxPartials partial uploads are
// kept (a new one pushes out the least recently written), and those not
// written to for BlobGrace are collected.
func TestPartialUploadsBounded(t *testing.T) {
	if n := (Limits{}).withDefaults().MaxPartials; n != 16 {
		t.Errorf("MaxPartials defaults to %d; the README says 16", n)
	}
	s, _ := Open(t.TempDir(), Limits{MaxPartials: 3})
	var sums []string
	for i := range 5 {
		c := fmt.Sprintf("content %d ", i) + strings.Repeat("x", 100)
		sums = append(sums, sum(c))
		if err := s.Put(sum(c), 0, int64(len(c)), cut(c[:50])); !errors.Is(err, errCut) {
			t.Fatal(err)
		}
		// Written in this order, a second apart.
		old := time.Now().Add(time.Duration(i-10) * time.Second)
		os.Chtimes(s.partialPath(sum(c)), old, old)
	}
	if n := partialCount(t, s); n != 3 || s.Used() != 150 {
		t.Fatalf("5 cut uploads with MaxPartials 3: %d kept, %d bytes counted, want 3 and 150", n, s.Used())
	}
	for i, sm := range sums {
		if kept := s.Offset(sm) == 50; kept != (i >= 2) {
			t.Errorf("partial %d kept: %v; the oldest should go", i, kept)
		}
	}
	s.lim.BlobGrace = time.Second
	s.locked(func() error { s.collect(); return nil })
	if n := partialCount(t, s); n != 0 || s.Used() != 0 {
		t.Errorf("after collecting: %d partial, %d bytes", n, s.Used())
	}
}

// TestPartialUploadsGiveWay: cut-off uploads that fill the quota do not
// refuse the next uploads with ErrQuota (507) until they expire: the
// least recently written give way, and a resumed one keeps its part.
func TestPartialUploadsGiveWay(t *testing.T) {
	s, _ := Open(t.TempDir(), Limits{MaxSiteBytes: 1000, MaxFileBytes: 400})
	var cs []string
	for i := range 3 {
		c := fmt.Sprintf("%03d", i) + strings.Repeat("p", 397)
		cs = append(cs, c)
		if err := s.Put(sum(c), 0, 400, cut(c[:300])); !errors.Is(err, errCut) {
			t.Fatal(err)
		}
		old := time.Now().Add(time.Duration(i-10) * time.Second)
		os.Chtimes(s.partialPath(sum(c)), old, old)
	}
	if s.Used() != 900 {
		t.Fatalf("3 cut uploads of 300 bytes: %d bytes counted", s.Used())
	}
	whole := strings.Repeat("w", 400)
	if err := s.Put(sum(whole), 0, 400, strings.NewReader(whole)); err != nil {
		t.Fatalf("an upload with the quota full of cut-off ones: %v, want them to give way", err)
	}
	if s.Offset(sum(cs[0])) != 0 || s.Offset(sum(cs[1])) != 300 || s.Offset(sum(cs[2])) != 300 || s.Used() != 1000 {
		t.Errorf("kept %d %d %d, %d bytes counted; want the oldest alone gone, 1000", s.Offset(sum(cs[0])), s.Offset(sum(cs[1])), s.Offset(sum(cs[2])), s.Used())
	}
	// Resuming the newest needs 100 more: the older one goes, not it.
	if err := s.Put(sum(cs[2]), 300, 100, strings.NewReader(cs[2][300:])); err != nil {
		t.Fatalf("resuming with the quota full: %v", err)
	}
	if s.Offset(sum(cs[2])) != 400 || s.Offset(sum(cs[1])) != 0 || s.Used() != 800 || partialCount(t, s) != 0 {
		t.Errorf("after resuming: blob %d bytes, older partial %d, %d counted, %d partials", s.Offset(sum(cs[2])), s.Offset(sum(cs[1])), s.Used(), partialCount(t, s))
	}
	// Stored blobs never give way: over the quota is still refused.
	big := strings.Repeat("b", 400)
	if err := s.Put(sum(big), 0, 400, strings.NewReader(big)); !errors.Is(err, ErrQuota) {
		t.Errorf("an upload past stored blobs: %v, want ErrQuota", err)
	}
}

// TestHandlerResume: the manifest's answer and HEAD give the offset, a
// PUT at another offset gets 409 with it, a bad Upload-Offset 400.
func TestHandlerResume(t *testing.T) {
	s, _ := Open(t.TempDir(), Limits{})
	srv := httptest.NewServer(&Handler{Store: s, Authorized: tokenIs("good", nil)})
	defer srv.Close()
	c := strings.Repeat("z", 1000)
	s.Put(sum(c), 0, 1000, cut(c[:700]))
	do := func(method, op, offset, body string) *http.Response {
		req, _ := http.NewRequest(method, srv.URL+Prefix+op, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer good")
		if offset != "" {
			req.Header.Set("Upload-Offset", offset)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return res
	}
	if res := do("HEAD", "blobs/"+sum(c), "", ""); res.StatusCode != 204 || res.Header.Get("Upload-Offset") != "700" {
		t.Errorf("HEAD: %d, Upload-Offset %q", res.StatusCode, res.Header.Get("Upload-Offset"))
	}
	if res := do("PUT", "blobs/"+sum(c), "100", c[100:]); res.StatusCode != 409 || res.Header.Get("Upload-Offset") != "700" {
		t.Errorf("PUT at 100: %d, Upload-Offset %q", res.StatusCode, res.Header.Get("Upload-Offset"))
	}
	for _, bad := range []string{"-1", "+700", "7e2", "7 00", "700,700", "1234567890123456789"} {
		if res := do("PUT", "blobs/"+sum(c), bad, c[700:]); res.StatusCode != 400 {
			t.Errorf("Upload-Offset %q: %d, want 400", bad, res.StatusCode)
		}
	}
	cl := &Client{Site: mustParse(t, srv.URL+"/"), Token: "good"}
	src := t.TempDir()
	os.WriteFile(src+"/big.bin", []byte(c), 0o644)
	l, _ := Scan(src)
	res, err := cl.Deploy(t.Context(), l)
	if err != nil || res.UploadedBytes != 300 || res.ResumedBytes != 700 {
		t.Fatalf("a deploy over a kept part: %+v %v, want 300 bytes sent and 700 resumed", res, err)
	}
	// A kept part damaged on the server's disk: the rest is refused
	// (400), the part dropped, and the client sends the file whole.
	e := strings.Repeat("e", 1000)
	s.Put(sum(e), 0, 1000, cut(e[:400]))
	os.WriteFile(s.partialPath(sum(e)), []byte(strings.Repeat("x", 400)), 0o600)
	os.WriteFile(src+"/big.bin", []byte(e), 0o644)
	l, _ = Scan(src)
	if res, err = cl.Deploy(t.Context(), l); err != nil || res.UploadedBytes != 1000 || res.ResumedBytes != 0 {
		t.Fatalf("a deploy over a damaged kept part: %+v %v, want 1000 bytes sent", res, err)
	}
}

func FuzzParseOffset(f *testing.F) {
	for _, s := range []string{"0", "700", "", "-1", "+1", "1e3", "999999999999999999", "9999999999999999999", " 1", "0x10"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := parseOffset([]string{s})
		if err != nil {
			return
		}
		if n < 0 || strconv.FormatInt(n, 10) != strings.TrimLeft(s, "0") && !(n == 0 && strings.Trim(s, "0") == "") {
			t.Errorf("%q parsed as %d", s, n)
		}
	})
}
