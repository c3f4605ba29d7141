package signaling

import (
	"net/netip"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// maxJoinAddrs bounds the client addresses whose join budget is kept; past it, addresses
// with a full budget (indistinguishable from new ones) are forgotten first.
const maxJoinAddrs = 1 << 16

// joinLimiter bounds the joins (websocket upgrades on /rtc and /rtc/v1) of each client
// address: each creates PeerConnections, which costs CPU and memory. An IPv4 address, or
// the /64 of an IPv6 address, is one client address; loopback clients (the recorder, a
// reverse proxy on this host) are not held to it. It is safe for concurrent use.
type joinLimiter struct {
	limit rate.Limit
	burst int

	mu    sync.Mutex
	addrs map[string]*rate.Limiter
}

// newJoinLimiter returns a limiter of perSecond joins per address with bursts of burst;
// nil (no limit) when perSecond is negative.
func newJoinLimiter(perSecond float64, burst int) *joinLimiter {
	if perSecond < 0 {
		return nil
	}
	return &joinLimiter{limit: rate.Limit(perSecond), burst: burst, addrs: map[string]*rate.Limiter{}}
}

// allow takes one join from addr's budget at now, or reports how long until there is one.
func (l *joinLimiter) allow(addr string, now time.Time) (time.Duration, bool) {
	if l == nil {
		return 0, true
	}
	key, ok := joinKey(addr)
	if !ok {
		return 0, true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	lim := l.addrs[key]
	if lim == nil {
		l.makeRoom(now)
		lim = rate.NewLimiter(l.limit, l.burst)
		l.addrs[key] = lim
	}
	r := lim.ReserveN(now, 1)
	if !r.OK() {
		return time.Hour, false // a zero rate and burst: no join at all
	}
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return d, false
	}
	return 0, true
}

// makeRoom keeps the table under maxJoinAddrs before an insertion: addresses whose budget
// is full again go first, then, if that is not enough, an eighth of the table. l.mu is held.
func (l *joinLimiter) makeRoom(now time.Time) {
	if len(l.addrs) < maxJoinAddrs {
		return
	}
	for k, lim := range l.addrs {
		if lim.TokensAt(now) >= float64(l.burst) {
			delete(l.addrs, k)
		}
	}
	for k := range l.addrs {
		if len(l.addrs) < maxJoinAddrs-maxJoinAddrs/8 {
			return
		}
		delete(l.addrs, k)
	}
}

// joinKey is the budget key of a client address (as ClientAddress gives it): the address, or
// the /64 of an IPv6 one. Loopback addresses have none. A value that is not an address (a
// proxy header's garbage) is its own key.
func joinKey(addr string) (string, bool) {
	a, err := netip.ParseAddr(addr)
	if err != nil {
		return addr, true
	}
	a = a.Unmap().WithZone("")
	if a.IsLoopback() {
		return "", false
	}
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.String(), true
	}
	return a.String(), true
}
