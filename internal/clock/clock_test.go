package clock

import (
	"runtime"
	"testing"
	"time"
)

// TestCoarse: the coarse clock is behind the time by at most its tick
// (plus the scheduling of its goroutine on a loaded machine), moves on,
// stops its goroutine when nobody reads it and starts it again on the
// next read.
func TestCoarse(t *testing.T) {
	c := &Coarse{tick: time.Millisecond, idle: 5}
	const slack = 250 * time.Millisecond // a loaded machine, -race
	first := c.Now()
	deadline := time.Now().Add(10 * time.Second)
	for c.Now() == first { // the goroutine renews it
		if time.Now().After(deadline) {
			t.Fatal("the coarse clock does not move")
		}
		runtime.Gosched()
	}
	for range 1000 {
		got := c.Now()
		if behind := time.Duration(Mono() - got); behind < 0 || behind > c.tick+slack {
			t.Fatalf("coarse clock %v behind", behind)
		}
	}
	for c.now.Load() != 0 { // unread for 5 ticks: the goroutine ends
		if time.Now().After(deadline) {
			t.Fatal("the coarse clock's goroutine does not end when unread")
		}
		runtime.Gosched()
	}
	before := Mono()
	if got := c.Now(); got < before || c.now.Load() == 0 {
		t.Fatalf("after the goroutine ended: %d, before %d; running %v", got, before, c.now.Load() != 0)
	}
}

// TestClock: Clock's time is time.Now's (the wall within a millisecond,
// durations exact), and it reads the wall clock again once a second.
func TestClock(t *testing.T) {
	var c Clock
	for range 1000 {
		before := time.Now()
		got := c.Now()
		after := time.Now()
		if got.Before(before) || got.After(after) { // monotonic comparisons
			t.Fatalf("%v not between %v and %v", got, before, after)
		}
		wall, lo, hi := got.Round(0), before.Round(0).Add(-time.Millisecond), after.Round(0).Add(time.Millisecond)
		if wall.Before(lo) || wall.After(hi) { // wall clock comparisons
			t.Fatalf("wall time %v not between %v and %v", wall, lo, hi)
		}
	}
	old := time.Now().Add(-2 * time.Second)
	c.base.Store(&old)
	if got := c.Now(); got.Sub(time.Now()) > 0 || c.base.Load() == &old {
		t.Fatalf("a base two seconds old was kept: %v", got)
	}
	if n := testing.AllocsPerRun(100, func() { c.Now() }); n != 0 {
		t.Errorf("Clock.Now: %v allocations, want 0 within the second", n)
	}
}

func BenchmarkNow(b *testing.B) {
	b.Run("time.Now", func(b *testing.B) {
		for b.Loop() {
			time.Now()
		}
	})
	b.Run("Clock", func(b *testing.B) {
		var c Clock
		for b.Loop() {
			c.Now()
		}
	})
	b.Run("Coarse", func(b *testing.B) {
		var c Coarse
		for b.Loop() {
			c.Now()
		}
	})
}

// TestMono: Mono, and Coarse with it, count the monotonic clock, not the
// wall clock's unix time: a stamp taken before a step of the wall clock
// (NTP, date -s) ages by the time that really passed, so a cache entry
// or a root checked before a step back is checked again one interval
// later, not once the wall clock has caught up (a test cannot step the
// system's clock; what it can hold is that these are not unix times and
// move as time.Since does). A stamp of 0 ("check now": Dir.Recheck) is
// older than any interval up to 100 years, and Mono is never 0 (which
// Coarse takes for "not running").
func TestMono(t *testing.T) {
	t0 := time.Now()
	m0 := Mono()
	if m0-0 < int64(100*365*24*time.Hour) {
		t.Fatalf("Mono() = %d: a stamp of 0 is not older than every interval", m0)
	}
	if d := time.Duration(time.Now().UnixNano() - m0); d > -time.Hour && d < time.Hour {
		t.Fatalf("Mono() = %d is the wall clock's unix time", m0)
	}
	for time.Since(t0) < 2*time.Millisecond {
		runtime.Gosched()
	}
	m1 := Mono()
	d := time.Since(t0)
	if got := time.Duration(m1 - m0); got <= 0 || got > d {
		t.Fatalf("Mono moved %v in %v", got, d)
	}
	c := &Coarse{tick: time.Millisecond, idle: 5}
	before := Mono()
	got := c.Now()
	if after := Mono(); got < before || got > after {
		t.Fatalf("Coarse.Now() = %d, not Mono's (%d to %d)", got, before, after)
	}
}

// TestMonoAt: a time on Mono's clock, by its monotonic reading: a
// deadline d after now is d after Mono, whatever the wall clock does.
func TestMonoAt(t *testing.T) {
	before := Mono()
	now := time.Now()
	at := MonoAt(now)
	after := Mono()
	if at < before || at > after {
		t.Errorf("MonoAt(now) %d outside [%d, %d]", at, before, after)
	}
	if d := MonoAt(now.Add(90*time.Second)) - at; d != int64(90*time.Second) {
		t.Errorf("a deadline 90 s on: %d ns", d)
	}
	// Without a monotonic reading (a time from a client's header, a
	// Round(0)), the wall time: within the same second here.
	if d := MonoAt(now.Round(0)) - at; d < -int64(time.Second) || d > int64(time.Second) {
		t.Errorf("by wall time: %d ns off", d)
	}
}
