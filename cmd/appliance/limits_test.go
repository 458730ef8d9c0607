package main

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// keepAlive opens a connection and completes one request on it, so the
// server surely holds it.
func keepAlive(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	return hold(t, c)
}

// hold completes one request on c, so the server surely holds it.
func hold(t *testing.T, c net.Conn) net.Conn {
	t.Helper()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("held connection: %v", err)
	}
	io.Copy(io.Discard, res.Body)
	return c
}

// refused reports whether the server closes a new connection unanswered.
func refused(t *testing.T, addr string) bool {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return true
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	_, err = http.ReadResponse(bufio.NewReader(c), nil)
	return err != nil
}

func TestConnectionLimits(t *testing.T) {
	for _, fast := range []string{"true", "false"} {
		t.Run("fast_http1="+fast, func(t *testing.T) {
			p := start(t, "-config", siteConfig(t, "max_connections = 3\nfast_http1 = "+fast+"\n"))
			var held []net.Conn
			for range 3 {
				held = append(held, keepAlive(t, p.addr))
			}
			if !refused(t, p.addr) {
				t.Fatal("a fourth connection was served with max_connections = 3")
			}
			held[0].Close()
			// The place comes back once the server sees the close.
			for i := 0; refused(t, p.addr); i++ {
				if i == 200 {
					t.Fatal("a closed connection's place never came back")
				}
			}
			for _, c := range held[1:] {
				c.Close()
			}
		})
	}
	p := start(t, "-config", siteConfig(t, "max_connections_per_ip = 2\n"))
	a, b := keepAlive(t, p.addr), keepAlive(t, p.addr)
	defer a.Close()
	defer b.Close()
	if !refused(t, p.addr) {
		t.Fatal("a third connection from one address was served with max_connections_per_ip = 2")
	}
}

// TestSlowloris holds a thousand connections that never finish their
// request head; a normal client is still served at once.
func TestSlowloris(t *testing.T) {
	p := start(t, "-config", siteConfig(t, ""))
	var slow []net.Conn
	defer func() {
		for _, c := range slow {
			c.Close()
		}
	}()
	for range 1000 {
		c, err := net.Dial("tcp", p.addr)
		if err != nil {
			t.Fatalf("after %d slow connections: %v", len(slow), err)
		}
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\nX-Slow: ")
		slow = append(slow, c)
	}
	client := &http.Client{Timeout: 5 * time.Second}
	for range 20 {
		res, err := client.Get("http://" + p.addr + "/")
		if err != nil {
			t.Fatalf("normal client under slowloris: %v", err)
		}
		if b := readBody(res); res.StatusCode != 200 || !strings.Contains(b, "hello") {
			t.Fatalf("%d %q", res.StatusCode, b)
		}
	}
}

// TestSlowhttptest runs Debian's slowhttptest in slowloris mode with a
// thousand connections while a normal client keeps asking: every one of
// its requests must succeed.
func TestSlowhttptest(t *testing.T) {
	if testing.Short() {
		t.Skip("runs slowhttptest for 8 seconds: not with -short")
	}
	tool, err := exec.LookPath("slowhttptest")
	if err != nil {
		t.Skip("slowhttptest not installed (apt-get install slowhttptest); .ci/run installs it")
	}
	p := start(t, "-config", siteConfig(t, ""))
	cmd := exec.Command(tool, "-H", "-c", "1000", "-r", "500", "-i", "2", "-l", "8", "-p", "3", "-u", "http://"+p.addr+"/")
	out := &strings.Builder{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	client := &http.Client{Timeout: 3 * time.Second}
	var ok, failed int
	for running := true; running; {
		select {
		case <-done:
			running = false
		default:
			res, err := client.Get("http://" + p.addr + "/")
			if err != nil || res.StatusCode != 200 {
				failed++
				continue
			}
			readBody(res)
			ok++
		}
	}
	if failed > 0 || ok == 0 {
		t.Fatalf("normal client under slowloris: %d ok, %d failed\n%s", ok, failed, out.String())
	}
	if !strings.Contains(out.String(), "service available") {
		t.Fatalf("slowhttptest did not run its test:\n%s", out.String())
	}
}

// TestConnectionLimitsSpanListeners: max_connections is one limit for the
// process, not one per listener, and the metrics count HTTPS connections
// too.
func TestConnectionLimitsSpanListeners(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "site/index.html", "hi")
	admin := freeAddr(t)
	cfg := writeFile(t, dir, "a.toml", fmt.Sprintf(`[server]
http = "127.0.0.1:0"
https = "127.0.0.1:0"
state_dir = %q
max_connections = 3
[admin]
listen = %q
[[site]]
root = %q
tls = "local"
https_redirect = false
`, filepath.Join(dir, "state"), admin, filepath.Join(dir, "site")))
	p := start(t, "-config", cfg)
	httpsAddr := p.httpsAddr(t)
	tlsHeld := func() net.Conn {
		c, err := tls.Dial("tcp", httpsAddr, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
		if err != nil {
			t.Fatal(err)
		}
		return hold(t, c)
	}
	held := []net.Conn{keepAlive(t, p.addr), tlsHeld(), tlsHeld()}
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	if !refused(t, p.addr) {
		t.Error("a plain connection was served with 3 connections open and max_connections = 3")
	}
	if c, err := tls.Dial("tcp", httpsAddr, &tls.Config{InsecureSkipVerify: true}); err == nil {
		c.Close()
		t.Error("a TLS connection was served with 3 connections open and max_connections = 3")
	}
	res, err := http.Get("http://" + admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body := readBody(res)
	for _, want := range []string{"appliance_connections_open 3\n", "appliance_connections_rejected_total 2\n"} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}
