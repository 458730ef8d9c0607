package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/http2"
)

// TestFastHTTP2Differential sends the same HTTP/2 requests to the
// appliance with fast_http2 on (package h2) and off (net/http's HTTP/2)
// and compares status, the headers that matter and bodies: rules, auth,
// 421 without SNI, compression, 304 and the attack targets behave the
// same on both.
func TestFastHTTP2Differential(t *testing.T) {
	hash := rewriteHash(t, "letmein")
	creds := "Basic " + base64.StdEncoding.EncodeToString([]byte("alice:letmein"))
	big := strings.Repeat("compressible text for the HTTP/2 differential test\n", 2000)
	type request struct {
		host, target string
		header       map[string]string
	}
	var reqs []request
	for _, host := range []string{"a.test", "b.test"} {
		for _, target := range []string{"/", "/public/x.txt", "/public/", "/public/sub", "/public/sub/", "/private/SECRET-AUTH.txt",
			"/admin/SECRET-ADMIN.txt", "/old/x.txt", "/alias/SECRET-AUTH.txt", "/nothing-here", "/public/big.txt", "/%2e%2e/etc/passwd", "/index.html"} {
			reqs = append(reqs, request{host, target, nil})
		}
		reqs = append(reqs,
			request{host, "/private/SECRET-AUTH.txt", map[string]string{"Authorization": creds}},
			request{host, "/public/big.txt", map[string]string{"Accept-Encoding": "gzip"}},
			request{host, "/public/big.txt", map[string]string{"Accept-Encoding": "br"}},
			request{host, "/public/big.txt", map[string]string{"Range": "bytes=10-99"}},
			request{host, "/public/x.txt", map[string]string{"Origin": "https://elsewhere.test"}},
		)
		if !testing.Short() {
			for _, target := range attackTargets()[:300] {
				reqs = append(reqs, request{host, target, nil})
			}
		}
	}
	// Three servers: net/http's HTTP/2 (the reference), package h2
	// behind the fast HTTP/1.1 transport, and package h2 with every
	// HTTP/1.1 connection left to net/http.
	type variant struct{ fastH1, fastH2 bool }
	variants := []variant{{true, false}, {true, true}, {false, true}}
	results := map[variant][]exchange{}
	etags := map[variant]string{}
	for _, v := range variants {
		fastH2 := v.fastH2
		dir := t.TempDir()
		cfg := attackSites(t, dir, v.fastH1, hash)
		for _, root := range []string{"a", "b"} {
			writeFile(t, dir, root+"/public/big.txt", big)
		}
		// One modification time for every file of every run: listings
		// show them, and the runs may write theirs in different seconds.
		filepath.WalkDir(dir, func(path string, _ fs.DirEntry, err error) error {
			if err == nil {
				os.Chtimes(path, time.Time{}, time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
			}
			return err
		})
		b, _ := os.ReadFile(cfg)
		os.WriteFile(cfg, bytes.Replace(b, []byte("[server]\n"), fmt.Appendf(nil, "[server]\nfast_http2 = %v\n", fastH2), 1), 0o644)
		p := start(t, "-config", cfg)
		httpsAddr := p.httpsAddr(t)
		for _, host := range []string{"a.test", "b.test"} {
			c := &h2client{dial: tlsDialer(httpsAddr, host, "h2")}
			defer c.Close()
			for _, r := range reqs {
				if r.host != host {
					continue
				}
				ex, err := c.do(r.host, r.target, r.header)
				if err != nil {
					t.Fatalf("%+v %s %s: %v", v, r.host, r.target, err)
				}
				if r.header["Authorization"] == "" {
					checkExchange(t, fmt.Sprintf("%+v %s %q", v, r.host, r.target), ex)
				}
				results[v] = append(results[v], ex)
				if r.target == "/public/big.txt" && r.header == nil {
					etags[v] = ex.header.Get("Etag")
				}
			}
			// A reload: 304 for the ETag just served.
			ex, err := c.do(host, "/public/big.txt", map[string]string{"If-None-Match": etags[v]})
			if err != nil || ex.status != 304 || len(ex.body) != 0 {
				t.Errorf("%+v %s conditional reload: %v %d %d bytes", v, host, err, ex.status, len(ex.body))
			}
			// Without SNI the handshake is no site's: 421.
			nosni := &h2client{dial: tlsDialer(httpsAddr, "", "h2")}
			defer nosni.Close()
			if ex, err := nosni.do(host, "/", nil); err != nil || ex.status != 421 {
				t.Errorf("%+v %s without SNI: %v %d, want 421", v, host, err, ex.status)
			}
		}
	}
	want := results[variants[0]]
	for _, v := range variants[1:] {
		got := results[v]
		if len(want) != len(got) || len(want) != len(reqs) {
			t.Fatalf("%+v: %d and %d answers for %d requests", v, len(want), len(got), len(reqs))
		}
		// Not Last-Modified or ETag: each run writes its own files.
		headers := []string{"content-type", "content-length", "content-encoding", "content-range", "location", "www-authenticate",
			"x-public", "access-control-allow-origin", "cache-control", "vary", "strict-transport-security", "accept-ranges"}
		diffs := 0
		for i, r := range reqs {
			w, g := want[i], got[i]
			what := fmt.Sprintf("%+v %s %q %v", v, r.host, r.target, r.header)
			if w.status != g.status || !bytes.Equal(w.body, g.body) {
				t.Errorf("%s: net/http %d (%d bytes), h2 %d (%d bytes)", what, w.status, len(w.body), g.status, len(g.body))
				diffs++
			}
			for _, h := range headers {
				if wv, gv := w.header.Values(h), g.header.Values(h); strings.Join(wv, ",") != strings.Join(gv, ",") {
					t.Errorf("%s: %s: net/http %q, h2 %q", what, h, wv, gv)
					diffs++
				}
			}
			if diffs > 20 {
				t.Fatal("too many differences")
			}
		}
	}
	t.Logf("%d requests, same answers from net/http's HTTP/2 and package h2", len(reqs))
}

// TestFastHTTP2StopFinishesDownloads: SIGTERM while an HTTP/2 download
// is under way on package h2: GOAWAY, the download completes, then the
// process exits 0.
func TestFastHTTP2StopFinishesDownloads(t *testing.T) {
	dir := t.TempDir()
	big := make([]byte, 16<<20)
	rand.Read(big)
	writeFile(t, dir, "root/big.bin", string(big))
	cfg := writeFile(t, dir, "appliance.toml", fmt.Sprintf(`[server]
https = "127.0.0.1:0"
fast_http2 = true
state_dir = %q
[[site]]
hosts = ["a.test"]
root = %q
tls = "local"
`, filepath.Join(dir, "state"), filepath.Join(dir, "root")))
	p := start(t, "-config", cfg)
	httpsAddr := p.httpsAddr(t)
	tr := &http2.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true, ServerName: "a.test"},
		DialTLSContext: func(ctx context.Context, network, _ string, cfg *tls.Config) (net.Conn, error) {
			return tls.Dial(network, httpsAddr, cfg)
		}}
	defer tr.CloseIdleConnections()
	res, err := (&http.Client{Transport: tr}).Get("https://a.test/big.bin")
	if err != nil {
		t.Fatal(err)
	}
	if res.ProtoMajor != 2 {
		t.Fatalf("%s, want HTTP/2", res.Proto)
	}
	first := make([]byte, 1<<20)
	if _, err := io.ReadFull(res.Body, first); err != nil {
		t.Fatal(err)
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	p.waitLog(t, "shutting down")
	rest, err := io.ReadAll(res.Body)
	if err != nil || !bytes.Equal(append(first, rest...), big) {
		p.cmd.Wait()
		for l := range p.lines {
			p.log.WriteString(l + "\n")
		}
		t.Fatalf("download cut short: %d of %d bytes, %v\n%s", len(first)+len(rest), len(big), err, p.log.String())
	}
	if err := p.cmd.Wait(); err != nil {
		t.Fatalf("exit: %v", err)
	}
}
