package bwe

import "math"

// Probe parameters.
const (
	probeMinDuration  = 500_000_000 // ns; at least 2 RTT
	probeMinExtra     = 200_000     // bps over the current usage, at least
	probeDeltaFactor  = 1.2         // of the next layer's extra cost
	probeNormalFor    = 2_000_000_000
	probeNoOveruseFor = 5_000_000_000
	probeBackoffMin   = 2_000_000_000
	// probeBackoffMax bounds the wait after failed probes: a line that was thin for a
	// minute and came back is found within it (issue 14: back up within 15 s), and a probe
	// that fails stops at the first overuse, a few hundred milliseconds of excess.
	probeBackoffMax  = 8_000_000_000
	probeAckedShare  = 0.8  // of the cluster's packets must be acknowledged
	probeSentShare   = 0.8  // of the goal must have been sent (the probe reached its rate)
	probeRateShare   = 0.9  // of the rate sent must arrive
	probeResultShare = 0.95 // of what arrived becomes the target
	probeGoalCap     = 1.1  // ...but no more than this times the goal
	// probeGoalScale bounds a cluster's goal to this times the estimate (at least
	// probeMinExtra over the usage): on a line the estimate tracks, half its rate again until
	// the first overuse stops the cluster (about 300 ms) queues 150 ms, within a DSL
	// modem's 200 ms buffer. libwebrtc caps a probe of a loss-limited estimate the same way.
	probeGoalScale    = 1.5
	probeFeedbackWait = 150_000_000
	probeLossSigmas   = 0.5 // of a loss window's binomial variation tolerated at the start
	// probeIdleAfter: with no loss window evaluated for this long (next to nothing was
	// sent, as while the only video is paused), the delay and loss last seen describe a
	// queue long drained and do not gate a probe.
	probeIdleAfter = 2 * lossWindow
	// probePaddingMax bounds the padding due at once: one frame interval's share of a
	// cluster, not a burst that would itself fill a rural queue.
	probePaddingMax = 16 * 1024
)

// Prober plans, paces and judges probe clusters: bursts of padding that raise the sending
// rate to what one more layer would need, for long enough (500 ms or 2 RTT) that the
// acknowledged rate and the delay trend tell whether the path carries it. It is part of a
// Controller and guarded by its lock.
type Prober struct {
	id        uint8 // cluster being sent or judged, 0 none
	start     int64
	end       int64
	goal      float64 // bps
	capped    bool    // the goal is probeGoalScale times the estimate, short of the step asked
	usage     uint64  // bps sent before the cluster (StartProbe's usage)
	overused  bool
	sentBytes uint64 // everything sent during the cluster, media included
	sentPkts  uint64
	ackBytes  uint64
	ackPkts   uint64
	lostPkts  uint64
	firstArr  int64
	lastArr   int64
	lastSize  uint64

	nextID    uint8
	backoff   int64
	notBefore int64

	clusters, succeeded uint64
}

func (p *Prober) reset() {
	*p = Prober{backoff: probeBackoffMin}
}

func (p *Prober) active() bool { return p.id != 0 }

// abort ends a cluster without judging it (overuse, congestion, a new path) and backs off
// from now: an aborted probe failed.
func (p *Prober) abort(now int64) {
	if p.id != 0 {
		p.id = 0
		p.backoff = min(2*p.backoff, probeBackoffMax)
		p.notBefore = now + p.backoff
	}
}

func (p *Prober) onAcked(e *sent, arrival int64) {
	if p.id == 0 || e.cluster != p.id {
		return
	}
	p.ackBytes += uint64(e.size)
	p.ackPkts++
	if p.firstArr == 0 || arrival < p.firstArr {
		p.firstArr = arrival
	}
	if arrival > p.lastArr {
		p.lastArr, p.lastSize = arrival, uint64(e.size)
	}
}

func (p *Prober) onLost(e *sent) {
	if p.id != 0 && e.cluster == p.id {
		p.lostPkts++
	}
}

// evaluate judges the cluster once its feedback is due. c.mu is held.
func (p *Prober) evaluate(c *Controller, now int64) {
	if p.id == 0 {
		return
	}
	if c.tl.usage == UsageOver {
		p.overused = true
	}
	if now < p.end+c.rtt+probeFeedbackWait {
		return
	}
	c.hist.mu.Lock()
	if c.hist.cluster == p.id {
		c.hist.cluster = 0
	}
	p.sentBytes, p.sentPkts = c.hist.clusterBytes, c.hist.clusterPkts
	first, last := c.hist.clusterFirst, c.hist.clusterLast
	c.hist.mu.Unlock()
	p.id = 0
	// What was sent and what arrived, each over its own span (libwebrtc's probe estimate):
	// the path carries the rate when what arrived kept up with what was sent.
	var recv, send float64
	if span := p.lastArr - p.firstArr; span > 0 && p.ackBytes > p.lastSize {
		recv = float64(p.ackBytes-p.lastSize) * 8 * 1e9 / float64(span)
	}
	if span := max(last-first, probeMinDuration/2); p.sentBytes > 0 {
		send = float64(p.sentBytes) * 8 * 1e9 / float64(span)
	}
	// Random loss takes its share of every rate: the rate that arrived is scaled up by the
	// share of the cluster that did not (the rate of what arrived, as if nothing had been
	// lost), so that only the arrivals spreading out says the path is full; the loss itself
	// is judged against the baseline and its chance variation (lossZ).
	share := c.sentShare()
	lossy := false
	if p.sentPkts > 0 {
		sigma := math.Sqrt(max(c.baseline, lossSigmaFloor) * share / float64(p.sentPkts))
		lossy = float64(p.lostPkts)/float64(p.sentPkts) > c.baseline+lossQuiet+lossZ*sigma
	}
	if p.ackBytes > 0 && p.sentBytes > p.ackBytes {
		recv *= float64(p.sentBytes) / float64(p.ackBytes)
	}
	ok := !p.overused && !lossy && p.sentPkts > 0 &&
		float64(p.ackPkts) >= probeAckedShare*share*float64(p.sentPkts) &&
		send >= probeSentShare*p.goal && recv >= probeRateShare*send
	if !ok {
		p.backoff = min(2*p.backoff, probeBackoffMax)
		p.notBefore = now + p.backoff
		return
	}
	p.succeeded++
	p.backoff = probeBackoffMin
	p.notBefore = now + probeBackoffMin
	if p.capped {
		// The step asked for is not climbed yet: the next probe goes on from the proven rate
		// at once, as libwebrtc's exponential probing does.
		p.notBefore = now
	}
	proven := probeResultShare * min(recv, send, probeGoalCap*p.goal)
	if proven > c.rate.target {
		c.rate.target = min(proven, c.rate.maxRate)
		c.rate.linkCap = 0 // the old capacity is no longer the ceiling
		c.rate.lastUpdate = now
	}
}

// StartProbe starts a probe cluster that raises the sending rate from usage to fit extra
// more bits per second, if the link is fit to probe: TWCC feedback flows, the delay has
// been normal for 2 s with no overuse for 5 s, the recent loss is at most the baseline plus
// 2% and half a standard deviation of a window's chance variation (at 20% random loss,
// a window varies by 4%: without it, most windows would forbid a probe; delay and loss not
// counting after probeIdleAfter of near silence), and the backoff after the last probe has
// passed. The cluster asks at most probeGoalScale times the estimate: a bigger step takes
// several probes, one after the other while they succeed. It returns whether a cluster
// started.
func (c *Controller) StartProbe(usage, extra uint64, now int64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := &c.prober
	idle := c.winStart != 0 && now-c.winStart > probeIdleAfter
	if p.id != 0 || c.src != SourceTWCC || now < p.notBefore || c.missingLocked(now) ||
		(c.overuseAt != 0 && now-c.overuseAt < probeNoOveruseFor) || c.windows == 0 {
		return false
	}
	if !idle && (c.tl.usage != UsageNormal || now-c.normalSince < probeNormalFor ||
		max(c.loss, c.lossAvg) > c.baseline+lossQuiet+probeLossSigmas*c.lossSigma) {
		return false
	}
	// A step bigger than probeGoalScale times the estimate is climbed in probes of that
	// size, each success raising the estimate: one cluster asking a 1 Mbit/s line for the
	// 1.6 Mbit/s top layer on top of the middle one overflowed its queue and froze the layer
	// it had.
	want := float64(usage) + max(probeDeltaFactor*float64(extra), probeMinExtra)
	goal := min(want, max(probeGoalScale*c.rate.target, float64(usage)+probeMinExtra))
	p.nextID++
	if p.nextID == 0 {
		p.nextID = 1
	}
	*p = Prober{id: p.nextID, nextID: p.nextID, start: now, end: now + max(probeMinDuration, 2*c.rtt), goal: goal, capped: goal < want,
		usage: usage, backoff: p.backoff, clusters: p.clusters + 1, succeeded: p.succeeded}
	h := c.hist
	h.mu.Lock()
	h.cluster, h.clusterBytes, h.clusterPkts, h.clusterFirst, h.clusterLast = p.id, 0, 0, 0, 0
	h.mu.Unlock()
	return true
}

// ProbePadding returns how many bytes of padding to send now to keep the cluster at its
// goal (0 when no cluster is being sent): what the goal asks for by now minus what was
// sent, media included. The sender records the padding through the SendHistory, which
// tags it with the cluster.
func (c *Controller) ProbePadding(now int64) int {
	c.mu.Lock()
	p := &c.prober
	if p.id == 0 || now < p.start {
		c.mu.Unlock()
		return 0
	}
	if now >= p.end {
		c.hist.mu.Lock()
		if c.hist.cluster == p.id {
			c.hist.cluster = 0 // stop tagging; the judgement waits for feedback
		}
		c.hist.mu.Unlock()
		c.mu.Unlock()
		return 0
	}
	want := p.goal * float64(now-p.start) / 8e9
	c.hist.mu.Lock()
	sent := c.hist.clusterBytes
	c.hist.mu.Unlock()
	c.mu.Unlock()
	return int(min(max(want-float64(sent), 0), probePaddingMax))
}

// Probing reports whether a probe cluster is being sent or judged.
func (c *Controller) Probing() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.prober.id != 0
}
