package turnserver

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"
)

// Limits bound what the relay's clients may hold. Zero fields take the defaults named
// below.
type Limits struct {
	// Allocations bounds the allocations in total (each holds a relay port). Default 4096.
	Allocations int
	// AllocationsPerParticipant bounds those of one participant's credentials: a client
	// needs one per relay URL (up to 3), PeerConnection (2) and network, twice while an ICE
	// restart replaces them. Default 24.
	AllocationsPerParticipant int
	// AllocationsPerAddress bounds those made from one client IP address (a school's NAT
	// carries all its teaching points). Default 512.
	AllocationsPerAddress int
	// Connections bounds the open TURN/TCP and TURN/TLS connections in total. Default 4096.
	Connections int
	// ConnectionsPerAddress bounds those from one client IP address. Default 256.
	ConnectionsPerAddress int
	// SetupTimeout is how long a TURN/TCP or TURN/TLS connection may go without an
	// allocation (or a bound peer connection), TLS handshake included, before it is
	// closed. Default 10 s.
	SetupTimeout time.Duration
}

// withDefaults fills the zero fields.
func (l Limits) withDefaults() Limits {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&l.Allocations, 4096)
	def(&l.AllocationsPerParticipant, 24)
	def(&l.AllocationsPerAddress, 512)
	def(&l.Connections, 4096)
	def(&l.ConnectionsPerAddress, 256)
	if l.SetupTimeout <= 0 {
		l.SetupTimeout = 10 * time.Second
	}
	return l
}

// goneMemory is how long a participant that left stays remembered, so that credentials
// asked for it by a request racing its departure (a resume) are refused rather than
// bringing it back.
const goneMemory = time.Minute

var (
	errNotInSession = errors.New("turn: the participant is not in a session")
	errQuota        = errors.New("turn: allocation quota reached")
)

// ledger knows which participants are in their sessions and what their credentials hold:
// the relay sockets of their allocations, counted per participant and in total; and the
// allocations per client address.
type ledger struct {
	limits Limits

	mu     sync.Mutex
	users  map[string]map[io.Closer]struct{} // sid in session -> its relay sockets
	gone   map[string]struct{}               // sids that left within goneMemory
	queue  []departure                       // gone, oldest first
	total  int                               // relay sockets
	byAddr map[netip.Addr]int                // allocations per client address
}

// departure is a participant that left, and when.
type departure struct {
	sid string
	at  time.Time
}

func newLedger(limits Limits) *ledger {
	return &ledger{limits: limits, users: map[string]map[io.Closer]struct{}{}, gone: map[string]struct{}{},
		byAddr: map[netip.Addr]int{}}
}

// join records that participant sid is in its session (credentials are being handed to
// it). A participant that has just left stays out.
func (l *ledger) join(sid string) error {
	if sid == "" || strings.Contains(sid, ":") {
		return fmt.Errorf("turn: participant sid %q cannot name a credential", sid)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.gone[sid]; ok {
		return errNotInSession
	}
	if l.users[sid] == nil {
		l.users[sid] = map[io.Closer]struct{}{}
	}
	return nil
}

// live reports whether participant sid is in its session.
func (l *ledger) live(sid string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.users[sid] != nil
}

// leave records that participant sid left and returns its relay sockets, for the caller to
// close.
func (l *ledger) leave(sid string) []io.Closer {
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	relays, ok := l.users[sid]
	if !ok {
		return nil
	}
	delete(l.users, sid)
	for len(l.queue) > 0 && now.Sub(l.queue[0].at) > goneMemory {
		delete(l.gone, l.queue[0].sid)
		l.queue = l.queue[1:]
	}
	l.gone[sid] = struct{}{}
	l.queue = append(l.queue, departure{sid, now})
	out := make([]io.Closer, 0, len(relays))
	for r := range relays {
		out = append(out, r)
	}
	return out
}

// take counts relay socket relay against participant sid's quota and the total, or
// refuses it. A participant not in its session gets none (it may have left while the
// allocation was made).
func (l *ledger) take(sid string, relay io.Closer) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	relays, ok := l.users[sid]
	switch {
	case !ok:
		return errNotInSession
	case len(relays) >= l.limits.AllocationsPerParticipant, l.total >= l.limits.Allocations:
		return errQuota
	}
	relays[relay] = struct{}{}
	l.total++
	return nil
}

// release returns what take counted for relay.
func (l *ledger) release(sid string, relay io.Closer) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total--
	delete(l.users[sid], relay)
}

// allows reports whether participant sid may make one more allocation from src (pion's
// QuotaHandler asks before allocating, to answer 486 Allocation Quota Reached).
func (l *ledger) allows(sid string, src net.Addr) bool {
	ip := addrPort(src).Addr()
	l.mu.Lock()
	defer l.mu.Unlock()
	relays, ok := l.users[sid]
	return ok && len(relays) < l.limits.AllocationsPerParticipant && l.total < l.limits.Allocations &&
		l.byAddr[ip] < l.limits.AllocationsPerAddress
}

// created counts an allocation made from client address src.
func (l *ledger) created(src net.Addr) {
	ip := addrPort(src).Addr()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.byAddr[ip]++
}

// deleted uncounts an allocation made from client address src.
func (l *ledger) deleted(src net.Addr) {
	ip := addrPort(src).Addr()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.byAddr[ip]--; l.byAddr[ip] <= 0 {
		delete(l.byAddr, ip)
	}
}
