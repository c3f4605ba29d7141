package udpsock

import (
	"net"
	"net/netip"
)

// Conn is a UDP socket for pion's ICE UDP mux: a net.PacketConn that also reads and writes
// netip.AddrPort addresses without allocating (the mux's AddrPortReaderWriter). Its methods
// are safe for concurrent use, as net.UDPConn's are.
type Conn struct {
	*net.UDPConn
	sys sysConn
}

// New wraps c. c must stay open for as long as the Conn is used; closing either closes both.
func New(c *net.UDPConn) (*Conn, error) {
	conn := &Conn{UDPConn: c}
	if err := conn.sys.init(c); err != nil {
		return nil, err
	}
	return conn, nil
}

// ReadFrom reads one datagram into b.
func (c *Conn) ReadFrom(b []byte) (int, net.Addr, error) {
	n, from, err := c.ReadFromAddrPort(b)
	if err != nil {
		return n, nil, err
	}
	return n, net.UDPAddrFromAddrPort(from), nil
}

// WriteTo sends b to addr, which must be a *net.UDPAddr.
func (c *Conn) WriteTo(b []byte, addr net.Addr) (int, error) {
	ua, ok := addr.(*net.UDPAddr)
	if !ok {
		return 0, &net.OpError{Op: "write", Net: "udp", Source: c.LocalAddr(), Addr: addr, Err: net.InvalidAddrError("not a UDP address")}
	}
	return c.WriteToAddrPort(b, ua.AddrPort())
}

// ReadFromAddrPort reads one datagram into b.
func (c *Conn) ReadFromAddrPort(b []byte) (int, netip.AddrPort, error) {
	return c.sys.readFrom(c.UDPConn, b)
}

// WriteToAddrPort sends b to addr.
func (c *Conn) WriteToAddrPort(b []byte, addr netip.AddrPort) (int, error) {
	return c.sys.writeTo(c.UDPConn, b, addr)
}

// Listen opens the node's shared UDP socket on ip:port with large kernel buffers (a fan-out
// queues hundreds of packets at once) and the don't-fragment bit set: WebRTC keeps its
// packets under the path MTU, and with DF the kernel skips the IP identification generator
// on every packet. The socket's family follows ip: an IPv4 address (0.0.0.0 included) opens
// an IPv4 socket, an IPv6 address an IPv6-only one, and nil or :: one dual-stack socket
// (IPv6, IPv4 peers as v4-mapped addresses; IPv4 only where the host has no IPv6).
func Listen(ip net.IP, port int) (*Conn, error) {
	network, laddr := listenAddr(ip, port)
	c, err := net.ListenUDP(network, laddr)
	if err != nil {
		return nil, err
	}
	_ = c.SetReadBuffer(4 << 20)
	_ = c.SetWriteBuffer(4 << 20)
	conn, err := New(c)
	if err != nil {
		_ = c.Close()
		return nil, err
	}
	if err := conn.sys.dontFragment(); err != nil {
		_ = c.Close()
		return nil, err
	}
	return conn, nil
}

// listenAddr returns the network and address Listen opens for ip.
func listenAddr(ip net.IP, port int) (string, *net.UDPAddr) {
	switch {
	case ip == nil || ip.Equal(net.IPv6unspecified):
		return "udp", &net.UDPAddr{Port: port} // Go's wildcard socket: dual-stack
	case ip.To4() != nil:
		return "udp4", &net.UDPAddr{IP: ip, Port: port}
	default:
		return "udp6", &net.UDPAddr{IP: ip, Port: port}
	}
}
