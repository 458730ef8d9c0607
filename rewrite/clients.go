package rewrite

import (
	"net/netip"
	"sync"
	"time"
)

// defaultMaxClients is how many client addresses each rate-limit rule
// and each site's auth lockout remember when the configuration does not
// say.
const defaultMaxClients = 10000

// evictSample is how many entries a full table looks at to choose the
// one to forget: the least recently seen of them.
const evictSample = 8

// clientKey is the address a request is counted under: the client's
// (r.RemoteAddr, which the edge has made the client behind trusted
// proxies), IPv4 by address and IPv6 by its /64, the smallest block a
// site is given, so that one host cannot take a fresh address per
// request. An address that cannot be read ("unknown") is the zero Addr:
// all such clients share one entry.
func clientKey(remoteAddr string) netip.Addr {
	ap, err := netip.ParseAddrPort(remoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	a := ap.Addr().Unmap()
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.Addr()
	}
	return a
}

// clients is a bounded table of per-client state T. At its bound, a new
// client takes the place of the least recently seen of evictSample
// entries (Go's map iteration starts at a random place, which makes them
// a random sample): a flood of addresses costs the table's bound and
// makes it forget idle clients first, never grow.
type clients[T any] struct {
	mu    sync.Mutex
	max   int
	epoch time.Time
	m     map[netip.Addr]slot[T]
}

type slot[T any] struct {
	v    T
	seen int64 // nanoseconds since epoch
}

func newClients[T any](max int) *clients[T] {
	if max <= 0 {
		max = defaultMaxClients
	}
	return &clients[T]{max: max, epoch: time.Now(), m: map[netip.Addr]slot[T]{}}
}

// now is the table's clock: monotonic nanoseconds since it was made.
func (c *clients[T]) now() int64 { return int64(time.Since(c.epoch)) }

// get returns key's state and whether the table has it; the caller
// holds c.mu, from get to put or forget.
func (c *clients[T]) get(key netip.Addr) (T, bool) {
	s, ok := c.m[key]
	return s.v, ok
}

// put stores key's state, seen now, making room for a new client at
// the bound; the caller holds c.mu.
func (c *clients[T]) put(key netip.Addr, v T, now int64) {
	if _, ok := c.m[key]; !ok && len(c.m) >= c.max {
		c.evict()
	}
	c.m[key] = slot[T]{v, now}
}

// forget drops key's state; the caller holds c.mu.
func (c *clients[T]) forget(key netip.Addr) { delete(c.m, key) }

// evict forgets the least recently seen of a sample of entries.
func (c *clients[T]) evict() {
	var (
		oldest netip.Addr
		when   int64
		n      int
	)
	for k, s := range c.m {
		if n == 0 || s.seen < when {
			oldest, when = k, s.seen
		}
		if n++; n == evictSample {
			break
		}
	}
	delete(c.m, oldest)
}

// len is how many clients the table holds.
func (c *clients[T]) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}
