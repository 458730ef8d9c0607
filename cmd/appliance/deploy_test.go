package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"appliance/deploy"
)

// deploySite is a running server with one deployable HTTPS site,
// 127.0.0.1 (tls = "local"), and what a client needs to deploy to it.
type deploySite struct {
	p       *proc
	cfg     string
	dir     string
	state   string // the site's directory in state_dir
	ca      string // the local CA's root, for -ca
	httpsAt string // 127.0.0.1:port
	httpAt  string // the plain-HTTP listener, which redirects to HTTPS
}

// startDeploySite starts the server; revalidate is [cache] revalidate.
func startDeploySite(t *testing.T, fast bool, revalidate string) *deploySite {
	t.Helper()
	dir := t.TempDir()
	cmd := exec.Command(binary, "hash-password")
	cmd.Stdin = strings.NewReader("s3cret-token\n")
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	s := &deploySite{dir: dir, state: filepath.Join(dir, "state", "sites", "127.0.0.1")}
	s.cfg = writeFile(t, dir, "appliance.toml", fmt.Sprintf(`[server]
http = "127.0.0.1:0"
https = "127.0.0.1:0"
state_dir = "state"
fast_http1 = %v
[cache]
revalidate = %q
[[site]]
hosts = ["127.0.0.1"]
tls = "local"
deploy_token = %q
`, fast, revalidate, strings.TrimSpace(string(out))))
	s.start(t)
	pem, err := exec.Command(binary, "ca-cert", "-config", s.cfg).Output()
	if err != nil {
		t.Fatal(err)
	}
	s.ca = writeFile(t, dir, "ca.pem", string(pem))
	return s
}

func (s *deploySite) start(t *testing.T) {
	t.Helper()
	s.p = start(t, "-config", s.cfg)
	line := s.p.waitLogSeen(t, "msg=serving")
	s.httpsAt, s.httpAt = httpsRe.FindStringSubmatch(line)[1], addrRe.FindStringSubmatch(line)[1]
}

func (s *deploySite) url() string { return "https://" + s.httpsAt + "/" }

// run runs `appliance args...` as a user would, with token.
func (s *deploySite) run(t *testing.T, token string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = append(os.Environ(), "APPLIANCE_DEPLOY_TOKEN="+token)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// deploy deploys dir to the site's HTTPS URL, or to site.
func (s *deploySite) deploy(t *testing.T, dir string, site ...string) string {
	t.Helper()
	u := s.url()
	if len(site) > 0 {
		u = site[0]
	}
	out, err := s.run(t, "s3cret-token", "deploy", "-ca", s.ca, dir, u)
	if err != nil {
		t.Fatalf("deploy: %v\n%s", err, out)
	}
	return out
}

// get fetches path over HTTPS with c, uncompressed.
func get(c *http.Client, u string) (body, etag string, status int, err error) {
	req, _ := http.NewRequest("GET", u, nil)
	req.Header.Set("Accept-Encoding", "identity")
	res, err := c.Do(req)
	if err != nil {
		return "", "", 0, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return string(b), res.Header.Get("ETag"), res.StatusCode, err
}

// waitFor polls u until it serves want (the root is checked every 10 ms).
func waitFor(t *testing.T, c *http.Client, u, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		body, _, _, err := get(c, u)
		if err == nil && body == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still %q (%v), want %q", u, body, err, want)
		}
	}
}

func blobCount(t *testing.T, state string) int {
	n := 0
	filepath.WalkDir(filepath.Join(state, "blobs"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && deploy.ValidSum(d.Name()) {
			n++
		}
		return nil
	})
	return n
}

// TestDeploy goes through the built binary: a 1000-file site, one file
// changed moves one file, releases, rollback, a wrong token (401,
// nothing stored), an escaping path (400), over HTTP/1.1 (fast path on
// and off) and HTTP/2.
func TestDeploy(t *testing.T) {
	for _, fast := range []bool{true, false} {
		t.Run(fmt.Sprintf("fast_http1=%v", fast), func(t *testing.T) { testDeploy(t, fast) })
	}
}

func testDeploy(t *testing.T, fast bool) {
	s := startDeploySite(t, fast, "1s")
	h1, h2 := sniClient(s.httpsAt, "", false), sniClient(s.httpsAt, "", true)
	if _, _, status, _ := get(h1, s.url()); status != 404 {
		t.Fatalf("before any deploy: %d, want 404", status)
	}
	src := t.TempDir()
	for i := range 1000 {
		writeFile(t, src, fmt.Sprintf("d%d/page%d.html", i%10, i), fmt.Sprintf("page %d", i))
	}
	writeFile(t, src, "index.html", "version 1")
	// Version control directories are left out, and named.
	writeFile(t, src, ".git/config", "[remote]")
	writeFile(t, src, "d3/.hg/store", "x")
	t0 := time.Now()
	out := s.deploy(t, src)
	first := time.Since(t0)
	if !strings.Contains(out, "uploaded 1001 of 1001 files") || !strings.Contains(out, "is live on "+s.url()) ||
		!strings.Contains(out, "left out .git, d3/.hg (version control; -vcs sends them)") {
		t.Fatalf("first deploy said:\n%s", out)
	}
	// A deploy shows at once, though the cache trusts an entry for 1 s.
	showing := func(path, want string) {
		t.Helper()
		for name, c := range map[string]*http.Client{"HTTP/1.1": h1, "HTTP/2": h2} {
			if body, _, status, err := get(c, s.url()+path); body != want {
				t.Errorf("%s /%s: %d %q %v, want %q", name, path, status, body, err, want)
			}
		}
	}
	showing("", "version 1")
	showing("d3/page503.html", "page 503")
	if _, _, status, _ := get(h1, s.url()+".git/config"); status != 404 {
		t.Errorf(".git/config: %d, want 404", status)
	}

	writeFile(t, src, "index.html", "version 2")
	t0 = time.Now()
	out = s.deploy(t, src)
	t.Logf("deploy of 1001 files: %v; again with one changed: %v", first.Round(time.Millisecond), time.Since(t0).Round(time.Millisecond))
	if !strings.Contains(out, "uploaded 1 of 1001 files (9 of ") {
		t.Fatalf("one changed file should move one file:\n%s", out)
	}
	showing("", "version 2")
	// The same files again make no release (the releases below are two),
	// even with another mode (files are served 0644 whatever theirs),
	// and a deploy to the plain-HTTP URL, redirected, names the HTTPS
	// one it went to.
	os.Chmod(filepath.Join(src, "index.html"), 0o755)
	out = s.deploy(t, src, "http://"+s.httpAt+"/")
	if !strings.HasPrefix(out, "left out .git, d3/.hg (version control; -vcs sends them)\nunchanged: release ") || !strings.HasSuffix(out, " is already live on "+s.url()+"\n") {
		t.Fatalf("an unchanged deploy said:\n%s", out)
	}

	out, err := s.run(t, "s3cret-token", "releases", "-ca", s.ca, s.url())
	if err != nil || strings.Count(out, "\n") != 3 || !strings.Contains(strings.Split(out, "\n")[1], "1001") || !strings.HasSuffix(strings.Split(out, "\n")[1], "*") {
		t.Fatalf("releases: %v\n%s", err, out)
	}
	if out, err := s.run(t, "s3cret-token", "rollback", "-ca", s.ca, s.url()); err != nil || !strings.Contains(out, "active: ") {
		t.Fatalf("rollback: %v\n%s", err, out)
	}
	showing("", "version 1")
	// The server's log names each release made active, how and by whom.
	for _, how := range []string{"deploy", "rollback"} {
		if line := s.p.waitLogSeen(t, "msg=\""+how+": release active\""); !strings.Contains(line, "by=token") || !strings.Contains(line, "client=127.0.0.1:") {
			t.Errorf("log: %s", line)
		}
	}

	// A wrong token: 401, and nothing is stored.
	blobs := blobCount(t, s.state)
	writeFile(t, src, "new.html", "never stored")
	out, err = s.run(t, "wrong", "deploy", "-ca", s.ca, src, s.url())
	if err == nil || !strings.Contains(out, "401") {
		t.Fatalf("wrong token: %v\n%s", err, out)
	}
	if n := blobCount(t, s.state); n != blobs {
		t.Fatalf("a wrong token stored %d blobs", n-blobs)
	}
	// Refusals: a path out of the root (400), plain HTTP from loopback
	// to a TLS site is the site's redirect, not a deploy.
	c := &deploy.Client{Site: mustURL(s.url()), Token: "s3cret-token", HTTP: h1}
	var se *deploy.StatusError
	_, err = c.Deploy(context.Background(), deploy.Local{Manifest: deploy.Manifest{Files: []deploy.File{{Path: "../escape.html", SHA256: strings.Repeat("0", 64)}}}})
	if !errors.As(err, &se) || se.Code != 400 {
		t.Fatalf("escaping path: %v", err)
	}
	// A dangling link in the folder is refused by the client.
	os.Symlink("nowhere", filepath.Join(src, "dangling.html"))
	if out, err := s.run(t, "s3cret-token", "deploy", "-ca", s.ca, src, s.url()); err == nil || !strings.Contains(out, "dangling") {
		t.Fatalf("dangling link: %v\n%s", err, out)
	}
	// Without -ca the local CA is not trusted: the token is never sent.
	if out, err := s.run(t, "s3cret-token", "releases", s.url()); err == nil || !strings.Contains(out, "certificate") {
		t.Fatalf("untrusted certificate: %v\n%s", err, out)
	}
	// Plain http:// to anything but loopback is refused by the client.
	if out, err := s.run(t, "s3cret-token", "releases", "http://example.test/"); err == nil || !strings.Contains(out, "HTTPS") {
		t.Fatalf("plain HTTP: %v\n%s", err, out)
	}
	// -vcs sends the version control directories (the server then
	// stores them, and hides them as it hides every dotfile).
	os.Remove(filepath.Join(src, "dangling.html"))
	if out, err := s.run(t, "s3cret-token", "deploy", "-vcs", "-ca", s.ca, src, s.url()); err != nil || strings.Contains(out, "left out") || !strings.Contains(out, "uploaded 3 of 1004 files") {
		t.Fatalf("deploy -vcs: %v\n%s", err, out)
	}
	// In maintenance the site answers 503 but takes a deploy, which
	// shows once maintenance is off.
	if out, err := exec.Command(binary, "maintenance", "on", "-config", s.cfg).CombinedOutput(); err != nil {
		t.Fatalf("maintenance on: %v %s", err, out)
	}
	s.p.waitLog(t, "maintenance on")
	writeFile(t, src, "index.html", "after maintenance")
	if out, err := s.run(t, "s3cret-token", "deploy", "-ca", s.ca, src, s.url()); err != nil || !strings.Contains(out, "uploaded 1 of ") {
		t.Fatalf("deploy in maintenance: %v\n%s", err, out)
	}
	if _, _, status, _ := get(h2, s.url()); status != 503 {
		t.Errorf("in maintenance: %d, want 503", status)
	}
	exec.Command(binary, "maintenance", "off", "-config", s.cfg).Run()
	s.p.waitLog(t, "maintenance off")
	showing("", "after maintenance")
}

func mustURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}

// TestDeployKilledMidway: SIGKILL in the middle of an upload leaves the
// old release serving after a restart, and the same deploy run again
// finishes, sending only what had not arrived.
func TestDeployKilledMidway(t *testing.T) {
	s := startDeploySite(t, true, "1s")
	src := t.TempDir()
	for i := range 20 {
		writeFile(t, src, fmt.Sprintf("f%d.html", i), fmt.Sprintf("old %d", i))
	}
	writeFile(t, src, "index.html", "old")
	s.deploy(t, src)
	for i := range 20 {
		writeFile(t, src, fmt.Sprintf("f%d.html", i), fmt.Sprintf("new %d", i))
	}
	writeFile(t, src, "index.html", "new")

	local, err := deploy.Scan(src)
	if err != nil {
		t.Fatal(err)
	}
	var uploads atomic.Int64
	c := &deploy.Client{Site: mustURL(s.url()), Token: "s3cret-token", HTTP: sniClient(s.httpsAt, "", true), Parallel: 1,
		Progress: func(int64) {
			if uploads.Add(1) == 5 {
				s.p.cmd.Process.Kill()
				s.p.cmd.Wait()
			}
		}}
	if _, err := c.Deploy(context.Background(), local); err == nil {
		t.Fatal("the deploy survived its server")
	}
	s.start(t)
	h2 := sniClient(s.httpsAt, "", true)
	if body, _, status, err := get(h2, s.url()); body != "old" {
		t.Fatalf("after the kill: %d %q %v, want the old release", status, body, err)
	}
	out := s.deploy(t, src)
	if !strings.Contains(out, "uploaded 16 of 21 files") {
		t.Fatalf("the retried deploy should send the 16 files that had not arrived:\n%s", out)
	}
	waitFor(t, h2, s.url(), "new")
}

// TestDeployConsistentUnderLoad: while releases alternate, HTTP/1.1 and
// HTTP/2 clients always get a whole file of one release, and its ETag
// is always the one of that content.
func TestDeployConsistentUnderLoad(t *testing.T) {
	s := startDeploySite(t, true, "10ms")
	a, b := t.TempDir(), t.TempDir()
	// big.bin is over cache.max_file_bytes (sent from the file), small
	// ones are held in memory.
	content := map[string][2]string{
		"big.bin":    {strings.Repeat("A", 2<<20), strings.Repeat("B", 2<<20)},
		"index.html": {strings.Repeat("release A\n", 1000), strings.Repeat("release B\n", 1000)},
	}
	for name, v := range content {
		writeFile(t, a, name, v[0])
		writeFile(t, b, name, v[1])
	}
	s.deploy(t, a)
	clients := map[string]*http.Client{"HTTP/1.1": keepAliveClient(false), "HTTP/2": keepAliveClient(true)}
	waitFor(t, clients["HTTP/2"], s.url(), content["index.html"][0])

	var (
		mu     sync.Mutex
		etags  = map[string]string{} // name + content version -> ETag
		errs   []string
		served atomic.Int64
		done   = make(chan struct{})
		wg     sync.WaitGroup
	)
	seen := map[string]bool{}
	for proto, c := range clients {
		for name, v := range content {
			for range 2 {
				wg.Go(func() {
					for {
						select {
						case <-done:
							return
						default:
						}
						body, etag, status, err := get(c, s.url()+name)
						if err != nil {
							mu.Lock()
							errs = append(errs, fmt.Sprintf("%s %s: %v", proto, name, err))
							mu.Unlock()
							continue
						}
						served.Add(1)
						version := map[string]string{v[0]: "A", v[1]: "B"}[body]
						mu.Lock()
						switch {
						case status != 200 || version == "":
							errs = append(errs, fmt.Sprintf("%s %s: %d, a body of %d bytes from no one release", proto, name, status, len(body)))
						case etags[name+version] == "":
							etags[name+version] = etag
							fallthrough
						default:
							seen[proto+" "+name+" "+version] = true
						case etags[name+version] != etag:
							errs = append(errs, fmt.Sprintf("%s %s: release %s with ETag %s, before %s", proto, name, version, etag, etags[name+version]))
						}
						mu.Unlock()
					}
				})
			}
		}
	}
	for i := range 12 {
		dir, want := b, content["index.html"][1]
		if i%2 == 1 {
			dir, want = a, content["index.html"][0]
		}
		s.deploy(t, dir)
		waitFor(t, clients["HTTP/1.1"], s.url(), want)
	}
	close(done)
	wg.Wait()
	for _, e := range errs {
		t.Error(e)
	}
	if etags["big.binA"] == etags["big.binB"] || etags["index.htmlA"] == etags["index.htmlB"] {
		t.Errorf("releases A and B share an ETag: %v", etags)
	}
	if len(seen) != 8 {
		t.Errorf("the clients saw %d of the 8 (protocol, file, release) combinations: %v", len(seen), seen)
	}
	t.Logf("%d responses during 12 deploys, all whole and of one release", served.Load())
}

// keepAliveClient trusts anything (the load test checks content, not
// certificates) and keeps its connections, HTTP/2 or HTTP/1.1.
func keepAliveClient(h2 bool) *http.Client {
	protos := []string{"http/1.1"}
	if h2 {
		protos = []string{"h2"}
	}
	return &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{
		TLSClientConfig:     &tls.Config{InsecureSkipVerify: true, NextProtos: protos},
		ForceAttemptHTTP2:   h2,
		MaxIdleConnsPerHost: 4,
	}}
}
