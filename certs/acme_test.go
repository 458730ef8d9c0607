package certs

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	stdlog "log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"appliance/certs/pebbletest"
)

// logSink is a slog handler that keeps every line and lets a test wait
// for a message.
type logSink struct {
	mu    sync.Mutex
	lines []string
	ch    chan string
}

func newLogSink() *logSink { return &logSink{ch: make(chan string, 4096)} }

func (l *logSink) Enabled(context.Context, slog.Level) bool { return true }
func (l *logSink) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *logSink) WithGroup(string) slog.Handler            { return l }
func (l *logSink) Handle(_ context.Context, r slog.Record) error {
	line := r.Level.String() + " " + r.Message
	r.Attrs(func(a slog.Attr) bool { line += " " + a.String(); return true })
	l.mu.Lock()
	l.lines = append(l.lines, line)
	l.mu.Unlock()
	select {
	case l.ch <- line:
	default:
	}
	return nil
}

// wait returns the next line that contains msg.
func (l *logSink) wait(t *testing.T, msg string) string {
	t.Helper()
	timeout := time.After(2 * time.Minute)
	for {
		select {
		case line := <-l.ch:
			if strings.Contains(line, msg) {
				return line
			}
		case <-timeout:
			t.Fatalf("no log line %q in time; log:\n%s", msg, l.String())
		}
	}
}

func (l *logSink) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

// acmeServer is an HTTPS listener (and optionally a plain one for
// HTTP-01) whose certificates come from an ACME account.
type acmeServer struct {
	tlsLn, httpLn net.Listener
	acme          *ACME
	log           *logSink
	challenges    atomic.Int64 // HTTP-01 requests answered
}

func listen(t *testing.T) net.Listener {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

func port(ln net.Listener) int { return ln.Addr().(*net.TCPAddr).Port }

// serve starts the listeners with the ACME account in dir, against ca.
func (s *acmeServer) serve(t *testing.T, ca *pebbletest.CA, dir string, hosts ...string) {
	t.Helper()
	s.log = newLogSink()
	a, err := NewACME(ACMEOptions{Dir: dir, DirectoryURL: ca.URL, Roots: ca.Roots, Email: "ops@example.test", Log: slog.New(s.log)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	a.SetHosts(hosts)
	s.acme = a
	sel := NewSelector()
	for _, h := range hosts {
		sel.Add(h, 0, a, nil, nil, nil)
	}
	hello := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello "+r.Host) })
	srv := &http.Server{Handler: hello, TLSConfig: ServerConfig(sel.GetCertificate, nil), ErrorLog: stdlog.New(io.Discard, "", 0)}
	go srv.ServeTLS(s.tlsLn, "", "")
	t.Cleanup(func() { srv.Close() })
	if s.httpLn != nil {
		challenge := a.HTTPHandler(http.NotFoundHandler())
		plain := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			s.challenges.Add(1)
			challenge.ServeHTTP(w, r)
		})}
		go plain.Serve(s.httpLn)
		t.Cleanup(func() { plain.Close() })
	}
}

// get fetches https://name/ over the listener, verifying the chain with
// roots, and returns the leaf.
func (s *acmeServer) get(name string, roots *x509.CertPool) (*x509.Certificate, error) {
	conn, err := tls.Dial("tcp", s.tlsLn.Addr().String(), &tls.Config{ServerName: name, RootCAs: roots, NextProtos: []string{"http/1.1"}})
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET / HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", name)
	body, err := io.ReadAll(conn)
	if err != nil {
		return nil, err
	}
	if !strings.Contains(string(body), "hello "+name) {
		return nil, fmt.Errorf("response %q", body)
	}
	return conn.ConnectionState().PeerCertificates[0], nil
}

func TestACMETLSALPN01(t *testing.T) {
	s := &acmeServer{tlsLn: listen(t)}
	ca := pebbletest.Start(t, pebbletest.Options{TLSPort: port(s.tlsLn), HTTPPort: port(listen(t))})
	dir := filepath.Join(t.TempDir(), "acme")
	s.serve(t, ca, dir, "a.example.test", "b.example.test")
	s.acme.Start()
	for _, name := range []string{"a.example.test", "b.example.test"} {
		leaf, err := s.get(name, ca.Issuer) // waits for the certificate if the background loop has not got it yet
		if err != nil {
			t.Fatalf("%s: %v\n%s", name, err, s.log)
		}
		if k, ok := leaf.PublicKey.(*ecdsa.PublicKey); !ok || k.Curve != elliptic.P256() {
			t.Errorf("%s: key %T, want ECDSA P-256", name, leaf.PublicKey)
		}
		if len(leaf.DNSNames) != 1 || leaf.DNSNames[0] != name {
			t.Errorf("certificate names %v", leaf.DNSNames)
		}
	}
	if n := s.challenges.Load(); n != 0 {
		t.Errorf("%d HTTP-01 requests without an HTTP listener", n)
	}
	// The cache is private.
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("cache dir: %v %v", fi.Mode(), err)
	}
	// autocert may still be writing a certificate it has already
	// served (DirCache writes a temporary file, then renames it): look
	// until both are there, for at most 10 s.
	wanted := []string{"acme_account+key", "a.example.test", "b.example.test"}
	var names map[string]bool
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for deadline := time.Now().Add(10 * time.Second); ; {
		entries, _ := os.ReadDir(dir)
		names = map[string]bool{}
		for _, e := range entries {
			names[e.Name()] = true
		}
		if !slices.ContainsFunc(wanted, func(w string) bool { return !names[w] }) || time.Now().After(deadline) {
			break
		}
		<-tick.C
	}
	for _, want := range wanted {
		if !names[want] {
			t.Errorf("cache lacks %s: %v", want, names)
		} else if fi, err := os.Stat(filepath.Join(dir, want)); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v %v", want, fi.Mode(), err)
		}
	}
	if got := s.acme.Certificates(); len(got) != 2 || got[0].NotAfter.IsZero() || got[1].NotAfter.IsZero() {
		t.Errorf("Certificates() = %+v", got)
	}
}

func TestACMEHTTP01(t *testing.T) {
	// The CA's TLS-ALPN-01 connections reach a port that only closes
	// them, as behind a proxy that owns 443: autocert falls back to
	// HTTP-01 on the plain listener.
	s := &acmeServer{tlsLn: listen(t), httpLn: listen(t)}
	ca := pebbletest.Start(t, pebbletest.Options{TLSPort: pebbletest.ClosingPort(t), HTTPPort: port(s.httpLn)})
	s.serve(t, ca, t.TempDir(), "web.example.test")
	if _, err := s.get("web.example.test", ca.Issuer); err != nil {
		t.Fatalf("%v\n%s", err, s.log)
	}
	if s.challenges.Load() == 0 {
		t.Error("the CA never fetched an HTTP-01 token")
	}
	// The challenge path refuses names that are not configured.
	req, _ := http.NewRequest("GET", "http://"+s.httpLn.Addr().String()+"/.well-known/acme-challenge/x", nil)
	req.Host = "other.example.test"
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("challenge for another name: %d", resp.StatusCode)
	}
}

func TestACMERejectsOtherNames(t *testing.T) {
	s := &acmeServer{tlsLn: listen(t)}
	ca := pebbletest.Start(t, pebbletest.Options{TLSPort: port(s.tlsLn), HTTPPort: port(listen(t))})
	s.serve(t, ca, t.TempDir(), "a.example.test")
	for _, name := range []string{"other.example.test", "A.EXAMPLE.TEST.evil.test", ""} {
		if _, err := s.get(name, ca.Issuer); err == nil {
			t.Errorf("%q: handshake succeeded", name)
		}
		// Straight to the account, past the selector, too.
		if _, err := s.acme.GetCertificate(&tls.ClientHelloInfo{ServerName: name}); err != ErrNoCertificate {
			t.Errorf("%q: %v", name, err)
		}
	}
	if n := ca.Requests(); n != 0 {
		t.Errorf("%d requests to the CA for names not configured", n)
	}
}

func TestACMERenews(t *testing.T) {
	s := &acmeServer{tlsLn: listen(t)}
	// 9-second certificates: autocert renews a third of the lifetime
	// before expiry, about 6 s after issue.
	ca := pebbletest.Start(t, pebbletest.Options{TLSPort: port(s.tlsLn), HTTPPort: port(listen(t)), Validity: 9 * time.Second})
	s.serve(t, ca, t.TempDir(), "a.example.test")
	first, err := s.get("a.example.test", ca.Issuer)
	if err != nil {
		t.Fatalf("%v\n%s", err, s.log)
	}
	s.log.wait(t, "certificate stored") // the first
	s.log.wait(t, "certificate stored") // the renewal, cached before it is served
	// autocert swaps the served certificate right after caching it.
	for range 1000 {
		leaf, err := s.get("a.example.test", ca.Issuer)
		if err != nil {
			t.Fatal(err)
		}
		if leaf.SerialNumber.Cmp(first.SerialNumber) != 0 {
			if !leaf.NotAfter.After(first.NotAfter) {
				t.Errorf("renewed certificate expires %v, first %v", leaf.NotAfter, first.NotAfter)
			}
			// The expiry reported (for metrics) follows without a handshake.
			if got := s.acme.Certificates(); len(got) != 1 || !got[0].NotAfter.After(first.NotAfter) {
				t.Errorf("Certificates() = %+v after renewal", got)
			}
			return
		}
	}
	t.Fatal("the served certificate did not change after renewal")
}

func TestACMECacheAndCADown(t *testing.T) {
	tlsLn := listen(t)
	ca := pebbletest.Start(t, pebbletest.Options{TLSPort: port(tlsLn), HTTPPort: port(listen(t))})
	dir := t.TempDir()

	s1 := &acmeServer{tlsLn: tlsLn}
	s1.serve(t, ca, dir, "a.example.test")
	first, err := s1.get("a.example.test", ca.Issuer)
	if err != nil {
		t.Fatalf("%v\n%s", err, s1.log)
	}
	s1.acme.Close()

	// A restart reads the cache and asks the CA nothing.
	before := ca.Requests()
	s2 := &acmeServer{tlsLn: listen(t)}
	s2.serve(t, ca, dir, "a.example.test", "new.example.test")
	leaf, err := s2.get("a.example.test", ca.Issuer)
	if err != nil {
		t.Fatal(err)
	}
	if leaf.SerialNumber.Cmp(first.SerialNumber) != 0 {
		t.Error("restart got a new certificate instead of the cached one")
	}
	if n := ca.Requests() - before; n != 0 {
		t.Errorf("%d requests to the CA on restart", n)
	}

	// With the CA down the cached certificate keeps serving; a name
	// without one fails its handshakes fast, logs why, and waits for the
	// next attempt rather than asking the CA at every handshake.
	ca.Stop()
	if _, err := s2.get("a.example.test", ca.Issuer); err != nil {
		t.Fatalf("cached site with the CA down: %v", err)
	}
	var wg sync.WaitGroup
	for range 8 { // at once: they share one attempt, which counts once
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := s2.get("new.example.test", ca.Issuer); err == nil {
				t.Error("a certificate with the CA down")
			}
		}()
	}
	wg.Wait()
	line := s2.log.wait(t, "no certificate for a site")
	if !strings.Contains(line, "new.example.test") || !strings.Contains(line, "retry_in=1m0s") {
		t.Errorf("log line %q", line)
	}
	for range 5 {
		if _, err := s2.get("new.example.test", ca.Issuer); err == nil {
			t.Fatal("a certificate with the CA down")
		}
	}
	if n := s2.acme.Errors(); n != 1 {
		t.Errorf("%d attempts within the backoff, want 1", n)
	}
	if _, err := s2.get("a.example.test", ca.Issuer); err != nil {
		t.Fatalf("the other site: %v", err)
	}
	got := s2.acme.Certificates()
	if len(got) != 2 || got[0].NotAfter.IsZero() || !got[1].NotAfter.IsZero() || got[1].Err == nil {
		t.Errorf("Certificates() = %+v", got)
	}
}

// TestACMECloseWaits: Close cuts short the background loop's request
// to a CA that hangs (the client's own timeout is a minute) and returns
// only once the loop has stopped, without counting or logging the
// request it cut as the CA's failure.
func TestACMECloseWaits(t *testing.T) {
	asked, cut := make(chan struct{}), make(chan struct{})
	var once sync.Once
	ca := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		once.Do(func() {
			close(asked)
			<-r.Context().Done() // the client went
			close(cut)
		})
	}))
	defer ca.Close()
	log := newLogSink()
	a, err := NewACME(ACMEOptions{Dir: t.TempDir(), DirectoryURL: ca.URL + "/directory", Log: slog.New(log)})
	if err != nil {
		t.Fatal(err)
	}
	a.SetHosts([]string{"a.test"})
	a.Start()
	<-asked
	a.Close()
	select {
	case <-a.stopped:
	default:
		t.Fatal("Close returned before the loop stopped")
	}
	<-cut
	if n := a.Errors(); n != 0 || strings.Contains(log.String(), "no certificate") {
		t.Errorf("the cut request counted as %d failures; log:\n%s", n, log)
	}
	a.Close() // again: nothing to do
}

func TestACMECorruptCache(t *testing.T) {
	s := &acmeServer{tlsLn: listen(t)}
	ca := pebbletest.Start(t, pebbletest.Options{TLSPort: port(s.tlsLn), HTTPPort: port(listen(t))})
	dir := t.TempDir()
	for _, f := range []string{"acme_account+key", "a.example.test"} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte("-----BEGIN junk\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// An entry that cannot be read at all.
	if err := os.Mkdir(filepath.Join(dir, "b.example.test"), 0o700); err != nil {
		t.Fatal(err)
	}
	s.serve(t, ca, dir, "a.example.test", "b.example.test")
	for _, name := range []string{"a.example.test", "b.example.test"} {
		if _, err := s.get(name, ca.Issuer); err != nil {
			t.Fatalf("%s: %v\n%s", name, err, s.log)
		}
	}
	out := s.log.String()
	for _, want := range []string{"ACME cache entry corrupt; getting a new one entry=a.example.test", "ACME cache entry corrupt; getting a new one entry=acme_account+key", "ACME cache entry unreadable; getting a new one entry=b.example.test", "writing the ACME cache entry=b.example.test"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
}

// TestACMEHTTPHandlerFallback: HTTPHandler answers the challenge paths
// itself (a host it does not serve is refused there, not passed on) and
// every other request with the fallback, as autocert's does.
func TestACMEHTTPHandlerFallback(t *testing.T) {
	a, err := NewACME(ACMEOptions{Dir: t.TempDir(), DirectoryURL: "http://127.0.0.1:1/directory"})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	a.SetHosts([]string{"a.test"})
	fallback := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "fallback") })
	h := a.HTTPHandler(fallback)
	for _, tc := range []struct {
		host, path string
		status     int
		fallback   bool
	}{
		{"a.test", "/", 200, true},
		{"a.test", "/.well-known/acme-challenge", 200, true}, // no slash: not a token path
		{"a.test", "/.well-known/acme-challenge/unknown-token", 404, false},
		{"other.test", "/.well-known/acme-challenge/token", 403, false},
		{"other.test", "/page", 200, true},
	} {
		req := httptest.NewRequest("GET", tc.path, nil)
		req.Host = tc.host
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != tc.status || (rec.Body.String() == "fallback") != tc.fallback {
			t.Errorf("%s%s: %d %q, want %d (fallback %v)", tc.host, tc.path, rec.Code, rec.Body.String(), tc.status, tc.fallback)
		}
	}
}
