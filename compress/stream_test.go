package compress

import (
	"bytes"
	"errors"
	"io"
	"math/rand"
	"runtime"
	"testing"
)

// TestStreamBudget: streaming encoders reserve their memory from the
// budget and are refused at once, never queued, when it is spent; the
// room comes back when an encoder is closed.
func TestStreamBudget(t *testing.T) {
	defer SetStreamBudget(SetStreamBudget(DefaultStreamBudget))
	if _, held, _ := StreamStats(); held != 0 {
		t.Fatalf("%d bytes held before the test", held)
	}
	for c, want := range map[Coding]int{Brotli: 4, Zstd: 10, Gzip: 35, Deflate: 35} {
		var rs []*Reservation
		for r := Reserve(c); r != nil; r = Reserve(c) {
			rs = append(rs, r)
		}
		live, held, _ := StreamStats()
		if len(rs) != want || live[c] != int64(want) || held != int64(want)*StreamCost(c) || held > DefaultStreamBudget {
			t.Errorf("%s: %d reservations in %d bytes (live %v, held %d), want %d", c, len(rs), DefaultStreamBudget, live, held, want)
		}
		if _, err := newWriter(c, io.Discard); !errors.Is(err, errBusy) {
			t.Errorf("%s: newWriter with the budget spent: %v, want errBusy", c, err)
		}
		rs[0].Release()
		rs[0].Release() // a second release changes nothing
		var buf bytes.Buffer
		w, err := newWriter(c, &buf) // the room came back
		if err != nil {
			t.Fatalf("%s: %v", c, err)
		}
		if Reserve(c) != nil {
			t.Errorf("%s: reserved past the budget", c)
		}
		w.Write(sample)
		w.Close()
		if !bytes.Equal(roundTrip(t, c, buf.Bytes()), sample) {
			t.Errorf("%s: stream does not round-trip", c)
		}
		for _, r := range rs[1:] {
			r.Release()
		}
		if live, held, _ := StreamStats(); live != [NumCodings]int64{} || held != 0 {
			t.Fatalf("%s: live %v, %d bytes held after every release", c, live, held)
		}
	}
	// Mixed: brotli and gzip share the budget.
	SetStreamBudget(2*StreamCost(Brotli) + StreamCost(Gzip))
	a, b, c, d := Reserve(Brotli), Reserve(Brotli), Reserve(Brotli), Reserve(Gzip)
	if a == nil || b == nil || c != nil || d == nil || Reserve(Gzip) != nil {
		t.Errorf("mixed: %v %v %v %v", a, b, c, d)
	}
	a.Release()
	b.Release()
	d.Release()
	SetStreamBudget(0)
	if Reserve(Gzip) != nil || Reserve(Identity) != nil {
		t.Error("budget 0 reserved")
	}
	if _, err := newWriter(Identity, io.Discard); err == nil || errors.Is(err, errBusy) {
		t.Errorf("newWriter(identity): %v", err)
	}
}

// TestStreamCost: what a streaming encoder is charged is not less than
// what it holds on the heap once it has compressed a large input.
func TestStreamCost(t *testing.T) {
	defer SetStreamBudget(SetStreamBudget(1 << 30))
	src := make([]byte, 2<<20) // past the 1 MiB windows: the encoders are at full size
	rng := rand.New(rand.NewSource(1))
	for i := range src {
		src[i] = "abcdefghijklmnop \n<>"[rng.Intn(20)]
	}
	for c := range Identity {
		const n = 2
		var before, after runtime.MemStats
		runtime.GC()
		runtime.GC() // and the pools of encoders are empty
		runtime.ReadMemStats(&before)
		var ws []io.WriteCloser
		for range n {
			w, err := newWriter(c, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			w.Write(src)
			ws = append(ws, w)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		per := (int64(after.HeapAlloc) - int64(before.HeapAlloc)) / n
		t.Logf("%s: %.2f MiB live per streaming encoder, charged %.2f", c, float64(per)/(1<<20), float64(StreamCost(c))/(1<<20))
		if per > StreamCost(c) {
			t.Errorf("%s: an encoder holds %d bytes, charged %d", c, per, StreamCost(c))
		}
		for _, w := range ws {
			w.Close()
		}
	}
}

// newWriter reserves room for a streaming encoder for c and returns it,
// as Reservation.NewWriter does (the tests' shorthand); errBusy when the budget has no room.
func newWriter(c Coding, w io.Writer) (io.WriteCloser, error) {
	if c >= Identity {
		return nil, errors.New("compress: no encoder for " + c.String())
	}
	r := Reserve(c)
	if r == nil {
		return nil, errBusy
	}
	return r.NewWriter(w)
}
