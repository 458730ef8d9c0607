// Package h2 is an HTTP/2 server (RFC 9113) for the requests a static
// server sees, the counterpart of h1 for HTTP/1.1: it serves the
// connections that negotiated "h2" over TLS with the same http.Handler
// as net/http would. The wire format is golang.org/x/net/http2's Framer
// and hpack; the stream states, flow control, settings and shutdown are
// here. One goroutine per connection reads and owns the frame loop.
// A request without a body has its handler run on that goroutine: a
// response the handler has ready (serve's cache: headers and body in
// memory) is encoded into the write queue and leaves with the others of
// the same read in one write, with no goroutine, worker or lock handoff
// of its own. A handler that has to wait (for the client's flow-control
// window, a file read through ReadFrom, or anything longer than
// InlineLimit to twice that, such as an auth hash or a stream encoder) hands the
// reading over to a new goroutine and finishes as one of the bounded
// workers, so the connection's other streams go on. Requests with a body
// go to the workers at once. Every table and queue a client can fill
// has a bound (see Bounds in the doc of Server).
package h2

import (
	"context"
	"crypto/tls"
	"log"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"appliance/internal/clock"
)

// Defaults of the limits a zero Server field stands for.
const (
	defaultMaxConcurrentStreams = 100
	DefaultWorkers              = 1024
	// DefaultStallTimeout bounds a response that waits on the client's
	// flow-control window, or a write to the socket, when WriteTimeout is 0.
	DefaultStallTimeout = time.Minute
	DefaultInlineLimit  = time.Millisecond
)

// Server serves HTTP/2 connections handed to ServeConn.
//
// Bounds: at most MaxConcurrentStreams streams open per connection, and
// as many handlers running (streams the client reset count until their
// handler returns); at most Workers handlers running over all
// connections; a header list of at most MaxHeaderBytes (HPACK-decoded,
// 32 bytes a field extra, RFC 9113 6.5.2), read from at most
// maxHeaderBlockBytes of HEADERS and CONTINUATION frames; at most
// maxPendingWrite bytes of frames queued for the socket before readers
// and handlers wait; at most one handler per connection on its reader
// beyond Workers (a handler that must wait leaves it only while fewer
// than Workers run, else the reader waits with it, up to WriteTimeout);
// a response body buffered up to one frame; a request
// body buffered up to the stream window (64 KiB); each response done
// within WriteTimeout, or its stream is reset.
type Server struct {
	Handler           http.Handler
	ReadHeaderTimeout time.Duration // the client preface after the handshake
	IdleTimeout       time.Duration // a connection with no stream open
	WriteTimeout      time.Duration // one response; 0: DefaultStallTimeout
	MaxHeaderBytes    int           // the header list; 0: http.DefaultMaxHeaderBytes
	// MaxConcurrentStreams is advertised in SETTINGS (0: the default).
	MaxConcurrentStreams uint32
	// Workers bounds the handlers running at once over all connections
	// (0: DefaultWorkers); a stream waits for one without holding up its
	// connection's other streams.
	Workers int
	// InlineLimit is how long a handler may run on its connection's
	// reader before the reading is handed to another goroutine (once it
	// has run between InlineLimit and twice that: a watchdog looks every
	// InlineLimit, there is no clock read per handler), so that one that
	// waits (an auth hash, a stream encoder) holds the connection's other
	// streams up no longer; 0: DefaultInlineLimit. Benchmarks under
	// valgrind, which runs handlers 50 times slower, lift it.
	InlineLimit time.Duration
	ErrorLog    *log.Logger

	start sync.Once
	// The worker pool: a queue of streams, and how many workers run
	// and wait.
	qmu        sync.Mutex
	qcond      sync.Cond
	queue      []job
	running    int
	idle       int
	maxWorkers int
	mu         sync.Mutex
	conns      map[*conn]struct{}
	closing    atomic.Bool
	done       chan struct{}
	date       atomic.Pointer[string]
	// now is the reaper's clock, the time of its last tick (unix
	// nanoseconds): what the coarse deadlines start from (clock).
	now atomic.Int64
	// maxPendingSeen is the longest a write queue has been, and handoffs
	// how many handlers left their connection's reader, for the tests.
	maxPendingSeen atomic.Int64
	handoffs       atomic.Int64
}

const tick = 250 * time.Millisecond

func (s *Server) init() {
	s.start.Do(func() {
		n := s.Workers
		if n <= 0 {
			n = DefaultWorkers
		}
		s.maxWorkers = n
		s.qcond.L = &s.qmu
		s.conns = map[*conn]struct{}{}
		s.done = make(chan struct{})
		s.tickAt(time.Now())
		go s.reaper()
	})
}

func (s *Server) maxStreams() uint32 {
	if s.MaxConcurrentStreams == 0 {
		return defaultMaxConcurrentStreams
	}
	return s.MaxConcurrentStreams
}

func (s *Server) maxHeaderBytes() uint32 {
	if s.MaxHeaderBytes <= 0 {
		return http.DefaultMaxHeaderBytes
	}
	return uint32(s.MaxHeaderBytes)
}

func (s *Server) inlineLimit() time.Duration {
	if s.InlineLimit <= 0 {
		return DefaultInlineLimit
	}
	return s.InlineLimit
}

func (s *Server) stallTimeout() time.Duration {
	if s.WriteTimeout <= 0 {
		return DefaultStallTimeout
	}
	return s.WriteTimeout
}

// ServeConn serves HTTP/2 on nc, whose TLS handshake negotiated "h2"
// (tlsState), until the connection ends; remote is the client address
// requests carry (the peer's, or a PROXY header's). Requests carry ctx's
// values. It closes nc.
func (s *Server) ServeConn(ctx context.Context, nc net.Conn, tlsState *tls.ConnectionState, remote string) {
	s.init()
	c := newConn(s, nc, tlsState, remote)
	c.ctx, c.cancel = context.WithCancel(context.WithValue(ctx, http.LocalAddrContextKey, nc.LocalAddr()))
	c.reqBase = (&http.Request{Proto: "HTTP/2.0", ProtoMajor: 2, Body: http.NoBody, RemoteAddr: remote}).WithContext(c.ctx)
	s.mu.Lock()
	if s.closing.Load() {
		s.mu.Unlock()
		nc.Close()
		return
	}
	s.conns[c] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
	}()
	c.serve()
}

// job is a stream's handler to run.
type job struct {
	c  *conn
	st *stream
	r  *http.Request
	h  http.Handler
}

// maxIdleWorkers is how many workers wait for work; the others end
// when the queue is empty.
const maxIdleWorkers = 64

// dispatch queues j for a worker, starting one while fewer than
// Workers run: workers serve stream after stream, their stacks grown
// already, instead of a goroutine per stream, and a stream waits in the
// queue (bounded by the streams of all connections) while all are busy.
func (s *Server) dispatch(j job) {
	s.qmu.Lock()
	s.queue = append(s.queue, j)
	if s.idle > 0 {
		s.qcond.Signal()
	} else if s.running < s.maxWorkers {
		s.running++
		go s.worker()
	}
	s.qmu.Unlock()
}

// busyLocked is how many handlers run as workers: running counts the
// idle workers waiting in the pool too, which run none. qmu is held.
func (s *Server) busyLocked() int {
	return s.running - s.idle
}

// takeWorker counts a handler that left its connection's reader to
// wait (handOffLocked) as a worker, reporting false when Workers run
// handlers (idle workers in the pool do not count: TestIdleWorkersLeaveRoom).
func (s *Server) takeWorker() bool {
	s.qmu.Lock()
	defer s.qmu.Unlock()
	if s.busyLocked() >= s.maxWorkers {
		return false
	}
	s.running++
	return true
}

// saturated reports whether every worker runs a handler: then responses
// stalled on a client's flow-control window are reset sooner (conn.reap).
func (s *Server) saturated() bool {
	s.qmu.Lock()
	defer s.qmu.Unlock()
	return s.busyLocked() >= s.maxWorkers
}

// releaseWorker ends what takeWorker counted.
func (s *Server) releaseWorker() {
	s.qmu.Lock()
	s.running--
	s.qmu.Unlock()
}

func (s *Server) worker() {
	s.qmu.Lock()
	for {
		for len(s.queue) == 0 {
			if s.idle >= maxIdleWorkers {
				s.running--
				s.qmu.Unlock()
				return
			}
			s.idle++
			s.qcond.Wait()
			s.idle--
		}
		j := s.queue[0]
		s.queue[0] = job{}
		s.queue = s.queue[1:]
		if len(s.queue) == 0 {
			s.queue = s.queue[:0:0]
		}
		s.qmu.Unlock()
		j.c.runHandler(j.st, j.r, j.h, nil)
		s.qmu.Lock()
	}
}

// reaper enforces the coarse deadlines of every connection (preface,
// idle, stalled writes and responses) and renews the Date header.
func (s *Server) reaper() {
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-s.done:
			return
		case now := <-t.C:
			s.tickAt(now)
			s.mu.Lock()
			conns := make([]*conn, 0, len(s.conns))
			for c := range s.conns {
				conns = append(conns, c)
			}
			s.mu.Unlock()
			busy := s.saturated()
			for _, c := range conns {
				c.reap(clock.MonoAt(now), busy)
			}
		}
	}
}

// tickAt renews the clock and, once a second, the Date header.
func (s *Server) tickAt(now time.Time) {
	s.now.Store(clock.MonoAt(now))
	d := now.UTC().Format(http.TimeFormat)
	if old := s.date.Load(); old == nil || *old != d {
		s.date.Store(&d) // a new pointer only when it changes (conn.date)
	}
}

// clock is the time, to a tick and never early (the next tick of the
// reaper's clock), on clock.Mono's monotonic clock (a step of the wall
// clock, NTP setting a Pi's, neither cuts every connection nor lifts
// the deadlines): what the coarse deadlines (a
// response's, the idle timeout, a stuck write) start from, without a
// clock read per request; the reaper sees them only at its ticks.
func (s *Server) clock() int64 {
	return s.now.Load() + int64(tick)
}

// Shutdown sends GOAWAY on every connection, lets the streams in flight
// finish, and returns when all connections have closed or ctx ends (then
// it closes them).
func (s *Server) Shutdown(ctx context.Context) error {
	s.init()
	s.closing.Store(true)
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		s.mu.Lock()
		n := len(s.conns)
		for c := range s.conns {
			c.goAway()
		}
		s.mu.Unlock()
		if n == 0 {
			s.stop()
			return nil
		}
		select {
		case <-ctx.Done():
			s.Close()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// Close closes every connection at once.
func (s *Server) Close() error {
	s.init()
	s.closing.Store(true)
	s.mu.Lock()
	for c := range s.conns {
		c.nc.Close()
	}
	s.mu.Unlock()
	s.stop()
	return nil
}

func (s *Server) stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-s.done:
	default:
		close(s.done)
	}
}

func (s *Server) logf(format string, args ...any) {
	if s.ErrorLog != nil {
		s.ErrorLog.Printf(format, args...)
	} else {
		log.Printf(format, args...)
	}
}
