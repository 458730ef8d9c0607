package h1

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"testing"
	"time"

	"appliance/internal/testnet"
)

// TestBatchConnTLS: records written through a batching connection arrive
// whole and in order, and Close delivers everything before close_notify.
func TestBatchConnTLS(t *testing.T) {
	client, raw := testnet.TCPPair(t)
	bc := newBatchConn(raw)
	srv := tls.Server(bc, &tls.Config{Certificates: []tls.Certificate{testCert(t)}})
	var want bytes.Buffer
	for i := range 3000 {
		fmt.Fprintf(&want, "record %d %s\n", i, bytes.Repeat([]byte{'x'}, i%700))
	}
	done := make(chan error, 1)
	go func() {
		if err := srv.Handshake(); err != nil {
			done <- err
			return
		}
		bc.batch()
		for line := range bytes.Lines(want.Bytes()) {
			if _, err := srv.Write(line); err != nil {
				done <- err
				return
			}
		}
		done <- srv.Close()
	}()
	tc := tls.Client(client, &tls.Config{InsecureSkipVerify: true})
	tc.SetDeadline(time.Now().Add(20 * time.Second))
	got, err := io.ReadAll(tc) // io.EOF only after close_notify
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if err := <-done; err != nil {
		t.Fatalf("server: %v", err)
	}
	if !bytes.Equal(got, want.Bytes()) {
		t.Fatalf("got %d bytes, want %d", len(got), want.Len())
	}
}

// TestBatchConnStalledClient: a client that stops reading blocks writes,
// not Close, which gives up after drainGrace; later writes fail.
func TestBatchConnStalledClient(t *testing.T) {
	defer func(g time.Duration) { drainGrace = g }(drainGrace)
	drainGrace = 50 * time.Millisecond
	_, raw := testnet.TCPPair(t)
	bc := newBatchConn(raw)
	bc.batch()
	werr := make(chan error, 1)
	go func() {
		chunk := make([]byte, 16<<10)
		for {
			if _, err := bc.Write(chunk); err != nil {
				werr <- err
				return
			}
		}
	}()
	// Wait until the writer is held back by a full queue behind the
	// socket. (Not "until the queue is full": the flusher may already have
	// taken the full queue into a write that never returns, leaving none.)
	for {
		bc.mu.Lock()
		full := bc.waiting > 0
		bc.mu.Unlock()
		if full {
			break
		}
		time.Sleep(time.Millisecond)
	}
	if err := bc.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-werr; err == nil {
		t.Fatalf("write after a stalled close: %v", err)
	}
}
