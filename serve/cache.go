package serve

import (
	"crypto/sha256"
	"sync"
	"sync/atomic"
	"time"

	"appliance/internal/clock"
)

// CacheOptions bound the cache shared by all sites.
type CacheOptions struct {
	MaxBytes     int64         // total budget for file bytes and entries; 0: DefaultCacheBytes
	MaxFileBytes int64         // files up to this size are held in memory; 0: DefaultCacheFileBytes, at most MaxBytes/4
	Revalidate   time.Duration // how long an entry is trusted without a stat; 0: 1 s
	// MaxCompressBytes: files up to this size get compressed variants that
	// are built once and held; larger ones are compressed as a stream.
	// 0: 8 MiB.
	MaxCompressBytes int64
}

// Cache remembers, for every site, what each request path resolves to and
// the representation of each file (metadata, ETag, content type and, for
// small files, the bytes). An entry is checked against the file system at
// most once per Revalidate interval, so a fresh entry costs no system call
// and a file is hashed once per version. The total is bounded by MaxBytes;
// the least recently used of a random sample is evicted first.
type Cache struct {
	opts CacheOptions

	mu        sync.RWMutex
	m         map[cacheKey]*entry
	bytes     int64
	negatives int // kindNotFound entries, capped at maxNegatives

	loadMu  sync.Mutex
	loading map[cacheKey]*load // in-flight rebuilds

	hits, rebuilds atomic.Int64
	largeHashed    atomic.Int64 // files over MaxFileBytes read and hashed

	// coarse is the clock of every lookup when Revalidate is at least
	// coarseRevalidate: to within clock.Tick of it, read from memory
	// (a system clock read per request cost more than a map lookup).
	coarse clock.Coarse

	sums sums // hashes of the files too large to hold, by identity
}

// sums remembers the SHA-256 of files larger than MaxFileBytes by their
// identity (device, inode, size, times, mode), so that an entry evicted
// by other traffic costs a stat, not a read and hash of the whole file
// again. Only identities with a change time are remembered: any write to
// the file changes it. At most maxSums are held (about 120 bytes each);
// past that an arbitrary one goes.
type sums struct {
	mu sync.Mutex
	m  map[fileID][sha256.Size]byte
}

const maxSums = 4096

func (s *sums) get(id fileID) ([sha256.Size]byte, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sum, ok := s.m[id]
	return sum, ok
}

func (s *sums) put(id fileID, sum [sha256.Size]byte) {
	if id.ctime == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = make(map[fileID][sha256.Size]byte)
	}
	if len(s.m) >= maxSums {
		for k := range s.m {
			delete(s.m, k)
			break
		}
	}
	s.m[id] = sum
}

// maxNegatives caps cached "not found" entries, so that a flood of
// random paths cannot evict the hot files (which would then be read and
// hashed again); past it, misses are resolved with a stat each time.
const maxNegatives = 4096

// load is one in-flight rebuild of an entry that concurrent requests for
// the same path wait for, so a large file is hashed once, not once each.
type load struct {
	done chan struct{}
	e    *entry
}

// Defaults sized for a small board with 512 MiB of memory.
const (
	DefaultCacheBytes     = 64 << 20
	DefaultCacheFileBytes = 1 << 20
	defaultRevalidate     = time.Second
	defaultCompressBytes  = 8 << 20
)

// coarseRevalidate is the shortest Revalidate checked against the coarse
// clock: an entry may then be used clock.Tick longer, 1% of it at most.
const coarseRevalidate = 100 * clock.Tick

// now is the time a lookup checks entries against, on the monotonic
// clock (clock.Mono: a step of the wall clock stretches no interval).
func (c *Cache) now() int64 {
	if c.opts.Revalidate >= coarseRevalidate {
		return c.coarse.Now()
	}
	return clock.Mono()
}

// NewCache returns an empty cache; zero options take the defaults.
func NewCache(o CacheOptions) *Cache {
	if o.MaxBytes <= 0 {
		o.MaxBytes = DefaultCacheBytes
	}
	if o.MaxFileBytes < 0 {
		o.MaxFileBytes = 0
	} else if o.MaxFileBytes == 0 {
		o.MaxFileBytes = DefaultCacheFileBytes
	}
	o.MaxFileBytes = min(o.MaxFileBytes, o.MaxBytes/4)
	if o.Revalidate <= 0 {
		o.Revalidate = defaultRevalidate
	}
	if o.MaxCompressBytes <= 0 {
		o.MaxCompressBytes = defaultCompressBytes
	}
	return &Cache{opts: o, m: make(map[cacheKey]*entry), loading: make(map[cacheKey]*load)}
}

type cacheKey struct {
	site uint64 // Handler.id: each site resolves paths its own way
	path string // clean URL path
}

// kind is what a request path resolved to.
type kind uint8

const (
	kindNotFound kind = iota
	kindFile          // a regular file: serve rep
	kindRedirect      // a directory asked for without its trailing slash
	kindListing       // a directory without an index, listing enabled
)

// entryOverhead approximates the memory of an entry besides file bytes.
const entryOverhead = 256

type entry struct {
	kind kind
	name string          // io/fs name of the file or directory
	id   fileID          // identity of that file when resolved
	side sidecarIDs      // identities of its precompressed sidecars
	rep  *representation // kindFile only

	// Language variants (language.go), in the site's order with the one
	// served by default first (rep): their files, representations, tags
	// and the Vary of every response about them. Nil without variants.
	langs []langFile
	reps  []*representation
	tags  []string
	vary  []string

	checked atomic.Int64 // Cache.now of the last check
	used    atomic.Int64 // Cache.now of the last use (to a millisecond)
	cost    int64
}

// fresh reports whether the entry may be used without a check at now,
// claiming the check for the caller when it may not.
func (e *entry) fresh(now int64, interval time.Duration) bool {
	last := e.checked.Load()
	if now-last < int64(interval) {
		return true
	}
	return !e.checked.CompareAndSwap(last, now) // someone else is checking
}

func (c *Cache) get(k cacheKey, now int64) *entry {
	c.mu.RLock()
	e := c.m[k]
	c.mu.RUnlock()
	if e != nil && now-e.used.Load() > int64(time.Millisecond) {
		e.used.Store(now)
	}
	return e
}

func (c *Cache) put(k cacheKey, e *entry) {
	e.cost = entryOverhead + int64(len(k.path)) + int64(len(e.name))
	if e.rep != nil {
		e.cost += int64(len(e.rep.Data)) + e.languageBytes()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if old := c.m[k]; old != nil {
		c.unaccount(old)
	} else if e.kind == kindNotFound && c.negatives >= maxNegatives {
		return
	}
	c.m[k] = e
	c.bytes += e.cost
	if e.kind == kindNotFound {
		c.negatives++
	}
	for c.bytes > c.opts.MaxBytes && len(c.m) > 1 {
		c.evictOne(k)
	}
}

// evictOne removes the least recently used of a few entries, which map
// iteration picks at random, sparing keep. Callers hold c.mu.
func (c *Cache) evictOne(keep cacheKey) {
	var (
		victim cacheKey
		oldest *entry
		n      int
	)
	for k, e := range c.m {
		if k == keep {
			continue
		}
		if oldest == nil || e.used.Load() < oldest.used.Load() {
			victim, oldest = k, e
		}
		if n++; n == 8 {
			break
		}
	}
	if oldest != nil {
		delete(c.m, victim)
		c.unaccount(oldest)
	}
}

// grow charges delta more bytes to e, if it is still the entry for k.
func (c *Cache) grow(k cacheKey, e *entry, delta int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m[k] != e {
		return
	}
	e.cost += delta
	c.bytes += delta
	for c.bytes > c.opts.MaxBytes && len(c.m) > 1 {
		c.evictOne(k)
	}
}

func (c *Cache) unaccount(e *entry) {
	c.bytes -= e.cost
	if e.kind == kindNotFound {
		c.negatives--
	}
}

// rebuild replaces stale, the entry the caller found for k (nil if
// none), with build's result and stores it. Concurrent
// callers share one build, and a caller that comes after a build has
// finished takes its result instead of building again.
func (c *Cache) rebuild(k cacheKey, stale *entry, build func() *entry) *entry {
	c.loadMu.Lock()
	if l, ok := c.loading[k]; ok {
		c.loadMu.Unlock()
		<-l.done
		return l.e
	}
	c.mu.RLock()
	cur := c.m[k]
	c.mu.RUnlock()
	if cur != nil && cur != stale { // rebuilt by someone else since the caller looked
		c.loadMu.Unlock()
		return cur
	}
	l := &load{done: make(chan struct{})}
	c.loading[k] = l
	c.loadMu.Unlock()

	l.e = build()
	c.rebuilds.Add(1)
	c.put(k, l.e)
	c.loadMu.Lock()
	delete(c.loading, k)
	c.loadMu.Unlock()
	close(l.done)
	return l.e
}

func (c *Cache) remove(k cacheKey, e *entry) {
	c.mu.Lock()
	if c.m[k] == e {
		delete(c.m, k)
		c.unaccount(e)
	}
	c.mu.Unlock()
}

// purgeSite drops the entries of one site (Handler.id).
func (c *Cache) purgeSite(site uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, e := range c.m {
		if k.site == site {
			delete(c.m, k)
			c.unaccount(e)
		}
	}
}

// Purge drops every entry, e.g. after a configuration reload.
func (c *Cache) Purge() {
	c.mu.Lock()
	clear(c.m)
	c.bytes, c.negatives = 0, 0
	c.mu.Unlock()
}

// Counters reports requests answered from a fresh entry and entries
// (re)built from the file system.
func (c *Cache) Counters() (hits, rebuilds int64) { return c.hits.Load(), c.rebuilds.Load() }

// Stats reports the number of entries and the bytes they account for.
func (c *Cache) Stats() (entries int, bytes int64) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.m), c.bytes
}
