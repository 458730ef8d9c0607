package rewrite

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"

	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// holdHashSlots replaces the server-wide hash gate by a fresh one whose
// slots are all taken, as by two long hashes; the function it returns
// frees them. The test's cleanup puts the real gate back.
func holdHashSlots(t *testing.T) (g *hashGate, free func()) {
	t.Helper()
	saved := hashSem
	g = newHashGate(hashSlots, maxHashWaiters)
	hashSem = g
	t.Cleanup(func() { hashSem = saved })
	for range hashSlots {
		if err := g.enter(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	return g, func() {
		for range hashSlots {
			g.leave()
		}
	}
}

// collect reads n results from c, failing the test if they do not come
// (the waits here end on events, never on time: the guard is only there
// so that a regression fails rather than hangs).
func collect[T any](t *testing.T, c <-chan T, n int) []T {
	t.Helper()
	out := make([]T, 0, n)
	guard := time.After(20 * time.Second)
	for len(out) < n {
		select {
		case v := <-c:
			out = append(out, v)
		case <-guard:
			t.Fatalf("%d of %d results came; the rest are stuck waiting", len(out), n)
		}
	}
	return out
}

func basic(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

// TestHashQueueIsBounded floods the password hashing with wrong deploy
// tokens and wrong Basic credentials from 400 addresses while both hash
// slots are taken: at most maxHashWaiters requests wait, the rest get
// 503 at once, and a waiter whose client goes away leaves without
// hashing.
func TestHashQueueIsBounded(t *testing.T) {
	hash, _ := bcrypt.GenerateFromPassword([]byte("right"), bcrypt.MinCost)
	secret := must(NewSecret(string(hash)))
	h := New(Rules{Auth: []*Auth{must(NewAuth("/private/", "r", map[string]string{"u": string(hash)}))}}, exists, echo)
	g, free := holdHashSlots(t)

	const flood = 400
	type result struct {
		i      int
		status int // 401, 429, 503
	}
	results := make(chan result, flood)
	cancels := make([]context.CancelFunc, flood)
	before := hashings.Load()
	for i := range flood {
		ctx, cancel := context.WithCancel(context.Background())
		cancels[i] = cancel
		addr := fmt.Sprintf("10.%d.%d.1:1", i>>8, i&255)
		go func() {
			if i%2 == 0 { // a deploy or admin token
				r := httptest.NewRequestWithContext(ctx, "GET", "/.well-known/appliance/deploy/releases", nil)
				r.RemoteAddr = addr
				status := 401
				var ref *Refused
				if err := secret.Check(r, "wrong"); errors.As(err, &ref) {
					status = ref.Status()
				}
				results <- result{i, status}
				return
			}
			r := httptest.NewRequestWithContext(ctx, "GET", "/private/x.html", nil)
			r.RemoteAddr = addr
			r.Header.Set("Authorization", basic("u", "wrong"))
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, r)
			if rec.Code == 503 && rec.Header().Get("Retry-After") != "1" {
				t.Errorf("503 without Retry-After: %v", rec.Header())
			}
			results <- result{i, rec.Code}
		}()
	}
	// All but the waiters are answered at once, with 503.
	early := collect(t, results, flood-maxHashWaiters)
	for _, r := range early {
		if r.status != 503 {
			t.Fatalf("request %d: %d while the queue was full, want 503", r.i, r.status)
		}
	}
	if n := len(g.queue) - hashSlots; n != maxHashWaiters {
		t.Fatalf("%d requests wait for a hash slot, want %d", n, maxHashWaiters)
	}
	if n := hashings.Load() - before; n != 0 {
		t.Fatalf("%d hashes while the slots were taken", n)
	}
	// Half the waiters' clients go away (the odd and even requests are
	// mixed among them); then the slots come free.
	answered := map[int]bool{}
	for _, r := range early {
		answered[r.i] = true
	}
	var gone, staying []int
	for i := range flood {
		if !answered[i] {
			if len(gone) < maxHashWaiters/2 {
				gone = append(gone, i)
				cancels[i]()
			} else {
				staying = append(staying, i)
			}
		}
	}
	free()
	late := collect(t, results, maxHashWaiters)
	for _, c := range cancels {
		c()
	}
	cancelled := map[int]bool{}
	for _, i := range gone {
		cancelled[i] = true
	}
	for _, r := range late {
		switch {
		case cancelled[r.i] && r.status != 503:
			t.Errorf("request %d, whose client had gone: %d, want 503 unhashed", r.i, r.status)
		case !cancelled[r.i] && r.status != 401:
			t.Errorf("request %d, waiting: %d, want 401", r.i, r.status)
		}
	}
	if n := hashings.Load() - before; n != int64(len(staying)) {
		t.Errorf("%d hashes for %d requests that waited and %d whose clients went away; want %d",
			n, len(staying), len(gone), len(staying))
	}
	if len(g.queue) != 0 || len(g.slots) != 0 {
		t.Errorf("the gate holds %d queued, %d running after the flood", len(g.queue), len(g.slots))
	}
}

// TestLockoutCannotBeRaced sends 60 wrong passwords at once from one
// address, and 60 wrong tokens: an attempt is counted when it starts, so
// only freeFailures of them are hashed and the rest get 429 at once.
func TestLockoutCannotBeRaced(t *testing.T) {
	hash, _ := bcrypt.GenerateFromPassword([]byte("right"), bcrypt.MinCost)
	secret := must(NewSecret(string(hash)))
	h := New(Rules{Auth: []*Auth{must(NewAuth("/private/", "r", map[string]string{"u": string(hash)}))}}, exists, echo)
	const parallel, addr = 60, "192.0.2.50:1"
	for _, kind := range []string{"basic", "token"} {
		t.Run(kind, func(t *testing.T) {
			_, free := holdHashSlots(t) // the admitted attempts wait for a slot, all in flight
			before := hashings.Load()
			codes := make(chan int, parallel)
			for range parallel {
				go func() {
					if kind == "token" {
						r := httptest.NewRequest("GET", "/metrics", nil)
						r.RemoteAddr = addr
						var ref *Refused
						switch err := secret.Check(r, "wrong"); {
						case errors.As(err, &ref):
							codes <- ref.Status()
						case errors.Is(err, ErrWrongSecret):
							codes <- 401
						default:
							codes <- 200
						}
						return
					}
					codes <- getFrom(h, "/private/x.html", addr, "Authorization", basic("u", "wrong")).Code
				}()
			}
			for _, c := range collect(t, codes, parallel-freeFailures) {
				if c != 429 {
					t.Fatalf("an attempt past the %d in flight: %d, want 429", freeFailures, c)
				}
			}
			free()
			for _, c := range collect(t, codes, freeFailures) {
				if c != 401 {
					t.Errorf("an attempt in flight: %d, want 401", c)
				}
			}
			if n := hashings.Load() - before; n != freeFailures {
				t.Errorf("%d of %d parallel guesses hashed, want %d", n, parallel, freeFailures)
			}
		})
	}
}

// TestTokenLockout: deploy and admin tokens (Secret) lock out an address
// that keeps failing, as Basic auth does; another address is not
// affected, and a success clears the count.
func TestTokenLockout(t *testing.T) {
	hash, _ := bcrypt.GenerateFromPassword([]byte("right"), bcrypt.MinCost)
	s := must(NewSecret(string(hash)))
	check := func(addr, tok string) error {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = addr
		return s.Check(r, tok)
	}
	const addr = "192.0.2.60:1"
	for i := range freeFailures + 1 {
		if err := check(addr, "wrong"); !errors.Is(err, ErrWrongSecret) {
			t.Fatalf("failure %d: %v", i+1, err)
		}
	}
	before := hashings.Load()
	var ref *Refused
	if err := check(addr, "right"); !errors.As(err, &ref) || ref.Status() != http.StatusTooManyRequests || ref.RetryAfter() != time.Second {
		t.Fatalf("locked out: %v, want 429 with Retry-After 1", err)
	}
	if hashings.Load() != before {
		t.Error("a locked-out client's token was hashed")
	}
	if err := check("192.0.2.61:1", "right"); err != nil {
		t.Errorf("another address: %v", err)
	}
	// A success clears the count.
	if err := check("192.0.2.62:1", "wrong"); !errors.Is(err, ErrWrongSecret) {
		t.Fatal(err)
	}
	if err := check("192.0.2.62:1", "right"); err != nil {
		t.Fatal(err)
	}
	if _, known := s.lock.locked(clientKey("192.0.2.62:1")); known {
		t.Error("a success left the address's record")
	}
}
