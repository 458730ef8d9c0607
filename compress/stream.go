package compress

import (
	"errors"
	"io"
	"sync/atomic"

	"github.com/klauspost/compress/zstd"
)

// Streaming encoders compress a file per request (those too large for a
// cached variant). Each holds megabytes of state while its response is
// sent, which takes as long as the client likes: without a bound, 50
// concurrent brotli downloads hold some 400 MiB. So every streaming
// encoder first reserves its size from a memory budget shared by all
// sites; when the budget is spent the caller serves a cheaper coding the
// client accepts (gzip costs an eighth of brotli) or identity. It never
// waits for room: a queue would hold requests, and their connections,
// for as long as the slowest download ahead of them.

// DefaultStreamBudget is the memory all live streaming encoders may hold
// together, under a tenth of a 512 MiB board: four brotli streams and five
// gzip ones, or ten zstd, or 35 gzip.
const DefaultStreamBudget = 40 << 20

// streamCost is the memory of one live streaming encoder at the levels
// and windows Reservation.NewWriter uses, a little over what it holds on
// the heap once its window is full (TestStreamCost checks it is not
// below).
var streamCost = [NumCodings]int64{
	Zstd:    4 << 20,    // 3.87 MiB
	Brotli:  8704 << 10, // 8.0 MiB: quality 4, 1 MiB window
	Gzip:    1152 << 10, // 1.03 MiB
	Deflate: 1152 << 10, // 1.03 MiB
}

var (
	streamBudget atomic.Int64
	streamHeld   atomic.Int64
	streamLive   [NumCodings]atomic.Int64
	streamBusy   atomic.Int64
)

func init() { streamBudget.Store(DefaultStreamBudget) }

// errBusy says the streaming budget has no room for another encoder.
var errBusy = errors.New("compress: the memory budget of streaming encoders is spent")

// SetStreamBudget sets the memory all live streaming encoders may hold
// together (0: no streaming compression at all) and returns the previous
// budget. Encoders already live keep their room.
func SetStreamBudget(bytes int64) (old int64) { return streamBudget.Swap(max(bytes, 0)) }

// StreamCost returns the memory one live streaming encoder of c is
// charged (0 for identity).
func StreamCost(c Coding) int64 {
	if c < Identity {
		return streamCost[c]
	}
	return 0
}

// StreamStats reports the streaming encoders live now by coding, the
// budget they hold, and how many reservations have been refused since
// the start.
func StreamStats() (live [NumCodings]int64, held, refused int64) {
	for c := range live {
		live[c] = streamLive[c].Load()
	}
	return live, streamHeld.Load(), streamBusy.Load()
}

// A Reservation is room in the streaming budget for one encoder.
type Reservation struct {
	c        Coding
	released atomic.Bool
}

// Reserve claims room for one streaming encoder of c (zstd, br, gzip or
// deflate). It returns nil, at once, when the budget has no room.
func Reserve(c Coding) *Reservation {
	if c >= Identity {
		return nil
	}
	cost, budget := streamCost[c], streamBudget.Load()
	for {
		held := streamHeld.Load()
		if held+cost > budget {
			streamBusy.Add(1)
			return nil
		}
		if streamHeld.CompareAndSwap(held, held+cost) {
			break
		}
	}
	streamLive[c].Add(1)
	return &Reservation{c: c}
}

// Release gives the room back. It may be called more than once, and
// closing the writer made from r calls it.
func (r *Reservation) Release() {
	if r != nil && r.released.CompareAndSwap(false, true) {
		streamLive[r.c].Add(-1)
		streamHeld.Add(-streamCost[r.c])
	}
}

// NewWriter returns the streaming encoder r holds room for, writing to w
// at the level for per-request compression. Close flushes it (it does
// not close w), returns the encoder for reuse and releases r: the writer
// must not be used after. Make at most one writer per reservation.
func (r *Reservation) NewWriter(w io.Writer) (io.WriteCloser, error) {
	if r == nil {
		return nil, errBusy
	}
	if r.released.Load() {
		return nil, errors.New("compress: reservation already released")
	}
	zw, err := newStreamWriter(r.c, w)
	if err != nil {
		r.Release()
		return nil, err
	}
	zw.res = r
	return zw, nil
}

func newStreamWriter(c Coding, w io.Writer) (*pooled, error) {
	if c == Zstd {
		if e, ok := zstdStreamed.Get().(*zstd.Encoder); ok {
			e.Reset(w)
			return &pooled{resetWriter: e, pool: &zstdStreamed}, nil
		}
		e, err := zstd.NewWriter(w, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderConcurrency(1),
			zstd.WithWindowSize(1<<20), zstd.WithZeroFrames(true))
		if err != nil {
			return nil, err
		}
		return &pooled{resetWriter: e, pool: &zstdStreamed}, nil
	}
	return writer(c, w, false)
}
