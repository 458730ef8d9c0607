package h2

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"appliance/internal/clock"
)

const (
	// initialWindow is the flow-control window of RFC 9113 6.9.2, which
	// this server keeps for what it receives (it sends no
	// SETTINGS_INITIAL_WINDOW_SIZE): a request body is buffered up to it.
	initialWindow = 65535
	maxWindow     = 1<<31 - 1
	// maxPendingWrite is how many bytes of frames may wait for the socket
	// before the connection's reader and handlers wait for it to drain.
	maxPendingWrite = 64 << 10
	// maxEmptyFrames is how many DATA frames without payload or
	// END_STREAM a connection may send (CVE-2019-9518's empty frame
	// flood) before it is closed with ENHANCE_YOUR_CALM.
	maxEmptyFrames = 100
	// resetBudget is how many streams a connection may reset, or have
	// refused, while their answers are in progress, beyond one refunded
	// per stream answered in full (the rapid reset attack, CVE-2023-44487).
	resetBudget = 200
)

var (
	errStreamClosed = errors.New("h2: stream closed")
	errConnClosed   = errors.New("h2: connection closed")
	// errHeaderFlood is the read error of a frame, or of a HEADERS frame
	// with its CONTINUATION frames, longer than maxHeaderBlock: the
	// CONTINUATION flood of CVE-2024-27316, empty frames included.
	errHeaderFlood = errors.New("h2: header block too long")
)

// stream states (RFC 9113 5.1) this server keeps: idle and reserved
// streams have no record, and a closed one leaves the table.
type streamState uint8

const (
	stateOpen streamState = iota
	stateHalfClosedRemote
	stateClosed
)

// conn is one HTTP/2 connection. Its reader goroutine (serve) owns the
// frame reading; everything a handler may touch as well (streams, flow
// windows, the write queue, the HPACK encoder) is under mu.
type conn struct {
	s      *Server
	nc     net.Conn
	tls    *tls.ConnectionState
	remote string
	ctx    context.Context
	cancel context.CancelFunc
	br     *bufio.Reader
	budget int // bytes the frame being read may still take
	fr     *http2.Framer

	mu   sync.Mutex
	cond sync.Cond // window opened, stream closed, queue drained, conn failed
	// The write queue: frames are appended to out; one writer at a time
	// (flushing) swaps it with spare and writes it without mu.
	out, spare []byte
	flushing   bool
	flushStart int64 // unix nanoseconds
	werr       error
	// The HPACK encoder, without a dynamic table, writes into encBuf;
	// response heads are built in head from the encodings of fields
	// kept in fieldCache (by key and value, in fieldBytes) and of the
	// current Date; sizeSent: the table size update went out.
	enc        *hpack.Encoder
	encBuf     bytes.Buffer
	head       []byte
	fieldCache *[fieldSlots]fieldSlot
	evict      int
	fieldBytes []byte
	date       *string
	dateField  []byte
	sizeSent   bool

	streams      streamTable
	handlers     int // handlers running, those of reset streams included
	zombies      int // handlers running for streams that were reset
	maxClientID  uint32
	sendWindow   int64 // connection-level, for DATA we send
	initialSend  int64 // the peer's SETTINGS_INITIAL_WINDOW_SIZE
	peerMaxFrame int
	recvWindow   int64 // connection-level, for DATA we receive
	unackedSets  int
	goAwaySent   bool
	goAwayID     uint32
	closed       bool
	killed       bool  // the reaper has closed the socket (its deadline passed)
	idleSince    int64 // unix nanoseconds; 0: streams are open
	prefaceBy    int64 // unix nanoseconds; 0: the preface arrived
	resets       int
	emptyFrames  int

	// The handler running on the reader (runInline), how many have run
	// there, whether the watchdog is armed and how many had run when it
	// last looked.
	inlineSt  *stream
	inlineSeq uint64
	watchOn   bool
	watchSeq  uint64
	watch     *time.Timer
	closedCh  chan struct{}

	// Owned by the goroutine that reads: whether the first SETTINGS came,
	// the request to run inline after the frame that opened it, and the
	// response writer inline handlers reuse.
	settled bool
	inline  job
	rw      *responseWriter
	// The header block being read, and the request every request of the
	// connection starts from (its context and address).
	hdec        *hpack.Decoder
	hdr         headerBlock
	validFields *[fieldSlots]hpack.HeaderField
	reqBase     *http.Request
	spareSt     *stream // a closed stream answered here, for the next
}

func newConn(s *Server, nc net.Conn, st *tls.ConnectionState, remote string) *conn {
	c := &conn{
		s: s, nc: nc, tls: st, remote: remote,
		sendWindow:   initialWindow,
		initialSend:  initialWindow,
		peerMaxFrame: 16384,
		recvWindow:   initialWindow,
		resets:       resetBudget,
		out:          make([]byte, 0, 4096),
		spare:        make([]byte, 0, 4096),
	}
	c.cond.L = &c.mu
	c.closedCh = make(chan struct{})
	c.watch = time.AfterFunc(time.Hour, c.watchdog)
	c.watch.Stop()
	c.br = bufio.NewReaderSize(nc, 16<<10)
	c.fr = http2.NewFramer((*queueWriter)(c), (*budgetReader)(c))
	c.fr.SetReuseFrames()
	c.fr.SetMaxReadFrameSize(16384) // what we advertise: the default (RFC 9113 4.2)
	c.hdec = hpack.NewDecoder(4096, c.emitField)
	c.hdec.SetMaxStringLength(int(s.maxHeaderBytes()))
	c.enc = hpack.NewEncoder(&c.encBuf)
	c.enc.SetMaxDynamicTableSize(0)
	return c
}

// maxHeaderBlock is the most a frame, or a HEADERS frame with its
// CONTINUATION frames, may take on the wire.
func (c *conn) maxHeaderBlock() int {
	return 2*int(c.s.maxHeaderBytes()) + 16384 + 64
}

// budgetReader reads the socket for the Framer within c.budget.
type budgetReader conn

func (r *budgetReader) Read(p []byte) (int, error) {
	c := (*conn)(r)
	if c.budget <= 0 {
		return 0, errHeaderFlood
	}
	if len(p) > c.budget {
		p = p[:c.budget]
	}
	n, err := c.br.Read(p)
	c.budget -= n
	return n, err
}

// queueWriter appends the Framer's frames to the write queue; mu is held.
type queueWriter conn

func (w *queueWriter) Write(p []byte) (int, error) {
	c := (*conn)(w)
	c.out = append(c.out, p...)
	return len(p), nil
}

// notePendingLocked records the write queue's length for the tests
// (Server.maxPendingSeen) where it peaks: when a writer takes it, and
// after the frames a client makes the server send (boundQueueLocked);
// not on every frame. mu is held.
func (c *conn) notePendingLocked() {
	if n := int64(len(c.out)); n > c.s.maxPendingSeen.Load() {
		c.s.maxPendingSeen.Store(n) // under c.mu: racy across connections, exact for one
	}
}

// serve reads and processes the connection's frames until it ends.
func (c *conn) serve() {
	if !c.preface() {
		c.close()
		return
	}
	if c.readFrames() {
		// A handler of ours had to wait and the reading went on in
		// another goroutine: ServeConn returns once the connection ends.
		<-c.closedCh
	}
}

// preface sends the server's SETTINGS and reads the client preface.
func (c *conn) preface() bool {
	c.mu.Lock()
	if d := c.s.ReadHeaderTimeout; d > 0 {
		c.prefaceBy = clock.Mono() + int64(d)
	}
	// RFC 9113 3.4: the server's preface is a SETTINGS frame.
	c.fr.WriteSettings(
		http2.Setting{ID: http2.SettingMaxConcurrentStreams, Val: c.s.maxStreams()},
		http2.Setting{ID: http2.SettingMaxHeaderListSize, Val: c.s.maxHeaderBytes()},
	)
	c.unackedSets++
	c.idleSince = c.s.clock()
	err := c.flushLocked()
	c.mu.Unlock()
	if err != nil {
		return false
	}
	var preface [len(http2.ClientPreface)]byte
	if _, err := io.ReadFull(c.br, preface[:]); err != nil || string(preface[:]) != http2.ClientPreface {
		return false
	}
	c.mu.Lock()
	c.prefaceBy = 0
	c.mu.Unlock()
	return true
}

// readFrames reads and processes frames, and runs the handlers of the
// requests that carry no body on this goroutine (runInline), until the
// connection ends (it closes it and returns false) or a handler that
// waits hands the reading over to another goroutine (true, once that
// handler returned).
func (c *conn) readFrames() bool {
	for {
		if !c.hdr.open { // a header block's frames share one budget
			c.budget = c.maxHeaderBlock()
		}
		f, err := c.fr.ReadFrame()
		if err == nil {
			if _, ok := f.(*http2.SettingsFrame); !c.settled && !ok {
				err = http2.ConnectionError(http2.ErrCodeProtocol) // RFC 9113 3.4
			} else {
				c.settled = true
				err = c.processFrame(f)
			}
		}
		if err != nil && !c.handleError(f, err) {
			c.mu.Lock()
			sent := c.goAwaySent
			c.mu.Unlock()
			if sent {
				c.linger()
			}
			c.close()
			return false
		}
		if j := c.inline; j.st != nil {
			c.inline = job{}
			if c.runInline(j) {
				return true
			}
		}
		if c.br.Buffered() == 0 {
			c.mu.Lock()
			if c.watchOn { // no handler on the reader while it waits to read
				c.watchOn = false
				c.watch.Stop()
			}
			err := c.flushLocked()
			c.mu.Unlock()
			if err != nil {
				c.close()
				return false
			}
		}
	}
}

// runInline runs a stream's handler on the reader goroutine: a response
// from the cache is encoded into the write queue and leaves with the
// others of the same read, without a worker, a goroutine switch or a
// write of its own. A handler that must wait (for the flow-control
// window, a file, or longer than InlineLimit) hands the reading over to
// a new goroutine (handOffLocked) and goes on as a worker; runInline
// then reports true once it returned.
func (c *conn) runInline(j job) bool {
	w := c.rw
	if w == nil {
		w = c.newResponseWriter()
		c.rw = w
	}
	w.reset(j.st, j.r)
	c.mu.Lock()
	c.inlineSt = j.st
	c.inlineSeq++
	if !c.watchOn {
		c.watchOn, c.watchSeq = true, c.inlineSeq
		c.watch.Reset(c.s.inlineLimit())
	}
	c.mu.Unlock()
	if c.runHandler(j.st, j.r, j.h, w) { // else handed over, and the new reader's
		w.release()
		return false
	}
	c.s.releaseWorker()
	return true
}

// watchdog hands the reading over when the handler on the reader is the
// one it saw there when it last looked, InlineLimit ago, or when it was
// armed; it is armed while the reader runs handlers.
func (c *conn) watchdog() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.inlineSt == nil {
		c.watchOn = false
		return
	}
	if c.inlineSeq != c.watchSeq { // another handler since: look again
		c.watchSeq = c.inlineSeq
		c.watch.Reset(c.s.inlineLimit())
		return
	}
	c.handOffLocked(c.inlineSt)
	c.watchOn = false
}

// handOffLocked lets st's handler, if it runs on the reader, wait: a new
// goroutine reads on, and the handler counts as one of the Workers from
// here. With all Workers busy it stays on the reader, which then waits
// with it (for at most the stream's deadline). mu is held.
func (c *conn) handOffLocked(st *stream) {
	if c.inlineSt != st || st == nil || !c.s.takeWorker() {
		return
	}
	c.inlineSt = nil
	c.rw = nil // the handler keeps its writer: the next reader makes one
	c.s.handoffs.Add(1)
	go c.readFrames()
}

// handleError answers a frame's error: RST_STREAM for a stream error,
// GOAWAY for a connection error; it reports whether the connection goes
// on.
func (c *conn) handleError(f http2.Frame, err error) bool {
	var se http2.StreamError
	var ce http2.ConnectionError
	switch {
	case errors.As(err, &se):
		c.mu.Lock()
		if f == nil {
			// A malformed frame opened its stream, which is now closed.
			if se.StreamID%2 == 1 && se.StreamID > c.maxClientID && !c.goAwaySent {
				c.maxClientID = se.StreamID
			}
		}
		c.resetLocked(se.StreamID, se.Code)
		c.mu.Unlock()
		return true
	case errors.As(err, &ce):
		c.fail(http2.ErrCode(ce))
	case errors.Is(err, http2.ErrFrameTooLarge):
		c.fail(http2.ErrCodeFrameSize)
	case errors.Is(err, errHeaderFlood):
		c.fail(http2.ErrCodeEnhanceYourCalm)
	}
	return false
}

// fail ends the connection with a GOAWAY carrying code (RFC 9113 5.4.1).
func (c *conn) fail(code http2.ErrCode) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.werr != nil {
		return
	}
	c.fr.WriteGoAway(c.maxClientID, code, nil)
	c.goAwaySent, c.goAwayID = true, c.maxClientID
	c.flushLocked()
}

// linger closes the sending side after a GOAWAY and reads and drops
// what the client still sends, for at most lingerTime: closed with
// unread bytes, a socket answers with a reset, and the client may lose
// the GOAWAY on its way.
func (c *conn) linger() {
	c.closeWrite()
	c.nc.SetReadDeadline(time.Now().Add(lingerTime))
	io.Copy(io.Discard, c.br)
}

// lingerTime is how long a connection closed on an error goes on
// reading what the client still sends.
const lingerTime = time.Second

// close ends the connection: handlers still running see their writes
// fail, and request bodies end.
func (c *conn) close() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	close(c.closedCh)
	c.watch.Stop()
	if c.werr == nil {
		c.werr = errConnClosed
	}
	for _, st := range slices.Clone(c.streams.all()) {
		c.closeStreamLocked(st)
	}
	c.cond.Broadcast()
	c.mu.Unlock()
	c.cancel()
	c.nc.Close()
}

// goAway starts a graceful shutdown of the connection (RFC 9113 6.8):
// GOAWAY with the last stream it will serve; the connection closes once
// those are answered.
func (c *conn) goAway() {
	c.mu.Lock()
	if c.goAwaySent || c.werr != nil {
		c.mu.Unlock()
		return
	}
	c.fr.WriteGoAway(c.maxClientID, http2.ErrCodeNo, nil)
	c.goAwaySent, c.goAwayID = true, c.maxClientID
	done := c.handlers == 0 && c.streams.len() == 0
	c.mu.Unlock()
	go c.flushAndMaybeClose(done)
}

// flushAndMaybeClose sends what is queued and, with done, closes the
// connection; it runs on its own goroutine, so that the reaper and
// Shutdown never wait on a client's socket.
func (c *conn) flushAndMaybeClose(done bool) {
	c.mu.Lock()
	c.flushLocked()
	// flushLocked leaves what another goroutine is writing to it: before
	// a close, wait until everything is out.
	for done && c.werr == nil && (c.flushing || len(c.out) > 0) {
		if c.flushing {
			c.cond.Wait()
		} else {
			c.flushLocked()
		}
	}
	c.mu.Unlock()
	if done {
		// The reader reads on until the client closes too, or for
		// lingerTime: closed with unread bytes (the client's
		// WINDOW_UPDATEs), a socket answers with a reset, and the client
		// may lose the end of what was sent.
		if c.closeWrite() {
			c.nc.SetReadDeadline(time.Now().Add(lingerTime))
		} else {
			c.nc.Close()
		}
	}
}

// closeWrite sends TLS close_notify and a TCP FIN, reporting whether it
// could.
func (c *conn) closeWrite() bool {
	tc, ok := c.nc.(*tls.Conn)
	if !ok || tc.CloseWrite() != nil {
		return false
	}
	if tcp, ok := tc.NetConn().(*net.TCPConn); ok {
		tcp.CloseWrite()
	}
	return true
}

// flushLocked writes the queued frames, unless another goroutine is at
// it (which then writes these too). mu is held, and released during the
// write.
func (c *conn) flushLocked() error {
	for c.flushing {
		if c.werr != nil {
			return c.werr
		}
		if len(c.out) < maxPendingWrite {
			return nil // the writer at work takes these along
		}
		c.cond.Wait()
	}
	if c.werr != nil {
		return c.werr
	}
	c.flushing = true
	for len(c.out) > 0 && c.werr == nil {
		c.notePendingLocked()
		b := c.out
		c.out = c.spare[:0]
		c.flushStart = c.s.clock()
		c.mu.Unlock()
		_, err := c.nc.Write(b)
		c.mu.Lock()
		c.spare = b[:0]
		if err != nil && c.werr == nil {
			c.werr = err
		}
		c.cond.Broadcast()
	}
	c.flushing = false
	c.flushStart = 0
	c.cond.Broadcast()
	return c.werr
}

// stalledUnderLoad is how long a response may wait for the client's
// flow-control window while every worker is busy.
const stalledUnderLoad = time.Second

// reap enforces the deadlines: the preface, a write stuck on the socket,
// responses past WriteTimeout (their streams are reset), and the idle
// timeout (GOAWAY). While every worker is busy (busy), a response that
// has waited over stalledUnderLoad for the client's flow-control window
// is reset too: clients that never open their windows must not hold the
// workers other clients' responses need until WriteTimeout.
func (c *conn) reap(now int64, busy bool) {
	stall := int64(c.s.stallTimeout())
	c.mu.Lock()
	kill := !c.killed && (c.prefaceBy != 0 && now > c.prefaceBy || c.flushing && now-c.flushStart > stall)
	c.killed = c.killed || kill
	reset := false
	for _, st := range slices.Clone(c.streams.all()) {
		if st.deadline != 0 && now > st.deadline {
			c.resetLocked(st.id, http2.ErrCodeInternal)
			reset = true
		} else if busy && st.stalledAt != 0 && now-st.stalledAt > int64(stalledUnderLoad) {
			c.resetLocked(st.id, http2.ErrCodeEnhanceYourCalm)
			reset = true
		}
	}
	idle := c.idleSince != 0 && c.s.IdleTimeout > 0 && now-c.idleSince > int64(c.s.IdleTimeout)
	c.mu.Unlock()
	if kill {
		// Closing a TLS connection may wait on the client (the close
		// drains what it sent for up to a second): never on the reaper,
		// which every connection's deadlines wait for.
		go c.nc.Close()
		return
	}
	if reset {
		go c.flushAndMaybeClose(false) // the RST_STREAM, whoever else writes
	}
	if idle {
		c.goAway()
	}
}

// state returns a stream's state and record (RFC 9113 5.1); idle
// streams have none, and closed ones no longer.
func (c *conn) state(id uint32) (*stream, bool) {
	if st := c.streams.get(id); st != nil {
		return st, false
	}
	idle := id%2 == 0 || id > c.maxClientID
	return nil, idle
}

func (c *conn) processFrame(f http2.Frame) error {
	switch f.(type) {
	case *http2.HeadersFrame, *http2.ContinuationFrame:
		if done, err := c.readHeaders(f); !done {
			return err
		}
	}
	// After a GOAWAY, frames of streams past its last one are dropped,
	// but their flow control and HPACK state still count (RFC 9113 6.8).
	c.mu.Lock()
	past := c.goAwaySent && f.Header().StreamID > c.goAwayID
	c.mu.Unlock()
	if past {
		if df, ok := f.(*http2.DataFrame); ok {
			return c.refundConn(df.Length)
		}
		return nil
	}
	switch f := f.(type) {
	case *http2.SettingsFrame:
		return c.processSettings(f)
	case *http2.HeadersFrame, *http2.ContinuationFrame:
		return c.processHeaders(&c.hdr)
	case *http2.DataFrame:
		return c.processData(f)
	case *http2.WindowUpdateFrame:
		return c.processWindowUpdate(f)
	case *http2.PingFrame:
		if f.IsAck() {
			return nil // RFC 9113 6.7: never answered
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		c.fr.WritePing(true, f.Data)
		return c.boundQueueLocked()
	case *http2.RSTStreamFrame:
		return c.processReset(f)
	case *http2.PriorityFrame:
		// RFC 9113 5.3.1: a stream cannot depend on itself; priorities
		// are otherwise ignored (5.3.2 lets a server do so).
		if f.StreamDep == f.StreamID {
			return http2.StreamError{StreamID: f.StreamID, Code: http2.ErrCodeProtocol}
		}
		return nil
	case *http2.GoAwayFrame:
		c.goAway()
		return nil
	case *http2.PushPromiseFrame:
		return http2.ConnectionError(http2.ErrCodeProtocol) // RFC 9113 8.4
	}
	return nil // unknown frame types are ignored (RFC 9113 4.1)
}

// boundQueueLocked keeps the write queue within maxPendingWrite for
// frames the client makes the server send (SETTINGS and PING
// acknowledgements, WINDOW_UPDATE): past it, the reader writes them out
// itself, or waits, and so reads no more until the client reads.
func (c *conn) boundQueueLocked() error {
	c.notePendingLocked()
	if len(c.out) < maxPendingWrite {
		return nil
	}
	return c.flushLocked()
}

// processSettings applies the peer's SETTINGS (RFC 9113 6.5) and
// acknowledges them.
func (c *conn) processSettings(f *http2.SettingsFrame) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if f.IsAck() {
		if c.unackedSets == 0 {
			return http2.ConnectionError(http2.ErrCodeProtocol)
		}
		c.unackedSets--
		return nil
	}
	// Repeated settings are applied in order (RFC 9113 6.5.3); a frame
	// of more than 100 is refused, as net/http does.
	if f.NumSettings() > 100 {
		return http2.ConnectionError(http2.ErrCodeProtocol)
	}
	err := f.ForeachSetting(func(s http2.Setting) error {
		if err := s.Valid(); err != nil {
			return err
		}
		// SETTINGS_HEADER_TABLE_SIZE needs nothing: the encoder keeps
		// no dynamic table, which every size allows.
		switch s.ID {
		case http2.SettingInitialWindowSize:
			// RFC 9113 6.9.2: the change applies to every open stream.
			delta := int64(s.Val) - c.initialSend
			for _, st := range c.streams.all() {
				st.sendWindow += delta
				if st.sendWindow > maxWindow {
					return http2.ConnectionError(http2.ErrCodeFlowControl)
				}
			}
			c.initialSend = int64(s.Val)
			c.cond.Broadcast()
		case http2.SettingMaxFrameSize:
			c.peerMaxFrame = int(s.Val)
		}
		return nil
	})
	if err != nil {
		return err
	}
	c.fr.WriteSettingsAck()
	return c.boundQueueLocked()
}

func (c *conn) processWindowUpdate(f *http2.WindowUpdateFrame) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if f.StreamID == 0 {
		c.sendWindow += int64(f.Increment)
		if c.sendWindow > maxWindow {
			return http2.ConnectionError(http2.ErrCodeFlowControl)
		}
	} else {
		st, idle := c.state(f.StreamID)
		if idle {
			return http2.ConnectionError(http2.ErrCodeProtocol)
		}
		if st == nil {
			return nil // a closed stream's window: no error (RFC 9113 6.9)
		}
		st.sendWindow += int64(f.Increment)
		if st.sendWindow > maxWindow {
			return http2.StreamError{StreamID: f.StreamID, Code: http2.ErrCodeFlowControl}
		}
	}
	c.cond.Broadcast()
	return nil
}

func (c *conn) processReset(f *http2.RSTStreamFrame) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	st, idle := c.state(f.StreamID)
	if idle {
		return http2.ConnectionError(http2.ErrCodeProtocol) // RFC 9113 6.4
	}
	if st == nil {
		return nil
	}
	if st.running {
		if c.resets--; c.resets < 0 {
			return http2.ConnectionError(http2.ErrCodeEnhanceYourCalm)
		}
	}
	c.closeStreamLocked(st)
	return nil
}

// refundConn takes n bytes of a DATA frame from the connection's receive
// window and gives them back once half the window is used: the streams'
// windows bound what is buffered.
func (c *conn) refundConn(n uint32) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if int64(n) > c.recvWindow {
		return http2.ConnectionError(http2.ErrCodeFlowControl)
	}
	c.recvWindow -= int64(n)
	if pending := initialWindow - c.recvWindow; pending >= initialWindow/2 {
		c.fr.WriteWindowUpdate(0, uint32(pending))
		c.recvWindow = initialWindow
	}
	return c.boundQueueLocked()
}

func (c *conn) processData(f *http2.DataFrame) error {
	id := f.StreamID
	if err := c.refundConn(f.Length); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	st, idle := c.state(id)
	if idle {
		return http2.ConnectionError(http2.ErrCodeProtocol) // RFC 9113 5.1
	}
	if st == nil || st.state != stateOpen {
		return http2.StreamError{StreamID: id, Code: http2.ErrCodeStreamClosed}
	}
	if int64(f.Length) > st.recvWindow {
		return http2.StreamError{StreamID: id, Code: http2.ErrCodeFlowControl}
	}
	st.recvWindow -= int64(f.Length)
	data := f.Data()
	if len(data) == 0 && !f.StreamEnded() {
		if c.emptyFrames++; c.emptyFrames > maxEmptyFrames {
			return http2.ConnectionError(http2.ErrCodeEnhanceYourCalm)
		}
	}
	st.received += int64(len(data))
	if st.declared >= 0 && st.received > st.declared {
		return http2.StreamError{StreamID: id, Code: http2.ErrCodeProtocol} // RFC 9113 8.1.1
	}
	if pad := int64(f.Length) - int64(len(data)); pad > 0 {
		st.recvWindow += pad
		c.fr.WriteWindowUpdate(id, uint32(pad))
	}
	st.body.write(data)
	if st.ended && len(data) > 0 && !f.StreamEnded() {
		// Answered already: nobody reads the rest, give its window back.
		st.recvWindow += int64(len(data))
		c.fr.WriteWindowUpdate(id, uint32(len(data)))
	}
	if f.StreamEnded() {
		return c.endRequestLocked(st)
	}
	return nil
}

// endRequestLocked ends st's request body (END_STREAM on DATA or
// trailers): its length must be the declared one (RFC 9113 8.1.1), and
// the stream closes if its response has ended too.
func (c *conn) endRequestLocked(st *stream) error {
	if st.declared >= 0 && st.received != st.declared {
		return http2.StreamError{StreamID: st.id, Code: http2.ErrCodeProtocol}
	}
	st.body.closeWithError(io.EOF)
	st.state = stateHalfClosedRemote
	if st.ended {
		c.closeStreamLocked(st)
	}
	return nil
}

// resetLocked sends RST_STREAM for id and closes its stream.
func (c *conn) resetLocked(id uint32, code http2.ErrCode) {
	if c.werr != nil {
		return
	}
	c.fr.WriteRSTStream(id, code)
	if st := c.streams.get(id); st != nil {
		c.closeStreamLocked(st)
	}
}

// closeStreamLocked closes st: its handler's writes fail from here on.
func (c *conn) closeStreamLocked(st *stream) {
	if st.state == stateClosed {
		return
	}
	st.state = stateClosed
	st.deadline = 0
	if st.running && !st.ended {
		st.zombie = true
		c.zombies++
	}
	c.streams.remove(st.id)
	if st.body != nil {
		st.body.closeWithError(errStreamClosed)
	}
	c.cond.Broadcast()
	c.noteIdleLocked()
}

// noteIdleLocked starts the idle timeout once nothing is in progress,
// and ends a connection that is going away once its streams are done.
func (c *conn) noteIdleLocked() {
	if c.streams.len() > 0 || c.handlers > 0 {
		return
	}
	c.idleSince = c.s.clock()
	if c.goAwaySent && !c.closed {
		go c.flushAndMaybeClose(true)
	}
}
