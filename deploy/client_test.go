package deploy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestClientRefusals: the client refuses, before sending anything, a
// URL with a path (a site is named by scheme, host and port) and a DIR
// that is a file.
func TestClientRefusals(t *testing.T) {
	for _, u := range []string{"https://example.test/sub/", "https://example.test/?x=1", "https://example.test/#top"} {
		if err := CheckURL(mustParse(t, u)); err == nil || !strings.Contains(err.Error(), "scheme, host and port only") {
			t.Errorf("%s: %v", u, err)
		}
	}
	for _, u := range []string{"https://example.test/", "https://example.test", "http://127.0.0.1:8080/"} {
		if err := CheckURL(mustParse(t, u)); err != nil {
			t.Errorf("%s: %v", u, err)
		}
	}
	f := filepath.Join(t.TempDir(), "index.html")
	os.WriteFile(f, []byte("hi"), 0o644)
	if _, err := Scan(f); err == nil || !strings.Contains(err.Error(), "DIR must be a folder") {
		t.Errorf("Scan of a file: %v", err)
	}
}

// TestClientNotDeployable: a site without deploy_token answers the
// deploy paths as any other, 405 for a POST and 404 for a GET (in
// plain text, not the endpoint's JSON): the client says what that
// means; the endpoint's own 404 and 405 stay what they are.
func TestClientNotDeployable(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			http.Error(w, "405 Method Not Allowed", http.StatusMethodNotAllowed)
			return
		}
		http.NotFound(w, r)
	}))
	defer srv.Close()
	c := &Client{Site: mustParse(t, srv.URL+"/"), Token: "x"}
	ctx := context.Background()
	_, err := c.Releases(ctx)
	want := srv.URL + "/ takes no deploys: the site has no deploy_token or deploy_client_ca (or the URL names another site); it answered 404 Not Found" +
		"; the URL is an address: a site with hosts is found by its name, so use the name (or a catch-all site)"
	var nd *NotDeployableError
	if !errors.As(err, &nd) || err.Error() != want {
		t.Errorf("releases: %v\nwant %s", err, want)
	}
	if _, err := c.Deploy(ctx, Local{}); !errors.As(err, &nd) || nd.Code != 405 || !strings.Contains(err.Error(), "takes no deploys") {
		t.Errorf("deploy: %v", err)
	}
	// A name gets no word about addresses.
	nd.Site = mustParse(t, "https://example.test/")
	if strings.Contains(nd.Error(), "address") {
		t.Errorf("a name: %v", nd)
	}
	s, _ := Open(t.TempDir(), Limits{})
	dep := httptest.NewServer(&Handler{Store: s, Authorized: tokenIs("good", nil)})
	defer dep.Close()
	c = &Client{Site: mustParse(t, dep.URL+"/"), Token: "good"}
	var se *StatusError
	if _, err := c.call(ctx, http.MethodDelete, "releases", nil, nil, http.StatusOK); !errors.As(err, &se) || err.Error() != "405 Method Not Allowed: method not allowed" {
		t.Errorf("the endpoint's own 405: %v", err)
	}
}

// TestClientFollowsToHTTPS: a site named by http:// that redirects to
// https:// on the same host is deployed to there, every request after
// the first going there directly (an upload's body cannot follow a
// redirect), and Reached names where it went live.
func TestClientFollowsToHTTPS(t *testing.T) {
	s, _ := Open(t.TempDir(), Limits{})
	tlsSrv := httptest.NewTLSServer(&Handler{Store: s, Authorized: tokenIs("good", nil)})
	defer tlsSrv.Close()
	redirects := 0
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		redirects++
		http.Redirect(w, r, tlsSrv.URL+r.URL.RequestURI(), http.StatusPermanentRedirect)
	}))
	defer plain.Close()
	src := t.TempDir()
	os.WriteFile(filepath.Join(src, "index.html"), []byte("hello"), 0o644)
	l, err := Scan(src)
	if err != nil {
		t.Fatal(err)
	}
	c := &Client{Site: mustParse(t, plain.URL+"/"), Token: "good", HTTP: tlsSrv.Client()}
	res, err := c.Deploy(context.Background(), l)
	if err != nil || res.Uploaded != 1 {
		t.Fatalf("deploy: %+v %v", res, err)
	}
	if got := c.Reached().String(); got != tlsSrv.URL+"/" || redirects != 1 {
		t.Errorf("reached %s after %d redirects, want %s/ after 1", got, redirects, tlsSrv.URL)
	}
	if got := read(t, s, "index.html"); got != "hello" {
		t.Errorf("serving %q", got)
	}
}

func mustParse(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// TestUnchangedDeploy: committing the active release's files again, in
// any order or with other modes, makes no release (which would push an older one out of
// Keep): the store says ErrUnchanged with the active release, the
// endpoint 200 rather than 201, the client Unchanged.
func TestUnchangedDeploy(t *testing.T) {
	s, _ := Open(t.TempDir(), Limits{Keep: 2})
	m := Manifest{Files: []File{file("index.html", "v1"), file("a.css", "x")}}
	put(t, s, "v1", "x")
	first, err := s.Commit(m)
	if err != nil {
		t.Fatal(err)
	}
	again, err := s.Commit(Manifest{Files: []File{m.Files[1], m.Files[0]}})
	if !errors.Is(err, ErrUnchanged) || again.ID != first.ID || !again.Active || len(s.Releases()) != 1 {
		t.Fatalf("the same files again: %+v %v, %d releases", again, err, len(s.Releases()))
	}
	// Another mode is the same release: files are stored 0644 whatever
	// the manifest says.
	m2 := Manifest{Files: []File{m.Files[0], m.Files[1]}}
	m2.Files[1].Mode = 0o755
	if _, err := s.Commit(m2); !errors.Is(err, ErrUnchanged) || len(s.Releases()) != 1 {
		t.Fatalf("a changed mode alone: %v, %d releases", err, len(s.Releases()))
	}
	put(t, s, "y")
	second, err := s.Commit(Manifest{Files: []File{m.Files[0], file("a.css", "y")}})
	if err != nil || len(s.Releases()) != 2 {
		t.Fatalf("a changed file: %v", err)
	}

	srv := httptest.NewServer(&Handler{Store: s, Authorized: tokenIs("good", nil)})
	defer srv.Close()
	src := t.TempDir()
	os.WriteFile(filepath.Join(src, "index.html"), []byte("v2"), 0o644)
	l, _ := Scan(src)
	c := &Client{Site: mustParse(t, srv.URL+"/"), Token: "good"}
	res, err := c.Deploy(context.Background(), l)
	if err != nil || res.Unchanged {
		t.Fatalf("a new deploy: %+v %v", res, err)
	}
	res2, err := c.Deploy(context.Background(), l)
	if err != nil || !res2.Unchanged || res2.Release.ID != res.Release.ID || res2.Uploaded != 0 {
		t.Fatalf("the same deploy again: %+v %v", res2, err)
	}
	// Keep is 2: the release before is still there.
	if rels := s.Releases(); len(rels) != 2 || rels[1].ID != second.ID {
		t.Fatalf("releases after an unchanged deploy: %+v, want %s second", rels, second.ID)
	}
}

// TestClientTokenNotSentOverPlainHTTPAfterRedirect: an https:// site
// that redirects to http:// of the same (non-loopback) host does not get
// the token sent in plain text.
func TestClientTokenNotSentOverPlainHTTPAfterRedirect(t *testing.T) {
	var leaked string
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		leaked = r.Header.Get("Authorization")
		http.Error(w, "no", 404)
	}))
	defer plain.Close()
	_, plainPort, _ := net.SplitHostPort(plain.Listener.Addr().String())
	tlsSrv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://example.test:"+plainPort+r.URL.Path, http.StatusTemporaryRedirect)
	}))
	defer tlsSrv.Close()
	_, tlsPort, _ := net.SplitHostPort(tlsSrv.Listener.Addr().String())
	hc := tlsSrv.Client()
	tr := hc.Transport.(*http.Transport)
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		_, port, _ := net.SplitHostPort(addr)
		return (&net.Dialer{}).DialContext(ctx, network, "127.0.0.1:"+port)
	}
	tr.TLSClientConfig.InsecureSkipVerify = true
	u, _ := url.Parse("https://example.test:" + tlsPort + "/")
	c := &Client{Site: u, Token: "secret", HTTP: hc}
	if _, err := c.Releases(context.Background()); err == nil || !strings.Contains(err.Error(), "redirected") {
		t.Errorf("redirect to plain HTTP: %v", err)
	}
	if strings.Contains(leaked, "secret") {
		t.Fatalf("token sent over plain HTTP after a redirect: %q", leaked)
	}
}

// TestClientCertificateHint: a site whose certificate the client does
// not trust gets the TLS error and what to do about it.
func TestClientCertificateHint(t *testing.T) {
	srv := httptest.NewTLSServer(http.NotFoundHandler())
	defer srv.Close()
	c := &Client{Site: mustParse(t, srv.URL+"/"), Token: "x"}
	_, err := c.Releases(context.Background())
	if err == nil || !strings.Contains(err.Error(), "certificate signed by unknown authority") || !strings.Contains(err.Error(), "-ca FILE") {
		t.Errorf("an untrusted certificate: %v", err)
	}
}

// TestClientUploadsFourAtATime: the client uploads the contents the
// server lacks 4 at a time (the README's number), never more, though
// the server would take more.
func TestClientUploadsFourAtATime(t *testing.T) {
	s, _ := Open(t.TempDir(), Limits{MaxUploads: 16})
	var (
		mu             sync.Mutex
		inFlight, most int
		four           = make(chan struct{})
	)
	h := &Handler{Store: s, Authorized: tokenIs("good", nil)}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPut {
			h.ServeHTTP(w, r)
			return
		}
		mu.Lock()
		inFlight++
		if inFlight > most {
			if most = inFlight; most == 4 {
				close(four)
			}
		}
		mu.Unlock()
		select { // hold the first uploads until 4 are in flight, so a fifth would show
		case <-four:
			time.Sleep(10 * time.Millisecond)
		case <-time.After(5 * time.Second):
		}
		h.ServeHTTP(w, r)
		mu.Lock()
		inFlight--
		mu.Unlock()
	}))
	defer srv.Close()
	src := t.TempDir()
	for i := range 12 {
		os.WriteFile(filepath.Join(src, fmt.Sprintf("f%d.html", i)), []byte(strings.Repeat("x", i+1)), 0o644)
	}
	l, _ := Scan(src)
	c := &Client{Site: mustParse(t, srv.URL+"/"), Token: "good"}
	res, err := c.Deploy(context.Background(), l)
	if err != nil || res.Uploaded != 12 {
		t.Fatalf("deploy: %+v %v", res, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if most != 4 {
		t.Errorf("%d uploads at once, want 4", most)
	}
}
