package testclient

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

func TestReservePort(t *testing.T) {
	r := reservedPorts()
	if r.lo < 1024 || r.hi <= r.lo {
		t.Fatalf("reserved range %d-%d", r.lo, r.hi)
	}
	dir := filepath.Join(os.TempDir(), "sanke-test-ports")

	var held int
	t.Run("reserve", func(t *testing.T) {
		seen := map[int]bool{}
		for _, network := range []string{"udp", "tcp", "udp", "tcp", "udp"} {
			port := FreePort(t, network)
			if port < r.lo || port >= r.hi {
				t.Errorf("%s port %d outside %d-%d", network, port, r.lo, r.hi)
			}
			if seen[port] {
				t.Errorf("port %d handed out twice", port)
			}
			seen[port] = true
			// Held: another reservation (a fresh open file, as another process's would be)
			// cannot lock it.
			if _, ok, err := lockPort(dir, port); err != nil || ok {
				t.Errorf("port %d: lock while reserved: ok=%v err=%v", port, ok, err)
			}
			if !canBind(network, port) {
				t.Errorf("reserved %s port %d cannot be bound", network, port)
			}
			held = port
		}
	})
	// Released when the test that reserved it ended.
	unlock, ok, err := lockPort(dir, held)
	if err != nil || !ok {
		t.Fatalf("port %d still locked after its test ended: ok=%v err=%v", held, ok, err)
	}
	unlock()

	// A port someone has bound is not handed out.
	c, err := net.ListenPacket("udp4", "127.0.0.1:"+strconv.Itoa(held))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Close() }()
	if canBind("udp", held) {
		t.Errorf("canBind(udp, %d) while bound", held)
	}
}
