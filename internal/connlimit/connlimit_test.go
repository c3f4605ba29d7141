package connlimit_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/sanke-edu/sanke/internal/connlimit"
	tc "github.com/sanke-edu/sanke/test/testclient"
)

// waitClose bounds every wait for a connection to be closed or accepted: far beyond what
// it takes on a loaded machine.
const waitClose = 20 * time.Second

// serve runs l's Accept loop on a loopback listener and hands every accepted connection to
// the returned channel; it returns the listener's address.
func serve(t *testing.T, l *connlimit.Limiter) (string, <-chan net.Conn) {
	t.Helper()
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := l.Listener(raw)
	accepted := make(chan net.Conn, 16)
	t.Cleanup(func() {
		_ = ln.Close()
		for len(accepted) > 0 {
			_ = (<-accepted).Close()
		}
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	return raw.Addr().String(), accepted
}

func newLimiter(t *testing.T, cfg connlimit.Config) *connlimit.Limiter {
	t.Helper()
	l, err := connlimit.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func next(t *testing.T, accepted <-chan net.Conn, what string) net.Conn {
	t.Helper()
	select {
	case c := <-accepted:
		return c
	case <-time.After(waitClose):
		t.Fatalf("%s: not accepted", what)
		return nil
	}
}

// A listener closes, at accept, a connection beyond the per-address bound; a place given
// back (once, however often the connection is closed) is taken again; another address has
// places of its own.
func TestListenerPerAddress(t *testing.T) {
	l := newLimiter(t, connlimit.Config{Max: 100, MaxPerAddr: 2})
	addr, accepted := serve(t, l)
	clients := make([]net.Conn, 3)
	for i := range clients {
		clients[i] = tc.DialFrom(t, "127.0.0.1", addr)
	}
	first, _ := next(t, accepted, "first"), next(t, accepted, "second")
	if got := tc.AwaitClose(t, clients[2], waitClose, "a third connection from one address"); got != "" {
		t.Fatalf("third connection read %q", got)
	}
	if n := l.Open(); n != 2 {
		t.Fatalf("%d open, want 2", n)
	}
	other := tc.DialFrom(t, "127.0.0.2", addr)
	next(t, accepted, "a connection from another address")
	_ = first.Close()
	_ = first.Close() // a second Close gives nothing back twice
	if n := l.Open(); n != 2 {
		t.Fatalf("%d open after a close, want 2", n)
	}
	tc.DialFrom(t, "127.0.0.1", addr)
	next(t, accepted, "a connection after a place was freed")
	_ = other.Close()
}

// A listener closes, at accept, a connection beyond the total bound, from any address.
func TestListenerTotal(t *testing.T) {
	l := newLimiter(t, connlimit.Config{Max: 2})
	addr, accepted := serve(t, l)
	tc.DialFrom(t, "127.0.0.1", addr)
	tc.DialFrom(t, "127.0.0.2", addr)
	next(t, accepted, "first")
	next(t, accepted, "second")
	if got := tc.AwaitClose(t, tc.DialFrom(t, "127.0.0.3", addr), waitClose, "a third connection"); got != "" {
		t.Fatalf("third connection read %q", got)
	}
	if n := l.Open(); n != 2 {
		t.Fatalf("%d open, want 2", n)
	}
}

// A counted connection half-closes: the client reads what was written before, then EOF,
// and the connection still holds its place until closed.
func TestListenerCloseWrite(t *testing.T) {
	l := newLimiter(t, connlimit.Config{Max: 1})
	addr, accepted := serve(t, l)
	client := tc.DialFrom(t, "", addr)
	c := next(t, accepted, "connection")
	if _, err := io.WriteString(c, "bye"); err != nil {
		t.Fatal(err)
	}
	cw, ok := c.(interface{ CloseWrite() error })
	if !ok {
		t.Fatal("the counted connection has no CloseWrite")
	}
	if err := cw.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if got := tc.AwaitClose(t, client, waitClose, "half-closed connection"); got != "bye" {
		t.Fatalf("read %q before EOF, want %q", got, "bye")
	}
	if n := l.Open(); n != 1 {
		t.Fatalf("%d open after CloseWrite, want 1", n)
	}
	_ = c.Close()
	if n := l.Open(); n != 0 {
		t.Fatalf("%d open after Close, want 0", n)
	}
}

func tcpAddr(s string) net.Addr {
	return net.TCPAddrFromAddrPort(netip.MustParseAddrPort(s))
}

// Acquire counts an IPv4 address, or an IPv6 /64, as one client address; exempt addresses
// are held to the total bound only, and so are addresses that are not TCP addresses.
func TestAcquireKeys(t *testing.T) {
	for _, tt := range []struct {
		name         string
		first, other string
		shared       bool // other shares first's per-address place
	}{
		{"IPv4", "192.0.2.7:1234", "192.0.2.8:1234", false},
		{"IPv4 port", "192.0.2.7:1234", "192.0.2.7:5678", true},
		{"IPv6 /64", "[2001:db8:1:2:3:4:5:6]:443", "[2001:db8:1:2:ffff::1]:443", true},
		{"IPv6 other /64", "[2001:db8:1:2::1]:443", "[2001:db8:1:3::1]:443", false},
		{"IPv4-mapped", "[::ffff:192.0.2.7]:80", "192.0.2.7:81", true},
		{"IPv6 loopback", "[::1]:80", "[::1]:81", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			l := newLimiter(t, connlimit.Config{Max: 10, MaxPerAddr: 1})
			if _, ok := l.Acquire(tcpAddr(tt.first)); !ok {
				t.Fatal("first connection refused")
			}
			if _, ok := l.Acquire(tcpAddr(tt.other)); ok == tt.shared {
				t.Errorf("%s after %s: admitted %v, want %v", tt.other, tt.first, ok, !tt.shared)
			}
		})
	}

	l := newLimiter(t, connlimit.Config{Max: 3, MaxPerAddr: 1, Exempt: netip.Addr.IsLoopback})
	for i := range 3 {
		if _, ok := l.Acquire(tcpAddr("127.0.0.1:1")); !ok {
			t.Fatalf("exempt connection %d refused", i+1)
		}
	}
	if _, ok := l.Acquire(tcpAddr("192.0.2.1:1")); ok {
		t.Error("a connection beyond the total admitted")
	}

	l = newLimiter(t, connlimit.Config{Max: 2, MaxPerAddr: 1})
	pipe := &net.UnixAddr{Name: "@x", Net: "unix"}
	for i := range 2 {
		if _, ok := l.Acquire(pipe); !ok {
			t.Fatalf("non-TCP connection %d refused", i+1)
		}
	}
	if _, ok := l.Acquire(nil); ok {
		t.Error("a connection beyond the total admitted")
	}
}

// release gives a place back once, however often it is called, and concurrently.
func TestAcquireReleaseOnce(t *testing.T) {
	l := newLimiter(t, connlimit.Config{Max: 2, MaxPerAddr: 1})
	a := tcpAddr("192.0.2.1:1")
	release, ok := l.Acquire(a)
	if !ok {
		t.Fatal("refused")
	}
	if _, ok := l.Acquire(tcpAddr("192.0.2.2:1")); !ok {
		t.Fatal("second address refused")
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(release)
	}
	wg.Wait()
	if n := l.Open(); n != 1 {
		t.Fatalf("%d open after releasing one of two, want 1", n)
	}
	if _, ok := l.Acquire(a); !ok {
		t.Fatal("the released address is still full")
	}
	if _, ok := l.Acquire(a); ok {
		t.Fatal("the per-address bound no longer holds after a release")
	}
}

// Refusals are logged, at most once per WarnInterval.
func TestRefusalsWarnedRarely(t *testing.T) {
	h := &countHandler{}
	l := newLimiter(t, connlimit.Config{Max: 1, Logger: slog.New(h)})
	if _, ok := l.Acquire(tcpAddr("192.0.2.1:1")); !ok {
		t.Fatal("refused")
	}
	for range 5 {
		if _, ok := l.Acquire(tcpAddr("192.0.2.2:1")); ok {
			t.Fatal("admitted beyond the bound")
		}
	}
	if n := h.count(); n != 1 {
		t.Fatalf("%d warnings for 5 refusals within %s, want 1", n, connlimit.WarnInterval)
	}
}

func TestNewRefusesBadBounds(t *testing.T) {
	for _, cfg := range []connlimit.Config{{Max: 0}, {Max: -1}, {Max: 1, MaxPerAddr: -1}} {
		if _, err := connlimit.New(cfg); err == nil {
			t.Errorf("New(%+v): no error", cfg)
		}
	}
}

// countHandler counts the warnings logged.
type countHandler struct {
	mu sync.Mutex
	n  int
}

func (h *countHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *countHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *countHandler) WithGroup(string) slog.Handler            { return h }
func (h *countHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if r.Level == slog.LevelWarn {
		h.n++
	}
	return nil
}

func (h *countHandler) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.n
}
