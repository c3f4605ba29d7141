package udpsock

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/sanke-edu/sanke/test/prereq"
)

func listen(t testing.TB, network, addr string) *Conn {
	t.Helper()
	uc, err := net.ListenUDP(network, net.UDPAddrFromAddrPort(netip.MustParseAddrPort(addr)))
	if err != nil {
		prereq.Skip(t, "cannot listen on %s %s: %v", network, addr, err)
	}
	c, err := New(uc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func addrOf(c *Conn) netip.AddrPort { return c.LocalAddr().(*net.UDPAddr).AddrPort() }

// Datagrams go both ways through every read and write method, with the peer's address right,
// over IPv4 and IPv6.
func TestRoundTrip(t *testing.T) {
	for _, tc := range []struct{ network, addr string }{
		{"udp4", "127.0.0.1:0"},
		{"udp6", "[::1]:0"},
	} {
		t.Run(tc.network, func(t *testing.T) {
			a, b := listen(t, tc.network, tc.addr), listen(t, tc.network, tc.addr)
			buf := make([]byte, 2048)
			for i, payload := range [][]byte{[]byte("hello"), bytes.Repeat([]byte{7}, 1400), {}} {
				if _, err := a.WriteToAddrPort(payload, addrOf(b)); err != nil {
					t.Fatal(err)
				}
				n, from, err := b.ReadFromAddrPort(buf)
				if err != nil || from != addrOf(a) || !bytes.Equal(buf[:n], payload) {
					t.Fatalf("datagram %d: %d bytes from %v, %v", i, n, from, err)
				}
				if _, err := b.WriteTo(payload, net.UDPAddrFromAddrPort(addrOf(a))); err != nil {
					t.Fatal(err)
				}
				n, addr, err := a.ReadFrom(buf)
				if err != nil || addr.String() != b.LocalAddr().String() || !bytes.Equal(buf[:n], payload) {
					t.Fatalf("reply %d: %d bytes from %v, %v", i, n, addr, err)
				}
			}
		})
	}
}

// A datagram larger than the buffer is cut to it, as with net.UDPConn.
func TestShortBuffer(t *testing.T) {
	a, b := listen(t, "udp4", "127.0.0.1:0"), listen(t, "udp4", "127.0.0.1:0")
	if _, err := a.WriteToAddrPort([]byte("0123456789"), addrOf(b)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	n, _, err := b.ReadFromAddrPort(buf)
	if err != nil || string(buf[:n]) != "0123" {
		t.Fatalf("read %q, %v", buf[:n], err)
	}
}

// Reads wait in the network poller and honour deadlines; a Close ends a blocked read.
func TestDeadlineAndClose(t *testing.T) {
	c := listen(t, "udp4", "127.0.0.1:0")
	if err := c.SetReadDeadline(time.Now().Add(20 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	_, _, err := c.ReadFromAddrPort(make([]byte, 10))
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read past deadline: %v", err)
	}
	_ = c.SetReadDeadline(time.Time{})
	done := make(chan error, 1)
	go func() {
		_, _, err := c.ReadFromAddrPort(make([]byte, 10))
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	_ = c.Close()
	if err := <-done; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("read after close: %v", err)
	}
}

func TestBadAddresses(t *testing.T) {
	c := listen(t, "udp4", "127.0.0.1:0")
	for _, tc := range []struct {
		name string
		send func() error
	}{
		{"not UDP", func() error { _, err := c.WriteTo([]byte("x"), &net.TCPAddr{}); return err }},
		{"zero AddrPort", func() error { _, err := c.WriteToAddrPort([]byte("x"), netip.AddrPort{}); return err }},
		{"IPv6 on an IPv4 socket", func() error {
			_, err := c.WriteToAddrPort([]byte("x"), netip.MustParseAddrPort("[2001:db8::1]:9"))
			return err
		}},
	} {
		if err := tc.send(); err == nil {
			t.Errorf("%s: no error", tc.name)
		}
	}
}

// Reads and writes allocate nothing (the SFU's ingest and ICE path run through them).
func TestNoAllocations(t *testing.T) {
	a, b := listen(t, "udp4", "127.0.0.1:0"), listen(t, "udp4", "127.0.0.1:0")
	to := addrOf(b)
	payload, buf := make([]byte, 1200), make([]byte, 1500)
	allocs := testing.AllocsPerRun(200, func() {
		if _, err := a.WriteToAddrPort(payload, to); err != nil {
			t.Fatal(err)
		}
		if _, _, err := b.ReadFromAddrPort(buf); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("%.1f allocations per write and read", allocs)
	}
}
