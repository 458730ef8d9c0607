// Package clock reads the time more cheaply than time.Now where a
// request does not need all it gives: a coarse clock read from memory
// for what only needs the time to within a tick (a cache entry's age
// against a revalidation interval of a second), and a clock that reads
// the system's monotonic clock alone, its wall time based on a reading
// at most a second old (a request's start, for its log line and its
// duration). A system clock read costs 55 to 85 ns on the virtual
// machines this runs on (time.Since and time.Now), a few per request.
package clock

import (
	"sync/atomic"
	"time"
)

// Tick is how far Coarse may be behind the time while its goroutine
// keeps up.
const Tick = 10 * time.Millisecond

// coarseIdle is how many ticks without a read end Coarse's goroutine.
const coarseIdle = 100

// monoBase is what Mono adds to the monotonic time since start: far
// enough from 0 that a stamp of 0 ("never", "check now") is older than
// any interval, and Mono is never 0 (Coarse's "not running").
const monoBase = 1 << 62

// start is the monotonic reading Mono counts from.
var start = time.Now()

// Mono is the time in nanoseconds on the monotonic clock (monoBase plus
// the time since the process started): for ages and intervals, which a
// step of the system's wall clock (NTP setting a Pi's clock, an operator's
// date -s) must not stretch. A stamp of the wall clock's unix time
// taken before a step back would be in the future after it, and an
// entry checked then would count as fresh until the wall clock caught
// up (an hour's step: an hour of not seeing a changed file).
func Mono() int64 { return monoBase + int64(time.Since(start)) }

// MonoAt is t on Mono's clock: by t's monotonic reading when it has one
// (time.Now's, a Ticker's, and times added to them: a deadline), else
// by its wall time.
func MonoAt(t time.Time) int64 { return monoBase + int64(t.Sub(start)) }

// Coarse is Mono to within Tick, read from memory: a goroutine renews it every Tick while it is read and ends
// after a second without a read; the first read after that reads the
// system clock and starts it again. Its zero value is ready.
type Coarse struct {
	now  atomic.Int64 // Mono's nanoseconds; 0: no goroutine renews it
	read atomic.Bool  // read since the last tick
	// tick and idle: 0 for Tick and coarseIdle (the tests' are shorter).
	tick time.Duration
	idle int
}

// Now is Mono to within Tick.
func (c *Coarse) Now() int64 {
	if !c.read.Load() { // a store only once a tick: the line stays shared
		c.read.Store(true)
	}
	if t := c.now.Load(); t != 0 {
		return t
	}
	t := Mono()
	if c.now.CompareAndSwap(0, t) {
		go c.run()
	}
	return t
}

func (c *Coarse) run() {
	tick, idle := c.tick, c.idle
	if tick <= 0 {
		tick, idle = Tick, coarseIdle
	}
	t := time.NewTicker(tick)
	defer t.Stop()
	unread := 0
	for range t.C {
		if c.read.Swap(false) {
			unread = 0
		} else if unread++; unread >= idle {
			c.now.Store(0)
			return
		}
		c.now.Store(Mono()) // not the tick's: it may have waited
	}
}

// Clock is time.Now from one read of the monotonic clock (time.Now
// makes two, the wall clock's and the monotonic): the wall time is
// that of a full reading at most a second old plus the monotonic time
// since, which follows a change of the system's wall clock (NTP) within
// a second. Its zero value is ready.
type Clock struct {
	base atomic.Pointer[time.Time]
}

// Now is the time, with a monotonic reading (time.Since of it is exact).
func (c *Clock) Now() time.Time {
	if b := c.base.Load(); b != nil {
		if d := time.Since(*b); d < time.Second {
			return b.Add(d)
		}
	}
	t := time.Now()
	c.base.Store(&t)
	return t
}
