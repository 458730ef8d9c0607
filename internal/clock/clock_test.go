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
		if behind := time.Duration(time.Now().UnixNano() - got); behind < 0 || behind > c.tick+slack {
			t.Fatalf("coarse clock %v behind", behind)
		}
	}
	for c.now.Load() != 0 { // unread for 5 ticks: the goroutine ends
		if time.Now().After(deadline) {
			t.Fatal("the coarse clock's goroutine does not end when unread")
		}
		runtime.Gosched()
	}
	before := time.Now().UnixNano()
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
