package bwe

import (
	"math"
	"sync"
	"time"
)

// Source says where an Estimate comes from.
type Source uint8

// Sources.
const (
	SourceNone Source = iota // no feedback yet
	SourceTWCC
	SourceREMB
)

// String names the source for logs and stats.
func (s Source) String() string {
	switch s {
	case SourceTWCC:
		return "twcc"
	case SourceREMB:
		return "remb"
	}
	return "none"
}

// Estimate is a Controller's view of the downlink.
type Estimate struct {
	// Target is the bitrate the downlink is thought to carry (bits per second) and Acked
	// what arrived over the last half second.
	Target, Acked uint64
	Usage         Usage
	QueueDelay    time.Duration
	// Loss over the last second of feedback and the link's usual loss.
	Loss, Baseline float64
	Source         Source
	// FeedbackMissing: the subscriber stopped sending feedback while packets were sent.
	FeedbackMissing bool
	// Overflowing: for overflowHold, the loss windows lost more than the usual with a
	// standing queue (a full buffer dropping its tail), the last of them begun a second
	// after the last cut; a probe's overshoot drains sooner.
	Overflowing bool
	// Limited: the path has shown a limit (congestion cut the target) since the start or
	// the last Reset; until then the target is the configured start, a guess.
	Limited bool
	// Probes counts the probe clusters sent, ProbesOK those that proved more capacity.
	Probes, ProbesOK uint64
}

// Config sets a Controller's bounds; zero fields take the defaults.
type Config struct {
	Start, Min, Max uint64 // bits per second
}

// Default bounds.
const (
	DefaultStart = 2_500_000
	DefaultMin   = 100_000
	DefaultMax   = 50_000_000
)

// Loss rule parameters (see Controller.evaluateLoss).
const (
	lossWindow         = 1_000_000_000 // ns of feedback per loss evaluation
	lossMinPackets     = 20
	lossQuiet          = 0.02 // over the baseline: a quiet link; above it, loss to explain
	lossBaselineWeight = 0.05 // per window: the usual loss of the last 20 s or so
	lossBaselineStart  = 5    // windows averaged plainly first (a bursty link's first window is luck)
	lossAvgWeight      = 0.5  // per window: the loss of the last 2 s or so
	queueCongested     = 30.0 // ms of standing queue that makes loss congestion
	firstWindowLoss    = 0.15 // loss behind a standing queue that is congestion in the first window
	rateRoseFactor     = 1.1  // acked rose by this much since the last window: our rise
	// lossZ is how many standard deviations of a window's random loss (binomial around
	// the baseline, at least lossSigmaFloor) the excess must also clear: 100 packets at
	// 20% random loss vary by 4% a window, and a 2% excess alone is chance.
	lossZ          = 3.0
	lossSigmaFloor = 0.01
	// lossShareMax bounds the loss that converts what arrived into what was sent
	// (sentShare): past it the link is broken, not lossy.
	lossShareMax = 0.5
	lossCutHold  = 2_000_000_000
	rembDedup    = 20_000_000
	// Missing feedback: no increase after feedbackHold + 2 RTT of silence while sending,
	// a cut to half every feedbackCut.
	feedbackHold = 500_000_000
	feedbackCut  = 2_000_000_000
	// notifyInterval and notifyChange bound how often OnChange runs.
	notifyInterval = 1_000_000_000
	notifyChange   = 0.05
	twccFresh      = 2_000_000_000 // TWCC feedback this recent outranks REMB
	probeDrainHold = 1_000_000_000 // ns after a cut for a probe's overuse without another
	// appLimitedShare and appLimitedOveruse: sending under this share of the target, an
	// overuse cuts only once it has lasted this long (see processLocked).
	appLimitedShare   = 0.7
	appLimitedOveruse = 500_000_000
	// stallDelivered: what arrived under this share of what was sent meanwhile is a line
	// narrower than the rate sent, not a stall, and an overuse cuts at once (see
	// shortfallLocked). A stall of S ms shows at worst (500 - S) / 500 of it, and only
	// until its burst arrives; the drop to a sixth of the line showed half.
	stallDelivered = 0.7
	overflowHold   = 1_000_000_000 // ns (see Estimate.Overflowing)
	// overflowAfterCut: loss windows begun sooner after a cut do not say Overflowing.
	overflowAfterCut = 1_000_000_000
)

// Controller estimates one subscriber PeerConnection's downlink from its feedback (see the
// package comment). Its methods are safe for concurrent use and never block on I/O.
type Controller struct {
	hist *SendHistory

	mu       sync.Mutex
	reader   TWCCReader
	tl       trendline
	acked    ackedRate
	sent     ackedRate // what the reported packets took to send, over ackedWindow of send time
	rate     aimd
	prober   Prober
	src      Source
	onChange func(Estimate)

	haveFb       bool
	lastFbCount  uint8
	lastRef      uint32
	refBase      int64 // unwrapped reference time of lastRef, in 64 ms units
	lastFeedback int64 // now of the newest TWCC feedback
	rtt          int64
	silenceCut   int64

	winStart        int64
	winLost         int64
	winRecv         int64
	loss, baseline  float64
	prevLoss        float64
	lossAvg         float64 // recent loss, for the probe gate
	windows         int     // loss windows evaluated on this path
	baseWindows     int     // of them, those the baseline learnt from
	prevWindowAcked uint64
	lossSuspect     bool    // the last window's loss was significant and came with our rise
	lossSigma       float64 // a window's binomial variation of the loss at the baseline (see lossZ)
	lossVar         float64 // variance of the windows' loss around the baseline (bursty links)
	overuseAt       int64   // now of the last overuse, 0 never
	overSince       int64   // start of the current run of overuse, 0 none
	queuedSince     int64   // start of the current standing queue (over queueCongested), 0 none
	normalSince     int64   // start of the current run without overuse
	overflowSince   int64   // start of the current run of overflowingLocked, 0 none
	lossFrom        int64   // start of the window c.loss was measured over

	remb   uint64
	rembAt int64

	notified   Estimate
	notifiedAt int64
}

// NewController returns a Controller with its SendHistory.
func NewController(cfg Config) *Controller {
	if cfg.Start == 0 {
		cfg.Start = DefaultStart
	}
	if cfg.Min == 0 {
		cfg.Min = DefaultMin
	}
	if cfg.Max == 0 {
		cfg.Max = DefaultMax
	}
	c := &Controller{hist: NewSendHistory()}
	c.rate = aimd{target: float64(cfg.Start), minRate: float64(cfg.Min), maxRate: float64(cfg.Max)}
	c.tl.reset()
	c.acked.reset()
	c.sent.reset()
	c.prober.reset()
	return c
}

// History returns the send history that numbers this PeerConnection's packets.
func (c *Controller) History() *SendHistory { return c.hist }

// OnChange sets f to run (outside the Controller's lock) when the estimate changes enough
// to matter: by notifyChange, in usage, source or probe results, or notifyInterval after
// the last call.
func (c *Controller) OnChange(f func(Estimate)) {
	c.mu.Lock()
	c.onChange = f
	c.mu.Unlock()
}

// Reset forgets the path (a new ICE candidate pair): the delay history, the rates and the
// loss, keeping the target as the start of the new path.
func (c *Controller) Reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.tl.reset()
	c.acked.reset()
	c.sent.reset()
	c.haveFb = false
	c.rate.linkCap, c.rate.lastCut, c.rate.lastLower, c.rate.noCutUntil = 0, 0, 0, 0
	c.winStart, c.winLost, c.winRecv, c.windows, c.prevWindowAcked = 0, 0, 0, 0, 0
	c.lossSuspect, c.lossVar, c.baseWindows, c.overSince, c.overflowSince = false, 0, 0, 0, 0
	c.queuedSince = 0
	c.prober.abort(0) // a new path: the backoff runs from the start of time, no wait
}

// Estimate returns the estimate at now.
func (c *Controller) Estimate(now int64) Estimate {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.estimateLocked(now)
}

func (c *Controller) estimateLocked(now int64) Estimate {
	e := Estimate{
		Target:     uint64(c.rate.target),
		Acked:      c.acked.rate(),
		Usage:      c.tl.usage,
		QueueDelay: time.Duration(c.tl.queueDelay() * 1e6),
		Loss:       c.loss,
		Baseline:   c.baseline,
		Source:     c.src,
		Probes:     c.prober.clusters,
		ProbesOK:   c.prober.succeeded,
		Limited:    c.rate.lastCut != 0,
	}
	// The loss must be measured over a window that began overflowAfterCut after the last
	// cut that lowered the target (a loss cut every other window that leaves the target
	// where it is changes nothing): feedback reports the drops of what was queued before
	// the cut (200 ms of buffer and a round trip) for a while after it, and when the cut was
	// enough (a start's overshoot into a thin line) the layers need no more room than it
	// gave. Loss and queue are those of the last window evaluated: after probeIdleAfter
	// without one (next to nothing sent, as while the video is paused) they are history.
	e.Overflowing = c.overflowSince != 0 && now-c.overflowSince >= overflowHold &&
		c.lossFrom >= c.rate.lastLower+overflowAfterCut && now-c.winStart <= probeIdleAfter
	if c.src == SourceREMB {
		e.Target = c.remb
	}
	e.FeedbackMissing = c.missingLocked(now)
	return e
}

// OnTWCC takes one TWCC feedback packet (an RTCP packet, header included) received at now.
func (c *Controller) OnTWCC(pkt []byte, now int64) error {
	c.mu.Lock()
	if err := c.reader.Reset(pkt); err != nil {
		c.mu.Unlock()
		return err
	}
	r := &c.reader
	// The reference time is 24 bits of 64 ms; unwrap it against the previous feedback.
	if !c.haveFb {
		c.refBase, c.lastRef, c.lastFbCount, c.haveFb = int64(r.RefTime), r.RefTime, r.FbCount, true
	} else {
		d := int64(int32((r.RefTime-c.lastRef)<<8) >> 8)
		if int8(r.FbCount-c.lastFbCount) > 0 {
			c.refBase += d
			c.lastRef, c.lastFbCount = r.RefTime, r.FbCount
		} else {
			// Reordered or duplicate feedback: place it without moving the reference.
			d += c.refBase
			c.processLocked(d*refUnit, now)
			c.mu.Unlock()
			c.finish(now)
			return nil
		}
	}
	c.processLocked(c.refBase*refUnit, now)
	c.mu.Unlock()
	c.finish(now)
	return nil
}

// processLocked walks the reader's statuses, arrival times counted from ref (ns).
func (c *Controller) processLocked(arrival int64, now int64) {
	if c.lastFeedback != 0 && now-c.lastFeedback > probeIdleAfter {
		// After a silence (nothing sent: the only video paused), the losses counted before
		// it are history: a probe's first feedback must not be judged with them.
		c.winStart, c.winLost, c.winRecv = now, 0, 0
	}
	h := c.hist
	r := &c.reader
	h.mu.Lock()
	for {
		seq, received, delta, ok, err := r.Next()
		if !ok || err != nil {
			break
		}
		if received {
			arrival += delta
		}
		e := h.lookup(h.unwrap(seq))
		if e == nil {
			continue
		}
		if e.state == stateUnknown {
			c.sent.add(e.at, int(e.size))
		}
		switch {
		case received && e.state != stateReceived:
			if e.state == stateLost {
				c.winLost--
			}
			e.state = stateReceived
			c.winRecv++
			c.acked.add(arrival, int(e.size))
			c.prober.onAcked(e, arrival)
			if e.flags&FlagRetransmit == 0 {
				c.tl.add(e.at, arrival)
			}
		case !received && e.state == stateUnknown:
			e.state = stateLost
			c.winLost++
			c.prober.onLost(e)
		}
	}
	h.mu.Unlock()
	c.lastFeedback = now
	if c.src != SourceTWCC {
		c.src = SourceTWCC
		c.normalSince = now
	}
	acked := c.sentEquivalent(c.acked.rate())
	switch {
	case c.tl.queueDelay() <= queueCongested:
		c.queuedSince = 0
	case c.queuedSince == 0:
		c.queuedSince = now
	}
	switch c.tl.usage {
	case UsageOver:
		if c.overSince == 0 {
			c.overSince = now
		}
		c.overuseAt = now
		c.normalSince = now
		if acked < appLimitedShare*c.rate.target && now-c.overSince < appLimitedOveruse && !c.prober.active() &&
			!c.shortfallLocked(acked) && (c.queuedSince == 0 || now-c.queuedSince < appLimitedOveruse) {
			// Sending well under the target, an overuse is as often a stall on the way (a
			// busy relay, a Wi-Fi retry burst) that drains at once: only one that lasts
			// is congestion at the rate we send, or one where what arrives falls short of
			// what was sent, or one on a queue that has stood as long (on a line just
			// narrower than what is sent the trend flips between overuse and normal while
			// the queue stands: on a 1 Mbit/s line 100-130 ms stood 5 s, never cut).
			c.rate.hold(now)
			break
		}
		probing, before := c.prober.active(), c.rate.target
		if c.rate.cut(acked, now, c.rtt) && probing {
			// The probe's padding overused, not the media: the media alone had been sent
			// without overuse for seconds (StartProbe's gate), so the target keeps room for
			// it. The probe's own queue takes a while to drain, overusing all along: one
			// cut for it, not one every interval.
			c.rate.target = max(c.rate.target, min(before, float64(c.prober.usage)))
			c.rate.noCutUntil = now + probeDrainHold + c.rtt
		}
		c.prober.abort(now) // the padding stops at once: the queue is already growing
	case UsageUnder:
		c.overSince = 0
		c.rate.hold(now)
	default:
		c.overSince = 0
		if c.prober.active() || c.overflowingLocked() {
			// A full buffer's delay is flat too: no increase while it drops what overflows.
			c.rate.hold(now)
		} else {
			c.rate.increase(acked, now, c.rtt)
		}
	}
	c.evaluateLoss(now)
	switch {
	case !c.overflowingLocked():
		c.overflowSince = 0
	case c.overflowSince == 0:
		c.overflowSince = now
	}
	c.prober.evaluate(c, now)
}

// evaluateLoss judges the loss of the last window: it is congestion only when the excess
// over the baseline is more than chance (lossZ) and the delay says a queue is the cause
// (overuse, or a standing queue over queueCongested), or it came right after our rate
// rose and lasted a second window (a shallow policer drops without a queue; one window's
// rise is as often a keyframe or a layer switch meeting random loss). Random loss at a
// flat delay only teaches the baseline.
func (c *Controller) evaluateLoss(now int64) {
	if c.winStart == 0 {
		c.winStart = now
		return
	}
	n := c.winLost + c.winRecv
	if now-c.winStart < lossWindow || n < lossMinPackets {
		return
	}
	c.loss = float64(max(c.winLost, 0)) / float64(n)
	acked := c.acked.rate()
	rose := c.prevWindowAcked > 0 && float64(acked) > rateRoseFactor*float64(c.prevWindowAcked)
	// Loss in bursts varies more than the binomial says: the windows' own variance counts.
	c.lossSigma = math.Sqrt(c.baseline * c.sentShare() / float64(n))
	sigma := math.Sqrt(max(max(c.baseline, lossSigmaFloor)*c.sentShare()/float64(n), c.lossVar))
	// Loss within lossCutHold of a cut is what was queued before it: not a second reason.
	held := c.rate.lastCut != 0 && now-c.rate.lastCut < lossCutHold
	queued := c.tl.usage == UsageOver || c.tl.queueDelay() > queueCongested
	// The first window has no baseline to judge by, but heavy loss behind a standing queue
	// is no line's usual: the start overflowing a thin line (59% lost at 137 ms of queue on
	// 1 Mbit/s) is cut a window sooner, and the video's freeze with it.
	significant := c.windows > 0 && c.loss-c.baseline > lossQuiet+lossZ*sigma ||
		c.windows == 0 && queued && c.loss > firstWindowLoss
	rose = rose && c.loss > c.prevLoss+lossQuiet // loss rose after our rate rose
	congested := significant && !held && (queued || c.lossSuspect)
	c.lossSuspect = significant && rose && !congested
	if congested {
		c.overuseAt = now
		c.normalSince = now
		c.rate.cut(c.sentEquivalent(acked), now, c.rtt)
		c.prober.abort(now)
	} else if !queued && !held {
		// The link's usual loss, learnt only where no queue explains it: an overshoot at
		// the start (40% tail drops into a thin line) taken as usual loss would hide the
		// next congestion and budget retransmissions for loss that is gone. A plain mean
		// over the first windows: one window says little on a bursty link.
		w := lossBaselineWeight
		if c.baseWindows < lossBaselineStart {
			w = 1 / float64(c.baseWindows+1)
		}
		if c.baseWindows > 0 {
			d := c.loss - c.baseline
			c.lossVar += w * (d*d - c.lossVar)
		}
		c.baseline += w * (c.loss - c.baseline)
		c.baseWindows++
	}
	if c.windows == 0 {
		c.lossAvg = c.loss
	} else {
		c.lossAvg += lossAvgWeight * (c.loss - c.lossAvg)
	}
	c.windows++
	c.lossFrom = c.winStart
	c.prevWindowAcked, c.prevLoss = acked, c.loss
	c.winStart, c.winLost, c.winRecv = now, 0, 0
}

// shortfallLocked reports whether acked, what arrived over the last ackedWindow (as sent,
// see sentEquivalent), falls under stallDelivered of what the same packets took to send:
// a line that carries less than we send. A stall on the way delivers late, in a burst, what
// was sent: by the time its delay shows as overuse, what arrived has caught up.
func (c *Controller) shortfallLocked(acked float64) bool {
	sent := float64(c.sent.rate())
	return sent > 0 && acked < stallDelivered*sent
}

// overflowingLocked reports whether the last loss window lost more than the usual with a
// standing queue of over queueCongested: a full buffer dropping its tail, whose delay no
// longer grows.
func (c *Controller) overflowingLocked() bool {
	return c.tl.queueDelay() > queueCongested && c.loss > c.baseline+lossQuiet
}

// sentShare is the share of what is sent that arrives on a link with the baseline's
// random loss.
func (c *Controller) sentShare() float64 { return 1 - min(c.baseline, lossShareMax) }

// sentEquivalent converts an acknowledged rate into the rate sent to get it: on a link
// that loses a share at random whatever the rate, what arrived understates what the path
// carries by that share, and the target is a sending rate.
func (c *Controller) sentEquivalent(acked uint64) float64 {
	return float64(acked) / c.sentShare()
}

// silentLocked returns how long TWCC feedback has been missing while packets were sent
// (0 when not in TWCC mode or nothing was sent since).
func (c *Controller) silentLocked(now int64) int64 {
	if c.src != SourceTWCC || c.lastFeedback == 0 {
		return 0
	}
	lastSent, _ := c.hist.LastSent()
	if lastSent <= c.lastFeedback {
		return 0
	}
	return max(now-c.lastFeedback, 0)
}

// missingLocked reports whether the feedback is overdue: none for 2 RTT + feedbackHold
// while sending.
func (c *Controller) missingLocked(now int64) bool {
	return c.silentLocked(now) > 2*c.rtt+feedbackHold
}

// OnREMB takes a receiver estimate (bits per second) received at now. It is ignored while
// TWCC feedback flows, and the same value within rembDedup counts once (pion hands the
// same REMB to every down track it names).
func (c *Controller) OnREMB(bps uint64, now int64) {
	c.mu.Lock()
	if c.src == SourceTWCC && now-c.lastFeedback < twccFresh {
		c.mu.Unlock()
		return
	}
	if bps == c.remb && now-c.rembAt < rembDedup {
		c.mu.Unlock()
		return
	}
	c.src, c.remb, c.rembAt = SourceREMB, bps, now
	c.mu.Unlock()
	c.finish(now)
}

// OnReport takes the round-trip time measured from a receiver report.
func (c *Controller) OnReport(rtt time.Duration) {
	c.mu.Lock()
	c.rtt = int64(rtt)
	c.mu.Unlock()
}

// RTT returns the last round-trip time measured.
func (c *Controller) RTT() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Duration(c.rtt)
}

// Tick checks for missing feedback; call it about every second. With none for
// feedbackCut while sending, the target is halved (again every feedbackCut): on a rural
// line, feedback that stops coming is itself a sign of a link in trouble. A probe cluster
// whose feedback is due is judged here too: when nothing is sent after it (the only video
// paused, the probe asking to resume it), no later feedback would.
func (c *Controller) Tick(now int64) {
	c.mu.Lock()
	c.prober.evaluate(c, now)
	if c.silentLocked(now) > feedbackCut && now-c.silenceCut >= feedbackCut {
		c.silenceCut = now
		c.rate.target = max(c.rate.target/2, c.rate.minRate)
		c.rate.lastCut, c.rate.lastUpdate, c.rate.lastLower = now, now, now
		c.prober.abort(now)
	}
	c.mu.Unlock()
	c.finish(now)
}

// finish runs OnChange if the estimate moved enough.
func (c *Controller) finish(now int64) {
	c.mu.Lock()
	e := c.estimateLocked(now)
	old := c.notified
	f := c.onChange
	due := now-c.notifiedAt >= notifyInterval || e.Source != old.Source || e.Usage != old.Usage ||
		e.Probes != old.Probes || e.ProbesOK != old.ProbesOK || e.Limited != old.Limited || e.FeedbackMissing != old.FeedbackMissing ||
		e.Overflowing != old.Overflowing ||
		float64(e.Target) > (1+notifyChange)*float64(old.Target) || float64(e.Target) < (1-notifyChange)*float64(old.Target)
	if due {
		c.notified, c.notifiedAt = e, now
	}
	c.mu.Unlock()
	if due && f != nil {
		f(e)
	}
}
