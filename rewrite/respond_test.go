package rewrite

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// pages is a next handler that can send pages, as serve.Handler can.
type pages struct{ http.Handler }

func (pages) ServePage(w http.ResponseWriter, r *http.Request, page string, status int) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	fmt.Fprintf(w, "page %s", page)
}

func TestRespond(t *testing.T) {
	rules := Rules{
		Respond: []*Respond{
			must(NewRespond("/old/", 410, "", "", 0)),
			must(NewRespond("/banned.html", 451, "", "/451.html", 0)),
			must(NewRespond("/api/", 503, "back soon\n", "", 90*time.Second+time.Millisecond)),
			must(NewRespond("/robots.txt", 200, "User-agent: *\nDisallow: /\n", "", 0)),
		},
		Rewrites: []*Rewrite{must(NewRewrite(`^/alias/(.*)$`, "/old/$1", false, Cond{}))},
		Headers:  []*Headers{must(NewHeaders("/api/**", "", map[string]string{"X-Api": "down"}, nil))},
		Auth:     []*Auth{must(NewAuth("/old/private/", "r", map[string]string{"u": HashPassword("p")}))},
	}
	h := New(rules, exists, pages{echo})
	tests := []struct {
		name, method, target string
		status               int
		body, retry, header  string
	}{
		{"gone", "GET", "/old/x.html", 410, "410 Gone\n", "", ""},
		{"gone, the prefix without slash", "GET", "/old", 410, "410 Gone\n", "", ""},
		{"gone, in another case", "GET", "/OLD/X.html", 410, "410 Gone\n", "", ""},
		{"gone, by a rewrite", "GET", "/alias/x.html", 410, "410 Gone\n", "", ""},
		{"gone, any method", "POST", "/old/x", 410, "410 Gone\n", "", ""},
		{"auth first", "GET", "/old/private/x", 401, "401 Unauthorized\n", "", ""},
		{"legal, with a page", "GET", "/banned.html", 451, "page /451.html", "", ""},
		{"body and retry", "GET", "/api/v1", 503, "back soon\n", "91", ""},
		{"header rules apply", "GET", "/api/v1", 503, "back soon\n", "91", "down"},
		{"HEAD has no body", "HEAD", "/api/v1", 503, "", "91", ""},
		{"200 with a text", "GET", "/robots.txt", 200, "User-agent: *\nDisallow: /\n", "", ""},
		{"elsewhere, served", "GET", "/oldies.html", 200, "/oldies.html?", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(tt.method, tt.target, nil))
			res := rec.Result()
			if res.StatusCode != tt.status || text(res) != tt.body {
				t.Fatalf("%d %q, want %d %q", res.StatusCode, rec.Body.String(), tt.status, tt.body)
			}
			if got := res.Header.Get("Retry-After"); got != tt.retry {
				t.Errorf("Retry-After %q, want %q", got, tt.retry)
			}
			if tt.header != "" && res.Header.Get("X-Api") != tt.header {
				t.Errorf("X-Api %q", res.Header.Get("X-Api"))
			}
		})
	}
	// Without a page server the page's status still goes out, plain.
	h = New(rules, exists, echo)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/banned.html", nil))
	if rec.Code != 451 || rec.Body.String() != "451 Unavailable For Legal Reasons\n" {
		t.Errorf("no page server: %d %q", rec.Code, rec.Body.String())
	}
}

func TestRespondRefused(t *testing.T) {
	for _, tt := range []struct {
		name, path string
		status     int
		body, page string
		retry      time.Duration
		want       string
	}{
		{"a redirect status", "/x/", 301, "", "", 0, "3xx is a [[site.redirect]]"},
		{"informational", "/x/", 101, "", "", 0, "want 2xx, 4xx or 5xx"},
		{"out of range", "/x/", 600, "", "", 0, "want 2xx, 4xx or 5xx"},
		{"no content", "/x/", 204, "", "", 0, "no body of its own"},
		{"body and page", "/x/", 410, "b", "/p.html", 0, "not both"},
		{"page not a path", "/x/", 410, "", "p.html", 0, "file path starting with /"},
		{"page climbs", "/x/", 410, "", "/../p.html", 0, "file path starting with /"},
		{"retry on a 410", "/x/", 410, "", "", time.Second, "for status 429 and 503"},
		{"negative retry", "/x/", 503, "", "", -time.Second, "negative"},
		{"not canonical", "/a//b/", 410, "", "", 0, "canonical"},
		{"relative", "x/", 410, "", "", 0, "must start with /"},
	} {
		_, err := NewRespond(tt.path, tt.status, tt.body, tt.page, tt.retry)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want %q", tt.name, err, tt.want)
		}
	}
}

func TestParseRate(t *testing.T) {
	for _, tt := range []struct {
		in    string
		count float64
		per   time.Duration
		err   string
	}{
		{"10/s", 10, time.Second, ""},
		{" 600 / m ", 600, time.Minute, ""},
		{"1000/h", 1000, time.Hour, ""},
		{"20000/d", 20000, 24 * time.Hour, ""},
		{"5/10s", 5, 10 * time.Second, ""},
		{"0.5/s", 0.5, time.Second, ""},
		{"10", 0, 0, "want a count per unit"},
		{"10/fortnight", 0, 0, "want a count per unit"},
		{"x/s", 0, 0, "want a count per unit"},
		{"NaN/s", 0, 0, "want a count per unit"},
		{"Inf/s", 0, 0, "want a count per unit"},
		{"0/s", 0, 0, "more than zero"},
		{"-1/s", 0, 0, "more than zero"},
		{"1/0s", 0, 0, "more than zero"},
		{"2000000/s", 0, 0, "limits nothing"},
	} {
		count, per, err := parseRate(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%q: %v, want %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || count != tt.count || per != tt.per {
			t.Errorf("%q: %v %v %v", tt.in, count, per, err)
		}
	}
	for _, burst := range []int{-1, 2000000} {
		if _, err := NewRateLimit("/", "1/s", burst, 0); err == nil {
			t.Errorf("burst %d accepted", burst)
		}
	}
	if _, err := NewRateLimit("/a//", "1/s", 1, 0); err == nil {
		t.Error("a path not in canonical form accepted")
	}
}

// get sends one GET from addr and returns the recorder.
func getFrom(h http.Handler, target, addr string, header ...string) *httptest.ResponseRecorder {
	req := httptest.NewRequest("GET", target, nil)
	req.RemoteAddr = addr
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestRateLimit(t *testing.T) {
	rules := Rules{RateLimits: []*RateLimit{
		must(NewRateLimit("/api/", "1/h", 3, 0)),
		must(NewRateLimit("/", "2/h", 0, 0)),
	}}
	h := New(rules, exists, echo)
	for i := range 3 {
		if rec := getFrom(h, "/api/x", "192.0.2.1:1000"); rec.Code != 200 {
			t.Fatalf("request %d within the burst: %d", i+1, rec.Code)
		}
	}
	rec := getFrom(h, "/API/x", "192.0.2.1:1001")
	if rec.Code != 429 || rec.Header().Get("Retry-After") == "" || rec.Header().Get("Cache-Control") != "no-store" {
		t.Fatalf("past the burst: %d %v", rec.Code, rec.Header())
	}
	if ra := rec.Header().Get("Retry-After"); ra < "3500" || len(ra) != 4 { // a token per hour
		t.Errorf("Retry-After %q, want about 3600", ra)
	}
	// Another client, and the same client elsewhere (the site-wide rule,
	// whose burst is the rate's count, 2), have buckets of their own.
	if rec := getFrom(h, "/api/x", "192.0.2.2:1000"); rec.Code != 200 {
		t.Errorf("another client: %d", rec.Code)
	}
	for i, want := range []int{200, 200, 429} {
		if rec := getFrom(h, "/index.html", "192.0.2.1:1000"); rec.Code != want {
			t.Errorf("site-wide request %d: %d, want %d", i+1, rec.Code, want)
		}
	}
	// ACME's challenges are never limited.
	for range 5 {
		if rec := getFrom(h, "/.well-known/acme-challenge/tok", "192.0.2.1:1000"); rec.Code != 200 {
			t.Fatalf("ACME challenge limited: %d", rec.Code)
		}
	}
	// IPv6 clients count by /64: another address in it shares the bucket.
	for i, addr := range []string{"[2001:db8:1:2::1]:1", "[2001:db8:1:2::2]:1", "[2001:db8:1:2:ffff::3]:1"} {
		want := 200
		if i == 2 {
			want = 429
		}
		if rec := getFrom(h, "/x", addr); rec.Code != want {
			t.Errorf("%s: %d, want %d", addr, rec.Code, want)
		}
	}
	if rec := getFrom(h, "/x", "[2001:db8:1:3::1]:1"); rec.Code != 200 {
		t.Errorf("the next /64: %d", rec.Code)
	}
}

func TestRateLimitRefills(t *testing.T) {
	l := must(NewRateLimit("/", "1000/s", 1, 0))
	key := netip.MustParseAddr("192.0.2.1")
	if l.take(key) != 0 {
		t.Fatal("first request limited")
	}
	wait := l.take(key)
	if wait <= 0 || wait > time.Millisecond {
		t.Fatalf("wait %v, want up to 1ms", wait)
	}
	// Wait on the table's own clock, not the test's: a token comes back.
	for deadline := l.table.now() + int64(time.Second); l.take(key) != 0; {
		if l.table.now() > deadline {
			t.Fatal("no token came back within a second at 1000/s")
		}
	}
}

// TestClientTablesAreBounded floods a rate limit and the auth lockout
// from 20,000 addresses: each table stays at its bound, 1,000 entries.
func TestClientTablesAreBounded(t *testing.T) {
	const bound, clients = 1000, 20000
	hash, _ := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	rl := must(NewRateLimit("/", "1/h", 1, bound))
	rules := Rules{
		RateLimits: []*RateLimit{rl},
		Auth:       []*Auth{must(NewAuth("/private/", "r", map[string]string{"u": string(hash)}))},
		MaxClients: bound,
	}
	h := New(rules, exists, echo)
	e := h.(*engine)
	for i := range clients {
		ip := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		rl.take(ip)
		e.lockout.fail(ip)
	}
	if n := rl.table.len(); n != bound {
		t.Errorf("rate limit table: %d entries after %d clients, want %d", n, clients, bound)
	}
	if n := e.lockout.table.len(); n != bound {
		t.Errorf("lockout table: %d entries after %d clients, want %d", n, clients, bound)
	}
	// The latest clients are the ones remembered: the last is limited.
	if rec := getFrom(h, "/x", "10.0.78.31:1"); rec.Code != 429 { // client 19999
		t.Errorf("the latest client was forgotten: %d", rec.Code)
	}
}

func TestAuthLockout(t *testing.T) {
	hash, _ := bcrypt.GenerateFromPassword([]byte("right"), bcrypt.MinCost)
	rules := Rules{Auth: []*Auth{must(NewAuth("/private/", "r", map[string]string{"u": string(hash)}))}}
	h := New(rules, exists, echo)
	basic := func(pass string) string { return "Basic " + base64.StdEncoding.EncodeToString([]byte("u:"+pass)) }
	const addr = "192.0.2.7:1"
	// Requests without credentials (a browser's first) do not count.
	for range 2 * freeFailures {
		if rec := getFrom(h, "/private/x.html", addr); rec.Code != 401 {
			t.Fatalf("no credentials: %d", rec.Code)
		}
	}
	for i := range freeFailures + 1 {
		if rec := getFrom(h, "/private/x.html", addr, "Authorization", basic("wrong")); rec.Code != 401 {
			t.Fatalf("failure %d: %d", i+1, rec.Code)
		}
	}
	// Locked out: even the right password gets 429, unchecked.
	before := hashings.Load()
	rec := getFrom(h, "/private/x.html", addr, "Authorization", basic("right"))
	if rec.Code != 429 || rec.Header().Get("Retry-After") != "1" {
		t.Fatalf("locked out: %d Retry-After %q", rec.Code, rec.Header().Get("Retry-After"))
	}
	if hashings.Load() != before {
		t.Error("a locked-out client's password was hashed")
	}
	// Another address is not locked, and public paths stay open.
	if rec := getFrom(h, "/private/x.html", "192.0.2.8:1", "Authorization", basic("right")); rec.Code != 200 {
		t.Errorf("another client: %d", rec.Code)
	}
	if rec := getFrom(h, "/public.html", addr); rec.Code != 200 {
		t.Errorf("a public path: %d", rec.Code)
	}
	// The lock doubles with each failure past the free ones, up to 15
	// minutes; a success clears the record.
	l := h.(*engine).lockout
	key := netip.MustParseAddr("192.0.2.9")
	for range freeFailures + 30 {
		l.fail(key)
	}
	if wait, _ := l.locked(key); wait < maxLockout-time.Second || wait > maxLockout {
		t.Errorf("after 35 failures: locked %v, want %v", wait, maxLockout)
	}
	l.pass(key)
	if wait, known := l.locked(key); wait != 0 || known {
		t.Errorf("after a success: %v %v", wait, known)
	}
	// A record idle for longer than forgetFailures is forgotten: move
	// the table's clock on by setting its epoch back.
	for range freeFailures + 3 {
		l.fail(key)
	}
	l.table.epoch = l.table.epoch.Add(-forgetFailures - time.Minute)
	if wait, known := l.locked(key); wait != 0 || known {
		t.Errorf("after an idle hour: %v %v", wait, known)
	}
}

// TestNoLimitNoAllocation: a site without rate limits pays nothing for
// them, and one with a limit allocates nothing per request either.
func TestNoLimitNoAllocation(t *testing.T) {
	nop := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
	req := httptest.NewRequest("GET", "/assets/app.js", nil)
	req.RemoteAddr = "[2001:db8::1]:443"
	w := httptest.NewRecorder()
	for _, tt := range []struct {
		name  string
		rules Rules
	}{
		{"fixed response elsewhere", Rules{Respond: []*Respond{must(NewRespond("/gone/", 410, "", "", 0))}}},
		{"rate limit", Rules{RateLimits: []*RateLimit{must(NewRateLimit("/", "1000000/s", 1000000, 0))}}},
	} {
		h := New(tt.rules, exists, nop)
		if n := testing.AllocsPerRun(1000, func() { h.ServeHTTP(w, req) }); n != 0 {
			t.Errorf("%s: %v allocations per request", tt.name, n)
		}
	}
}

func BenchmarkRateLimit(b *testing.B) {
	benchRules(b, Rules{RateLimits: []*RateLimit{must(NewRateLimit("/", "1000000/s", 1000000, 0))}})
}
