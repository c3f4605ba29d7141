package testclient

import (
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

// DialFrom opens a TCP connection to addr from local address ip (127.0.0.2 is a
// second client address on loopback; "": any). It is closed when the test ends.
func DialFrom(tb testing.TB, ip, addr string) net.Conn {
	tb.Helper()
	d := net.Dialer{Timeout: 5 * time.Second}
	if ip != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(ip)}
	}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = c.Close() })
	return c
}

// AwaitClose reads c until the other end closes it (EOF or reset) and returns what
// arrived; it fails the test when c is still open after within.
func AwaitClose(tb testing.TB, c net.Conn, within time.Duration, what string) string {
	tb.Helper()
	_ = c.SetReadDeadline(time.Now().Add(within))
	b, err := io.ReadAll(c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		tb.Fatalf("%s: still open after %s", what, within)
	}
	return string(b)
}
