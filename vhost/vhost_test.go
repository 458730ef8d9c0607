package vhost

import (
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
)

type named string

func (n named) ServeHTTP(w http.ResponseWriter, r *http.Request) { io.WriteString(w, string(n)) }

func TestLookup(t *testing.T) {
	rt := New()
	for pattern, name := range map[string]string{
		"example.test": "example", "WWW.Example.Test": "www", "*.blog.test": "blog",
		"blog.test": "blog-apex", "127.0.0.1": "ip", "::1": "ip6",
	} {
		if err := rt.Add(pattern, named(name)); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct{ host, want string }{
		{"example.test", "example"},
		{"EXAMPLE.test", "example"},
		{"example.test:8080", "example"},
		{"example.test.", "example"},
		{"example.test.:443", "example"},
		{"www.example.test", "www"},
		{"a.blog.test", "blog"},
		{"A.Blog.Test:80", "blog"},
		{"a.b.blog.test", ""}, // one label only
		{"blog.test", "blog-apex"},
		{"127.0.0.1:8080", "ip"},
		{"[::1]:8080", "ip6"},
		{"[::1]", "ip6"},
		{"other.test", ""},
		{"", ""},
	}
	for _, tt := range tests {
		got := ""
		if h := rt.lookup(tt.host); h != nil {
			got = string(h.(named))
		}
		if got != tt.want {
			t.Errorf("lookup(%q) = %q, want %q", tt.host, got, tt.want)
		}
	}
	rt.Add("*", named("default"))
	if h := rt.lookup("other.test"); h == nil || string(h.(named)) != "default" {
		t.Error("catch-all not used")
	}
	if h := rt.lookup("a.b.blog.test"); string(h.(named)) != "default" {
		t.Error("catch-all not used for a deeper name")
	}
}

func TestAddRejects(t *testing.T) {
	rt := New()
	rt.Add("a.test", named("a"))
	rt.Add("*.a.test", named("a"))
	rt.Add("*", named("a"))
	for _, p := range []string{"A.TEST", "a.test.", "*.A.test", "*", "", "a.*.test", "**.a", "*.", "a b", "a.test:80", "a..test", ".a.test", "*.127.0.0.1"} {
		if err := rt.Add(p, named("x")); err == nil {
			t.Errorf("Add(%q) accepted", p)
		}
	}
}

// TestPatternSyntax: a host pattern is a DNS name, an IP literal, *.name
// or *; control characters, spaces, other punctuation and raw Unicode
// (which no Host header or SNI name carries: those are in punycode)
// are refused.
func TestPatternSyntax(t *testing.T) {
	good := map[string]string{
		"example.test": "example.test", "Example.TEST.": "example.test", "*.example.test": "*.example.test",
		"*": "*", "localhost": "localhost", "a-b.c_d.test": "a-b.c_d.test", "xn--bcher-kva.test": "xn--bcher-kva.test",
		"192.0.2.1": "192.0.2.1", "::1": "::1", "[2001:db8::1]": "2001:db8::1", "1a.test": "1a.test",
		strings.Repeat("a", 63) + ".test": strings.Repeat("a", 63) + ".test",
	}
	for in, want := range good {
		if got, err := NormalizePattern(in); err != nil || got != want {
			t.Errorf("NormalizePattern(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{
		"a\x00.test", "a\x01.test", "a\tb.test", "a\nb.test", "a\rb.test", "a\x7f.test", "a b.test", " a.test", "a.test ",
		"a\u00a0.test", "b\u00fccher.test", "a\u202e.test", "a\ufeff.test", "\xff.test",
		"a/b.test", "a\\b.test", "a@b.test", "a%2e.test", "a\"b.test", "a;b.test", "a,b.test", "a=b", "a!.test", "a(b).test",
		"-a.test", "a-.test", "*.-a.test", "a.test-", "*.*.test", "*a.test", "a*.test", "*.",
		strings.Repeat("a", 64) + ".test", strings.Repeat("abcdefgh.", 32) + "test",
		"[::1]x", "[::1", "::1]", "[a.test]", "fe80::1%eth0", "[fe80::1%25eth0]", "1.2.3", "256.0.0.1", "*.192.0.2.1", "*.::1",
		"a.test:80", "[::1]:443", "",
	} {
		if got, err := NormalizePattern(in); err == nil {
			t.Errorf("NormalizePattern(%q) = %q, accepted", in, got)
		} else if !strings.Contains(err.Error(), strconv.Quote(in)) {
			t.Errorf("NormalizePattern(%q): error %q does not quote the pattern", in, err)
		}
	}
}

func TestServeHTTP(t *testing.T) {
	rt := New()
	rt.Add("secret-site.test", named("secret"))
	srv := httptest.NewServer(rt)
	defer srv.Close()

	req, _ := http.NewRequest("GET", srv.URL+"/", nil)
	req.Host = "unknown.test"
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 404 || strings.Contains(string(b), "secret") {
		t.Fatalf("unknown host: %d %q", res.StatusCode, b)
	}

	req.Host = "Secret-Site.test:1234"
	res, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(res.Body)
	res.Body.Close()
	if string(b) != "secret" {
		t.Fatalf("known host: %q", b)
	}
}

// TestLookupIP: looking up a local address's IP finds what looking up
// its text did (the host of the TCP address's String, the handshake's
// name before LookupIP), over generated addresses: IPv4 in 4 and 16
// bytes, IPv6, nil and malformed; with and without a catch-all; and
// allocates nothing.
func TestLookupIP(t *testing.T) {
	ips := []net.IP{nil, {1, 2, 3}, net.ParseIP("192.0.2.1"), net.ParseIP("192.0.2.1").To4(), net.ParseIP("2001:db8::1"),
		net.ParseIP("::1"), net.ParseIP("::ffff:192.0.2.1"), net.ParseIP("::"), net.IPv4zero}
	// Patterns written otherwise than an address's text (upper case,
	// leading zeros, no "::", 4-in-6, brackets): the answers must agree too.
	odd := []string{"2001:0db8::2", "2001:DB8::3", "::FFFF:192.0.2.8", "0:0:0:0:0:0:0:5", "::ffff:192.0.2.7", "[2001:db8::6]"}
	for _, p := range odd {
		ips = append(ips, net.ParseIP(strings.Trim(p, "[]")))
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		ip := make(net.IP, []int{4, 16, 16}[rng.IntN(3)])
		for i := range ip {
			ip[i] = byte(rng.IntN(256))
			if rng.IntN(3) == 0 {
				ip[i] = 0 // runs of zeros: the "::" forms
			}
		}
		if rng.IntN(4) == 0 {
			ip = ip.To16() // IPv4 as net.ParseIP keeps it
		}
		ips = append(ips, ip)
	}
	tb := NewTable[string]()
	for _, p := range append([]string{"192.0.2.1", "2001:db8::1", "::1", "0.0.0.0", "a.test", "*.test"}, odd...) {
		if err := tb.Add(p, p); err != nil {
			t.Fatal(err)
		}
	}
	for _, ip := range ips[9+len(odd):] {
		if rng.IntN(10) == 0 && len(ip) > 0 {
			tb.Add(ip.String(), ip.String()) // some generated addresses are sites'
		}
	}
	check := func(catchAll bool) {
		for _, ip := range ips {
			host, _, err := net.SplitHostPort((&net.TCPAddr{IP: ip, Port: 443}).String())
			if err != nil {
				t.Fatalf("%v: %v", ip, err)
			}
			wantV, wantOK := tb.Lookup(host)
			gotV, gotOK := tb.LookupIP(ip)
			if gotV != wantV || gotOK != wantOK {
				t.Errorf("catch-all %v: LookupIP(%v) = %q %v, Lookup(%q) = %q %v", catchAll, []byte(ip), gotV, gotOK, host, wantV, wantOK)
			}
		}
	}
	check(false)
	tb.Add("*", "*")
	check(true)
	for _, ip := range ips[:9] { // nil, malformed, IPv4, IPv6, 4-in-6
		if n := testing.AllocsPerRun(100, func() { tb.LookupIP(ip) }); n != 0 {
			t.Errorf("LookupIP(%v): %v allocations, want 0", ip, n)
		}
	}
}
