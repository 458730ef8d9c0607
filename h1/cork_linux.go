package h1

import (
	"net"
	"syscall"
)

// cork holds back partial TCP segments while a file is sent, so that the
// head and the file's bytes go out in full segments (TCP_CORK, what
// nginx's tcp_nopush does). Uncorking sends what is left at once.
func cork(c net.Conn, on bool) bool {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return false
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return false
	}
	v := 0
	if on {
		v = 1
	}
	var serr error
	err = rc.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_CORK, v)
	})
	return err == nil && serr == nil
}
