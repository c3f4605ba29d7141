package srtpout

import (
	"encoding/binary"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
)

// DefaultStreamQueue is how many bytes of framed SRTP a Stream holds for its connection
// before it drops new packets: about 1.4 s of a 1.5 Mbit/s layer.
const DefaultStreamQueue = 256 << 10

// frameHeader is RFC 4571's length prefix in front of every packet on an ICE-TCP
// connection.
const frameHeader = 2

// StreamConns keeps the ICE-TCP connections a listener accepted, by client address, so that
// a Sender whose selected ICE candidate pair runs over one of them sends its SRTP there (see
// Stream). The Sender's SRTP state then survives a move from UDP to ICE-TCP and back: one
// rollover counter per stream whatever the path. It is safe for concurrent use.
type StreamConns struct {
	queue int

	mu    sync.Mutex
	conns map[netip.AddrPort]*Stream
}

// NewStreamConns returns an empty registry whose Streams queue at most queue bytes
// (DefaultStreamQueue if queue < 1).
func NewStreamConns(queue int) *StreamConns {
	if queue < 1 {
		queue = DefaultStreamQueue
	}
	return &StreamConns{queue: queue, conns: map[netip.AddrPort]*Stream{}}
}

// Listener returns l registering every connection it accepts until that connection is
// closed. Give it to pion's ICE-TCP mux.
func (c *StreamConns) Listener(l net.Listener) net.Listener {
	return &streamListener{Listener: l, conns: c}
}

// Lookup returns the Stream of the connection from client address remote, nil if there is
// none (not accepted by the Listener, or closed).
func (c *StreamConns) Lookup(remote netip.AddrPort) *Stream {
	remote = netip.AddrPortFrom(remote.Addr().Unmap(), remote.Port())
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.conns[remote]
}

// Len returns the number of connections registered.
func (c *StreamConns) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.conns)
}

// streamListener registers the connections it accepts in conns.
type streamListener struct {
	net.Listener
	conns *StreamConns
}

// Accept returns the next connection, registered (if its address is TCP) until closed.
func (l *streamListener) Accept() (net.Conn, error) {
	conn, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	tcp, ok := conn.RemoteAddr().(*net.TCPAddr)
	if !ok {
		return conn, nil
	}
	key := tcp.AddrPort()
	key = netip.AddrPortFrom(key.Addr().Unmap(), key.Port())
	st := newStream(conn, l.conns.queue)
	sc := &streamConn{Conn: conn, stream: st}
	sc.unregister = func() {
		l.conns.mu.Lock()
		if l.conns.conns[key] == st {
			delete(l.conns.conns, key)
		}
		l.conns.mu.Unlock()
	}
	l.conns.mu.Lock()
	l.conns.conns[key] = st
	l.conns.mu.Unlock()
	go st.run()
	return sc, nil
}

// streamConn is an accepted ICE-TCP connection: pion reads and writes it as before (each of
// its frames in one Write), and its Stream writes Sanke's frames between pion's.
type streamConn struct {
	net.Conn
	stream     *Stream
	unregister func()
	closeOnce  sync.Once
}

// Close unregisters the connection, stops its Stream and closes it.
func (c *streamConn) Close() error {
	c.closeOnce.Do(func() {
		c.unregister()
		c.stream.close()
	})
	return c.Conn.Close()
}

// Stream sends a Sender's SRTP packets on one ICE-TCP connection, framed as RFC 4571 says
// (a 16-bit length before each packet), the framing pion's ICE-TCP uses. Senders queue
// packets without blocking (the fan-out must never wait for one subscriber's TCP window);
// one goroutine per connection writes the queue out, whole frames per Write call. A
// net.Conn's Write sends all its bytes before another Write starts (the socket's write
// lock), so pion's frames (STUN, DTLS, RTCP) and the Stream's never interleave mid-frame.
// A full queue drops the new packet (drop-tail): as a full router queue would, the receiver
// then asks for it again with a NACK.
type Stream struct {
	conn  net.Conn
	limit int
	wake  chan struct{}
	done  chan struct{}

	mu      sync.Mutex
	pending []byte // framed packets waiting for the writer
	closed  bool

	queued, dropped atomic.Uint64
}

func newStream(conn net.Conn, limit int) *Stream {
	return &Stream{conn: conn, limit: limit, wake: make(chan struct{}, 1), done: make(chan struct{})}
}

// enqueue frames pkt into the queue; false if it was dropped (queue full, or the
// connection closed). It copies pkt and never blocks.
func (s *Stream) enqueue(pkt []byte) bool {
	s.mu.Lock()
	if s.closed || len(s.pending)+frameHeader+len(pkt) > s.limit {
		s.mu.Unlock()
		s.dropped.Add(1)
		return false
	}
	if s.pending == nil {
		s.pending = make([]byte, 0, s.limit)
	}
	s.pending = binary.BigEndian.AppendUint16(s.pending, uint16(len(pkt))) //nolint:gosec // pkt is at most MaxPacket plus the tag
	s.pending = append(s.pending, pkt...)
	s.mu.Unlock()
	s.queued.Add(1)
	select {
	case s.wake <- struct{}{}:
	default: // the writer is awake already
	}
	return true
}

// run writes the queue out until the connection closes or fails. Two buffers take turns:
// senders fill one while the other is written.
func (s *Stream) run() {
	var spare []byte
	for {
		select {
		case <-s.done:
			return
		case <-s.wake:
		}
		s.mu.Lock()
		out := s.pending
		s.pending = spare
		s.mu.Unlock()
		if len(out) == 0 {
			spare = out
			continue
		}
		if _, err := s.conn.Write(out); err != nil {
			s.close() // pion sees the error too and closes the connection
			return
		}
		spare = out[:0]
	}
}

// close stops the Stream: queued packets are dropped, later ones refused.
func (s *Stream) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.closed = true
	s.pending = nil
	close(s.done)
}

// Stats returns the packets queued for the connection and those dropped (queue full or
// connection closed).
func (s *Stream) Stats() (queued, dropped uint64) { return s.queued.Load(), s.dropped.Load() }

// SetStream makes the Sender send on st, an ICE-TCP connection (see StreamConns), instead
// of a UDP address; nil stops the Sender as SetRemote(nil) does. The SRTP state is kept.
func (s *Sender) SetStream(st *Stream) {
	var p *peerAddr
	if st != nil {
		p = &peerAddr{stream: st}
	}
	s.remote.Store(p)
	s.update()
}
