package server

import (
	"net"
	"slices"
	"testing"
)

// mediaIPs gives, per family the media sockets carry, the node IP of that family, else the
// bind address, else the interface addresses of that family.
func TestMediaIPs(t *testing.T) {
	has := func(ips []net.IP, want string) bool {
		return slices.ContainsFunc(ips, func(ip net.IP) bool { return ip.Equal(net.ParseIP(want)) })
	}
	family := func(ips []net.IP, v4 bool) (n int) {
		for _, ip := range ips {
			if (ip.To4() != nil) == v4 {
				n++
			}
		}
		return n
	}
	for _, tc := range []struct {
		name     string
		nodeIPs  []string
		bind     string
		want     []string // exactly these, when set
		v6       bool     // IPv6 addresses may be in the result
		loopback bool
	}{
		{name: "bind ipv6", bind: "::1", want: []string{"::1"}},
		{name: "bind ipv4", bind: "127.0.0.1", want: []string{"127.0.0.1"}},
		{name: "node ips per family", nodeIPs: []string{"203.0.113.7", "2001:db8::7"}, want: []string{"203.0.113.7", "2001:db8::7"}},
		{name: "node ip beats bind", nodeIPs: []string{"2001:db8::7"}, bind: "::1", want: []string{"2001:db8::7"}},
		{name: "ipv4 wildcard", bind: "0.0.0.0", loopback: true},
		{name: "node ipv4, ipv6 from the interfaces", nodeIPs: []string{"203.0.113.7"}, v6: true, loopback: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ips, err := mediaIPs(tc.nodeIPs, tc.bind, tc.loopback)
			if err != nil {
				t.Fatal(err)
			}
			if tc.want != nil {
				if len(ips) != len(tc.want) {
					t.Fatalf("%v, want %v", ips, tc.want)
				}
				for _, w := range tc.want {
					if !has(ips, w) {
						t.Fatalf("%v, want %v", ips, tc.want)
					}
				}
				return
			}
			if !tc.v6 && family(ips, false) > 0 {
				t.Errorf("%v: IPv6 addresses on IPv4 sockets", ips)
			}
			if !has(ips, "127.0.0.1") && tc.nodeIPs == nil {
				t.Errorf("%v: the interfaces' 127.0.0.1 missing", ips)
			}
			for _, n := range tc.nodeIPs {
				if !has(ips, n) || has(ips, "127.0.0.1") {
					t.Errorf("%v: want node ip %s instead of the IPv4 interface addresses", ips, n)
				}
			}
			if tc.v6 && hostHasIPv6Loopback(t) && !has(ips, "::1") {
				t.Errorf("%v: the interfaces' ::1 missing", ips)
			}
		})
	}
}

// hostHasIPv6Loopback reports whether an interface has ::1.
func hostHasIPv6Loopback(t *testing.T) bool {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	return slices.ContainsFunc(addrs, func(a net.Addr) bool {
		n, ok := a.(*net.IPNet)
		return ok && n.IP.Equal(net.IPv6loopback)
	})
}
