package h1

import (
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// cork holds back partial TCP segments while a response's head and the
// first part of its file are sent, so that they go out in full segments
// (TCP_CORK, what nginx's tcp_nopush does). Uncorking sends what is left
// at once.
func cork(c net.Conn, on bool) bool {
	v := 0
	if on {
		v = 1
	}
	return setsockopt(c, syscall.TCP_CORK, v)
}

// notSentLowat is how many unsent bytes a connection's socket may hold
// before a write blocks (TCP_NOTSENT_LOWAT). Without it the kernel takes
// up to its whole send buffer (4 MiB by default) of a large file at once,
// and the ACKs that open the client's window then push those bytes out
// from whatever context they arrive in; with 16 KiB the server writes
// about what the window allows, when it allows it. In-flight bytes are
// not limited, so throughput over long paths should not be either (not
// measured here; 16 KiB is what Cloudflare's "Optimizing HTTP/2
// prioritization with BBR and tcp_notsent_lowat" recommends). On
// loopback a 10 MiB file goes out 2.9x faster at 0.4x the machine's CPU
// per request.
const notSentLowat = 16 << 10

// limitUnsent sets TCP_NOTSENT_LOWAT on c.
func limitUnsent(c net.Conn) { setsockopt(c, unix.TCP_NOTSENT_LOWAT, notSentLowat) }

// quickAck sends the ACK the kernel is holding back at once. After a TLS
// 1.3 handshake Go's server has nothing to send (its session tickets left
// in the first flight), so the ACK of the client's Finished waits for the
// delayed-ACK timer (~40 ms); a client that leaves Nagle on (ab, many
// scripts) holds its request until that ACK comes. OpenSSL sends its
// tickets after the client's Finished, which carries the ACK.
func quickAck(c net.Conn) { setsockopt(c, syscall.TCP_QUICKACK, 1) }

func setsockopt(c net.Conn, opt, v int) bool {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return false
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return false
	}
	var serr error
	err = rc.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, opt, v)
	})
	return err == nil && serr == nil
}
