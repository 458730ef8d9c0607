package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"appliance/certs"
)

// TestClientCAChain: a client_ca site admits a client certificate sent
// with one, two or three intermediate CAs (the bundle holds the root only),
// refuses one sent with four (more than certs.MaxClientChain in all):
// the server sends a bad-certificate alert, which the client reads
// unless the server's close reset the connection first; and a client without any valid
// certificate that sends a hundred bogus P-521 intermediates named as
// the root no longer makes its handshakes cost 0.4 s of CPU each: 20 of
// them must cost the server less than a second (before the bound: 5.5
// s here), as must 20 with 3 bogus intermediates, which are within the
// bound and verified. Through the built binary, HTTP/1.1 with fast_http1 on and off,
// and HTTP/2.
func TestClientCAChain(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "m/index.html", "m")
	root, rootKey := newCA(t, "members root")
	caFile := writeFile(t, dir, "root.pem", pemOf(root))
	// withChain is a leaf issued by the last of n intermediates below
	// root, sent with them all.
	withChain := func(n int) tls.Certificate {
		parent, key := root, rootKey
		var sent [][]byte
		for i := range n {
			parent, key = intermediate(t, parent, key, fmt.Sprintf("members intermediate %d", i+1))
			sent = append([][]byte{parent.Raw}, sent...)
		}
		leaf := issue(t, parent, key, x509.ExtKeyUsageClientAuth, "alice")
		leaf.Certificate = append(leaf.Certificate, sent...)
		return leaf
	}
	one, two, three, four := withChain(1), withChain(2), withChain(3), withChain(4)
	bogus := bogusChain(t, root, 99)

	for _, fast := range []bool{true, false} {
		cfg := writeFile(t, t.TempDir(), "appliance.toml", fmt.Sprintf(`[server]
https = "127.0.0.1:0"
fast_http1 = %v
state_dir = %q
[[site]]
hosts = ["m.test"]
root = %q
tls = "local"
client_ca = %q
`, fast, filepath.Join(dir, "state"), filepath.Join(dir, "m"), caFile))
		p := start(t, "-config", cfg)
		addr := p.httpsAddr(t)
		for _, h2 := range []bool{false, true} {
			for _, tc := range []struct {
				what string
				cert tls.Certificate
				want string
			}{
				{"one intermediate", one, "200 m"},
				{"two intermediates", two, "200 m"},
				{"three intermediates, the most", three, "200 m"},
				{"four intermediates", four, "refused"},
				{"99 bogus intermediates", bogus, "refused"},
			} {
				got, err := outcome(sniClient(addr, "m.test", h2, tc.cert), "m.test", h2)
				if got != tc.want {
					t.Errorf("fast_http1=%v h2=%v, %s: %s (%v), want %s", fast, h2, tc.what, got, err, tc.want)
				}
			}
		}
		// 99 bogus intermediates are refused unverified; 3 are within
		// the bound, verified, and cost a few signature checks each.
		for _, n := range []int{99, 3} {
			c := sniClient(addr, "m.test", false, bogus)
			if n != 99 {
				c = sniClient(addr, "m.test", false, bogusChain(t, root, n))
			}
			before := cpuTime(t, p.cmd.Process.Pid)
			for range 20 {
				if got, err := outcome(c, "m.test", false); got != "refused" {
					t.Fatalf("fast_http1=%v, %d bogus intermediates: %s (%v), want refused", fast, n, got, err)
				}
			}
			used := cpuTime(t, p.cmd.Process.Pid) - before
			t.Logf("fast_http1=%v: 20 handshakes with %d bogus intermediates cost the server %v of CPU", fast, n, used)
			if used > time.Second {
				t.Errorf("fast_http1=%v: 20 handshakes with %d bogus intermediates cost the server %v of CPU, want under 1s", fast, n, used)
			}
		}
	}
	if certs.MaxClientChain != 4 {
		t.Errorf("MaxClientChain %d: the README says 4", certs.MaxClientChain)
	}
}

// cpuTime is the CPU time (user and system, all threads) the process pid
// has used, from /proc/PID/stat, in clock ticks of 10 ms (USER_HZ).
func cpuTime(t *testing.T, pid int) time.Duration {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	// The fields after the command, which is in parentheses: state is
	// field 3, utime 14 and stime 15.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		t.Fatalf("/proc/%d/stat: %q", pid, b)
	}
	return time.Duration(utime+stime) * 10 * time.Millisecond
}
