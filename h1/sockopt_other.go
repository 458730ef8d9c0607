//go:build !linux

package h1

import "net"

func cork(net.Conn, bool) bool { return false }

func quickAck(net.Conn) {}

func limitUnsent(net.Conn) {}
