package compress

import (
	"bytes"
	"fmt"
	"io"
	"runtime"
	"sync"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zlib"
	"github.com/klauspost/compress/zstd"
)

// Levels: a cached variant is compressed once per file version, so it gets
// a strong level; a stream is compressed on every request, so it gets a
// cheap one.
const (
	cachedBrotli = 9 // 10 and 11 cost 5-20x the time for 1-3% less
	streamBrotli = 4
	brotliWindow = 20 // 1 MiB: bounds encoder memory on a small board
)

// brotliFit is the smallest window that holds n bytes: the output is the
// same as with the full window, but the encoder's hash tables shrink
// from 34 MB at quality 9 to under 2 MB for files up to 64 KiB (the
// usual page, style sheet or script).
func brotliFit(n int) int {
	lg := 10                                // brotli's smallest window
	for lg < brotliWindow && 1<<lg-16 < n { // a window holds 2^lg - 16 bytes
		lg++
	}
	return lg
}

// sem bounds concurrent compressions: a burst of first requests after a
// deploy must not take every core or a small board's memory.
var sem = make(chan struct{}, max(1, runtime.GOMAXPROCS(0)))

// Encoders hold megabytes of state, far more than a small file: they are
// made once and reused. zstd's EncodeAll is safe for concurrent use; the
// others are pooled and Reset.
var (
	zstdOnce     sync.Once
	zstdBest     *zstd.Encoder
	zstdStreamed sync.Pool
	pools        [2][NumCodings]sync.Pool // [best][coding] of resetWriter
)

type resetWriter interface {
	io.WriteCloser
	Reset(io.Writer)
}

// Encode compresses src with c at the level for cached variants.
func Encode(c Coding, src []byte) ([]byte, error) {
	sem <- struct{}{}
	defer func() { <-sem }()
	if c == Zstd {
		zstdOnce.Do(func() {
			zstdBest, _ = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedBestCompression),
				zstd.WithEncoderConcurrency(cap(sem)), zstd.WithWindowSize(1<<20), zstd.WithZeroFrames(true))
		})
		return zstdBest.EncodeAll(src, make([]byte, 0, len(src)/3)), nil
	}
	var buf bytes.Buffer
	buf.Grow(len(src) / 3)
	var w io.WriteCloser
	var err error
	if c == Brotli {
		// Not pooled: a Reset brotli encoder allocates its tables anew,
		// and they are sized by the window, which is fitted to src.
		w = brotli.NewWriterOptions(&buf, brotli.WriterOptions{Quality: cachedBrotli, LGWin: brotliFit(len(src))})
	} else if w, err = writer(c, &buf, true); err != nil {
		return nil, err
	}
	_, err = w.Write(src)
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// writer takes a pooled encoder for c, or makes one.
func writer(c Coding, w io.Writer, best bool) (*pooled, error) {
	b := 0
	if best {
		b = 1
	}
	pool := &pools[b][c]
	if rw, ok := pool.Get().(resetWriter); ok {
		rw.Reset(w)
		return &pooled{resetWriter: rw, pool: pool}, nil
	}
	var rw resetWriter
	var err error
	switch c {
	case Brotli:
		q := streamBrotli
		if best {
			q = cachedBrotli
		}
		rw = brotli.NewWriterOptions(w, brotli.WriterOptions{Quality: q, LGWin: brotliWindow})
	case Gzip:
		level := gzip.DefaultCompression
		if best {
			level = gzip.BestCompression
		}
		rw, err = gzip.NewWriterLevel(w, level)
	case Deflate:
		level := zlib.DefaultCompression
		if best {
			level = zlib.BestCompression
		}
		rw, err = zlib.NewWriterLevel(w, level)
	default:
		return nil, fmt.Errorf("compress: no encoder for %s", c)
	}
	if err != nil {
		return nil, err
	}
	return &pooled{resetWriter: rw, pool: pool}, nil
}

// pooled returns its encoder to the pool when closed, and then the room
// it held in the streaming budget.
type pooled struct {
	resetWriter
	pool *sync.Pool
	res  *Reservation // streaming encoders only
}

func (p *pooled) Close() error {
	if p.resetWriter == nil {
		return nil
	}
	err := p.resetWriter.Close()
	p.resetWriter.Reset(nil)
	p.pool.Put(p.resetWriter)
	p.resetWriter = nil
	p.res.Release()
	return err
}
