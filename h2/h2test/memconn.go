// Package h2test holds what benchmarks of the HTTP/2 server share: an
// in-memory client connection that feeds a server requests as fast as
// it reads them, so that a benchmark measures the server alone.
package h2test

import (
	"bytes"
	"io"
	"net"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// Batch is how many requests MemConn sends a read, as h2load -m10 keeps
// in flight.
const Batch = 10

// MemConn is a client that never waits: each Read hands the server the
// next batch of Batch requests (the same header list each time) and the
// connection window they take back; Writes are counted and dropped;
// after n requests it ends. Its own work allocates nothing per batch,
// so a benchmark's allocations are the server's.
type MemConn struct {
	net.Conn // nil: the methods below are the ones a server uses
	in       []byte
	batch    bytes.Buffer
	fr       *http2.Framer // writes into batch
	block    []byte        // a request's header block once the HPACK table holds its fields
	id       uint32
	left     int
	local    net.Addr
	// Written is how many bytes the server wrote.
	Written int64
}

// H2load is the header list h2load sends for a GET of path on
// authority (it asks for no content coding unless told).
func H2load(authority, path string) []hpack.HeaderField {
	return []hpack.HeaderField{{Name: ":method", Value: "GET"}, {Name: ":scheme", Value: "https"},
		{Name: ":authority", Value: authority}, {Name: ":path", Value: path}, {Name: "user-agent", Value: "h2load nghttp2/1.52.0"}}
}

// NewMemConn returns a client for n requests with the header list
// fields (no TLS: the server is given the connection's state apart),
// reached at local.
func NewMemConn(n int, local net.Addr, fields []hpack.HeaderField) *MemConn {
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	block := func() []byte {
		hb.Reset()
		for _, f := range fields {
			enc.WriteField(f)
		}
		return bytes.Clone(hb.Bytes())
	}
	m := &MemConn{local: local}
	m.fr = http2.NewFramer(&m.batch, nil)
	m.batch.WriteString(http2.ClientPreface)
	m.fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1 << 30})
	m.fr.WriteWindowUpdate(0, 1<<30)
	m.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block(), EndStream: true, EndHeaders: true})
	m.in, m.block, m.id, m.left = m.batch.Bytes(), block(), 3, n-1
	return m
}

// Left is how many requests the client has not sent yet.
func (m *MemConn) Left() int { return m.left }

func (m *MemConn) Read(p []byte) (int, error) {
	if len(m.in) == 0 {
		if m.left <= 0 {
			return 0, io.EOF
		}
		m.batch.Reset()
		for range min(Batch, m.left) {
			m.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: m.id, BlockFragment: m.block, EndStream: true, EndHeaders: true})
			m.id += 2
			m.left--
		}
		m.fr.WriteWindowUpdate(0, Batch<<10)
		m.in = m.batch.Bytes()
	}
	n := copy(p, m.in)
	m.in = m.in[n:]
	return n, nil
}

func (m *MemConn) Write(p []byte) (int, error)     { m.Written += int64(len(p)); return len(p), nil }
func (m *MemConn) Close() error                    { return nil }
func (m *MemConn) LocalAddr() net.Addr             { return m.local }
func (m *MemConn) SetReadDeadline(time.Time) error { return nil }
