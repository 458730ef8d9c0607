package main

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestAccessLogAndRotation(t *testing.T) {
	dir := t.TempDir()
	logPath := filepath.Join(dir, "access.log")
	p := start(t, "-config", siteConfig(t, fmt.Sprintf("access_log = %q\n", logPath)))
	get := func(path string) {
		res, err := http.Get("http://" + p.addr + path)
		if err != nil {
			t.Fatal(err)
		}
		readBody(res)
	}
	get("/before")
	os.Rename(logPath, logPath+".1")
	p.cmd.Process.Signal(syscall.SIGUSR1)
	p.waitLog(t, "access log reopened")
	get("/after")
	p.cmd.Process.Signal(syscall.SIGTERM) // flushes
	if err := p.cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	old, _ := os.ReadFile(logPath + ".1")
	cur, _ := os.ReadFile(logPath)
	if !strings.Contains(string(old), `"GET /before HTTP/1.1" 404 `) || !strings.Contains(string(cur), `"GET /after HTTP/1.1" 404 `) ||
		strings.Contains(string(old), "/after") {
		t.Fatalf("rotated %q\ncurrent %q", old, cur)
	}
	// The combined line ends with the site that answered, the catch-all.
	if !strings.HasSuffix(string(cur), `"Go-http-client/1.1" "*"`+"\n") {
		t.Errorf("the line does not end with the site: %q", cur)
	}
}

// TestReloadUnderLoad swaps configurations, good and bad, while a client
// keeps requesting: not one request may fail, and the answers follow the
// good configurations only.
func TestReloadUnderLoad(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "one/index.html", "one")
	writeFile(t, dir, "two/index.html", "two")
	cfgPath := filepath.Join(dir, "appliance.toml")
	conf := func(root string) {
		os.WriteFile(cfgPath, []byte(fmt.Sprintf("[server]\nhttp = \"127.0.0.1:0\"\n[[site]]\nroot = %q\n", root)), 0o644)
	}
	conf(filepath.Join(dir, "one"))
	p := start(t, "-config", cfgPath)

	stop, _ := loadLoop(http.DefaultClient, "http://"+p.addr+"/")
	reload := func(want string) {
		p.cmd.Process.Signal(syscall.SIGHUP)
		p.waitLog(t, want)
	}
	conf(filepath.Join(dir, "two"))
	reload("msg=reloaded")
	os.WriteFile(cfgPath, []byte("[server]\nhttp = \"127.0.0.1:0\"\n[[site]]\nroot = \"/nonexistent\"\n"), 0o644)
	reload("reload refused")
	conf(filepath.Join(dir, "one"))
	reload("msg=reloaded")
	ok, failed, seen := stop()
	if failed != 0 {
		t.Fatalf("%d of %d requests failed across reloads", failed, ok+failed)
	}
	if !seen["two"] {
		t.Error("the reloaded site was never served")
	}
	res, _ := http.Get("http://" + p.addr + "/")
	if b := readBody(res); b != "one" {
		t.Fatalf("after the last reload: %q", b)
	}
}

// TestStopFinishesDownloads: SIGTERM while a large download is under way;
// the download completes, then the process exits 0.
func TestStopFinishesDownloads(t *testing.T) {
	dir := t.TempDir()
	big := make([]byte, 32<<20)
	rand.Read(big)
	writeFile(t, dir, "root/big.bin", string(big))
	cfg := writeFile(t, dir, "appliance.toml", fmt.Sprintf("[server]\nhttp = \"127.0.0.1:0\"\n[[site]]\nroot = %q\n", filepath.Join(dir, "root")))
	p := start(t, "-config", cfg)
	res, err := http.Get("http://" + p.addr + "/big.bin")
	if err != nil {
		t.Fatal(err)
	}
	first := make([]byte, 1<<20)
	if _, err := io.ReadFull(res.Body, first); err != nil {
		t.Fatal(err)
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	p.waitLog(t, "shutting down")
	rest, err := io.ReadAll(res.Body)
	if err != nil || !bytes.Equal(append(first, rest...), big) {
		t.Fatalf("download cut short: %d of %d bytes, %v", len(first)+len(rest), len(big), err)
	}
	if err := p.cmd.Wait(); err != nil {
		t.Fatalf("exit: %v", err)
	}
}

func TestAdminListener(t *testing.T) {
	cfg := siteConfig(t, "")
	b, _ := os.ReadFile(cfg)
	os.WriteFile(cfg, append(b, "[admin]\nlisten = \"127.0.0.1:0\"\npprof = true\n"...), 0o644)
	p := start(t, "-config", cfg)
	admin := strings.TrimPrefix(regexpAdmin.FindStringSubmatch(p.waitLogSeen(t, "admin listener"))[1], "http://")
	for range 3 {
		res, err := http.Get("http://" + p.addr + "/")
		if err != nil {
			t.Fatal(err)
		}
		readBody(res)
	}
	http.Get("http://" + p.addr + "/missing")
	res, err := http.Get("http://" + admin + "/healthz")
	if err != nil || res.StatusCode != 200 || readBody(res) != "ok\n" {
		t.Fatalf("healthz: %v", err)
	}
	res, _ = http.Get("http://" + admin + "/metrics")
	m := readBody(res)
	// The health probe is a real request through the pipeline: it counts.
	for _, want := range []string{
		`appliance_requests_total{site="*",code="200"} 4`,
		`appliance_requests_total{site="*",code="404"} 1`,
		`appliance_request_duration_seconds_count{site="*"} 5`,
		"# TYPE appliance_request_duration_seconds histogram",
		"appliance_connections_open ",
		"appliance_cache_hits_total ",
		"appliance_compress_stream_bytes 0\n",
		"# TYPE appliance_compress_stream_refused_total counter\n",
	} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %q:\n%s", want, m)
		}
	}
	if res, _ := http.Get("http://" + p.addr + "/metrics"); res.StatusCode != 404 {
		t.Error("metrics leak onto the public listener")
	}
	// The server's recent log: what went to standard error, with times.
	res, _ = http.Get("http://" + admin + "/log")
	if l := readBody(res); res.Header.Get("Content-Type") != "text/plain; charset=utf-8" || !strings.Contains(l, "msg=serving") || !strings.Contains(l, "msg=\"admin listener\"") {
		t.Errorf("log: %s %q", res.Header.Get("Content-Type"), l)
	}
	if res, _ := http.Get("http://" + p.addr + "/log"); res.StatusCode != 404 {
		t.Error("the log leaks onto the public listener")
	}
	// Profiles, in pprof's gzipped protocol buffer format.
	for _, path := range []string{"/debug/pprof/profile?seconds=1", "/debug/pprof/allocs", "/debug/pprof/goroutine"} {
		res, err := http.Get("http://" + admin + path)
		if err != nil {
			t.Fatal(err)
		}
		if b := readBody(res); res.StatusCode != 200 || !strings.HasPrefix(b, "\x1f\x8b") {
			t.Errorf("%s: %d, %d bytes", path, res.StatusCode, len(b))
		}
	}
	if res, _ := http.Get("http://" + admin + "/debug/pprof/nothing"); res.StatusCode != 404 {
		t.Errorf("unknown profile: %d", res.StatusCode)
	}
}

var regexpAdmin = regexp.MustCompile(`addr=(\S+)`)

// waitLogSeen finds a line already read or still to come.
func (p *proc) waitLogSeen(t *testing.T, s string) string {
	for _, line := range strings.Split(p.log.String(), "\n") {
		if strings.Contains(line, s) {
			return line
		}
	}
	return p.waitLog(t, s)
}

func TestReloadCommand(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "one/index.html", "one")
	writeFile(t, dir, "two/index.html", "two")
	pidFile := filepath.Join(dir, "appliance.pid")
	cfgPath := filepath.Join(dir, "appliance.toml")
	conf := func(root string) {
		os.WriteFile(cfgPath, []byte(fmt.Sprintf("[server]\nhttp = \"127.0.0.1:0\"\npid_file = %q\n[[site]]\nroot = %q\n", pidFile, root)), 0o644)
	}
	conf(filepath.Join(dir, "one"))
	p := start(t, "-config", cfgPath)
	conf(filepath.Join(dir, "two"))
	if out, err := exec.Command(binary, "reload", "-config", cfgPath).CombinedOutput(); err != nil {
		t.Fatalf("reload: %v %s", err, out)
	}
	p.waitLog(t, "msg=reloaded")
	res, _ := http.Get("http://" + p.addr + "/")
	if b := readBody(res); b != "two" {
		t.Fatalf("after appliance reload: %q", b)
	}
	// A broken configuration is refused by the command itself, with its
	// line, and the server is not disturbed.
	os.WriteFile(cfgPath, []byte(fmt.Sprintf("[server]\nhttp = \"127.0.0.1:0\"\npid_file = %q\n[[site]]\nroot = \"/nope\"\n", pidFile)), 0o644)
	out, err := exec.Command(binary, "reload", "-config", cfgPath).CombinedOutput()
	if err == nil || !strings.Contains(string(out), cfgPath+":5:") {
		t.Fatalf("broken config: %v %s", err, out)
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	p.cmd.Wait()
	if _, err := os.Stat(pidFile); !os.IsNotExist(err) {
		t.Error("pid file left behind")
	}
}

// TestReloadPID: -pid names the server without a pid_file, as the
// systemd unit's ExecReload does with $MAINPID.
func TestReloadPID(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "one/index.html", "one")
	writeFile(t, dir, "two/index.html", "two")
	cfgPath := writeFile(t, dir, "appliance.toml", fmt.Sprintf("[server]\nhttp = \"127.0.0.1:0\"\n[[site]]\nroot = %q\n", filepath.Join(dir, "one")))
	p := start(t, "-config", cfgPath)
	writeFile(t, dir, "appliance.toml", fmt.Sprintf("[server]\nhttp = \"127.0.0.1:0\"\n[[site]]\nroot = %q\n", filepath.Join(dir, "two")))
	if out, err := exec.Command(binary, "reload", "-config", cfgPath, "-pid", strconv.Itoa(p.cmd.Process.Pid)).CombinedOutput(); err != nil {
		t.Fatalf("reload -pid: %v %s", err, out)
	}
	p.waitLog(t, "msg=reloaded")
	res, err := http.Get("http://" + p.addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	if b := readBody(res); b != "two" {
		t.Fatalf("after appliance reload -pid: %q", b)
	}
}

// TestReloadMovesListener: a new server.http is bound on reload, the old
// address stops accepting, and the admin listener survives the reload.
func TestReloadMovesListener(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "root/index.html", "moved")
	cfgPath := filepath.Join(dir, "appliance.toml")
	conf := func(addr string) {
		os.WriteFile(cfgPath, []byte(fmt.Sprintf("[server]\nhttp = %q\n[admin]\nlisten = \"127.0.0.1:0\"\n[[site]]\nroot = %q\n", addr, filepath.Join(dir, "root"))), 0o644)
	}
	conf("127.0.0.1:0")
	p := start(t, "-config", cfgPath)
	admin := strings.TrimPrefix(regexpAdmin.FindStringSubmatch(p.waitLogSeen(t, "admin listener"))[1], "http://")
	// A free port for the new address.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	next := ln.Addr().String()
	ln.Close()
	conf(next)
	p.cmd.Process.Signal(syscall.SIGHUP)
	p.waitLog(t, "listener moved")
	p.waitLog(t, "msg=reloaded")
	res, err := http.Get("http://" + next + "/")
	if err != nil || readBody(res) != "moved" {
		t.Fatalf("new address: %v", err)
	}
	if _, err := http.Get("http://" + p.addr + "/"); err == nil {
		t.Error("the old address still accepts")
	}
	if res, err := http.Get("http://" + admin + "/healthz"); err != nil || res.StatusCode != 200 {
		t.Fatalf("healthz after the move: %v", err)
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	if err := p.cmd.Wait(); err != nil {
		t.Fatalf("exit: %v\n%s", err, p.log.String())
	}
}

// TestIdleMemory guards the small-board budget: a started server with a
// site holds little memory. (A package-level argon2id hash once made it
// 29 MiB in every process.)
func TestIdleMemory(t *testing.T) {
	p := start(t, "-config", siteConfig(t, ""))
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		t.Skip("no /proc")
	}
	var kb int
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			fmt.Sscanf(strings.TrimPrefix(line, "VmRSS:"), "%d", &kb)
		}
	}
	t.Logf("idle RSS %d KiB", kb)
	if kb == 0 || kb > 16<<10 {
		t.Fatalf("idle RSS %d KiB, want under 16 MiB (the goal is 12)", kb)
	}
}

// TestHealthHTTPSOnly: without a plain-HTTP listener, /healthz (and the
// watchdog) probe the HTTPS one.
func TestHealthHTTPSOnly(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "root/index.html", "secure")
	cfg := writeFile(t, dir, "appliance.toml", fmt.Sprintf("[server]\nhttps = \"127.0.0.1:0\"\nstate_dir = %q\n[admin]\nlisten = \"127.0.0.1:0\"\n[[site]]\nhosts = [\"pi.lan\"]\nroot = %q\n",
		filepath.Join(dir, "state"), filepath.Join(dir, "root")))
	p := start(t, "-config", cfg)
	admin := strings.TrimPrefix(regexpAdmin.FindStringSubmatch(p.waitLogSeen(t, "admin listener"))[1], "http://")
	res, err := http.Get("http://" + admin + "/healthz")
	if err != nil || res.StatusCode != 200 || readBody(res) != "ok\n" {
		t.Fatalf("healthz over HTTPS: %v %d %s", err, res.StatusCode, readBody(res))
	}
	// A stopped listener fails the probe.
	addr, _ := net.ResolveTCPAddr("tcp", p.httpsAddr(t))
	if err := probe(addr, true, time.Second); err != nil {
		t.Fatalf("probe: %v", err)
	}
	p.cmd.Process.Signal(os.Interrupt)
	p.cmd.Wait()
	if err := probe(addr, true, time.Second); err == nil {
		t.Error("probe of a stopped server succeeded")
	}
}

// httpsAddr is the address of the server's HTTPS listener, from its
// "serving" line.
func (p *proc) httpsAddr(t *testing.T) string {
	t.Helper()
	m := httpsRe.FindStringSubmatch(p.waitLogSeen(t, "msg=serving"))
	if m == nil {
		t.Fatalf("no https address in the log:\n%s", p.log.String())
	}
	return m[1]
}
