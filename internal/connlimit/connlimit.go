// Package connlimit bounds the TCP connections a listener holds: in total and per client
// address. A connection over a bound is closed as soon as it is accepted, before anything
// is read from it or allocated for it.
//
// One Limiter may count the connections of several listeners (the HTTP server's, one per
// bind address). Its connections give their place back once, when first closed.
package connlimit

import (
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// WarnInterval is how often at most a Limiter logs that it refused connections.
const WarnInterval = 10 * time.Second

// Config says how many connections a Limiter lets in.
type Config struct {
	// Max bounds the connections open at once; it must be at least 1.
	Max int
	// MaxPerAddr bounds those from one client address: an IPv4 address, or the /64 of an
	// IPv6 address (one subscriber's allocation). 0: no per-address bound.
	MaxPerAddr int
	// Exempt reports the client addresses not held to MaxPerAddr (they still count toward
	// Max); nil: none.
	Exempt func(netip.Addr) bool
	// Logger is told, at most every WarnInterval, how many connections were refused; give
	// it attributes naming the listener and the settings that bound it. nil: not logged.
	Logger *slog.Logger
}

// Limiter counts open connections within a Config's bounds. It is safe for concurrent use.
type Limiter struct {
	cfg  Config
	warn rate.Sometimes

	mu      sync.Mutex
	total   int
	perAddr map[netip.Prefix]int
	refused int // since the last warning
}

// New returns a Limiter with cfg's bounds.
func New(cfg Config) (*Limiter, error) {
	if cfg.Max < 1 {
		return nil, fmt.Errorf("connlimit: Max must be at least 1, got %d", cfg.Max)
	}
	if cfg.MaxPerAddr < 0 {
		return nil, fmt.Errorf("connlimit: MaxPerAddr must be 0 (no bound) or positive, got %d", cfg.MaxPerAddr)
	}
	return &Limiter{cfg: cfg, warn: rate.Sometimes{Interval: WarnInterval}, perAddr: map[netip.Prefix]int{}}, nil
}

// Open returns the number of connections counted.
func (l *Limiter) Open() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.total
}

// Acquire counts a new connection from client address addr. It reports false when a bound
// is reached; otherwise release uncounts the connection, the first time it is called.
// Addresses other than *net.TCPAddr count toward Max only.
func (l *Limiter) Acquire(addr net.Addr) (release func(), ok bool) {
	key, counted := l.key(addr)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.total >= l.cfg.Max || (counted && l.perAddr[key] >= l.cfg.MaxPerAddr) {
		l.refused++
		l.warnRefused(addr)
		return nil, false
	}
	l.total++
	if counted {
		l.perAddr[key]++
	}
	return sync.OnceFunc(func() { l.release(key, counted) }), true
}

// key returns the per-address key of addr, and whether MaxPerAddr holds it.
func (l *Limiter) key(addr net.Addr) (netip.Prefix, bool) {
	tcp, ok := addr.(*net.TCPAddr)
	if !ok {
		return netip.Prefix{}, false
	}
	a := tcp.AddrPort().Addr().Unmap()
	if l.cfg.MaxPerAddr == 0 || !a.IsValid() || (l.cfg.Exempt != nil && l.cfg.Exempt(a)) {
		return netip.Prefix{}, false
	}
	return addrKey(a), true
}

// addrKey is the per-address key of client address a: the address itself (IPv4, IPv6
// loopback), or the /64 of an IPv6 address.
func addrKey(a netip.Addr) netip.Prefix {
	bits := a.BitLen()
	if a.Is6() && !a.IsLoopback() {
		bits = 64
	}
	p, _ := a.Prefix(bits) // a is valid and bits within its length
	return p
}

// warnRefused logs the refusals, the last from client addr, at most every WarnInterval.
// l.mu is held.
func (l *Limiter) warnRefused(addr net.Addr) {
	if l.cfg.Logger == nil {
		return
	}
	l.warn.Do(func() {
		var client string
		if tcp, ok := addr.(*net.TCPAddr); ok {
			client = tcp.AddrPort().Addr().Unmap().String()
		} else if addr != nil {
			client = addr.String()
		}
		l.cfg.Logger.Warn("connections refused: cap reached",
			"refused", l.refused, "open", l.total, "last_client", client)
		l.refused = 0
	})
}

// release uncounts a connection acquired under key.
func (l *Limiter) release(key netip.Prefix, counted bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total--
	if !counted {
		return
	}
	if l.perAddr[key]--; l.perAddr[key] <= 0 {
		delete(l.perAddr, key)
	}
}

// Listener wraps ln so that the connections it accepts are counted by l: Accept closes
// those over a bound at once and returns the next one within. Closing a returned connection
// gives its place back.
func (l *Limiter) Listener(ln net.Listener) net.Listener {
	return &listener{Listener: ln, limit: l}
}

// listener counts the connections it accepts in a Limiter.
type listener struct {
	net.Listener
	limit *Limiter
}

// Accept returns the next connection within the bounds; those beyond are closed at once.
// Errors of the wrapped listener are returned as they are.
func (l *listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		release, ok := l.limit.Acquire(c.RemoteAddr())
		if !ok {
			_ = c.Close()
			continue
		}
		return &conn{Conn: c, release: release}, nil
	}
}

// conn gives its place back when closed.
type conn struct {
	net.Conn
	release func() // once
}

// Close closes the connection and gives its place back (once, however often it is called).
func (c *conn) Close() error {
	err := c.Conn.Close()
	c.release()
	return err
}

// CloseWrite half-closes a TCP connection: net/http sends its answer to an oversized body
// (413) this way before closing, so that the client reads it rather than a reset.
func (c *conn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}
