package compress

import (
	"bytes"
	"fmt"
	"io"
	"runtime"

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
)

// sem bounds concurrent compressions: a burst of first requests after a
// deploy must not take every core or a small board's memory.
var sem = make(chan struct{}, max(1, runtime.GOMAXPROCS(0)))

// Encode compresses src with c at the level for cached variants.
func Encode(c Coding, src []byte) ([]byte, error) {
	sem <- struct{}{}
	defer func() { <-sem }()
	var buf bytes.Buffer
	buf.Grow(len(src) / 3)
	w, err := newWriter(c, &buf, true)
	if err != nil {
		return nil, err
	}
	if _, err := w.Write(src); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// NewWriter returns a streaming encoder for c writing to w, at the level
// for per-request compression. Close flushes it; it does not close w.
func NewWriter(c Coding, w io.Writer) (io.WriteCloser, error) {
	return newWriter(c, w, false)
}

func newWriter(c Coding, w io.Writer, best bool) (io.WriteCloser, error) {
	switch c {
	case Zstd:
		level := zstd.SpeedDefault
		if best {
			level = zstd.SpeedBestCompression
		}
		return zstd.NewWriter(w, zstd.WithEncoderLevel(level), zstd.WithEncoderConcurrency(1),
			zstd.WithWindowSize(1<<20), zstd.WithZeroFrames(true))
	case Brotli:
		level := streamBrotli
		if best {
			level = cachedBrotli
		}
		return brotli.NewWriterOptions(w, brotli.WriterOptions{Quality: level, LGWin: 20}), nil
	case Gzip:
		level := gzip.DefaultCompression
		if best {
			level = gzip.BestCompression
		}
		return gzip.NewWriterLevel(w, level)
	case Deflate:
		level := zlib.DefaultCompression
		if best {
			level = zlib.BestCompression
		}
		return zlib.NewWriterLevel(w, level)
	}
	return nil, fmt.Errorf("compress: no encoder for %s", c)
}
