//go:build linux

package srtpout

import (
	"fmt"
	"net"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// rawAddr is a peer's address as sendmmsg takes it: an IPv6 sockaddr, or an IPv4 one in its
// first bytes. An IPv4 peer always gets AF_INET, which Linux also takes on a dual-stack IPv6
// socket, so the IPv4 path is the same whichever socket the node listens on.
type rawAddr = unix.RawSockaddrInet6

// rawSockaddr returns a's sockaddr and its length.
func rawSockaddr(a *net.UDPAddr) (rawAddr, uint32) {
	var sa rawAddr
	if ip4 := a.IP.To4(); ip4 != nil {
		in := (*unix.RawSockaddrInet4)(unsafe.Pointer(&sa))
		in.Family = unix.AF_INET
		putPort(&in.Port, a.Port)
		copy(in.Addr[:], ip4)
		return sa, unix.SizeofSockaddrInet4
	}
	sa.Family = unix.AF_INET6
	putPort(&sa.Port, a.Port)
	copy(sa.Addr[:], a.IP.To16())
	return sa, unix.SizeofSockaddrInet6
}

// putPort stores port in network byte order.
func putPort(dst *uint16, port int) {
	b := (*[2]byte)(unsafe.Pointer(dst))
	b[0], b[1] = byte(port>>8), byte(port)
}

// sysBatch holds a Batch's sendmmsg arguments, allocated once, and the progress of the
// flush under way (the socket callback may run more than once).
type sysBatch struct {
	rc        syscall.RawConn
	hdrs      []unix.Mmsghdr
	iovs      []unix.Iovec
	next, end int
	write     func(fd uintptr) bool
}

func (b *Batch) setConn(c *net.UDPConn) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return fmt.Errorf("srtpout: socket: %w", err)
	}
	b.conn, b.sys.rc = c, rc
	return nil
}

// send writes out[:n] with as few sendmmsg calls as the kernel allows.
func (b *Batch) send() {
	s := &b.sys
	if s.hdrs == nil {
		size := len(b.out)
		s.hdrs, s.iovs = make([]unix.Mmsghdr, size), make([]unix.Iovec, size)
		s.write = b.writeFD
	}
	for i, pkt := range b.out[:b.n] {
		s.iovs[i].Base = &pkt[0]
		s.iovs[i].SetLen(len(pkt))
		h := &s.hdrs[i].Hdr
		// The peer's own sockaddr, made once by SetRemote: b.peers holds it until the flush
		// ends, and nothing is copied per packet.
		peer := b.peers[i]
		h.Name = (*byte)(unsafe.Pointer(&peer.raw))
		h.Namelen = peer.rawLen
		h.Iov = &s.iovs[i]
		h.SetIovlen(1)
	}
	s.next, s.end = 0, b.n
	if err := s.rc.Write(s.write); err != nil { // the socket is closed
		b.dropped += uint64(s.end - s.next)
	}
}

// writeFD sends hdrs[next:end] on fd; false asks the runtime to wait until fd is writable.
//
// It uses RawSyscall: the socket is non-blocking, so sendmmsg never waits, and a plain
// Syscall would let the runtime's monitor hand this goroutine's processor to another thread
// during the ~100 µs a batch of 64 takes on loopback (it does so for any system call over
// 20 µs while the other processors are busy), which costs two thread wake-ups per batch.
func (b *Batch) writeFD(fd uintptr) bool {
	s := &b.sys
	for s.next < s.end {
		r, _, errno := unix.RawSyscall6(unix.SYS_SENDMMSG, fd,
			uintptr(unsafe.Pointer(&s.hdrs[s.next])), uintptr(s.end-s.next), 0, 0, 0)
		switch {
		case errno == 0 && r > 0:
			b.sent += uint64(r)
			s.next += int(r)
		case errno == unix.EAGAIN:
			return false
		case errno == unix.EINTR:
		default: // hdrs[next] was refused: drop it, send the rest
			b.dropped++
			s.next++
		}
	}
	return true
}
