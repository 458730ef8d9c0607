package h1

import (
	"net"
	"testing"

	"golang.org/x/sys/unix"

	"appliance/internal/testnet"
)

// TestLimitUnsent checks that the kernel takes the TCP_NOTSENT_LOWAT
// that h1 connections are served with.
func TestLimitUnsent(t *testing.T) {
	_, sc := testnet.TCPPair(t)
	limitUnsent(sc)
	rc, _ := sc.(*net.TCPConn).SyscallConn()
	var v int
	var gerr error
	rc.Control(func(fd uintptr) {
		v, gerr = unix.GetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_NOTSENT_LOWAT)
	})
	if gerr != nil || v != notSentLowat {
		t.Fatalf("TCP_NOTSENT_LOWAT = %d, %v; want %d", v, gerr, notSentLowat)
	}
}
