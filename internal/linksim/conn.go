package linksim

import (
	"bytes"
	"container/heap"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// maxDatagram is the largest datagram read from the wrapped connection.
const maxDatagram = 65535

// Stats counts what one direction of a link did with the packets handed to it.
type Stats struct {
	// Packets and Bytes were handed to the link.
	Packets, Bytes uint64
	// Delivered packets left the link: written to the socket (up) or returned by ReadFrom
	// (down).
	Delivered uint64
	// Lost packets were dropped by the loss model.
	Lost uint64
	// Overflow packets were dropped by a full queue: the rate limit's Queue, or Limit
	// packets already waiting.
	Overflow uint64
	// Failed packets were refused by the socket when they left the link.
	Failed uint64
}

// counters are a direction's Stats, updated as packets pass.
type counters struct {
	packets, bytes, delivered, lost, overflow, failed atomic.Uint64
}

func (c *counters) stats() Stats {
	return Stats{Packets: c.packets.Load(), Bytes: c.bytes.Load(), Delivered: c.delivered.Load(),
		Lost: c.lost.Load(), Overflow: c.overflow.Load(), Failed: c.failed.Load()}
}

// packet is a datagram waiting in a direction.
type packet struct {
	release time.Time // when it leaves the link
	seq     uint64    // admission order, which breaks ties
	data    []byte
	addr    net.Addr
}

// packetHeap orders waiting packets by release time (container/heap).
type packetHeap []*packet

func (h packetHeap) Len() int { return len(h) }
func (h packetHeap) Less(i, j int) bool {
	if h[i].release.Equal(h[j].release) {
		return h[i].seq < h[j].seq
	}
	return h[i].release.Before(h[j].release)
}
func (h packetHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *packetHeap) Push(x any)   { *h = append(*h, x.(*packet)) }
func (h *packetHeap) Pop() any {
	old := *h
	p := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return p
}

// direction is one way of a link: the shaper's decisions and the packets waiting to leave.
type direction struct {
	stats *counters

	mu       sync.Mutex
	sh       *shaper
	limit    int
	queue    packetHeap
	seq      uint64
	changed  chan struct{} // closed and replaced when the queue's head or the deadline changes
	deadline time.Time     // of ReadFrom (down only)
}

func newDirection(imp Impairment, stream uint64, stats *counters) *direction {
	return &direction{stats: stats, sh: newShaper(imp, stream), limit: imp.limit(), changed: make(chan struct{})}
}

// signal wakes everyone waiting on the direction. d.mu must be held.
func (d *direction) signal() {
	close(d.changed)
	d.changed = make(chan struct{})
}

// set changes the impairment from now on.
func (d *direction) set(imp Impairment) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.sh.set(imp, time.Now())
	d.limit = imp.limit()
}

// push hands a copy of datagram b for addr to the link now.
func (d *direction) push(b []byte, addr net.Addr) {
	d.stats.packets.Add(1)
	d.stats.bytes.Add(uint64(len(b)))
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.queue) >= d.limit {
		d.stats.overflow.Add(1)
		return
	}
	// The clock is read under the lock, so the shaper sees time move forward only.
	release, v := d.sh.admit(time.Now(), len(b))
	switch v {
	case lost:
		d.stats.lost.Add(1)
		return
	case overflow:
		d.stats.overflow.Add(1)
		return
	}
	p := &packet{release: release, seq: d.seq, data: bytes.Clone(b), addr: addr}
	d.seq++
	heap.Push(&d.queue, p)
	if d.queue[0] == p {
		d.signal()
	}
}

// pop removes and returns the head of the queue if it is due at now. Otherwise it returns
// how long until the head is due (negative: the queue is empty), the read deadline, and a
// channel closed when either changes.
func (d *direction) pop(now time.Time) (p *packet, wait time.Duration, deadline time.Time, changed <-chan struct{}) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.queue) == 0 {
		return nil, -1, d.deadline, d.changed
	}
	if head := d.queue[0]; !head.release.After(now) {
		return heap.Pop(&d.queue).(*packet), 0, d.deadline, d.changed
	}
	return nil, d.queue[0].release.Sub(now), d.deadline, d.changed
}

// setDeadline sets the read deadline.
func (d *direction) setDeadline(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.deadline = t
	d.signal()
}

// Conn is a net.PacketConn seen through an impaired link: what is written to it (up)
// leaves the socket impaired, and what the socket receives (down) is returned by ReadFrom
// impaired. One goroutine per direction runs it, until Close.
type Conn struct {
	net.PacketConn // the wrapped connection

	up, down *direction

	closed    chan struct{} // closed by Close
	closeOnce sync.Once
	closeErr  error
	onClose   func() // run once the goroutines have stopped
	done      sync.WaitGroup

	pumpDone chan struct{} // closed when reading the wrapped connection failed
	readErr  error         // why; written before pumpDone is closed

	writeDeadline atomic.Pointer[time.Time]
}

// WrapPacketConn returns pc with an impaired link in front of it: up impairs the datagrams
// written to it, down those read from it. Closing the result closes pc.
func WrapPacketConn(pc net.PacketConn, up, down Impairment) (*Conn, error) {
	return wrap(pc, up, down, 0, &counters{}, &counters{}, nil)
}

// wrap is WrapPacketConn with the random streams numbered from stream, the given counters,
// and onClose run when the connection has closed.
func wrap(pc net.PacketConn, up, down Impairment, stream uint64, upStats, downStats *counters, onClose func()) (*Conn, error) {
	if err := up.Validate(); err != nil {
		return nil, err
	}
	if err := down.Validate(); err != nil {
		return nil, err
	}
	c := &Conn{
		PacketConn: pc,
		up:         newDirection(up, 2*stream, upStats),
		down:       newDirection(down, 2*stream+1, downStats),
		closed:     make(chan struct{}),
		onClose:    onClose,
		pumpDone:   make(chan struct{}),
	}
	c.done.Add(2)
	go c.send()
	go c.pump()
	return c, nil
}

// SetImpairment changes the link from now on. Packets already on the link keep the fate
// they were given.
func (c *Conn) SetImpairment(up, down Impairment) error {
	if err := up.Validate(); err != nil {
		return err
	}
	if err := down.Validate(); err != nil {
		return err
	}
	c.up.set(up)
	c.down.set(down)
	return nil
}

// Stats returns what the link did so far, each way.
func (c *Conn) Stats() (up, down Stats) {
	return c.up.stats.stats(), c.down.stats.stats()
}

// WriteTo hands a copy of b for addr to the link; it returns at once.
func (c *Conn) WriteTo(b []byte, addr net.Addr) (int, error) {
	select {
	case <-c.closed:
		return 0, c.opError("write", net.ErrClosed)
	default:
	}
	if d := c.writeDeadline.Load(); d != nil && !d.IsZero() && !time.Now().Before(*d) {
		return 0, c.opError("write", os.ErrDeadlineExceeded)
	}
	c.up.push(b, addr)
	return len(b), nil
}

// ReadFrom returns the next datagram that has crossed the link.
func (c *Conn) ReadFrom(b []byte) (int, net.Addr, error) {
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		now := time.Now()
		p, wait, deadline, changed := c.down.pop(now)
		if p != nil {
			c.down.stats.delivered.Add(1)
			return copy(b, p.data), p.addr, nil
		}
		select {
		case <-c.closed:
			return 0, nil, c.opError("read", net.ErrClosed)
		default:
		}
		pumpDone := c.pumpDone
		if wait < 0 {
			select {
			case <-c.pumpDone: // nothing more will come
				return 0, nil, c.readErr
			default:
			}
		} else {
			pumpDone = nil // packets are still on their way
		}
		if !deadline.IsZero() {
			left := deadline.Sub(now)
			if left <= 0 {
				return 0, nil, c.opError("read", os.ErrDeadlineExceeded)
			}
			if wait < 0 || left < wait {
				wait = left
			}
		}
		var fire <-chan time.Time
		if wait >= 0 {
			if timer == nil {
				timer = time.NewTimer(wait)
			} else {
				timer.Reset(wait)
			}
			fire = timer.C
		}
		select {
		case <-c.closed:
		case <-pumpDone:
		case <-changed:
		case <-fire:
		}
	}
}

// SetDeadline sets the read and write deadlines.
func (c *Conn) SetDeadline(t time.Time) error {
	c.down.setDeadline(t)
	c.writeDeadline.Store(&t)
	return nil
}

// SetReadDeadline sets the deadline of ReadFrom.
func (c *Conn) SetReadDeadline(t time.Time) error {
	c.down.setDeadline(t)
	return nil
}

// SetWriteDeadline sets the deadline of WriteTo, which never waits: past it, WriteTo fails.
func (c *Conn) SetWriteDeadline(t time.Time) error {
	c.writeDeadline.Store(&t)
	return nil
}

// Close closes the wrapped connection and waits for the link's goroutines to stop; packets
// still on the link are dropped.
func (c *Conn) Close() error {
	c.closeOnce.Do(func() {
		close(c.closed)
		c.closeErr = c.PacketConn.Close()
		c.done.Wait()
		if c.onClose != nil {
			c.onClose()
		}
	})
	return c.closeErr
}

func (c *Conn) opError(op string, err error) error {
	return &net.OpError{Op: op, Net: c.LocalAddr().Network(), Source: c.LocalAddr(), Err: err}
}

// send writes the up direction's packets to the socket as they become due.
func (c *Conn) send() {
	defer c.done.Done()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		p, wait, _, changed := c.up.pop(time.Now())
		if p != nil {
			if _, err := c.PacketConn.WriteTo(p.data, p.addr); err != nil {
				c.up.stats.failed.Add(1)
			} else {
				c.up.stats.delivered.Add(1)
			}
			continue
		}
		var fire <-chan time.Time
		if wait >= 0 {
			timer.Reset(wait)
			fire = timer.C
		}
		select {
		case <-c.closed:
			return
		case <-changed:
		case <-fire:
		}
	}
}

// pump reads the socket and hands what arrives to the down direction.
func (c *Conn) pump() {
	defer c.done.Done()
	buf := make([]byte, maxDatagram)
	for {
		n, addr, err := c.PacketConn.ReadFrom(buf)
		if err != nil {
			c.readErr = err
			close(c.pumpDone)
			return
		}
		c.down.push(buf[:n], addr)
	}
}
