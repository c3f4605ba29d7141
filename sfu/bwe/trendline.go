package bwe

// Usage is what the delay says about the bottleneck queue.
type Usage uint8

// Usage values.
const (
	UsageNormal Usage = iota // the queue is steady
	UsageOver                // the queue grows: we send more than the path carries
	UsageUnder               // the queue drains
)

// String names the usage for logs and stats.
func (u Usage) String() string {
	switch u {
	case UsageOver:
		return "overusing"
	case UsageUnder:
		return "underusing"
	}
	return "normal"
}

// Grouping and trendline parameters (libwebrtc's defaults).
const (
	burstInterval     = 5_000_000 // ns: packets sent within it form one group
	maxGroupGap       = 3_000_000_000
	trendWindow       = 20   // groups in the linear fit
	trendSmoothing    = 0.9  // of the accumulated delay
	trendGain         = 4.0  // threshold gain
	trendMinDeltas    = 60   // the slope is scaled by min(deltas, this)
	overuseTimeMs     = 10.0 // over the threshold this long, twice in a row, is overuse
	thresholdInit     = 12.5
	thresholdMin      = 6.0
	thresholdMax      = 600.0
	thresholdKUp      = 0.0087
	thresholdKDown    = 0.039
	thresholdMaxAdapt = 15.0 // ms: outliers beyond threshold + this do not move it
	queueMinWindow    = 5_000_000_000
)

// group is a burst of packets sent within burstInterval of its first.
type group struct {
	firstSend, lastSend, lastArrival int64
	valid                            bool
}

// trendline is libwebrtc's delay-based overuse detector (TrendlineEstimator with its
// InterArrivalDelta grouping), written for this package: it fits a line through the
// smoothed one-way delay variation of the last trendWindow packet groups and compares its
// slope with an adaptive threshold.
type trendline struct {
	cur, prev group

	deltas      int
	firstArr    int64
	accumulated float64 // ms
	smoothed    float64 // ms
	histX       [trendWindow]float64
	histY       [trendWindow]float64
	histN, head int

	trend, prevTrend float64
	threshold        float64
	lastThreshold    int64 // ns, 0 before the first update
	overTime         float64
	overCount        int
	usage            Usage

	// Queue delay: the smoothed delay over the least of it in the last 5-10 s.
	minCur, minPrev float64
	minSince        int64
}

// reset forgets the delay history (a new path).
func (t *trendline) reset() {
	*t = trendline{threshold: thresholdInit, overTime: -1, firstArr: -1}
}

// add takes one received packet, in send order; it returns true when a group completed
// and the usage was updated.
func (t *trendline) add(send, arrival int64) bool {
	c := &t.cur
	if !c.valid {
		*c = group{firstSend: send, lastSend: send, lastArrival: arrival, valid: true}
		return false
	}
	if send < c.firstSend {
		return false // reordered from before this group: its place in the trend is gone
	}
	arrDelta := arrival - c.lastArrival
	if send-c.firstSend <= burstInterval || (arrDelta >= 0 && arrDelta < burstInterval && arrDelta-(send-c.lastSend) < 0) {
		c.lastSend = max(c.lastSend, send)
		c.lastArrival = max(c.lastArrival, arrival)
		return false
	}
	done := false
	if t.prev.valid {
		sendDelta := c.lastSend - t.prev.lastSend
		recvDelta := c.lastArrival - t.prev.lastArrival
		if recvDelta > maxGroupGap || recvDelta < -maxGroupGap {
			t.reset() // the receiver's clock jumped or the path changed
			t.cur = group{firstSend: send, lastSend: send, lastArrival: arrival, valid: true}
			return false
		}
		t.update(float64(recvDelta)/1e6, float64(sendDelta)/1e6, c.lastArrival)
		done = true
	}
	t.prev = *c
	*c = group{firstSend: send, lastSend: send, lastArrival: arrival, valid: true}
	return done
}

// update runs the filter on one inter-group delay variation.
func (t *trendline) update(recvDeltaMs, sendDeltaMs float64, arrival int64) {
	delta := recvDeltaMs - sendDeltaMs
	t.deltas = min(t.deltas+1, 1000)
	if t.firstArr < 0 {
		t.firstArr = arrival
	}
	t.accumulated += delta
	t.smoothed = trendSmoothing*t.smoothed + (1-trendSmoothing)*t.accumulated
	t.trackMin(arrival)

	t.histX[t.head] = float64(arrival-t.firstArr) / 1e6
	t.histY[t.head] = t.smoothed
	t.head = (t.head + 1) % trendWindow
	t.histN = min(t.histN+1, trendWindow)
	trend := t.prevTrend
	if t.histN == trendWindow {
		if s, ok := t.slope(); ok {
			trend = s
		}
	}
	t.detect(trend, sendDeltaMs, arrival)
}

// slope is the least-squares slope of the delay history.
func (t *trendline) slope() (float64, bool) {
	var sx, sy float64
	for i := range t.histN {
		sx += t.histX[i]
		sy += t.histY[i]
	}
	mx, my := sx/float64(t.histN), sy/float64(t.histN)
	var num, den float64
	for i := range t.histN {
		dx := t.histX[i] - mx
		num += dx * (t.histY[i] - my)
		den += dx * dx
	}
	if den == 0 {
		return 0, false
	}
	return num / den, true
}

// detect compares the scaled trend with the threshold.
func (t *trendline) detect(trend, sendDeltaMs float64, now int64) {
	if t.deltas < 2 {
		t.usage = UsageNormal
		return
	}
	modified := float64(min(t.deltas, trendMinDeltas)) * trend * trendGain
	switch {
	case modified > t.threshold:
		if t.overTime < 0 {
			t.overTime = sendDeltaMs / 2
		} else {
			t.overTime += sendDeltaMs
		}
		t.overCount++
		if t.overTime > overuseTimeMs && t.overCount > 1 && trend >= t.prevTrend {
			t.overTime, t.overCount = 0, 0
			t.usage = UsageOver
		}
	case modified < -t.threshold:
		t.overTime, t.overCount = -1, 0
		t.usage = UsageUnder
	default:
		t.overTime, t.overCount = -1, 0
		t.usage = UsageNormal
	}
	t.prevTrend = trend
	t.trend = modified
	t.adaptThreshold(modified, now)
}

// adaptThreshold moves the threshold towards |modified|: quickly down, slowly up, so that
// the detector stays sensitive on a quiet path and is not triggered by a jittery one.
func (t *trendline) adaptThreshold(modified float64, now int64) {
	if t.lastThreshold == 0 {
		t.lastThreshold = now
	}
	m := modified
	if m < 0 {
		m = -m
	}
	if m > t.threshold+thresholdMaxAdapt {
		t.lastThreshold = now
		return
	}
	k := thresholdKUp
	if m < t.threshold {
		k = thresholdKDown
	}
	dt := min(float64(now-t.lastThreshold)/1e6, 100)
	t.threshold = min(max(t.threshold+k*(m-t.threshold)*dt, thresholdMin), thresholdMax)
	t.lastThreshold = now
}

// trackMin keeps the least smoothed delay of the last 5-10 s.
func (t *trendline) trackMin(now int64) {
	if t.minSince == 0 || now-t.minSince >= queueMinWindow {
		t.minPrev, t.minCur, t.minSince = t.minCur, t.smoothed, now
		if t.deltas <= 1 {
			t.minPrev = t.smoothed
		}
	}
	t.minCur = min(t.minCur, t.smoothed)
}

// queueDelay estimates the delay standing in the bottleneck queue, in ms.
func (t *trendline) queueDelay() float64 {
	return max(t.smoothed-min(t.minCur, t.minPrev), 0)
}
