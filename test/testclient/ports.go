package testclient

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// Tests start servers on ports chosen in advance (a server's ICE candidates, a versitygw or
// redis-server command line). Asking the kernel for port 0 and closing the socket is not
// enough when test packages run in parallel: the kernel hands the same ephemeral ports to the
// clients' own sockets (every pion PeerConnection binds a few), so between the probe and the
// server's bind another process may take it. The allocator below therefore takes ports from
// below the kernel's ephemeral range, which only explicit binds use, and reserves each one
// across processes with an exclusive flock on a file named after it, held until the test ends.

// portRange is where reserved ports come from: [lo, hi).
type portRange struct{ lo, hi int }

// reservedPorts returns the range below the kernel's ephemeral ports (ip_local_port_range),
// 10000 ports at most, or 20000-30000 when the kernel's range cannot be read.
func reservedPorts() portRange {
	r := portRange{lo: 20000, hi: 30000}
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return r
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return r
	}
	low, err := strconv.Atoi(f[0])
	if err != nil || low < 2048 {
		return r
	}
	return portRange{lo: max(1024, low-10000), hi: low}
}

// reservePort returns a port of network ("tcp" or "udp") on 127.0.0.1 that no other test
// process holds and that can be bound now; its reservation is released when tb ends.
func reservePort(tb testing.TB, network string) (int, error) {
	dir := filepath.Join(os.TempDir(), "sanke-test-ports")
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return 0, err
	}
	r := reservedPorts()
	n := r.hi - r.lo
	start := rand.IntN(n)
	for i := range n {
		port := r.lo + (start+i)%n
		unlock, ok, err := lockPort(dir, port)
		if err != nil {
			return 0, err
		}
		if !ok {
			continue
		}
		if canBind(network, port) {
			tb.Cleanup(unlock)
			return port, nil
		}
		unlock()
	}
	return 0, fmt.Errorf("no free %s port in %d-%d", network, r.lo, r.hi-1)
}

// canBind reports whether network's port can be bound on loopback right now (and on all
// addresses for UDP, where servers may listen on the wildcard address).
func canBind(network string, port int) bool {
	switch network {
	case "udp":
		for _, addr := range []string{"127.0.0.1", "0.0.0.0"} {
			c, err := net.ListenPacket("udp4", net.JoinHostPort(addr, strconv.Itoa(port)))
			if err != nil {
				return false
			}
			_ = c.Close()
		}
		return true
	case "tcp":
		l, err := net.Listen("tcp4", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			return false
		}
		_ = l.Close()
		return true
	}
	return false
}
