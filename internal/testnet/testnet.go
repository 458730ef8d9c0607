// Package testnet holds the network helpers that tests of several
// packages share.
package testnet

import (
	"net"
	"testing"
)

// TCPPair returns both ends of a loopback TCP connection, closed when
// the test ends (net.Pipe is unbuffered: it deadlocks TLS 1.3's
// handshakes, whose two sides write at once, and has no socket
// options).
func TCPPair(t testing.TB) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server, err = ln.Accept()
	if err != nil {
		client.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { server.Close(); client.Close() })
	return client, server
}
