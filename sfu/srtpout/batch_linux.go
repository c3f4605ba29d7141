//go:build linux

package srtpout

import (
	"fmt"
	"net"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// rawAddr is a peer's IPv4 address as sendmmsg takes it.
type rawAddr = unix.RawSockaddrInet4

func rawSockaddr(a *net.UDPAddr) rawAddr {
	sa := rawAddr{Family: unix.AF_INET}
	port := (*[2]byte)(unsafe.Pointer(&sa.Port)) // network byte order
	port[0], port[1] = byte(a.Port>>8), byte(a.Port)
	copy(sa.Addr[:], a.IP.To4())
	return sa
}

// sysBatch holds a Batch's sendmmsg arguments, allocated once, and the progress of the
// flush under way (the socket callback may run more than once).
type sysBatch struct {
	rc        syscall.RawConn
	hdrs      []unix.Mmsghdr
	iovs      []unix.Iovec
	names     []rawAddr
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
		s.hdrs, s.iovs, s.names = make([]unix.Mmsghdr, size), make([]unix.Iovec, size), make([]rawAddr, size)
		s.write = b.writeFD
	}
	for i, pkt := range b.out[:b.n] {
		s.names[i] = b.peers[i].raw
		s.iovs[i].Base = &pkt[0]
		s.iovs[i].SetLen(len(pkt))
		h := &s.hdrs[i].Hdr
		h.Name = (*byte)(unsafe.Pointer(&s.names[i]))
		h.Namelen = unix.SizeofSockaddrInet4
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
