package main

import (
	"bytes"
	"log/slog"
	"sync"
)

// recentLogBytes is how much of the server's own log the admin
// listener's /log keeps: the last 64 KiB of lines, some 400 to 600.
const recentLogBytes = 64 << 10

// logRing keeps the last max bytes of what is written to it, whole
// lines only. It holds at most 2*max bytes: it trims to max when it
// passes that, not on every write.
type logRing struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func newLogRing(max int) *logRing { return &logRing{max: max} }

// Write takes one or more whole lines, as slog's handlers write them; a
// line longer than max is cut to max.
func (r *logRing) Write(p []byte) (int, error) {
	n := len(p)
	if len(p) > r.max {
		p = append(p[:r.max-1:r.max-1], '\n')
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.buf = append(r.buf, p...)
	if len(r.buf) > 2*r.max {
		r.buf = append(r.buf[:0], r.tail()...)
	}
	return n, nil
}

// tail is the last max bytes of the buffer from a line's start.
func (r *logRing) tail() []byte {
	b := r.buf
	if len(b) <= r.max {
		return b
	}
	b = b[len(b)-r.max:]
	if i := bytes.IndexByte(b, '\n'); i >= 0 && r.buf[len(r.buf)-r.max-1] != '\n' {
		b = b[i+1:]
	}
	return b
}

// Bytes returns a copy of the kept lines, oldest first.
func (r *logRing) Bytes() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return bytes.Clone(r.tail())
}

// teeRecent returns a logger that writes to log and also, as text with
// the time, to a new ring of recentLogBytes.
func teeRecent(log *slog.Logger) (*slog.Logger, *logRing) {
	r := newLogRing(recentLogBytes)
	return slog.New(slog.NewMultiHandler(log.Handler(), slog.NewTextHandler(r, nil))), r
}
