package server

import (
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// connCounter bounds the HTTP connections open at once: in total and per client address (an
// IPv6 /64 counts as one address). One counter is shared by all the HTTP listeners. A
// connection over a cap is closed as soon as it is accepted.
type connCounter struct {
	maxTotal   int
	maxPerAddr int                   // 0: no per-address cap
	exempt     func(netip.Addr) bool // addresses not held to maxPerAddr; nil: none
	log        *slog.Logger
	warn       rate.Sometimes // refusals are logged at most every 10 s

	mu      sync.Mutex
	total   int
	perAddr map[netip.Prefix]int
	refused int // since the last warning
}

// newConnCounter returns a counter of at most maxTotal connections, maxPerAddr of them from
// one address (0: any number); loopback clients are exempt from the per-address cap (a
// reverse proxy on this host and the recorder connect from there).
func newConnCounter(maxTotal, maxPerAddr int, log *slog.Logger) *connCounter {
	return &connCounter{
		maxTotal: maxTotal, maxPerAddr: maxPerAddr, exempt: netip.Addr.IsLoopback, log: log,
		warn: rate.Sometimes{Interval: 10 * time.Second}, perAddr: make(map[netip.Prefix]int),
	}
}

// Listener wraps l so that its connections are counted.
func (c *connCounter) Listener(l net.Listener) net.Listener {
	return &limitListener{Listener: l, counter: c}
}

// Open returns the number of connections open (for tests and logs).
func (c *connCounter) Open() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.total
}

// acquire counts a new connection from addr, or reports that a cap is reached.
func (c *connCounter) acquire(addr net.Addr) (key netip.Prefix, ok bool) {
	key = addrKey(addr)
	c.mu.Lock()
	defer c.mu.Unlock()
	counted := c.maxPerAddr > 0 && key.IsValid() && (c.exempt == nil || !c.exempt(key.Addr()))
	if c.total >= c.maxTotal || (counted && c.perAddr[key] >= c.maxPerAddr) {
		c.refused++
		n, total := c.refused, c.total
		c.warn.Do(func() {
			c.log.Warn("http: connections refused: cap reached (http.max_conns, http.max_conns_per_ip)",
				"refused", n, "open", total, "last_client", key.String())
			c.refused = 0
		})
		return netip.Prefix{}, false
	}
	c.total++
	if !counted {
		return netip.Prefix{}, true
	}
	c.perAddr[key]++
	return key, true
}

// release uncounts a connection acquired with key.
func (c *connCounter) release(key netip.Prefix) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.total--
	if !key.IsValid() {
		return
	}
	if c.perAddr[key]--; c.perAddr[key] <= 0 {
		delete(c.perAddr, key)
	}
}

// addrKey is the per-address key of a client: its IPv4 address, or the /64 of its IPv6
// address (one subscriber's allocation). Invalid when addr is not an IP address.
func addrKey(addr net.Addr) netip.Prefix {
	tcp, ok := addr.(*net.TCPAddr)
	if !ok {
		return netip.Prefix{}
	}
	a := tcp.AddrPort().Addr().Unmap()
	bits := 32
	if a.Is6() && !a.IsLoopback() {
		bits = 64
	} else if a.Is6() {
		bits = 128
	}
	p, err := a.Prefix(bits)
	if err != nil {
		return netip.Prefix{}
	}
	return p
}

// limitListener counts the connections it accepts in a connCounter.
type limitListener struct {
	net.Listener
	counter *connCounter
}

// Accept returns the next connection within the caps; those beyond are closed at once.
func (l *limitListener) Accept() (net.Conn, error) {
	for {
		conn, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		key, ok := l.counter.acquire(conn.RemoteAddr())
		if !ok {
			_ = conn.Close()
			continue
		}
		return &countedConn{Conn: conn, release: func() { l.counter.release(key) }}, nil
	}
}

// countedConn gives its place back when closed (by net/http, or by the websocket that
// hijacked it).
type countedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

// Close implements net.Conn.
func (c *countedConn) Close() error {
	c.once.Do(c.release)
	return c.Conn.Close()
}

// CloseWrite half-closes a TCP connection: net/http sends its answer to an oversized body
// (413) this way before closing, so that the client reads it rather than a reset.
func (c *countedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}
