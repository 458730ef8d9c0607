package main

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"appliance/config"
)

// freeAddr returns a loopback address nothing listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// TestRefusedReloadReleasesListener: a reload that binds a new
// server.http and then fails (here on a state_dir that cannot be made,
// for a new tls = "local" site) closes the new socket, and the old
// address keeps serving the old sites.
func TestRefusedReloadReleasesListener(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "root/index.html", "old")
	blocker := writeFile(t, dir, "blocker", "a file, so no directory can be made under it")
	cfgPath := filepath.Join(dir, "appliance.toml")
	conf := func(addr, extra string) {
		os.WriteFile(cfgPath, []byte(fmt.Sprintf(`[server]
http = %q
https = "127.0.0.1:0"
state_dir = %q
[[site]]
hosts = ["a.test"]
root = %q
tls = "off"
%s`, addr, filepath.Join(blocker, "state"), filepath.Join(dir, "root"), extra)), 0o644)
	}
	conf("127.0.0.1:0", "")
	p := start(t, "-config", cfgPath)
	next := freeAddr(t)
	conf(next, fmt.Sprintf("[[site]]\nhosts = [\"pi.lan\"]\nroot = %q\ntls = \"local\"\n", filepath.Join(dir, "root")))
	p.cmd.Process.Signal(syscall.SIGHUP)
	p.waitLog(t, "reload refused")
	if c, err := net.Dial("tcp", next); err == nil {
		c.Close()
		t.Errorf("the refused reload left %s listening", next)
	}
	req, _ := http.NewRequest("GET", "http://"+p.addr+"/", nil)
	req.Host = "a.test"
	res, err := http.DefaultClient.Do(req)
	if err != nil || readBody(res) != "old" {
		t.Fatalf("the old address after a refused reload: %v", err)
	}
	res.Body.Close()
	// The next good reload still moves the listener.
	conf(next, "")
	p.cmd.Process.Signal(syscall.SIGHUP)
	p.waitLog(t, "listener moved")
	p.waitLog(t, "msg=reloaded")
	req, _ = http.NewRequest("GET", "http://"+next+"/", nil)
	req.Host = "a.test"
	if res, err := http.DefaultClient.Do(req); err != nil || readBody(res) != "old" {
		t.Fatalf("after the good reload: %v", err)
	} else {
		res.Body.Close()
	}
}

// syncBuffer is a log sink that the test reads while the server writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestRefusedReloadLeavesServerAsBefore: a reload that gets as far as
// binding a listener and opening the local CA and an ACME account, then
// fails on a site root, leaves the server exactly as it was: nothing it
// opened stays open or on the server.
func TestRefusedReloadLeavesServerAsBefore(t *testing.T) {
	dir := t.TempDir()
	for _, s := range []string{"a", "gone"} {
		writeFile(t, dir, s+"/index.html", s)
	}
	base := fmt.Sprintf("[server]\nhttp = %%q\nhttps = \"127.0.0.1:0\"\nstate_dir = %q\n[[site]]\nhosts = [\"a.test\"]\nroot = %q\ntls = \"off\"\n",
		filepath.Join(dir, "state"), filepath.Join(dir, "a"))
	first := writeFile(t, dir, "first.toml", fmt.Sprintf(base, "127.0.0.1:0"))
	cfg, err := loadConfig(first)
	if err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	s, err := newServer(cfg, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeAll(s.closers) })
	next := freeAddr(t)
	second := writeFile(t, dir, "second.toml", fmt.Sprintf(base, next)+fmt.Sprintf(`[[site]]
hosts = ["pi.lan"]
root = %q
tls = "local"
[[site]]
hosts = ["www.example.com"]
root = %q
tls = "acme"
[[site]]
hosts = ["gone.test"]
root = %q
tls = "off"
`, filepath.Join(dir, "a"), filepath.Join(dir, "a"), filepath.Join(dir, "gone")))
	set, closers, oldCfg := s.sites.Load(), len(s.closers), s.cfg
	s.reload(func() (*config.Config, error) {
		c, err := loadConfig(second)
		os.RemoveAll(filepath.Join(dir, "gone")) // after validation, before the roots are opened
		return c, err
	})
	if !strings.Contains(logs.String(), "reload refused") {
		t.Fatalf("reload not refused:\n%s", logs.String())
	}
	if c, err := net.Dial("tcp", next); err == nil {
		c.Close()
		t.Errorf("the refused reload left %s listening", next)
	}
	if s.localCA != nil || s.acme != nil {
		t.Errorf("the refused reload kept what it opened: local CA %v, ACME %v", s.localCA != nil, s.acme != nil)
	}
	if s.sites.Load() != set || len(s.closers) != closers || s.cfg != oldCfg {
		t.Error("the refused reload changed the running sites or configuration")
	}
}

// TestReloadSameConfig: reloading an unchanged configuration warns of
// nothing: [server], [acme] and [admin] are compared by value, also the
// settings held as pointers (fast_http1, fast_http2) or lists, and those
// whose files are loaded anew (client_ca, ca_root, a manual certificate).
func TestReloadSameConfig(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "a/index.html", "a")
	_, certFile, keyFile := testCA(t, dir, "m.test")
	caFile, _ := clientCert(t, dir)
	path := writeFile(t, dir, "appliance.toml", fmt.Sprintf(`[server]
http = "127.0.0.1:0"
https = "127.0.0.1:0"
state_dir = %q
fast_http1 = true
fast_http2 = true
trusted_proxies = ["10.0.0.0/8", "192.0.2.1"]
client_ip_header = "forwarded"
proxy_protocol = ["https"]
[admin]
listen = "127.0.0.1:0"
[acme]
directory = "https://127.0.0.1:1/directory"
ca_root = %q
eab_kid = "kid"
eab_hmac = "c2VjcmV0"
[[site]]
hosts = ["www.example.com"]
root = %[3]q
tls = "acme"
[[site]]
hosts = ["m.test"]
root = %[3]q
tls = "manual"
cert = %q
key = %q
client_ca = %q
[[site.redirect]]
from = "^/old$"
to = "/new"
`, filepath.Join(dir, "state"), caFile, filepath.Join(dir, "a"), certFile, keyFile, caFile))
	cfg, err := loadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	s, err := newServer(cfg, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		closeAll(s.closers)
		s.acme.Close() // the reload started it; Close waits for its loop
	})
	s.reload(func() (*config.Config, error) { return loadConfig(path) })
	if l := logs.String(); !strings.Contains(l, "msg=reloaded") || strings.Contains(l, "need a restart") {
		t.Fatalf("reload of the same configuration:\n%s", l)
	}
	// One changed value is still seen, and only in its section, and the
	// warning names the keys that changed.
	text, _ := os.ReadFile(path)
	for _, c := range []struct{ from, to, warn, not string }{
		{`"192.0.2.1"`, `"192.0.2.2"`, "[server] changes other than http need a restart: trusted_proxies;", "[acme] changes"},
		{`eab_kid = "kid"`, `eab_kid = "kid2"`, "[acme] changes", "[server] changes"},
		{`fast_http1 = true`, `fast_http1 = false`, "need a restart: fast_http1;", "[acme] changes"},
		{`fast_http2 = true`, "fast_http2 = false\nmax_connections = 10", "need a restart: fast_http2, max_connections;", "[acme] changes"},
		// One warning for the access log too, naming its key.
		{"max_connections = 10", "max_connections = 10\naccess_log_format = \"json\"", "need a restart: access_log_format;", "access log changes"},
	} {
		text = []byte(strings.Replace(string(text), c.from, c.to, 1))
		os.WriteFile(path, text, 0o644)
		before := len(logs.String())
		s.reload(func() (*config.Config, error) { return loadConfig(path) })
		if l := logs.String()[before:]; !strings.Contains(l, c.warn) || strings.Contains(l, c.not) {
			t.Errorf("%s -> %s: want %q and not %q:\n%s", c.from, c.to, c.warn, c.not, l)
		}
	}
}

func closeAll(cs []io.Closer) {
	for _, c := range cs {
		c.Close()
	}
}

// TestReloadWhileObserved reads what systemd's status line and the
// metrics read, from other goroutines, while reloads bring an ACME
// account and a local CA: under -race, a reload must not write what they
// read.
func TestReloadWhileObserved(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "a/index.html", "a")
	// The ACME account's loop, started by the reload, may still write its
	// state after the test: not in a TempDir, whose removal would fail.
	// Its CA is a closed local port, never the internet.
	state, err := os.MkdirTemp("", "appliance-state")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(state) })
	base := fmt.Sprintf("[server]\nhttp = \"127.0.0.1:0\"\nhttps = \"127.0.0.1:0\"\nstate_dir = %q\n[acme]\ndirectory = \"https://127.0.0.1:1/directory\"\n[[site]]\nhosts = [\"a.test\"]\nroot = %q\ntls = \"off\"\n",
		state, filepath.Join(dir, "a"))
	first := writeFile(t, dir, "first.toml", base)
	second := writeFile(t, dir, "second.toml", base+fmt.Sprintf("[[site]]\nhosts = [\"pi.lan\"]\nroot = %q\ntls = \"local\"\n[[site]]\nhosts = [\"www.example.com\"]\nroot = %q\ntls = \"acme\"\n",
		filepath.Join(dir, "a"), filepath.Join(dir, "a")))
	s := loadServer(t, first)
	t.Cleanup(func() {
		closeAll(s.closers)
		if s.acme != nil {
			s.acme.Close()
		}
	})
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
				s.status()
				s.certSamples()
			}
		}
	}()
	for _, c := range []string{second, first, second} {
		s.reload(func() (*config.Config, error) { return loadConfig(c) })
	}
	close(stop)
	<-done
	if s.sites.Load().account == nil {
		t.Error("the sites lost their ACME account")
	}
}
