package compress

import (
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"io"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/zstd"
)

var sample = []byte(strings.Repeat("<p>static sites, served exactly as RFC 9110 says</p>\n", 300))

func roundTrip(t testing.TB, c Coding, b []byte) []byte {
	var r io.Reader
	var err error
	switch c {
	case Gzip:
		r, err = gzip.NewReader(bytes.NewReader(b))
	case Deflate:
		r, err = zlib.NewReader(bytes.NewReader(b))
	case Brotli:
		r = brotli.NewReader(bytes.NewReader(b))
	case Zstd:
		d, _ := zstd.NewReader(bytes.NewReader(b))
		defer d.Close()
		r = d
	}
	if err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("%s: %v", c, err)
	}
	return out
}

// TestEncodersAreReusable compresses concurrently and repeatedly through
// the pooled encoders, one-shot and streaming; serve's tests decode with
// independent tools.
func TestEncodersAreReusable(t *testing.T) {
	defer SetStreamBudget(SetStreamBudget(1 << 30)) // 16 concurrent streams
	var wg sync.WaitGroup
	for c := range Identity {
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range 5 {
					src := sample[:len(sample)-i*100]
					out, err := Encode(c, src)
					if err != nil || !bytes.Equal(roundTrip(t, c, out), src) {
						t.Errorf("%s Encode: %v", c, err)
						return
					}
					var buf bytes.Buffer
					w, err := newWriter(c, &buf)
					if err != nil {
						t.Error(err)
						return
					}
					w.Write(src[:100])
					w.Write(src[100:])
					w.Close()
					if !bytes.Equal(roundTrip(t, c, buf.Bytes()), src) {
						t.Errorf("%s stream does not round-trip", c)
						return
					}
				}
			}()
		}
	}
	wg.Wait()
}

func BenchmarkEncodeSmall(b *testing.B) {
	for c := range Identity {
		b.Run(c.String(), func(b *testing.B) {
			b.ReportAllocs()
			for range b.N {
				Encode(c, sample[:800])
			}
		})
	}
}

// TestBrotliMemory: a cached brotli variant of a small file does not
// allocate the 34 MB tables of a full-window quality-9 encoder (a burst
// of first requests after a deploy would otherwise spike a small
// board's memory).
func TestBrotliMemory(t *testing.T) {
	src := bytes.Repeat([]byte("function serve(path) { return cache.get(path) || load(path); }\n"), 64) // 4 KiB
	Encode(Brotli, src)                                                                                 // warm up anything lazily made
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	out, err := Encode(Brotli, src)
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	if got := after.TotalAlloc - before.TotalAlloc; got > 4<<20 {
		t.Errorf("brotli of 4 KiB allocated %d bytes", got)
	}
	if brotliFit(len(src)) != 12 || brotliFit(1<<30) != brotliWindow || brotliFit(1) != 10 {
		t.Errorf("window for %d bytes: %d", len(src), brotliFit(len(src)))
	}
	if dec := roundTrip(t, Brotli, out); !bytes.Equal(dec, src) {
		t.Error("round trip")
	}
}
