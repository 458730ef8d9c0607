package main

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// notifySocket listens where the appliance will send sd_notify messages.
func notifySocket(t *testing.T) (*net.UnixConn, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify.sock")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, path
}

// nextNotify returns the next message that is not a watchdog ping.
func nextNotify(t *testing.T, c *net.UnixConn, skipWatchdog bool) string {
	t.Helper()
	buf := make([]byte, 4096)
	for {
		c.SetReadDeadline(time.Now().Add(30 * time.Second))
		n, err := c.Read(buf)
		if err != nil {
			t.Fatalf("no sd_notify message: %v", err)
		}
		msg := string(buf[:n])
		if skipWatchdog && msg == "WATCHDOG=1" {
			continue
		}
		return msg
	}
}

func siteConfig(t *testing.T, extra string) string {
	dir := t.TempDir()
	writeFile(t, dir, "root/index.html", "hello from the appliance")
	return writeFile(t, dir, "appliance.toml", fmt.Sprintf("[server]\nhttp = \"127.0.0.1:0\"\n%s[[site]]\nroot = %q\n", extra, filepath.Join(dir, "root")))
}

func TestSdNotifySequence(t *testing.T) {
	sock, path := notifySocket(t)
	cfg := siteConfig(t, "")
	p := &proc{cmd: exec.Command(binary, "-config", cfg), lines: make(chan string, 100)}
	p.cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+path)
	startProc(t, p)

	if msg := nextNotify(t, sock, true); !strings.HasPrefix(msg, "READY=1\nSTATUS=serving 1 site(s) on http://127.0.0.1:") {
		t.Fatalf("first message %q", msg)
	}
	p.cmd.Process.Signal(syscall.SIGHUP)
	if msg := nextNotify(t, sock, true); !strings.HasPrefix(msg, "RELOADING=1\nMONOTONIC_USEC=") {
		t.Fatalf("on SIGHUP: %q", msg)
	}
	if msg := nextNotify(t, sock, true); !strings.HasPrefix(msg, "READY=1\n") {
		t.Fatalf("after reload: %q", msg)
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	if msg := nextNotify(t, sock, true); msg != "STOPPING=1" {
		t.Fatalf("on SIGTERM: %q", msg)
	}
	if err := p.cmd.Wait(); err != nil {
		t.Fatalf("exit: %v", err)
	}
}

func TestWatchdogPings(t *testing.T) {
	sock, path := notifySocket(t)
	p := &proc{cmd: exec.Command(binary, "-config", siteConfig(t, "")), lines: make(chan string, 100)}
	p.cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+path, "WATCHDOG_USEC=200000")
	startProc(t, p)
	pings := 0
	for pings < 3 {
		if nextNotify(t, sock, false) == "WATCHDOG=1" {
			pings++
		}
	}
}

// TestSocketActivation passes a listening socket as systemd does
// (LISTEN_FDS, LISTEN_FDNAMES, LISTEN_PID of the service itself).
func TestSocketActivation(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f, _ := ln.(*net.TCPListener).File()
	addr := ln.Addr().String()
	ln.Close() // the socket lives on in f, and then in the child
	// The shell's exec keeps its PID, which is what LISTEN_PID must name.
	cmd := exec.Command("sh", "-c", `LISTEN_PID=$$ exec "$0" "$@"`, binary, "-config", siteConfig(t, ""))
	cmd.Env = append(os.Environ(), "LISTEN_FDS=1", "LISTEN_FDNAMES=http")
	cmd.ExtraFiles = []*os.File{f}
	p := &proc{cmd: cmd, lines: make(chan string, 100)}
	startProc(t, p)
	f.Close()
	if p.addr != addr || !strings.Contains(p.log.String(), "listener=\"socket activation\"") {
		t.Fatalf("serving on %s, want the passed socket %s:\n%s", p.addr, addr, p.log.String())
	}
	res, err := http.Get("http://" + addr + "/")
	if err != nil || readBody(res) != "hello from the appliance" {
		t.Fatalf("%v", err)
	}
}

func TestSystemdSocketActivate(t *testing.T) {
	tool, err := exec.LookPath("systemd-socket-activate")
	if err != nil {
		t.Skip("systemd-socket-activate not installed (Debian package systemd); .ci/run installs it")
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close() // a free port for the tool to bind
	cmd := exec.Command(tool, "-l", addr, "--fdname=http", binary, "-config", siteConfig(t, ""))
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	// The tool says when it has bound, then starts the appliance on the
	// first connection.
	sc := bufio.NewScanner(stderr)
	for sc.Scan() && !strings.HasPrefix(sc.Text(), "Listening on") {
	}
	go io.Copy(io.Discard, stderr)
	res, err := http.Get("http://" + addr + "/")
	if err != nil || readBody(res) != "hello from the appliance" {
		t.Fatalf("%v", err)
	}
}

func TestJournaldLogFormat(t *testing.T) {
	p := &proc{cmd: exec.Command(binary, "-config", siteConfig(t, "")), lines: make(chan string, 100)}
	p.cmd.Env = append(os.Environ(), "JOURNAL_STREAM=8:12345")
	startProc(t, p)
	line := strings.TrimSpace(p.log.String())
	if !strings.HasPrefix(line, "<6>msg=serving ") || strings.Contains(line, "time=") {
		t.Fatalf("journald line %q: want a <6> priority and no timestamp", line)
	}
}

// TestRestartWithSocketActivation: the test plays systemd, holding the
// listening socket while the appliance is stopped and started again, as
// systemctl restart does with a .socket unit. Clients that open a new
// connection for every request see no failure: connections made while no
// process runs wait in the socket's backlog for the next one.
func TestRestartWithSocketActivation(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f, _ := ln.(*net.TCPListener).File()
	defer f.Close()
	addr := ln.Addr().String()
	ln.Close()
	cfg := siteConfig(t, "")
	launch := func() *proc {
		cmd := exec.Command("sh", "-c", `LISTEN_PID=$$ exec "$0" "$@"`, binary, "-config", cfg)
		cmd.Env = append(os.Environ(), "LISTEN_FDS=1", "LISTEN_FDNAMES=http")
		cmd.ExtraFiles = []*os.File{f}
		p := &proc{cmd: cmd, lines: make(chan string, 100)}
		startProc(t, p)
		return p
	}
	first := launch()

	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 20 * time.Second}
	stop, okSoFar := loadLoop(client, "http://"+addr+"/")
	for okSoFar() < 50 {
		runtime.Gosched()
	}
	first.cmd.Process.Signal(syscall.SIGTERM)
	if err := first.cmd.Wait(); err != nil {
		t.Fatalf("first process: %v", err)
	}
	before := okSoFar()
	launch()
	for okSoFar() < before+50 {
		runtime.Gosched()
	}
	ok, failed, _ := stop()
	if failed != 0 {
		t.Fatalf("%d of %d requests failed across the restart", failed, ok+failed)
	}
}

// TestSocketActivationHTTPS passes two sockets, named as the units name
// them: http serves plain HTTP, https the TLS sites.
func TestSocketActivationHTTPS(t *testing.T) {
	files, httpAddr, httpsAddr := activatedListeners(t)
	addrs := []string{httpAddr, httpsAddr}
	dir := t.TempDir()
	writeFile(t, dir, "root/index.html", "over TLS")
	cfg := writeFile(t, dir, "appliance.toml", fmt.Sprintf("[server]\nhttp = \":80\"\nhttps = \":443\"\nstate_dir = %q\n[[site]]\nroot = %q\ntls = \"local\"\n",
		filepath.Join(dir, "state"), filepath.Join(dir, "root")))
	p := startActivated(t, cfg, files)
	line := p.waitLogSeen(t, "msg=serving")
	if p.addr != addrs[0] || !strings.Contains(line, "https=https://"+addrs[1]) {
		t.Fatalf("want http on %s and https on %s (the passed sockets, not :80/:443):\n%s", addrs[0], addrs[1], line)
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	res, err := client.Get("https://" + addrs[1] + "/")
	if err != nil || readBody(res) != "over TLS" {
		t.Fatalf("https socket: %v", err)
	}
	plain := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	if res, err := plain.Get("http://" + addrs[0] + "/"); err != nil || res.StatusCode != 301 {
		t.Fatalf("http socket: %v %v", err, res)
	}
}

// activatedListeners makes an http and an https socket to pass to the
// server as systemd would; the ports are known before it starts, so the
// CA's validation can be pointed at them.
func activatedListeners(t *testing.T) (files []*os.File, httpAddr, httpsAddr string) {
	t.Helper()
	var addrs []string
	for range 2 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		f, _ := ln.(*net.TCPListener).File()
		files, addrs = append(files, f), append(addrs, ln.Addr().String())
		ln.Close()
	}
	return files, addrs[0], addrs[1]
}

func startActivated(t *testing.T, cfg string, files []*os.File, env ...string) *proc {
	t.Helper()
	cmd := exec.Command("sh", "-c", `LISTEN_PID=$$ exec "$0" "$@"`, binary, "-config", cfg)
	cmd.Env = append(append(os.Environ(), "LISTEN_FDS=2", "LISTEN_FDNAMES=http:https"), env...)
	cmd.ExtraFiles = files
	p := &proc{cmd: cmd, lines: make(chan string, 100)}
	startProc(t, p)
	for _, f := range files {
		f.Close()
	}
	return p
}

// TestJournalHandlerGroups: WithGroup prefixes stay on the attributes
// added after them, nested groups keep every prefix, and attributes
// added before a group stay outside it.
func TestJournalHandlerGroups(t *testing.T) {
	for _, tc := range []struct {
		name string
		log  func(*slog.Logger)
		want string
	}{
		{"plain", func(l *slog.Logger) { l.Info("m", "k", 1) }, "<6>msg=m k=1\n"},
		{"group", func(l *slog.Logger) { l.WithGroup("g").Info("m", "k", 1) }, "<6>msg=m g.k=1\n"},
		{"nested groups", func(l *slog.Logger) { l.WithGroup("a").WithGroup("b").Warn("m", "k", 1) }, "<4>msg=m a.b.k=1\n"},
		{"attrs before and after a group", func(l *slog.Logger) {
			l.With("x", 1).WithGroup("g").With("y", 2).Error("m", "k", 3)
		}, "<3>msg=m x=1 g.y=2 g.k=3\n"},
		{"empty group is none", func(l *slog.Logger) { l.WithGroup("").Info("m", "k", 1) }, "<6>msg=m k=1\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			tc.log(slog.New(&journalHandler{w: &b, mu: &sync.Mutex{}}))
			if b.String() != tc.want {
				t.Errorf("got %q, want %q", b.String(), tc.want)
			}
		})
	}
	// Siblings derived from one logger do not share their calls.
	var b bytes.Buffer
	base := slog.New(&journalHandler{w: &b, mu: &sync.Mutex{}}).With("x", 1)
	one, two := base.WithGroup("one"), base.WithGroup("two")
	one.Info("m", "k", 1)
	two.Info("m", "k", 2)
	if want := "<6>msg=m x=1 one.k=1\n<6>msg=m x=1 two.k=2\n"; b.String() != want {
		t.Errorf("siblings: got %q, want %q", b.String(), want)
	}
}
