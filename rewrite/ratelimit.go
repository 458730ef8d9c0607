package rewrite

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"appliance/internal/httpx"
	"appliance/vhost"
)

// RateLimit is a token bucket per client address on a path prefix: each
// request takes a token, a client holds at most burst of them, and they
// come back at the rule's rate. A client without a token gets 429 Too
// Many Requests (RFC 6585 4) with Retry-After.
type RateLimit struct {
	prefix  string
	perNano float64 // tokens per nanosecond
	burst   float64
	table   *clients[bucket]
}

type bucket struct {
	tokens float64
	last   int64 // when tokens was computed, on the table's clock
}

// maxRate bounds a rule's rate and burst: more is no limit at all.
const maxRate = 1e6

// parseRate parses a rate: a count per unit, "10/s", "600/m", "1000/h",
// "20000/d", or per a duration, "5/10s". It returns the count and the
// interval.
func parseRate(s string) (count float64, per time.Duration, err error) {
	n, unit, ok := strings.Cut(strings.TrimSpace(s), "/")
	bad := fmt.Errorf("rate %q: want a count per unit, like \"10/s\", \"600/m\", \"1000/h\", \"20000/d\" or \"5/10s\"", s)
	if !ok {
		return 0, 0, bad
	}
	count, err = strconv.ParseFloat(strings.TrimSpace(n), 64)
	if err != nil || math.IsNaN(count) || math.IsInf(count, 0) {
		return 0, 0, bad
	}
	switch unit = strings.TrimSpace(unit); unit {
	case "s":
		per = time.Second
	case "m":
		per = time.Minute
	case "h":
		per = time.Hour
	case "d":
		per = 24 * time.Hour
	default:
		if per, err = time.ParseDuration(unit); err != nil {
			return 0, 0, bad
		}
	}
	switch {
	case count <= 0 || per <= 0:
		return 0, 0, fmt.Errorf("rate %q must be more than zero", s)
	case count/per.Seconds() > maxRate:
		return 0, 0, fmt.Errorf("rate %q is over %g per second: that limits nothing", s, float64(maxRate))
	}
	return count, per, nil
}

// NewRateLimit compiles a rate limit on a path prefix (written and
// matched as access and auth paths are; "" is the whole site). burst is
// how many requests a client may make at once; 0 means the count of the
// rate ("10/s": 10). The rule remembers at most maxClients addresses
// (0: defaultMaxClients).
func NewRateLimit(prefix, rate string, burst, maxClients int) (*RateLimit, error) {
	if prefix == "" {
		prefix = "/"
	}
	if err := checkPrefix("rate_limit", prefix); err != nil {
		return nil, err
	}
	count, per, err := parseRate(rate)
	if err != nil {
		return nil, err
	}
	if burst == 0 {
		burst = int(math.Ceil(count))
	}
	if burst < 1 || burst > maxRate {
		return nil, fmt.Errorf("rate_limit burst %d: want 1 to %d (0: the count of the rate)", burst, int(maxRate))
	}
	if maxClients < 0 {
		return nil, errors.New("rate_limit: the number of clients remembered must not be negative")
	}
	return &RateLimit{prefix: prefix, perNano: count / float64(per), burst: float64(burst), table: newClients[bucket](maxClients)}, nil
}

// Clients is how many client addresses the rule remembers now, at most
// its bound.
func (l *RateLimit) Clients() int { return l.table.len() }

// covers reports whether the rule limits path. ACME's HTTP-01 challenges
// are never limited: a CA that is refused leaves the site without a
// certificate.
func (l *RateLimit) covers(path string) bool {
	return coversPrefix(l.prefix, path) && !hasPrefixFold(path, acmeChallenge)
}

const acmeChallenge = "/.well-known/acme-challenge/"

// take takes a token of key's bucket; without one it returns how long
// until the next one comes.
func (l *RateLimit) take(key netip.Addr) (wait time.Duration) {
	t := l.table
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	b, ok := t.get(key)
	if ok {
		b.tokens = min(l.burst, b.tokens+float64(now-b.last)*l.perNano)
	} else {
		b.tokens = l.burst
	}
	b.last = now
	if b.tokens >= 1 {
		b.tokens--
	} else {
		wait = time.Duration((1 - b.tokens) / l.perNano)
	}
	t.put(key, b, now)
	return wait
}

// tooMany answers 429 Too Many Requests with the seconds to wait (RFC
// 6585 4, RFC 9110 10.2.3), at least 1.
func tooMany(w http.ResponseWriter, r *http.Request, wait time.Duration) {
	refuse(w, r, http.StatusTooManyRequests, wait)
}

// refuse answers status (429, 503) with the seconds to wait, at least 1.
func refuse(w http.ResponseWriter, r *http.Request, status int, wait time.Duration) {
	h := w.Header()
	h["Retry-After"] = []string{httpx.RetryAfter(wait)}
	h["Cache-Control"] = hdrNoStore
	vhost.Error(w, r, status)
}

var hdrNoStore = []string{"no-store"}

// Failed Basic-auth attempts (and wrong deploy and admin tokens): a
// client address may fail freeFailures times; each failure after that
// locks it out for a time that doubles from firstLockout up to
// maxLockout, during which its requests get 429 without their password
// being checked (so guessing costs the server no hash either). Attempts
// are counted when they start, with the failures: an address may have
// only as many in flight as it may still fail (one once it has failed
// freeFailures times), so parallel guesses cannot outrun the lockout. A
// success clears the record, and one without a failure for
// forgetFailures is forgotten.
const (
	freeFailures   = 5
	firstLockout   = time.Second
	maxLockout     = 15 * time.Minute
	forgetFailures = time.Hour
)

// lockout is a record of failed password or token attempts by client.
type lockout struct{ table *clients[failures] }

type failures struct {
	n, inflight int
	last, until int64 // the last failure or attempt and the end of the lock, on the table's clock
}

// current returns key's record, or a fresh one if it has none or an
// idle one; the caller holds the table's lock.
func (l *lockout) current(key netip.Addr, now int64) (failures, bool) {
	t := l.table
	f, ok := t.get(key)
	if ok && now-f.last > int64(forgetFailures) && f.inflight == 0 {
		t.forget(key)
		return failures{}, false
	}
	return f, ok
}

// locked returns how long key stays locked out (0: it is not), and
// whether key has a record at all.
func (l *lockout) locked(key netip.Addr) (wait time.Duration, known bool) {
	t := l.table
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	f, ok := l.current(key, now)
	if f.until > now {
		wait = time.Duration(f.until - now)
	}
	return wait, ok
}

// admit reserves an attempt of key before its password is hashed; the
// caller ends it with fail, pass or release. It refuses (returns how long
// to wait) while key is locked out or already has as many attempts in
// flight as it may still fail.
func (l *lockout) admit(key netip.Addr) (wait time.Duration) {
	t := l.table
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	f, _ := l.current(key, now)
	switch {
	case f.until > now:
		return time.Duration(f.until - now)
	case f.inflight > 0 && f.n+f.inflight >= freeFailures:
		return firstLockout
	}
	f.inflight++
	f.last = now
	t.put(key, f, now)
	return 0
}

// release ends an attempt of key that was not checked after all.
func (l *lockout) release(key netip.Addr) {
	t := l.table
	t.mu.Lock()
	defer t.mu.Unlock()
	if f, ok := t.get(key); ok && f.inflight > 0 {
		f.inflight--
		t.put(key, f, t.now())
	}
}

// fail records a failed attempt of key, ending it if admit began it.
func (l *lockout) fail(key netip.Addr) {
	t := l.table
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	f, _ := l.current(key, now)
	if f.inflight > 0 {
		f.inflight--
	}
	f.n++
	f.last = now
	if over := f.n - freeFailures; over > 0 {
		f.until = now + int64(min(maxLockout, firstLockout<<min(over-1, 20)))
	}
	t.put(key, f, now)
}

// pass clears key's record after a success.
func (l *lockout) pass(key netip.Addr) {
	l.table.mu.Lock()
	defer l.table.mu.Unlock()
	l.table.forget(key)
}
