package rewrite

import (
	"net/netip"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// TestREADMENumbers pins the numbers the README states for rate limits,
// the lockout, password hashing and the site rules files, which the
// other tests read from the constants (so a changed constant would not
// fail them).
func TestREADMENumbers(t *testing.T) {
	for _, c := range []struct {
		name      string
		got, want int64
	}{
		{"hash slots (\"at most two hashes run at once\")", hashSlots, 2},
		{"hash waiters (\"at most 16 more requests wait\")", maxHashWaiters, 16},
		{"free failures (\"five are free\")", freeFailures, 5},
		{"first lockout (1 s)", int64(firstLockout), int64(time.Second)},
		{"longest lockout (15 minutes)", int64(maxLockout), int64(15 * time.Minute)},
		{"idle record forgotten (an hour)", int64(forgetFailures), int64(time.Hour)},
		{"clients remembered by default (10,000)", defaultMaxClients, 10000},
		{"rewrites per request (10)", maxRewrites, 10},
		{"rules file bytes (1 MiB)", maxRulesFileBytes, 1 << 20},
		{"_redirects rules without placeholders (2000)", maxStaticRedirects, 2000},
		{"_redirects rules with them (100)", maxDynamicRedirects, 100},
		{"_redirects line bytes (1000)", maxRedirectLine, 1000},
		{"_headers paths (100)", maxHeaderRules, 100},
		{"_headers fields under one path (100)", maxHeaderLinesPerRule, 100},
		{"_headers line bytes (2000)", maxHeaderLine, 2000},
		{"logged errors of one file (100)", maxLoggedErrors, 100},
	} {
		if c.got != c.want {
			t.Errorf("%s: %d, the README states %d", c.name, c.got, c.want)
		}
	}
	// Deploy and admin tokens: a lockout table of the default bound.
	hash, _ := bcrypt.GenerateFromPassword([]byte("token"), bcrypt.MinCost)
	s, err := NewSecret(string(hash))
	if err != nil {
		t.Fatal(err)
	}
	if s.lock.table.max != defaultMaxClients {
		t.Errorf("a secret's lockout remembers %d addresses, the README states 10,000", s.lock.table.max)
	}
}

// TestLockoutDoubles: each failure past the free ones locks the address
// out for 1 s, then 2 s, 4 s... (the README's sequence).
func TestLockoutDoubles(t *testing.T) {
	l := &lockout{newClients[failures](0)}
	key := netip.MustParseAddr("192.0.2.1")
	for range freeFailures {
		l.fail(key)
	}
	if wait, _ := l.locked(key); wait != 0 {
		t.Fatalf("locked out after %d failures: %v", freeFailures, wait)
	}
	for _, want := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second} {
		l.fail(key)
		if wait, _ := l.locked(key); wait > want || wait < want-100*time.Millisecond {
			t.Errorf("locked out for %v, want %v", wait, want)
		}
	}
}

// TestClientKey: IPv6 by /64, an IPv4-mapped address as IPv4, and an
// address that cannot be read ("unknown") under one shared key.
func TestClientKey(t *testing.T) {
	for _, c := range []struct{ a, b string }{
		{"[2001:db8:1:2::1]:1", "[2001:db8:1:2:ffff::9]:2"},
		{"[::ffff:192.0.2.1]:1", "192.0.2.1:2"},
		{"unknown", "garbage"},
	} {
		if clientKey(c.a) != clientKey(c.b) {
			t.Errorf("%s and %s count apart", c.a, c.b)
		}
	}
	if clientKey("192.0.2.1:1") == clientKey("192.0.2.2:1") || clientKey("[2001:db8:1:2::1]:1") == clientKey("[2001:db8:1:3::1]:1") {
		t.Error("two clients count as one")
	}
}
