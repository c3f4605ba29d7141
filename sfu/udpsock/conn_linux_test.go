package udpsock

import (
	"net"
	"testing"

	"golang.org/x/sys/unix"
)

// Listen opens a socket of the bind address's family (a dual-stack one for nil and ::), sets
// the don't-fragment bit for each family it carries (IP_PMTUDISC_PROBE,
// IPV6_PMTUDISC_PROBE) and sends to and receives from peers of each family, the replies
// coming from the address sent to.
func TestListenFamilies(t *testing.T) {
	for _, tc := range []struct {
		name   string
		ip     net.IP
		domain int
		peers  []string // networks of the peers it must reach
	}{
		{"ipv4", net.IPv4(127, 0, 0, 1), unix.AF_INET, []string{"udp4"}},
		{"ipv4 any", net.IPv4zero, unix.AF_INET, []string{"udp4"}},
		{"ipv6", net.IPv6loopback, unix.AF_INET6, []string{"udp6"}},
		{"dual-stack", nil, unix.AF_INET6, []string{"udp4", "udp6"}},
		{"dual-stack ::", net.IPv6unspecified, unix.AF_INET6, []string{"udp4", "udp6"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Listen(tc.ip, 0)
			if err != nil {
				t.Skipf("listen %v: %v (no IPv6 here?)", tc.ip, err)
			}
			defer func() { _ = c.Close() }()
			rc, err := c.SyscallConn()
			if err != nil {
				t.Fatal(err)
			}
			opt := func(level, name int) int {
				var v int
				var gerr error
				if err := rc.Control(func(fd uintptr) { v, gerr = unix.GetsockoptInt(int(fd), level, name) }); err != nil || gerr != nil {
					t.Fatal(err, gerr)
				}
				return v
			}
			if d := opt(unix.SOL_SOCKET, unix.SO_DOMAIN); d != tc.domain {
				t.Fatalf("domain %d, want %d", d, tc.domain)
			}
			for _, network := range tc.peers {
				if network == "udp4" {
					if m := opt(unix.IPPROTO_IP, unix.IP_MTU_DISCOVER); m != unix.IP_PMTUDISC_PROBE {
						t.Fatalf("IP_MTU_DISCOVER = %d, want %d", m, unix.IP_PMTUDISC_PROBE)
					}
				} else if m := opt(unix.IPPROTO_IPV6, unix.IPV6_MTU_DISCOVER); m != unix.IPV6_PMTUDISC_PROBE {
					t.Fatalf("IPV6_MTU_DISCOVER = %d, want %d", m, unix.IPV6_PMTUDISC_PROBE)
				}
				loop := "127.0.0.1:0"
				if network == "udp6" {
					loop = "[::1]:0"
				}
				peer := listen(t, network, loop)
				if _, err := c.WriteToAddrPort(make([]byte, 1200), addrOf(peer)); err != nil {
					t.Fatal(network, err)
				}
				n, from, err := peer.ReadFromAddrPort(make([]byte, 1500))
				if err != nil || n != 1200 {
					t.Fatalf("%s: read %d, %v", network, n, err)
				}
				if _, err := peer.WriteToAddrPort([]byte("reply"), from); err != nil {
					t.Fatal(err)
				}
				n, back, err := c.ReadFromAddrPort(make([]byte, 1500))
				if err != nil || n != 5 || back != addrOf(peer) {
					t.Fatalf("%s: reply %d bytes from %v (want %v), %v", network, n, back, addrOf(peer), err)
				}
			}
		})
	}
}
