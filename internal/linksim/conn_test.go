package linksim

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	tc "github.com/sanke-edu/sanke/test/testclient"
)

// memAddr is the address of a memConn.
type memAddr string

func (a memAddr) Network() string { return "mem" }
func (a memAddr) String() string  { return string(a) }

// memConn is one end of an in-memory datagram pipe that never loses a datagram (it holds
// up to its capacity), so that tests count only what the link does.
type memConn struct {
	local, remote memAddr
	in            chan []byte // datagrams for this end
	out           chan []byte // datagrams for the other end
	closed        chan struct{}
	once          sync.Once
	expired       chan struct{} // closed by a read deadline in the past
	expireOnce    sync.Once
}

// memPipe returns two connected ends, each holding up to capacity datagrams.
func memPipe(capacity int) (a, b *memConn) {
	ab, ba := make(chan []byte, capacity), make(chan []byte, capacity)
	a = &memConn{local: "a", remote: "b", in: ba, out: ab, closed: make(chan struct{}), expired: make(chan struct{})}
	b = &memConn{local: "b", remote: "a", in: ab, out: ba, closed: make(chan struct{}), expired: make(chan struct{})}
	return a, b
}

func (c *memConn) ReadFrom(p []byte) (int, net.Addr, error) {
	select {
	case b := <-c.in:
		return copy(p, b), c.remote, nil
	case <-c.closed:
		return 0, nil, net.ErrClosed
	case <-c.expired:
		return 0, nil, os.ErrDeadlineExceeded
	}
}

func (c *memConn) WriteTo(p []byte, _ net.Addr) (int, error) {
	select {
	case <-c.closed:
		return 0, net.ErrClosed
	default:
	}
	select {
	case c.out <- append([]byte(nil), p...):
		return len(p), nil
	default:
		return 0, errors.New("memConn: pipe full")
	}
}

func (c *memConn) Close() error {
	c.once.Do(func() { close(c.closed) })
	return nil
}

func (c *memConn) LocalAddr() net.Addr         { return c.local }
func (c *memConn) SetDeadline(time.Time) error { return nil }
func (c *memConn) SetReadDeadline(t time.Time) error {
	// Only a deadline in the past, which ends a test's reader, is needed.
	if !t.IsZero() && !t.After(time.Now()) {
		c.expireOnce.Do(func() { close(c.expired) })
	}
	return nil
}
func (c *memConn) SetWriteDeadline(time.Time) error { return nil }

// stamped is a datagram carrying its sequence number and the time it was written.
func stamped(seq int) []byte {
	b := make([]byte, 16)
	binary.BigEndian.PutUint64(b, uint64(seq))
	binary.BigEndian.PutUint64(b[8:], uint64(time.Now().UnixNano()))
	return b
}

func unstamp(b []byte) (seq int, sent time.Time) {
	return int(binary.BigEndian.Uint64(b)), time.Unix(0, int64(binary.BigEndian.Uint64(b[8:])))
}

// receiver reads stamped datagrams from a connection in the background, checking that
// they come in order and no sooner than a delay after they were written.
type receiver struct {
	pc    net.PacketConn
	delay time.Duration
	done  chan struct{}

	mu    sync.Mutex
	got   int
	fault error // the first datagram out of order or too early
}

// receive starts reading pc.
func receive(pc net.PacketConn, delay time.Duration) *receiver {
	r := &receiver{pc: pc, delay: delay, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		buf := make([]byte, 100)
		last := -1
		for {
			n, _, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			seq, sent := unstamp(buf[:n])
			r.mu.Lock()
			r.got++
			if d := time.Since(sent); d < delay && r.fault == nil {
				r.fault = fmt.Errorf("datagram %d crossed in %v, under the delay %v", seq, d, delay)
			}
			if seq <= last && r.fault == nil {
				r.fault = fmt.Errorf("datagram %d after %d: out of order", seq, last)
			}
			r.mu.Unlock()
			last = seq
		}
	}()
	return r
}

func (r *receiver) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.got
}

// expect waits for want datagrams, stops reading (with a read deadline in the past), and
// checks that no more came and that all were in order and delayed.
func (r *receiver) expect(t *testing.T, want int) {
	t.Helper()
	tc.Eventually(t, 30*time.Second, fmt.Sprintf("%d datagrams", want), func() (bool, string) {
		n := r.count()
		return n >= want, fmt.Sprintf("%d datagrams", n)
	})
	_ = r.pc.SetReadDeadline(time.Now())
	<-r.done
	_ = r.pc.SetReadDeadline(time.Time{})
	if r.got != want {
		t.Errorf("%d datagrams, want %d", r.got, want)
	}
	if r.fault != nil {
		t.Error(r.fault)
	}
}

// linkGoroutines returns the stacks of the goroutines running a Conn's link.
func linkGoroutines() []string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for g := range strings.SplitSeq(string(buf), "\n\n") {
		if strings.Contains(g, "linksim.(*Conn).send") || strings.Contains(g, "linksim.(*Conn).pump") ||
			strings.Contains(g, "linksim.(*Conn).ReadFrom") {
			out = append(out, g)
		}
	}
	return out
}

// checkNoLinkGoroutines fails the test unless the goroutines of every closed Conn end. Close
// has waited for them to finish their work, but one may still be leaving its function
// (its deferred Done has run), and a caller's ReadFrom returns after Close: they go soon.
func checkNoLinkGoroutines(t *testing.T) {
	t.Helper()
	tc.Eventually(t, 10*time.Second, "no link goroutine is left after Close", func() (bool, string) {
		g := linkGoroutines()
		return len(g) == 0, strings.Join(g, "\n\n")
	})
}

// Up: what is written is lost at the rate asked for, delayed, jittered, and kept in order.
func TestConnUp(t *testing.T) {
	a, b := memPipe(20000)
	const n, delay = 10000, 2 * time.Millisecond
	c, err := WrapPacketConn(a, Impairment{Loss: 0.2, Delay: delay, Jitter: time.Millisecond, Limit: n, Seed: 7}, Impairment{})
	if err != nil {
		t.Fatal(err)
	}
	rcv := receive(b, delay)
	for i := range n {
		if _, err := c.WriteTo(stamped(i), b.local); err != nil {
			t.Fatal(err)
		}
	}
	up, _ := c.Stats()
	if up.Packets != n || up.Overflow != 0 {
		t.Fatalf("stats %+v", up)
	}
	if got := float64(up.Lost) / n; math.Abs(got-0.2) > 0.02 {
		t.Errorf("%v of %d lost", got, n)
	}
	rcv.expect(t, n-int(up.Lost))
	if up, _ = c.Stats(); up.Delivered != n-up.Lost || up.Failed != 0 {
		t.Errorf("stats %+v", up)
	}
	if err := c.Close(); err != nil {
		t.Error(err)
	}
	checkNoLinkGoroutines(t)
}

// Down: what the socket receives is lost, delayed and kept in order before ReadFrom
// returns it.
func TestConnDown(t *testing.T) {
	a, b := memPipe(20000)
	const n, delay = 10000, 2 * time.Millisecond
	c, err := WrapPacketConn(a, Impairment{}, Impairment{Loss: 0.1, Delay: delay, Jitter: time.Millisecond, Limit: n, Seed: 9})
	if err != nil {
		t.Fatal(err)
	}
	rcv := receive(c, delay)
	for i := range n {
		if _, err := b.WriteTo(stamped(i), a.local); err != nil {
			t.Fatal(err)
		}
	}
	// Everything has reached the link once Packets is n: the pump ran.
	for _, down := c.Stats(); down.Packets < n; _, down = c.Stats() {
		runtime.Gosched()
	}
	_, down := c.Stats()
	if got := float64(down.Lost) / n; math.Abs(got-0.1) > 0.02 {
		t.Errorf("%v of %d lost", got, n)
	}
	rcv.expect(t, n-int(down.Lost))
	if err := c.Close(); err != nil {
		t.Error(err)
	}
	checkNoLinkGoroutines(t)
}

// At most Limit packets wait; more are dropped and counted, each way. Close does not wait
// for the packets still on the link.
func TestConnLimit(t *testing.T) {
	a, b := memPipe(200)
	held := Impairment{Delay: time.Minute, Limit: 10}
	c, err := WrapPacketConn(a, held, held)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		_, _ = c.WriteTo(stamped(i), b.local)
		_, _ = b.WriteTo(stamped(i), a.local)
	}
	for _, down := c.Stats(); down.Packets < 100; _, down = c.Stats() {
		runtime.Gosched()
	}
	up, down := c.Stats()
	if up.Overflow != 90 || down.Overflow != 90 {
		t.Errorf("overflow up %d down %d, want 90 each", up.Overflow, down.Overflow)
	}
	if err := c.Close(); err != nil {
		t.Error(err)
	}
	checkNoLinkGoroutines(t)
}

// Close ends a waiting ReadFrom, later calls fail, and no goroutine of the link is left.
func TestConnClose(t *testing.T) {
	a, _ := memPipe(10)
	c, err := WrapPacketConn(a, Impairment{}, Impairment{})
	if err != nil {
		t.Fatal(err)
	}
	readErr := make(chan error)
	go func() {
		_, _, err := c.ReadFrom(make([]byte, 10))
		readErr <- err
	}()
	// Close may come before or after the read starts waiting: both must end it.
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-readErr; !errors.Is(err, net.ErrClosed) {
		t.Errorf("read after close: %v", err)
	}
	if _, err := c.WriteTo([]byte("x"), memAddr("b")); !errors.Is(err, net.ErrClosed) {
		t.Errorf("write after close: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("second close: %v", err)
	}
	checkNoLinkGoroutines(t)
}

// A read deadline ends a ReadFrom that has nothing to return, also when a packet is on its
// way but not due yet; a write deadline in the past fails WriteTo.
func TestConnDeadlines(t *testing.T) {
	a, b := memPipe(10)
	c, err := WrapPacketConn(a, Impairment{}, Impairment{Delay: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Close() }()
	_ = c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	if _, _, err := c.ReadFrom(make([]byte, 10)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("read past the deadline: %v", err)
	}
	_, _ = b.WriteTo([]byte("late"), a.local)
	for _, down := c.Stats(); down.Packets < 1; _, down = c.Stats() {
		runtime.Gosched()
	}
	_ = c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	if _, _, err := c.ReadFrom(make([]byte, 10)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("read past the deadline with a packet on its way: %v", err)
	}
	_ = c.SetWriteDeadline(time.Now().Add(-time.Second))
	if _, err := c.WriteTo([]byte("x"), b.local); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("write past the deadline: %v", err)
	}
}

// SetImpairment may run while packets pass; what is written after it sees the new link.
func TestConnSetImpairment(t *testing.T) {
	a, b := memPipe(5000)
	c, err := WrapPacketConn(a, Impairment{Loss: 0.1, Seed: 1}, Impairment{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Close() }()
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := range 1000 {
			_, _ = c.WriteTo(stamped(i), b.local)
		}
	})
	for i := range 50 {
		if err := c.SetImpairment(Impairment{Loss: float64(i%5) / 10, Delay: time.Duration(i) * time.Microsecond}, Impairment{}); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	if err := c.SetImpairment(Impairment{Loss: 1}, Impairment{}); err != nil {
		t.Fatal(err)
	}
	before, _ := c.Stats()
	for i := range 100 {
		_, _ = c.WriteTo(stamped(i), b.local)
	}
	after, _ := c.Stats()
	if after.Lost-before.Lost != 100 {
		t.Errorf("%d of 100 lost at 100%% loss", after.Lost-before.Lost)
	}
	if err := c.SetImpairment(Impairment{Loss: 2}, Impairment{}); err == nil {
		t.Error("loss 200% accepted")
	}
	if _, err := WrapPacketConn(a, Impairment{}, Impairment{Delay: -1}); err == nil {
		t.Error("negative delay accepted")
	}
}
