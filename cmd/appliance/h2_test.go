package main

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"os"
	"strings"
	"testing"
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
	results := map[bool][]exchange{}
	etags := map[bool]string{}
	for _, fastH2 := range []bool{false, true} {
		dir := t.TempDir()
		cfg := attackSites(t, dir, true, hash)
		for _, root := range []string{"a", "b"} {
			writeFile(t, dir, root+"/public/big.txt", big)
		}
		b, _ := os.ReadFile(cfg)
		os.WriteFile(cfg, bytes.Replace(b, []byte("fast_http1 = true\n"), fmt.Appendf(nil, "fast_http1 = true\nfast_http2 = %v\n", fastH2), 1), 0o644)
		p := start(t, "-config", cfg)
		m := httpsRe.FindStringSubmatch(p.log.String())
		if m == nil {
			t.Fatalf("no https address in the log:\n%s", p.log.String())
		}
		for _, host := range []string{"a.test", "b.test"} {
			c := &h2client{dial: tlsDialer(m[1], host, "h2")}
			defer c.Close()
			for _, r := range reqs {
				if r.host != host {
					continue
				}
				ex, err := c.do(r.host, r.target, r.header)
				if err != nil {
					t.Fatalf("fast_http2=%v %s %s: %v", fastH2, r.host, r.target, err)
				}
				if r.header["Authorization"] == "" {
					checkExchange(t, fmt.Sprintf("fast_http2=%v %s %q", fastH2, r.host, r.target), ex)
				}
				results[fastH2] = append(results[fastH2], ex)
				if r.target == "/public/big.txt" && r.header == nil {
					etags[fastH2] = ex.header.Get("Etag")
				}
			}
			// A reload: 304 for the ETag just served.
			ex, err := c.do(host, "/public/big.txt", map[string]string{"If-None-Match": etags[fastH2]})
			if err != nil || ex.status != 304 || len(ex.body) != 0 {
				t.Errorf("fast_http2=%v %s conditional reload: %v %d %d bytes", fastH2, host, err, ex.status, len(ex.body))
			}
			// Without SNI the handshake is no site's: 421.
			nosni := &h2client{dial: tlsDialer(m[1], "", "h2")}
			defer nosni.Close()
			if ex, err := nosni.do(host, "/", nil); err != nil || ex.status != 421 {
				t.Errorf("fast_http2=%v %s without SNI: %v %d, want 421", fastH2, host, err, ex.status)
			}
		}
	}
	want, got := results[false], results[true]
	if len(want) != len(got) || len(want) != len(reqs) {
		t.Fatalf("%d and %d answers for %d requests", len(want), len(got), len(reqs))
	}
	// Not Last-Modified or ETag: each run writes its own files.
	headers := []string{"content-type", "content-length", "content-encoding", "content-range", "location", "www-authenticate",
		"x-public", "access-control-allow-origin", "cache-control", "vary", "strict-transport-security", "accept-ranges"}
	diffs := 0
	for i, r := range reqs {
		w, g := want[i], got[i]
		what := fmt.Sprintf("%s %q %v", r.host, r.target, r.header)
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
	t.Logf("%d requests, same answers from both HTTP/2 servers", len(reqs))
}
