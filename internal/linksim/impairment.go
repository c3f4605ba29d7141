// Package linksim simulates a weak network link in user space: random and bursty loss,
// delay, jitter and a rate limit with a bounded queue, each way of a net.PacketConn
// (WrapPacketConn), and a TURN relay whose relayed sockets are impaired so (Relay): a
// browser forced through it with iceTransportPolicy "relay", or a Go client with relay-only
// ICE, gets a weak path to any SFU, Sanke or livekit-server alike, with no kernel support
// (netem is missing on the kernels we test on). "sanke linksim" runs the relay by hand.
//
// The model of one direction, applied to each packet when it is handed to the link:
//  1. Rate: a token bucket (golang.org/x/time/rate) of Rate bits per second; a packet that
//     would wait longer than Queue for its tokens is dropped (Stats.Overflow), as a
//     bottleneck's full buffer drops it.
//  2. Loss: each packet is lost with probability Loss, or, with Burst set, while a
//     Gilbert-Elliott chain is in its bad state (time-based: the bad state lasts Burst on
//     average, the good state long enough that the bad share of the time is Loss).
//  3. Delay: the packet leaves Delay after its rate wait, plus a random extra of up to
//     Jitter; packets keep their order unless Reorder is set.
//
// At most Limit packets wait in one direction at once; more are dropped (Stats.Overflow).
package linksim

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"golang.org/x/time/rate"
)

// Defaults for the zero values of Impairment's bounds.
const (
	// DefaultQueue is Impairment.Queue when Rate is set and Queue is not: the longest a
	// packet waits at the rate limit, a DSL modem's buffer.
	DefaultQueue = 200 * time.Millisecond
	// DefaultLimit is Impairment.Limit when it is not set: netem's default limit.
	DefaultLimit = 1000
	// maxDelay bounds Delay and Jitter: beyond it a setting is a typo, not a link.
	maxDelay = time.Minute
	// minBucket is the smallest token bucket, in bytes: one full-size datagram as a relay
	// reads it (pion/turn's 1600-byte buffer) passes an idle link at once.
	minBucket = 1600
	// bucketTime sizes the token bucket: the bytes the rate carries in this time, when
	// that is more than minBucket (tc tbf needs at least rate/HZ).
	bucketTime = 10 * time.Millisecond
)

// Impairment describes one direction of a link. The zero value is a perfect link.
type Impairment struct {
	// Loss is the share of packets lost, from 0 to 1.
	Loss float64
	// Burst is the mean length of a loss burst (the Gilbert-Elliott bad state); 0:
	// independent random loss.
	Burst time.Duration
	// Delay is the least one-way delay.
	Delay time.Duration
	// Jitter adds a random delay of up to Jitter (uniform) to each packet.
	Jitter time.Duration
	// Reorder lets jitter reorder packets; without it a packet never overtakes an earlier
	// one (it waits for it instead).
	Reorder bool
	// Rate limits the link to this many bits per second; 0: no limit.
	Rate int64
	// Queue is the longest a packet may wait for the rate limit before it is dropped; 0:
	// DefaultQueue. Only with Rate.
	Queue time.Duration
	// Limit bounds the packets waiting in this direction at once; 0: DefaultLimit.
	Limit int
	// Seed seeds the random choices, for repeatable tests; 0: a random seed.
	Seed uint64
}

// Validate reports whether the impairment makes sense.
func (m Impairment) Validate() error {
	var errs []error
	if math.IsNaN(m.Loss) || m.Loss < 0 || m.Loss > 1 {
		errs = append(errs, fmt.Errorf("loss %v: must be between 0 and 100%%", m.Loss))
	}
	check := func(name string, d, most time.Duration) {
		if d < 0 || d > most {
			errs = append(errs, fmt.Errorf("%s %v: must be between 0 and %v", name, d, most))
		}
	}
	check("burst", m.Burst, maxDelay)
	check("delay", m.Delay, maxDelay)
	check("jitter", m.Jitter, maxDelay)
	check("queue", m.Queue, maxDelay)
	if m.Rate < 0 {
		errs = append(errs, fmt.Errorf("rate %d: must not be negative", m.Rate))
	}
	if m.Limit < 0 {
		errs = append(errs, fmt.Errorf("limit %d: must not be negative", m.Limit))
	}
	return errors.Join(errs...)
}

// String describes the impairment for logs.
func (m Impairment) String() string {
	s := fmt.Sprintf("loss %.4g%%", m.Loss*100)
	if m.Burst > 0 {
		s += fmt.Sprintf(" (bursts of %v)", m.Burst)
	}
	s += fmt.Sprintf(", delay %v", m.Delay)
	if m.Jitter > 0 {
		s += fmt.Sprintf(" + up to %v", m.Jitter)
		if m.Reorder {
			s += " (reordering)"
		}
	}
	if m.Rate > 0 {
		s += ", rate " + FormatRate(m.Rate) + fmt.Sprintf(" (queue %v)", m.queue())
	}
	return s
}

// queue returns the rate limit's queue bound.
func (m Impairment) queue() time.Duration {
	if m.Queue > 0 {
		return m.Queue
	}
	return DefaultQueue
}

// limit returns the bound on waiting packets.
func (m Impairment) limit() int {
	if m.Limit > 0 {
		return m.Limit
	}
	return DefaultLimit
}

// bucket returns the token bucket's size in bytes.
func (m Impairment) bucket() int {
	return max(int(m.Rate*int64(bucketTime)/int64(8*time.Second)), minBucket)
}

// verdict is what becomes of a packet handed to the link.
type verdict int

const (
	deliver  verdict = iota
	lost             // by the loss model
	overflow         // by the rate limit's queue bound
)

// shaper decides the fate and release time of each packet of one direction, given the time
// it was handed to the link. It keeps no clock of its own, so tests drive it with virtual
// time. Not safe for concurrent use.
type shaper struct {
	imp     Impairment
	rng     *rand.Rand
	ge      gilbertElliott
	limiter *rate.Limiter // nil: no rate limit
	// rateFrom is when limiter starts: the previous rate's queue has drained by then.
	rateFrom time.Time
	last     time.Time // the latest release handed out, for FIFO order
}

// newShaper returns a shaper for imp; stream tells apart shapers that share imp's seed.
func newShaper(imp Impairment, stream uint64) *shaper {
	seed := imp.Seed
	if seed == 0 {
		seed = rand.Uint64()
	}
	s := &shaper{rng: rand.New(rand.NewPCG(seed, stream))}
	s.set(imp, time.Now())
	return s
}

// set changes the impairment from now on, keeping the random stream, the queue the rate
// limit has built, and, when loss and burst are unchanged, the loss chain's state.
func (s *shaper) set(imp Impairment, now time.Time) {
	if imp.Loss != s.imp.Loss || imp.Burst != s.imp.Burst {
		s.ge = gilbertElliott{}
	}
	if imp.Rate != s.imp.Rate || (imp.Rate > 0) != (s.limiter != nil) {
		// A new rate starts with a new bucket, after the packets the old one let in: they
		// keep their release times, so new ones queue behind them.
		if s.limiter != nil {
			from := later(now, s.rateFrom)
			if debt := -s.limiter.TokensAt(from); debt > 0 {
				from = from.Add(time.Duration(debt / float64(s.limiter.Limit()) * float64(time.Second)))
			}
			s.rateFrom = from
		}
		s.limiter = nil
		if imp.Rate > 0 {
			s.limiter = rate.NewLimiter(rate.Limit(float64(imp.Rate)/8), imp.bucket())
		}
	}
	s.imp = imp
}

// admit decides the fate of a packet of size bytes handed to the link at now, and when it
// leaves the link if delivered. now must not go back in time between calls.
func (s *shaper) admit(now time.Time, size int) (time.Time, verdict) {
	release := now
	if s.limiter != nil {
		from := later(now, s.rateFrom)
		r := s.limiter.ReserveN(from, size)
		if !r.OK() { // larger than the bucket: it never fits
			return time.Time{}, overflow
		}
		release = from.Add(r.DelayFrom(from))
		if release.Sub(now) > s.imp.queue() {
			r.CancelAt(from)
			return time.Time{}, overflow
		}
	}
	if s.lost(now) {
		return time.Time{}, lost
	}
	release = release.Add(s.imp.Delay)
	if s.imp.Jitter > 0 {
		release = release.Add(time.Duration(s.rng.Int64N(int64(s.imp.Jitter) + 1)))
	}
	if !s.imp.Reorder && release.Before(s.last) {
		release = s.last
	}
	if release.After(s.last) {
		s.last = release
	}
	return release, deliver
}

// lost draws whether a packet handed to the link at now is lost.
func (s *shaper) lost(now time.Time) bool {
	switch {
	case s.imp.Loss <= 0:
		return false
	case s.imp.Loss >= 1:
		return true
	case s.imp.Burst <= 0:
		return s.rng.Float64() < s.imp.Loss
	}
	return s.ge.bad(now, s.imp.Loss, s.imp.Burst, s.rng)
}

// later returns the later of a and b.
func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// gilbertElliott is a two-state loss chain in continuous time: every packet is lost in the
// bad state and none in the good one, and each state lasts an exponentially distributed
// time, burst on average for the bad state and burst*(1-loss)/loss for the good one, so
// that the chain is bad for the share loss of the time. "10% in bursts of 50 ms" is thus
// 450 ms good and 50 ms bad on average.
type gilbertElliott struct {
	started bool
	isBad   bool
	until   time.Time // when the current state ends
}

// restartAfter is how many mean cycles the chain may be behind before it restarts from its
// stationary distribution instead of stepping through every cycle (after a long silence).
const restartAfter = 100

// bad reports whether the chain is in its bad state at now.
func (g *gilbertElliott) bad(now time.Time, loss float64, burst time.Duration, rng *rand.Rand) bool {
	badMean := float64(burst)
	goodMean := badMean * (1 - loss) / loss
	hold := func(bad bool) time.Duration {
		if bad {
			return time.Duration(rng.ExpFloat64() * badMean)
		}
		return time.Duration(rng.ExpFloat64() * goodMean)
	}
	if !g.started || float64(now.Sub(g.until)) > restartAfter*(badMean+goodMean) {
		// Stationary start: bad with probability loss; both holds are memoryless, so the
		// time left in the state is a full hold.
		g.started = true
		g.isBad = rng.Float64() < loss
		g.until = now.Add(hold(g.isBad))
	}
	for !now.Before(g.until) {
		g.isBad = !g.isBad
		g.until = g.until.Add(hold(g.isBad))
	}
	return g.isBad
}
