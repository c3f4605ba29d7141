package udpsock

import (
	"net"
	"testing"

	"golang.org/x/sys/unix"
)

// Listen's socket sets the don't-fragment bit (IP_PMTUDISC_PROBE) and still sends.
func TestListenDontFragment(t *testing.T) {
	c, err := Listen(net.IPv4(127, 0, 0, 1), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Close() }()
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var mode int
	var gerr error
	if err := rc.Control(func(fd uintptr) { mode, gerr = unix.GetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_MTU_DISCOVER) }); err != nil || gerr != nil {
		t.Fatal(err, gerr)
	}
	if mode != unix.IP_PMTUDISC_PROBE {
		t.Fatalf("IP_MTU_DISCOVER = %d, want %d", mode, unix.IP_PMTUDISC_PROBE)
	}
	peer := listen(t, "udp4", "127.0.0.1:0")
	if _, err := c.WriteToAddrPort(make([]byte, 1200), addrOf(peer)); err != nil {
		t.Fatal(err)
	}
	if n, _, err := peer.ReadFromAddrPort(make([]byte, 1500)); err != nil || n != 1200 {
		t.Fatalf("read %d, %v", n, err)
	}
}
