//go:build linux

package udpsock

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// sysConn issues the socket's system calls with unix.RawSyscall6 from inside its RawConn.
// Each operation's arguments live in a preallocated op whose method is the RawConn callback,
// so a read or write allocates nothing.
type sysConn struct {
	rc syscall.RawConn

	readMu sync.Mutex // one reader at a time, as net.UDPConn does
	read   readOp
	writes sync.Pool // of *writeOp
}

func (s *sysConn) init(c *net.UDPConn) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return fmt.Errorf("udpsock: %w", err)
	}
	s.rc = rc
	s.read.fn = s.read.do
	s.writes.New = func() any {
		op := &writeOp{}
		op.fn = op.do
		return op
	}
	return nil
}

// readOp is one recvfrom.
type readOp struct {
	b     []byte
	from  unix.RawSockaddrAny
	n     int
	errno syscall.Errno
	fn    func(fd uintptr) bool
}

func (op *readOp) do(fd uintptr) bool {
	var p unsafe.Pointer
	if len(op.b) > 0 {
		p = unsafe.Pointer(&op.b[0])
	}
	for {
		size := uint32(unsafe.Sizeof(op.from))
		r, _, e := unix.RawSyscall6(unix.SYS_RECVFROM, fd, uintptr(p), uintptr(len(op.b)), 0,
			uintptr(unsafe.Pointer(&op.from)), uintptr(unsafe.Pointer(&size)))
		switch e {
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return false // wait in the network poller
		}
		op.n, op.errno = int(r), e
		return true
	}
}

func (s *sysConn) readFrom(c *net.UDPConn, b []byte) (int, netip.AddrPort, error) {
	s.readMu.Lock()
	defer s.readMu.Unlock()
	op := &s.read
	op.b, op.n, op.errno = b, 0, 0
	err := s.rc.Read(op.fn)
	op.b = nil
	if err == nil && op.errno != 0 {
		err = os.NewSyscallError("recvfrom", op.errno)
	}
	if err != nil {
		return 0, netip.AddrPort{}, &net.OpError{Op: "read", Net: "udp", Source: c.LocalAddr(), Err: err}
	}
	return op.n, addrPort(&op.from), nil
}

// writeOp is one sendto.
type writeOp struct {
	b     []byte
	sa    unix.RawSockaddrInet6 // or a RawSockaddrInet4 in its first bytes
	size  uintptr
	n     int
	errno syscall.Errno
	fn    func(fd uintptr) bool
}

func (op *writeOp) do(fd uintptr) bool {
	var p unsafe.Pointer
	if len(op.b) > 0 {
		p = unsafe.Pointer(&op.b[0])
	}
	for {
		r, _, e := unix.RawSyscall6(unix.SYS_SENDTO, fd, uintptr(p), uintptr(len(op.b)), 0,
			uintptr(unsafe.Pointer(&op.sa)), op.size)
		switch e {
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return false
		}
		op.n, op.errno = int(r), e
		return true
	}
}

func (s *sysConn) writeTo(c *net.UDPConn, b []byte, addr netip.AddrPort) (int, error) {
	op := s.writes.Get().(*writeOp)
	defer s.writes.Put(op)
	ip := addr.Addr()
	switch {
	case ip.Is4() || ip.Is4In6():
		sa := (*unix.RawSockaddrInet4)(unsafe.Pointer(&op.sa))
		*sa = unix.RawSockaddrInet4{Family: unix.AF_INET, Addr: ip.Unmap().As4()}
		putPort(&sa.Port, addr.Port())
		op.size = unix.SizeofSockaddrInet4
	case ip.Is6():
		op.sa = unix.RawSockaddrInet6{Family: unix.AF_INET6, Addr: ip.As16()}
		putPort(&op.sa.Port, addr.Port())
		op.size = unix.SizeofSockaddrInet6
	default:
		return 0, &net.OpError{Op: "write", Net: "udp", Source: c.LocalAddr(), Err: net.InvalidAddrError(addr.String())}
	}
	op.b, op.n, op.errno = b, 0, 0
	err := s.rc.Write(op.fn)
	op.b = nil
	if err == nil && op.errno != 0 {
		err = os.NewSyscallError("sendto", op.errno)
	}
	if err != nil {
		return 0, &net.OpError{Op: "write", Net: "udp", Source: c.LocalAddr(), Addr: net.UDPAddrFromAddrPort(addr), Err: err}
	}
	return op.n, nil
}

// putPort stores port in network byte order.
func putPort(dst *uint16, port uint16) {
	b := (*[2]byte)(unsafe.Pointer(dst))
	b[0], b[1] = byte(port>>8), byte(port)
}

func getPort(src *uint16) uint16 {
	b := (*[2]byte)(unsafe.Pointer(src))
	return uint16(b[0])<<8 | uint16(b[1])
}

// addrPort decodes the sender's address recvfrom filled in.
func addrPort(sa *unix.RawSockaddrAny) netip.AddrPort {
	switch sa.Addr.Family {
	case unix.AF_INET:
		in := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		return netip.AddrPortFrom(netip.AddrFrom4(in.Addr), getPort(&in.Port))
	case unix.AF_INET6:
		in := (*unix.RawSockaddrInet6)(unsafe.Pointer(sa))
		return netip.AddrPortFrom(netip.AddrFrom16(in.Addr).Unmap(), getPort(&in.Port))
	}
	return netip.AddrPort{}
}

// dontFragment sets DF on the socket's packets without path MTU discovery state
// (IP_PMTUDISC_PROBE, IPV6_PMTUDISC_PROBE for an IPv6 socket: the interface MTU bounds a
// packet, ICMP "fragmentation needed" or "packet too big" does not shrink it). A dual-stack
// socket takes both: the IPv4 option covers its v4-mapped peers.
func (s *sysConn) dontFragment() error {
	var serr error
	err := s.rc.Control(func(fd uintptr) {
		domain, derr := unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_DOMAIN)
		if derr != nil {
			serr = derr
			return
		}
		if domain == unix.AF_INET6 {
			if serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_MTU_DISCOVER, unix.IPV6_PMTUDISC_PROBE); serr != nil {
				return
			}
			if v6only, _ := unix.GetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_V6ONLY); v6only == 1 {
				return
			}
		}
		serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_MTU_DISCOVER, unix.IP_PMTUDISC_PROBE)
	})
	if err == nil {
		err = serr
	}
	if err != nil {
		return fmt.Errorf("udpsock: set don't-fragment: %w", err)
	}
	return nil
}
