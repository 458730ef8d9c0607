package rewrite

import "testing"

// TestRateLimitAfterRewrite: a rewrite into a limited path is limited,
// and a request counts once: against the rule covering the path asked
// for, or, if none does, the one covering the rewritten path.
func TestRateLimitAfterRewrite(t *testing.T) {
	api := must(NewRateLimit("/api/", "1/h", 2, 0))
	rules := Rules{
		Rewrites:   []*Rewrite{must(NewRewrite(`^/free/(.*)$`, "/api/$1", false, Cond{})), must(NewRewrite(`^/lim/(.*)$`, "/api/$1", false, Cond{}))},
		RateLimits: []*RateLimit{must(NewRateLimit("/lim/", "1/h", 3, 0)), api},
	}
	h := New(rules, exists, echo)
	for i, want := range []int{200, 200, 429, 429} {
		if rec := getFrom(h, "/free/x", "192.0.2.70:1"); rec.Code != want {
			t.Errorf("/free/x (rewritten to /api/x) %d: %d, want %d", i+1, rec.Code, want)
		}
	}
	if rec := getFrom(h, "/api/x", "192.0.2.70:1"); rec.Code != 429 {
		t.Errorf("/api/x after the rewritten ones: %d, want 429 (one bucket)", rec.Code)
	}
	// /lim/ has a rule of its own: its requests count there, and only
	// there (its burst of 3, not /api/'s 2).
	for i, want := range []int{200, 200, 200, 429} {
		if rec := getFrom(h, "/lim/x", "192.0.2.71:1"); rec.Code != want {
			t.Errorf("/lim/x %d: %d, want %d", i+1, rec.Code, want)
		}
	}
	if rec := getFrom(h, "/api/x", "192.0.2.71:1"); rec.Code != 200 {
		t.Errorf("/api/x after /lim/ requests: %d, want 200 (counted against /lim/ only)", rec.Code)
	}
}
