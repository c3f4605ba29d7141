package bwe

import "math"

// The acknowledged bitrate is measured over ackedWindow of receive time, in ackedBuckets.
const (
	ackedBuckets = 10
	ackedBucket  = 50_000_000 // ns
	ackedWindow  = ackedBuckets * ackedBucket
)

// ackedRate measures what arrived: the bytes the feedback reports received over the last
// ackedWindow of the subscriber's receive clock.
type ackedRate struct {
	bytes  [ackedBuckets]uint64
	newest int64 // bucket number of the newest packet
	first  int64 // bucket number of the first packet, -1 before any
}

func (a *ackedRate) reset() { *a = ackedRate{first: -1} }

// add counts size bytes received at arrival (receiver clock, ns).
func (a *ackedRate) add(arrival int64, size int) {
	b := arrival / ackedBucket
	if a.first < 0 {
		a.first, a.newest = b, b
	}
	if b > a.newest {
		for i := a.newest + 1; i <= b && i <= a.newest+ackedBuckets; i++ {
			a.bytes[i%ackedBuckets] = 0
		}
		a.newest = b
	}
	if b <= a.newest-ackedBuckets {
		return // older than the window
	}
	a.bytes[(b%ackedBuckets+ackedBuckets)%ackedBuckets] += uint64(size)
}

// rate returns the bitrate over the window, 0 until it spans at least 4 buckets.
func (a *ackedRate) rate() uint64 {
	if a.first < 0 || a.newest-a.first < 4 {
		return 0
	}
	var sum uint64
	for _, v := range a.bytes {
		sum += v
	}
	span := min(a.newest-a.first+1, ackedBuckets)
	return sum * 8 * 1e9 / uint64(span*ackedBucket)
}

// AIMD parameters (libwebrtc's AimdRateControl, simplified).
const (
	aimdBeta        = 0.85 // a cut leaves this much of the acknowledged rate
	aimdGrowth      = 1.08 // multiplicative increase per second, far from the last cut
	aimdAckedCap    = 1.5  // the target stays under this times the acknowledged rate...
	aimdAckedSlack  = 10_000
	aimdNear        = 0.1 // "near the last cut": within 10% of the link capacity seen then
	aimdPacketBits  = 1200 * 8
	aimdMinInterval = 300_000_000 // ns between two cuts, at least (or the RTT if longer)
)

// aimd is the rate control: additive increase near the capacity the last cut revealed,
// multiplicative far from it, and a cut to aimdBeta of the acknowledged rate on overuse.
type aimd struct {
	target     float64 // bps
	minRate    float64
	maxRate    float64
	linkCap    float64 // acknowledged rate at the last cuts (average), 0 unknown
	lastUpdate int64
	lastCut    int64
	lastLower  int64 // the last cut that lowered the target
	noCutUntil int64 // no cut before this (a probe's queue draining)
}

// cut lowers the target to aimdBeta times acked (never raising it) unless a cut was made
// less than an interval ago. It returns whether it cut.
func (r *aimd) cut(acked float64, now, rtt int64) bool {
	if (r.lastCut != 0 && now-r.lastCut < max(rtt, aimdMinInterval)) || now < r.noCutUntil {
		return false
	}
	before := r.target
	if acked > 0 {
		if r.linkCap == 0 || math.Abs(acked-r.linkCap) > 0.3*r.linkCap {
			r.linkCap = acked
		} else {
			r.linkCap = 0.8*r.linkCap + 0.2*acked
		}
		r.target = min(r.target, aimdBeta*acked)
	} else {
		r.target *= aimdBeta
	}
	r.target = max(r.target, r.minRate)
	r.lastCut, r.lastUpdate = now, now
	if r.target < before {
		r.lastLower = now
	}
	return true
}

// increase grows the target for the time since the last update, at most to
// aimdAckedCap times acked (a target that was higher stays). rtt sets the additive step.
func (r *aimd) increase(acked float64, now, rtt int64) {
	dt := float64(min(now-r.lastUpdate, 1e9)) / 1e9
	r.lastUpdate = now
	if dt <= 0 {
		return
	}
	var next float64
	if r.linkCap > 0 && r.target > (1-aimdNear)*r.linkCap && r.target < (1+3*aimdNear)*r.linkCap {
		// Near the capacity found last time: about one packet more per response time.
		response := float64(rtt)/1e9 + 0.1
		next = r.target + max(aimdPacketBits/response, 4000)*dt
	} else {
		if r.linkCap > 0 && r.target >= (1+3*aimdNear)*r.linkCap {
			r.linkCap = 0 // far beyond: the path changed
		}
		next = r.target * math.Pow(aimdGrowth, dt)
	}
	if acked > 0 {
		next = min(next, max(r.target, aimdAckedCap*acked+aimdAckedSlack))
	}
	r.target = min(max(next, r.minRate), r.maxRate)
}

// hold keeps the target (underuse, or feedback missing) but restarts the increase clock.
func (r *aimd) hold(now int64) { r.lastUpdate = now }
