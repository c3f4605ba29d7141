package turnserver

import (
	"crypto/tls"
	"encoding/binary"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/stun/v4"
	"github.com/pion/turn/v5"
)

// inboundMTU is the largest TURN frame read from a TCP or TLS connection, as pion's own
// read loop takes (its default InboundMTU): larger frames end the connection.
const inboundMTU = 1600

// connTracker knows the open TURN/TCP and TURN/TLS connections by their two ends, so that
// the end of an allocation reaches its connection. How many may be open is bounded by the
// server's connlimit.Limiter, before a connection gets here.
type connTracker struct {
	mu     sync.Mutex
	byPair map[string]*turnConn // connPair(remote, local) -> connection
}

func newConnTracker() *connTracker {
	return &connTracker{byPair: map[string]*turnConn{}}
}

// connPair names a connection by its two ends, as pion reports an allocation's client
// (source) and server (destination) addresses.
func connPair(remote, local net.Addr) string {
	return remote.Network() + " " + remote.String() + " " + local.String()
}

// add registers new connection c.
func (t *connTracker) add(c *turnConn) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.byPair[c.pair] = c
}

// remove forgets a closed connection.
func (t *connTracker) remove(c *turnConn) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.byPair[c.pair] == c {
		delete(t.byPair, c.pair)
	}
}

// unallocated is told that the allocation of client src at server address dst ended: its
// connection, if it is one of ours, gets SetupTimeout to allocate again or be closed.
func (t *connTracker) unallocated(src, dst net.Addr) {
	t.mu.Lock()
	c := t.byPair[connPair(src, dst)]
	t.mu.Unlock()
	if c != nil {
		c.unsettle()
	}
}

// turnListener accepts TURN/TCP or TURN/TLS connections.
type turnListener struct {
	net.Listener             // within the connection bounds (Server.limit)
	tls          *tls.Config // nil: plain TCP
	s            *Server
}

// Accept returns the next connection. A failing accept (out of file descriptors) is retried
// after a pause instead of ending pion's accept loop, as net/http does.
func (l *turnListener) Accept() (net.Conn, error) {
	var pause time.Duration
	for {
		raw, err := l.Listener.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil, err
			}
			pause = min(max(2*pause, 5*time.Millisecond), time.Second)
			l.s.logger.Warn("turn accept failed, retrying", "err", err, "pause", pause)
			time.Sleep(pause)
			continue
		}
		c := &turnConn{Conn: raw, s: l.s, pair: connPair(raw.RemoteAddr(), raw.LocalAddr()), buf: make([]byte, inboundMTU)}
		if l.tls != nil {
			c.Conn = tls.Server(raw, l.tls)
		}
		c.frames = turn.NewSTUNConn(c.Conn)
		// The deadline covers the TLS handshake and the first allocation (Write lifts it).
		_ = raw.SetDeadline(time.Now().Add(l.s.cfg.Limits.SetupTimeout))
		l.s.conns.add(c)
		return c, nil
	}
}

// turnConn is one TURN/TCP or TURN/TLS connection as pion reads it: whole TURN frames,
// refused requests answered here (refusal), a deadline until it allocates, and after a
// ConnectionBind (RFC 6062) the peer's raw bytes.
type turnConn struct {
	net.Conn // TCP (counted in Server.limit until closed), or TLS over it
	s        *Server
	pair     string

	frames  *turn.STUNConn // framing over Conn
	buf     []byte         // the frame being returned
	pending []byte         // what Read has not returned of it yet
	raw     atomic.Bool    // bound to a peer: bytes pass through unframed
	settled atomic.Bool    // allocated or bound: no deadline
	closed  closeOnce
}

// Read returns the next TURN frame (or the rest of one) that pion should handle.
func (c *turnConn) Read(p []byte) (int, error) {
	if len(c.pending) > 0 {
		n := copy(p, c.pending)
		c.pending = c.pending[n:]
		return n, nil
	}
	if c.raw.Load() {
		return c.Conn.Read(p)
	}
	for {
		n, _, err := c.frames.ReadFrom(c.buf)
		if err != nil {
			return 0, err
		}
		if reply := c.s.refusal(c.buf[:n]); reply != nil {
			if _, err := c.Conn.Write(reply); err != nil {
				return 0, err
			}
			continue
		}
		m := copy(p, c.buf[:n])
		c.pending = c.buf[m:n]
		return m, nil
	}
}

// Write sends pion's frame; a successful Allocate or ConnectionBind answer settles the
// connection.
func (c *turnConn) Write(p []byte) (int, error) {
	if !c.settled.Load() && len(p) >= 20 && stun.IsMessage(p) {
		var t stun.MessageType
		t.ReadValue(binary.BigEndian.Uint16(p))
		if t.Class == stun.ClassSuccessResponse && (t.Method == stun.MethodAllocate || t.Method == stun.MethodConnectionBind) {
			// pion copies a bound connection's bytes to the peer once this answer is out.
			c.raw.Store(t.Method == stun.MethodConnectionBind)
			c.settled.Store(true)
			_ = c.Conn.SetDeadline(time.Time{})
		}
	}
	return c.Conn.Write(p)
}

// unsettle gives a connection that lost its allocation SetupTimeout to make another.
func (c *turnConn) unsettle() {
	if c.raw.Load() {
		return
	}
	c.settled.Store(false)
	_ = c.Conn.SetDeadline(time.Now().Add(c.s.cfg.Limits.SetupTimeout))
}

// Close closes the connection, which gives its place back, and forgets it.
func (c *turnConn) Close() error {
	return c.closed.do(func() error {
		c.s.conns.remove(c)
		return c.Conn.Close()
	})
}

// closeOnce runs a close function once and returns its result to every caller.
type closeOnce struct {
	once sync.Once
	err  error
}

func (o *closeOnce) do(f func() error) error {
	o.once.Do(func() { o.err = f() })
	return o.err
}
