package rewrite

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
)

// Auth requires HTTP Basic credentials (RFC 7617) on a path prefix.
type Auth struct {
	prefix string
	realm  string
	users  map[string]passwordHash
	header []string // WWW-Authenticate
	passed memo     // credentials that passed
}

// memo remembers digests of credentials that passed, which spare a
// returning client the deliberately slow hash; at most maxVerified.
type memo struct {
	mu sync.Mutex
	m  map[[32]byte]struct{}
}

func (m *memo) has(d [32]byte) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.m[d]
	return ok
}

func (m *memo) add(d [32]byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.m == nil || len(m.m) >= maxVerified {
		m.m = map[[32]byte]struct{}{}
	}
	m.m[d] = struct{}{}
}

// maxVerified bounds the memory of credentials that passed, which spare a
// returning client the deliberately slow hash.
const maxVerified = 1024

// hashGate bounds password hashing server-wide: argon2id takes tens of
// MiB each, and a flood of wrong passwords or tokens must take neither a
// small board's memory nor the time of the clients who know theirs.
// hashSlots hashes run at once, at most maxHashWaiters more requests
// wait for a slot, and a waiter whose client has gone leaves the queue
// without hashing; any request past that is refused at once (503 with
// Retry-After), never queued.
type hashGate struct {
	slots chan struct{} // a token per running hash
	queue chan struct{} // a token per running or waiting hash
}

const (
	hashSlots      = 2
	maxHashWaiters = 16
)

func newHashGate(slots, waiters int) *hashGate {
	return &hashGate{slots: make(chan struct{}, slots), queue: make(chan struct{}, slots+waiters)}
}

var hashSem = newHashGate(hashSlots, maxHashWaiters)

// errHashBusy: every hash slot is taken and the queue for them full.
var errHashBusy = errors.New("password hashing is busy")

// enter takes a hash slot, waiting in the bounded queue while ctx
// lives; the caller calls leave after hashing. It fails with
// errHashBusy when the queue is full, or ctx's error when the client
// went away first.
func (g *hashGate) enter(ctx context.Context) error {
	select {
	case g.queue <- struct{}{}:
	default:
		return errHashBusy
	}
	select {
	case g.slots <- struct{}{}:
		if err := ctx.Err(); err != nil { // both were ready: the client has gone
			g.leave()
			return err
		}
		return nil
	case <-ctx.Done():
		<-g.queue
		return ctx.Err()
	}
}

func (g *hashGate) leave() {
	<-g.slots
	<-g.queue
}

// NewAuth compiles an auth rule; users maps names to bcrypt ($2a$, $2b$,
// $2y$) or argon2id ($argon2id$) hashes.
func NewAuth(prefix, realm string, users map[string]string) (*Auth, error) {
	if err := checkPrefix("auth", prefix); err != nil {
		return nil, err
	}
	if realm == "" {
		realm = "restricted"
	}
	if strings.ContainsAny(realm, "\"\\\r\n") {
		return nil, fmt.Errorf("auth realm %q must not contain quotes, backslashes or newlines", realm)
	}
	if len(users) == 0 {
		return nil, fmt.Errorf("auth %q has no users", prefix)
	}
	a := &Auth{
		prefix: prefix,
		realm:  realm,
		users:  map[string]passwordHash{},
		header: []string{`Basic realm="` + realm + `", charset="UTF-8"`},
	}
	for name, h := range users {
		if name == "" || strings.Contains(name, ":") {
			return nil, fmt.Errorf("auth user %q: names must not be empty or contain ':'", name)
		}
		ph, err := parseHash(h)
		if err != nil {
			return nil, fmt.Errorf("auth user %q: %v", name, err)
		}
		a.users[name] = ph
	}
	return a, nil
}

// covers reports whether the rule protects path: the prefix itself, with
// or without its trailing slash, and everything below it.
func (a *Auth) covers(path string) bool { return coversPrefix(a.prefix, path) }

// credentials returns the user and password of r's Basic credentials
// (ok false: none, or malformed).
func credentials(r *http.Request) (user, pass string, ok bool) {
	h := r.Header["Authorization"]
	if len(h) != 1 {
		return "", "", false
	}
	scheme, cred, ok := strings.Cut(h[0], " ")
	if !ok || !strings.EqualFold(scheme, "Basic") {
		return "", "", false
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(cred))
	if err != nil {
		return "", "", false
	}
	return strings.Cut(string(raw), ":")
}

// check reports whether r carries valid credentials for this rule, for
// the client key under l: a *Refused error when they were not checked.
func (a *Auth) check(r *http.Request, l *lockout, key netip.Addr) (bool, error) {
	user, pass, ok := credentials(r)
	if !ok {
		if wait, _ := l.locked(key); wait > 0 {
			return false, &Refused{http.StatusTooManyRequests, wait}
		}
		if len(r.Header["Authorization"]) > 0 { // a browser's first request asks for the prompt
			l.fail(key)
		}
		return false, nil
	}
	ph, known := a.users[user]
	if !known {
		ph = dummyHash() // spend the same time, so names cannot be probed
	}
	digest := sha256.Sum256([]byte(a.realm + "\x00" + user + "\x00" + pass))
	return guarded(r.Context(), l, key, &a.passed, digest, ph, known, pass)
}

// Refused is a password or token check that did not run: 429 Too Many
// Requests while the client is locked out, or has as many attempts in
// flight as it may still fail; 503 Service Unavailable while hashing is
// busy (or the client went away). RetryAfter is when to try again.
type Refused struct {
	status int
	wait   time.Duration
}

func (e *Refused) Error() string {
	if e.status == http.StatusTooManyRequests {
		return "too many failed attempts from this address: try again later"
	}
	return "too many password checks at once: try again later"
}

// Status is the HTTP status to answer with.
func (e *Refused) Status() int { return e.status }

// RetryAfter is how long the client should wait: whole seconds, at
// least one.
func (e *Refused) RetryAfter() time.Duration {
	return max(time.Second, (e.wait+time.Second-1)/time.Second*time.Second)
}

// guarded checks pass against ph (which it matches only if known) for
// the client key, counting a failure in l. A locked-out client, or one
// with as many attempts in flight as it may still fail, is refused
// before anything is hashed, so that parallel guesses cannot outrun the
// lockout; a digest in m passed before and costs no hash.
func guarded(ctx context.Context, l *lockout, key netip.Addr, m *memo, digest [32]byte, ph passwordHash, known bool, pass string) (bool, error) {
	wait, recorded := l.locked(key)
	if wait > 0 {
		return false, &Refused{http.StatusTooManyRequests, wait}
	}
	if m.has(digest) {
		if recorded {
			l.pass(key)
		}
		return true, nil
	}
	if wait := l.admit(key); wait > 0 {
		return false, &Refused{http.StatusTooManyRequests, wait}
	}
	good, err := ph.verifyBounded(ctx, pass)
	if err != nil {
		l.release(key)
		return false, &Refused{http.StatusServiceUnavailable, time.Second}
	}
	if good && known {
		m.add(digest)
		l.pass(key)
		return true, nil
	}
	l.fail(key)
	return false, nil
}

// Secret checks a bearer secret, such as a site's deploy token or the
// admin token, against a hash from HashPassword (or bcrypt), with the
// same bounds as Auth: the server-wide hashGate, the lockout of a client
// address that keeps failing (its own table), and a secret that passed
// is remembered by its digest so that a client making many requests pays
// the hash once.
type Secret struct {
	hash   passwordHash
	passed memo
	lock   *lockout
}

// NewSecret parses hash, an argon2id or bcrypt hash.
func NewSecret(hash string) (*Secret, error) {
	ph, err := parseHash(hash)
	if err != nil {
		return nil, err
	}
	return &Secret{hash: ph, lock: &lockout{newClients[failures](0)}}, nil
}

// ErrWrongSecret is Check's answer to a secret that does not match.
var ErrWrongSecret = errors.New("wrong secret")

// Check checks secret, which r carries, in constant time: nil if it
// matches, ErrWrongSecret if not, or a *Refused (answer its Status with
// Retry-After) when it was not checked: r's client address is locked
// out, hashing is busy, or r's client went away.
func (s *Secret) Check(r *http.Request, secret string) error {
	ok, err := guarded(r.Context(), s.lock, clientKey(r.RemoteAddr), &s.passed, sha256.Sum256([]byte(secret)), s.hash, true, secret)
	switch {
	case err != nil:
		return err
	case !ok:
		return ErrWrongSecret
	}
	return nil
}

// CheckBearer is Check of the token r carries as "Authorization: Bearer
// TOKEN" (RFC 6750 2.1); a request without one gets ErrWrongSecret and
// counts no failure.
func (s *Secret) CheckBearer(r *http.Request) error {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || token == "" || !strings.EqualFold(scheme, "Bearer") { // RFC 9110 11.1: any case
		return ErrWrongSecret
	}
	return s.Check(r, token)
}

// passwordHash is a parsed bcrypt or argon2id hash.
type passwordHash struct {
	bcrypt []byte
	argon  *argonParams
}

type argonParams struct {
	time, memory uint32
	threads      uint8
	salt, key    []byte
}

// dummyHash is what an unknown user is checked against. It is made on
// first use: argon2id takes 19 MiB, which no process without auth rules
// should pay at startup.
var dummyHash = sync.OnceValue(func() passwordHash {
	h, _ := parseHash(HashPassword("not a password"))
	return h
})

func parseHash(s string) (passwordHash, error) {
	switch {
	case strings.HasPrefix(s, "$2a$"), strings.HasPrefix(s, "$2b$"), strings.HasPrefix(s, "$2y$"):
		if _, err := bcrypt.Cost([]byte(s)); err != nil {
			return passwordHash{}, fmt.Errorf("invalid bcrypt hash: %v", err)
		}
		return passwordHash{bcrypt: []byte(s)}, nil
	case strings.HasPrefix(s, "$argon2id$"):
		p, err := parseArgon2id(s)
		if err != nil {
			return passwordHash{}, err
		}
		return passwordHash{argon: p}, nil
	}
	return passwordHash{}, errors.New("want a bcrypt ($2b$...) or argon2id ($argon2id$...) hash from `appliance hash-password`, never a plain password")
}

// parseArgon2id reads the PHC string form:
// $argon2id$v=19$m=19456,t=2,p=1$<salt>$<key>, base64 without padding.
func parseArgon2id(s string) (*argonParams, error) {
	f := strings.Split(s, "$")
	if len(f) != 6 || f[2] != "v=19" {
		return nil, errors.New("invalid argon2id hash: want $argon2id$v=19$m=...,t=...,p=...$salt$key")
	}
	p := &argonParams{}
	for _, kv := range strings.Split(f[3], ",") {
		k, v, _ := strings.Cut(kv, "=")
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("invalid argon2id parameter %q", kv)
		}
		switch k {
		case "m":
			p.memory = uint32(n)
		case "t":
			p.time = uint32(n)
		case "p":
			if n > 255 {
				return nil, fmt.Errorf("invalid argon2id parameter %q", kv)
			}
			p.threads = uint8(n)
		default:
			return nil, fmt.Errorf("invalid argon2id parameter %q", kv)
		}
	}
	if p.memory < 8 || p.memory > 1<<20 || p.time < 1 || p.time > 100 || p.threads < 1 {
		return nil, errors.New("argon2id parameters out of range (m 8..1048576 KiB, t 1..100, p >= 1)")
	}
	var err error
	if p.salt, err = base64.RawStdEncoding.DecodeString(f[4]); err != nil || len(p.salt) < 8 {
		return nil, errors.New("invalid argon2id salt")
	}
	if p.key, err = base64.RawStdEncoding.DecodeString(f[5]); err != nil || len(p.key) < 16 {
		return nil, errors.New("invalid argon2id key")
	}
	return p, nil
}

// hashings counts password hash computations; tests use it to see that
// an unknown user costs a hash like a known one.
var hashings atomic.Int64

// verifyBounded is verify under hashSem: it fails with errHashBusy, or
// ctx's error, without hashing when it gets no slot.
func (h passwordHash) verifyBounded(ctx context.Context, pass string) (bool, error) {
	if err := hashSem.enter(ctx); err != nil {
		return false, err
	}
	defer hashSem.leave()
	return h.verify(pass), nil
}

// verify compares in constant time.
func (h passwordHash) verify(pass string) bool {
	hashings.Add(1)
	if h.bcrypt != nil {
		return bcrypt.CompareHashAndPassword(h.bcrypt, []byte(pass)) == nil
	}
	p := h.argon
	key := argon2.IDKey([]byte(pass), p.salt, p.time, p.memory, p.threads, uint32(len(p.key)))
	return subtle.ConstantTimeCompare(key, p.key) == 1
}

// Argon2id parameters of HashPassword: OWASP's recommendation for a
// memory-limited host (19 MiB, 2 passes, 1 lane).
const (
	argonMemory = 19 * 1024
	argonTime   = 2
	argonLanes  = 1
)

// HashPassword returns an argon2id hash of password in PHC string form.
func HashPassword(password string) string {
	salt := make([]byte, 16)
	rand.Read(salt)
	key := argon2.IDKey([]byte(password), salt, argonTime, argonMemory, argonLanes, 32)
	return fmt.Sprintf("$argon2id$v=19$m=%d,t=%d,p=%d$%s$%s", argonMemory, argonTime, argonLanes,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key))
}
