//go:build !linux

package udpsock

import (
	"net"
	"net/netip"
)

type sysConn struct{}

func (*sysConn) init(*net.UDPConn) error { return nil }

func (*sysConn) readFrom(c *net.UDPConn, b []byte) (int, netip.AddrPort, error) {
	return c.ReadFromUDPAddrPort(b)
}

func (*sysConn) writeTo(c *net.UDPConn, b []byte, addr netip.AddrPort) (int, error) {
	return c.WriteToUDPAddrPort(b, addr)
}

func (*sysConn) dontFragment() error { return nil }
