package sfu

import (
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/sanke-edu/sanke/sfu/bwe"
)

// The Allocator fits the video one subscriber receives to its downlink. Rural teaching
// points sit behind 1-3 Mbps links: a teacher's 720p camera alone can fill one, and a
// layer that does not fit arrives as loss, then as frozen video. The subscriber's
// receiver reports tell how much of what was sent arrived; from that a loss-based
// controller keeps a bitrate budget. Above 10% loss it cuts the budget to what arrived
// (sent x (1 - loss)): a layer too big overshoots a line by a large factor at once, and
// the line then delivers what it carries (Google congestion control's gentler sent x
// (1 - loss/2), made for a rate that creeps up, left the top layer in budget on a line
// of half its rate). The budget is shared out as simulcast layers: every
// video track gets its lowest layer, then tracks move up one layer at a time, by priority,
// while the budget lasts. As loss alone cannot tell how much more a link would carry, the
// way up is a probe: after a quiet spell the budget grows to fit exactly one more layer,
// and if that brings loss the step is undone and the next try waits twice as long.
//
// Loss is counted downstream only: packets the down track sent (retransmissions included)
// minus packets the subscriber received (from the report's highest sequence number and
// cumulative loss), so holes that the publisher's own uplink left in the stream do not
// count; each track's loss weighs as its share of the bitrate. A layer costs its recent peak bitrate, so that a dip between keyframes does not
// make it look as if it fit.
const (
	// allocEvalInterval is the least time between two evaluations of the loss.
	allocEvalInterval = time.Second
	// allocMinPackets is the least number of packets an evaluation needs.
	allocMinPackets = 30
	// lossCongested is the loss above which the budget is cut. A link counts as quiet
	// (and a probe fails above it) under lossQuiet over its usual loss: a rural wireless
	// line loses a few percent whatever is sent, and must not be read as congested for it.
	// The usual loss is an average (weight lossBaselineWeight) of the evaluations without
	// congestion or probe.
	lossCongested      = 0.10
	lossQuiet          = 0.02
	lossBaselineWeight = 0.2
	// probeBackoffMin and probeBackoffMax bound the quiet time before a probe; a failed
	// probe doubles it, one that holds for probeConfirm from the moment the probed layer
	// is forwarded (its keyframe came) resets it. A probed layer not forwarded within
	// probeSwitchTimeout counts as failed.
	probeBackoffMin    = 4 * time.Second
	probeBackoffMax    = time.Minute
	probeConfirm       = 3 * time.Second
	probeSwitchTimeout = 5 * time.Second
	// cutHold is how long after a cut the loss is not cut for again: the packets already
	// queued on the link, and the old layer until the new one's keyframe, are still
	// arriving, and would cut a second time for the same congestion.
	cutHold = 2 * time.Second
	// probeHeadroom is added to a probe's budget for the measurement's noise.
	probeHeadroom = 1.05
	// peakDecayNum/peakDecayDen is how much of a layer's peak bitrate is left after each
	// evaluation (about a second): a peak fades to half in 7 s.
	peakDecayNum, peakDecayDen = 9, 10
	// packetOverhead approximates the bytes each packet adds on the wire besides its
	// payload: RTP header and extensions, SRTP tag, UDP and IPv4 headers.
	packetOverhead = 60
)

// Allocator shares one subscriber PeerConnection's downlink between its video down tracks
// (see the comment above). Create one per subscriber PeerConnection and pass it in
// DownTrackParams.Allocator; its methods are safe for concurrent use. Without receiver
// reports from the subscriber it never limits anything.
//
// With an estimator (UseEstimator) and a subscriber that sends TWCC feedback or REMB, the
// budget is the estimate instead (see package bwe): the delay finds congestion before the
// loss does, and random loss is not mistaken for it. The loss controller above stays the
// fallback for subscribers with neither, and bounds a REMB estimate. The way up is then a
// probe of padding the estimator judges from the feedback: a track moves up one layer only
// when a probe proved the path carries it.
type Allocator struct {
	logger *slog.Logger
	// cc estimates the downlink from the subscriber's congestion feedback; nil: loss only.
	// epoch is the PeerConnection's clock for it (down tracks convert their receiver's).
	cc    *bwe.Controller
	epoch time.Time

	mu     sync.Mutex
	tracks []*allocTrack
	budget uint64 // bits per second; 0 while no congestion was ever seen (no limit)

	windowStart int64 // receiver clock of the last evaluation, 0 before the first report
	quietSince  int64 // start of the current run of quiet evaluations
	backoff     time.Duration
	lastCut     int64   // receiver clock of the last cut, 0 before any
	baseline    float64 // the link's usual loss (see lossBaselineWeight)
	probing     bool
	probeStart  int64       // when the probe began, then when its layer was first forwarded
	probeTrack  *allocTrack // the track the probe moves up, to probeLayer
	probeLayer  int
	resumeProbe bool   // the probe resumes a paused track (see probeFailLoss)
	switched    bool   // probeTrack forwards probeLayer
	preProbe    uint64 // the budget before the probe, restored if it fails

	est      bwe.Estimate // the estimator's last estimate
	probesOK uint64       // its successful probes already used to move up
	ccUsed   bool         // the estimate sets the budget (feedback flows)

	videoRate uint64 // what the video tracks sent in the last evaluated window, bits/s
	// A successful probe resumed a paused track at resumedAt, the budget then resumeFloor
	// (0: none standing; see probeHeld).
	resumedAt   int64
	resumeFloor uint64

	onStreamState func(d *DownTrack, paused bool) // see OnStreamState
	redLimit      int                             // the RED distance the audio tracks may take (allocator_red.go)
	estLimited    bool                            // the estimate has shown the path's limit once
}

// allocTrack is one down track as its Allocator sees it.
type allocTrack struct {
	d        *DownTrack
	video    bool
	priority int

	// From its last receiver report.
	reported     bool
	extHighest   uint32
	totalLost    int32
	sentAtReport uint64
	// Summed since the last evaluation.
	sent, received uint64
	// Counters at the last evaluation, for the sent bitrate.
	packets, bytes uint64
	// Recent peak bitrate of each layer, and its mean (see cost).
	peak, mean [NumLayers]uint64
	// estimated: the budget is the delay-based estimate (see cost).
	estimated bool
	// capped is the layer the allocation last gave the track.
	capped int
	// What the track sent in the last evaluated window, bits/s on the wire, and the share of
	// its packets lost on the way (lossKnown: from its own reports).
	rate      uint64
	ratePeak  uint64 // recent peak of rate, fading as the layers' peaks do
	loss      float64
	lossKnown bool
	// Bandwidth pauses (allocator_pause.go).
	state    streamState
	pausedAt int64
	// Audio: its voice's frames, to price RED (allocator_red.go).
	frames audioFrames
	// A layer that overflowed the line right after the switch up to it (allocator_upfail.go).
	held heldBack
}

// NewAllocator returns an Allocator with no limit yet; logger (nil discards) gets a line
// whenever the budget changes.
func NewAllocator(logger *slog.Logger) *Allocator {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Allocator{logger: logger, backoff: probeBackoffMin, epoch: time.Now(), redLimit: maxREDDistance}
}

// UseEstimator makes c, the estimator of the PeerConnection's downlink, the budget's
// source while the subscriber sends congestion feedback. Call it before the first down
// track is made: down tracks number their packets in c's SendHistory and feed it the
// feedback.
func (a *Allocator) UseEstimator(c *bwe.Controller) {
	a.mu.Lock()
	a.cc = c
	a.mu.Unlock()
	c.OnChange(a.onEstimate)
}

// Estimate returns the estimator's last estimate (zero without one).
func (a *Allocator) Estimate() bwe.Estimate {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.est
}

// ccNow returns the estimator's clock.
func (a *Allocator) ccNow() int64 { return max(int64(time.Since(a.epoch)), 1) }

// tick lets the estimator notice missing feedback; the Reporter calls it every second.
func (a *Allocator) tick() {
	a.mu.Lock()
	cc := a.cc
	a.mu.Unlock()
	if cc != nil {
		cc.Tick(a.ccNow())
	}
}

// onEstimate takes a new estimate (bwe.Controller.OnChange).
func (a *Allocator) onEstimate(e bwe.Estimate) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.est = e
	a.ccUsed = e.Source != bwe.SourceNone
	for _, t := range a.tracks {
		t.estimated = a.ccUsed && e.Source == bwe.SourceTWCC
	}
	a.logger.Debug("downlink estimator", "source", e.Source, "target_kbps", e.Target/1000, "acked_kbps", e.Acked/1000,
		"usage", e.Usage, "queue_ms", e.QueueDelay.Milliseconds(), "loss", e.Loss, "baseline", e.Baseline,
		"limited", e.Limited, "probes", e.Probes, "probes_ok", e.ProbesOK, "missing", e.FeedbackMissing)
	if !a.ccUsed || len(a.tracks) == 0 {
		return
	}
	a.applyEstimate(a.estimateBudget(), a.tracks[0].d.receiver.now())
}

// estimateBudget is the budget while the estimate is used: the TWCC estimate less what
// retransmitting the link's usual loss takes (mediaShare), or REMB bounded by the loss
// controller's budget (REMB has no delay of ours to check it against). a.mu must be held.
func (a *Allocator) estimateBudget() uint64 {
	budget := a.est.Target
	switch {
	case a.est.Source == bwe.SourceTWCC:
		budget = uint64(float64(budget) * a.mediaShare())
	case a.est.Source == bwe.SourceREMB && a.budget > 0:
		budget = min(budget, a.budget)
	}
	return max(budget, 1)
}

// maxRetransmitShare bounds the share of a sending rate kept for retransmissions, and
// overflowResendMax the loss of an overflowing line counted for them (see mediaShare).
const (
	maxRetransmitShare = 0.5
	overflowResendMax  = 0.25
)

// mediaShare is the share of the estimate (a sending rate) left for media when every lost
// packet is sent again (NACK): at loss p a packet is sent 1/(1-p) times on average, so
// 20% random loss takes a fifth of the line for retransmissions; while the line overflows
// (see overflowing), its loss then counts. a.mu must be held.
func (a *Allocator) mediaShare() float64 {
	loss := a.est.Baseline
	if a.overflowing() {
		// The line drops what overflows its buffer: every loss is sent again, on top; up to
		// overflowResendMax (past that, the loss is the layer's own overflow, which the layer
		// below ends: counted whole, 65% lost paused the video for 7 s).
		loss = max(loss, min(a.est.Loss, overflowResendMax))
	}
	return 1 - min(loss, maxRetransmitShare)
}

// applyEstimate caps the tracks to budget: down at once; up, once the path has shown a
// limit, one layer on one track only after a probe proved it fits (the estimate itself grows
// only to 1.5 times what arrives, a guess). When a track could go higher, it asks the
// estimator for a probe. a.mu must be held.
func (a *Allocator) applyEstimate(budget uint64, now int64) []int {
	layers, _ := a.share(budget, now)
	up := a.est.ProbesOK > a.probesOK
	a.probesOK = a.est.ProbesOK
	moved := false
	if up && a.est.Limited {
		// While a track is paused, the probes are for its lowest layer (maybeProbe): one
		// that succeeded resumes it, even if the proven rate leaves little margin.
		moved = a.resumeProbed(layers, now)
	}
	for i, t := range a.tracks {
		if !t.video || layers[i] <= t.capped || !a.est.Limited {
			continue
		}
		if up && !moved {
			if next, _, ok := t.nextLayer(t.capped, now); ok {
				layers[i], moved = next, true
				continue
			}
		}
		layers[i] = t.capped
	}
	changed := false
	for i, t := range a.tracks {
		if !t.video {
			continue
		}
		if layers[i] == LayerNone && !a.est.Limited {
			layers[i] = LayerLow // the estimate is a guess until the path shows its limit: no pause on it
		}
		if layer := max(layers[i], LayerLow); t.capped != layer { // a paused track resumes at its lowest layer
			if layer < t.capped {
				a.failedUp(t, layer)
			}
			changed = true
			t.capped = layer
			t.d.setCapLayer(layer)
		}
		a.applyPause(t, layers[i], now) // LayerNone: not even the lowest layer fits beside the audio
	}
	if a.est.Limited {
		a.emergencyDrop(layers, budget)
	}
	if changed {
		a.logger.Info("downlink estimate", "source", a.est.Source, "budget_kbps", budget/1000,
			"acked_kbps", a.est.Acked/1000, "usage", a.est.Usage, "layers", layers)
	}
	if a.est.Source == bwe.SourceTWCC && !a.cc.Probing() {
		// From what the caps forward, not what the budget would have room for: share's
		// total counted the layers a probe has yet to prove, and a probe from there asked
		// 1.3 Mbit/s for a step of 0.45.
		a.maybeProbe(a.probeUsage(a.layersCost(layers, now)), now)
	}
	a.capRED()
	return layers
}

// layersCost returns what layers (one per track, as share's) cost: each video track's layer,
// nothing while paused, and the audio's reserve. a.mu must be held.
func (a *Allocator) layersCost(layers []int, now int64) uint64 {
	var total uint64
	for i, t := range a.tracks {
		switch {
		case !t.video:
			total += t.reserve(now)
		case layers[i] >= LayerLow:
			total += t.cost(layers[i], now)
		}
	}
	return total
}

// probeUsage is what a probe starts from: total, what the tracks' current layers cost, or
// the acknowledged rate while no layer's bitrate is known. Not the larger of the two: the
// acknowledged rate jumps with keyframes and retransmissions, and a probe from such a peak
// asked a 1 Mbit/s line for 1.5. a.mu must be held.
func (a *Allocator) probeUsage(total uint64) uint64 {
	if total > 0 {
		return total
	}
	return a.est.Acked
}

// maybeProbe asks the estimator for a probe cluster when a track is below what its
// subscriber wants and the publisher sends: usage is what is sent now. a.mu must be held.
func (a *Allocator) maybeProbe(usage uint64, now int64) {
	for _, t := range a.tracks {
		if t.video && t.state == streamPaused {
			// Resuming a paused track is the first step up: probe for its lowest layer (the
			// paused track sends the padding, see DownTrack.writeRTP).
			if c := t.lowCost(now); c > 0 && now-t.pausedAt >= int64(pausedMinWait) &&
				a.cc.StartProbe(usage, uint64(float64(c)*resumeHeadroom), a.ccNow()) {
				a.logger.Debug("downlink probe to resume", "track", t.d.ID(), "usage_kbps", usage/1000)
			}
			return
		}
	}
	for _, t := range a.tracks {
		if !t.video || t.state == streamResuming {
			continue // a resumed track moves up once forwarded (and sends no padding before)
		}
		if _, extra, ok := t.nextLayer(t.capped, now); ok {
			// The probe is judged on what is sent: the media with its retransmissions.
			share := a.mediaShare()
			usage, extra = uint64(float64(usage)/share), uint64(float64(extra)/share)
			if a.cc.StartProbe(usage, extra, a.ccNow()) {
				a.logger.Debug("downlink probe", "usage_kbps", usage/1000, "extra_kbps", extra/1000)
			}
			return
		}
	}
}

// add starts allocating for d, with priority (higher first) among the video tracks.
func (a *Allocator) add(d *DownTrack, priority int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	t := &allocTrack{d: d, video: d.receiver.video(), priority: priority, capped: LayerHigh,
		estimated: a.ccUsed && a.est.Source == bwe.SourceTWCC}
	t.packets, t.bytes = d.sentCounters()
	a.tracks = append(a.tracks, t)
	// Stable: equal priorities keep their subscription order.
	slices.SortStableFunc(a.tracks, func(x, y *allocTrack) int { return y.priority - x.priority })
	if a.ccUsed {
		// A new track starts at the layer the estimate has room for.
		a.applyEstimateRoom(t, d.receiver.now())
	} else if a.budget > 0 {
		a.allocate(d.receiver.now())
	}
}

// remove stops allocating for d.
func (a *Allocator) remove(d *DownTrack) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.tracks = slices.DeleteFunc(a.tracks, func(t *allocTrack) bool { return t.d == d })
	if a.probing && a.probeTrack.d == d {
		a.probing = false // nothing left to judge; the budget stays
	}
}

// Budget returns the bitrate the subscriber's downlink is thought to carry, 0 when no
// limit is known.
func (a *Allocator) Budget() uint64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.budget
}

// report takes one receiver report block about d: the extended highest sequence number
// and cumulative loss it states, and how many packets d had sent when it arrived. It
// evaluates the loss once enough time has passed.
func (a *Allocator) report(d *DownTrack, extHighest uint32, totalLost int32, sent uint64, now int64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	i := slices.IndexFunc(a.tracks, func(t *allocTrack) bool { return t.d == d })
	if i < 0 {
		return
	}
	t := a.tracks[i]
	if t.reported && int32(extHighest-t.extHighest) > 0 && sent >= t.sentAtReport {
		expected := uint64(extHighest - t.extHighest)
		lost := int64(totalLost) - int64(t.totalLost)
		t.sent += sent - t.sentAtReport
		t.received += uint64(max(int64(expected)-lost, 0))
	}
	t.reported, t.extHighest, t.totalLost, t.sentAtReport = true, extHighest, totalLost, sent
	if a.windowStart == 0 {
		a.windowStart, a.quietSince = now, now
		for _, t := range a.tracks {
			t.packets, t.bytes = t.d.sentCounters()
		}
		return
	}
	if now-a.windowStart >= int64(allocEvalInterval) {
		a.evaluate(now)
	}
}

// evaluate runs the controller on the loss and sent bitrate since the last evaluation.
// a.mu must be held.
func (a *Allocator) evaluate(now int64) {
	var sent, received uint64
	video := false
	for _, t := range a.tracks {
		sent += t.sent
		received += t.received
		video = video || t.video
	}
	if sent < allocMinPackets || !video {
		return // too little to judge: let the window grow
	}
	elapsed := uint64(now - a.windowStart)
	packetLoss := lossOf(sent, received)
	var rate uint64
	var arrived float64 // what reached the subscriber, bits/s
	a.videoRate = 0
	for _, t := range a.tracks {
		packets, bytes := t.d.sentCounters()
		t.rate = 8 * (bytes - t.bytes + packetOverhead*(packets-t.packets)) * uint64(time.Second) / elapsed
		t.ratePeak = max(t.rate, t.ratePeak*peakDecayNum/peakDecayDen)
		rate += t.rate
		if t.video {
			a.videoRate += t.rate
		}
		// A track whose report did not come in this window keeps its last loss (the others'
		// before it has one).
		if t.sent > 0 {
			t.loss, t.lossKnown = lossOf(t.sent, t.received), true
		} else if !t.lossKnown {
			t.loss = packetLoss
		}
		arrived += float64(t.rate) * (1 - t.loss)
		t.sent, t.received = 0, 0
		t.packets, t.bytes = packets, bytes
		t.updatePeaks(now)
	}
	// The loss is weighed by bitrate, track by track: counted in packets over all tracks at
	// once, a voice's small packets (which a full line still lets through) would weigh as
	// much as a camera's large ones, and the line would look far wider than it is.
	loss := packetLoss
	if rate > 0 {
		loss = max(0, 1-arrived/float64(rate))
	}
	a.windowStart = now

	if a.ccUsed && a.est.Source == bwe.SourceTWCC {
		// The estimator judges the loss (random loss at a flat delay is not congestion):
		// only share the estimate again, as the layers' bitrates move.
		a.allocate(now)
		return
	}
	justSwitched := false
	if a.probing && !a.switched && a.probeTrack.d.CurrentLayer() == a.probeLayer {
		a.switched, a.probeStart, justSwitched = true, now, true
	}
	quiet := min(a.baseline, lossCongested-lossQuiet) + lossQuiet
	if !a.probing && loss <= lossCongested {
		a.baseline += lossBaselineWeight * (loss - a.baseline)
	}
	switch {
	case justSwitched:
		// The window holds the probed layer's first keyframe, a burst partly still on its way
		// when the report left (counted sent, not yet received): its loss is not judged.
	case a.probing && loss > a.probeFailLoss(quiet):
		// The extra layer did not fit: back to where the probe started, and wait longer.
		a.failProbe(min(a.preProbe, uint64(float64(rate)*(1-loss))), now, loss, rate, "probe failed")
	case a.probing && !a.switched && now-a.probeStart >= int64(probeSwitchTimeout):
		a.failProbe(a.preProbe, now, loss, rate, "probed layer never forwarded")
	case loss > lossCongested:
		if a.lastCut == 0 || now-a.lastCut >= int64(cutHold) {
			a.setBudget(uint64(float64(rate)*(1-loss)), now, loss, rate, "congested")
			a.lastCut = now
		}
		a.quietSince = now
	case loss > quiet:
		a.quietSince = now
	case a.probing:
		if a.switched && now-a.probeStart >= int64(probeConfirm) {
			a.probing = false
			a.backoff = probeBackoffMin
			a.quietSince = now
		}
	case a.budget > 0 && now-a.quietSince >= int64(a.backoff):
		a.probe(now, loss, rate)
	}
	if a.budget > 0 {
		// The subscribers' wishes and the layers' bitrates move too: share the budget again.
		a.allocate(now)
	}
}

// lossOf returns the share of sent packets that were not received.
func lossOf(sent, received uint64) float64 {
	if received >= sent || sent == 0 {
		return 0
	}
	return float64(sent-received) / float64(sent)
}

// probe raises the budget to fit one more layer, if any track can go up. a.mu must be held.
func (a *Allocator) probe(now int64, loss float64, rate uint64) {
	layers, total := a.share(a.budget, now)
	if a.probeResume(layers, total, now, loss, rate) {
		return // paused video comes back before any goes up
	}
	for i, t := range a.tracks {
		if !t.video || t.state != streamActive {
			continue
		}
		if next, cost, ok := t.nextLayer(layers[i], now); ok && next > layers[i] {
			a.probing, a.probeStart, a.preProbe, a.resumeProbe = true, now, a.budget, false
			a.probeTrack, a.probeLayer, a.switched = t, next, false
			a.setBudget(uint64(float64(total+cost)*probeHeadroom), now, loss, rate, "probe")
			return
		}
	}
}

// failProbe ends a probe that did not hold: the budget goes back (to at most budget) and
// the next probe waits twice as long. a.mu must be held.
func (a *Allocator) failProbe(budget uint64, now int64, loss float64, rate uint64, why string) {
	a.probing = false
	a.backoff = min(2*a.backoff, probeBackoffMax)
	a.setBudget(budget, now, loss, rate, why)
	a.quietSince, a.lastCut = now, now
}

// setBudget changes the budget and applies it. a.mu must be held.
func (a *Allocator) setBudget(budget uint64, now int64, loss float64, rate uint64, why string) {
	a.budget = max(budget, 1)
	layers := a.allocate(now)
	a.logger.Info("downlink budget", "why", why, "budget_kbps", a.budget/1000, "sent_kbps", rate/1000,
		"loss", float64(int(loss*1000))/1000, "layers", layers)
}

// allocate shares the budget out, caps each video down track and pauses or resumes them
// (see allocator_pause.go). It returns the layers (LayerNone: paused). a.mu must be held.
func (a *Allocator) allocate(now int64) []int {
	if a.ccUsed {
		return a.applyEstimate(a.estimateBudget(), now)
	}
	layers, _ := a.share(a.budget, now)
	for i, t := range a.tracks {
		if !t.video {
			continue
		}
		t.capped = max(layers[i], LayerLow) // a paused track resumes at its lowest layer
		t.d.setCapLayer(t.capped)
		a.applyPause(t, layers[i], now)
	}
	a.emergencyDrop(layers, a.budget)
	a.capRED()
	return layers
}

// applyEstimateRoom gives a new track t the highest layer the estimate has room for next
// to the others' current layers. a.mu must be held.
func (a *Allocator) applyEstimateRoom(t *allocTrack, now int64) {
	if !t.video {
		return
	}
	var used uint64
	for _, o := range a.tracks {
		if o != t {
			used += o.cost(max(o.capped, LayerLow), now)
		}
	}
	layer := LayerLow
	for l := LayerLow + 1; l <= LayerHigh; l++ {
		if c := t.cost(l, now); c > 0 && used+c <= a.estimateBudget() {
			layer = l
		}
	}
	t.capped = layer
	t.d.setCapLayer(layer)
}

// share returns the layer each track gets from budget (0: no limit) and what that costs.
// The audio's reserve and every video track's lowest layer count first, video tracks
// being paused (LayerNone) while those do not fit; then, in priority order, a track moves
// up one layer if the budget has room for the difference, round after round.
func (a *Allocator) share(budget uint64, now int64) ([]int, uint64) {
	layers := make([]int, len(a.tracks))
	var total uint64
	for i, t := range a.tracks {
		switch {
		case !t.video:
			layers[i] = LayerHigh
			total += t.reserve(now)
		case budget == 0:
			layers[i] = LayerHigh
		default:
			layers[i] = LayerLow
			total += t.lowCost(now)
		}
	}
	if budget == 0 {
		return layers, total
	}
	total = a.pauseToFit(layers, total, budget, now)
	overflowing := a.overflowing()
	for moved := true; moved; {
		moved = false
		for i, t := range a.tracks {
			if !t.video || t.state != streamActive {
				continue // a track resumes at its lowest layer, and moves up once forwarded
			}
			next, cost, ok := t.nextLayer(layers[i], now)
			var slack uint64
			if !overflowing {
				slack = t.holdSlack(next, now)
			}
			if ok && total+cost <= budget+slack {
				layers[i] = next
				total += cost
				moved = true
			}
		}
	}
	return layers, total
}

// holdShare is the share of the layer a video track forwards that a TWCC estimate must have
// room for to keep it: a delay-based cut lands at 85% of what arrived, just under the layer
// that was sending; dropping it for one cut traded a line that carried the middle layer
// for seconds of the lowest (the way back up is a probe, seconds of backoff away). Should
// the line not carry it, the next overuse cuts again, under this share.
const holdShare = 0.8

// overflowing reports whether the TWCC estimate shows the line not carrying what is sent:
// loss over its usual with a standing queue for a second, a full buffer dropping its tail
// (bwe.Estimate.Overflowing). A layer is then not kept through the cut (holdSlack): in the
// drop to 500 kbit/s the middle layer kept that way, with the audio and the retransmissions
// of its losses, held the queue full at 20-50% loss for 8 s, its video frozen a fifth of
// the time. The first overuse's cut comes before the loss, and keeps the layer; a failed
// probe's overshoot drains within the second. a.mu must be held.
func (a *Allocator) overflowing() bool {
	return a.ccUsed && a.est.Source == bwe.SourceTWCC && a.est.Overflowing
}

// holdSlack returns how far over the budget the track may go to keep layer: the rest of
// holdShare of its cost when the track forwards it under a TWCC estimate, else 0.
func (t *allocTrack) holdSlack(layer int, now int64) uint64 {
	if !t.estimated || t.d.CurrentLayer() != layer {
		return 0
	}
	return uint64((1 - holdShare) * float64(t.cost(layer, now)))
}

// nextLayer returns the next layer above from that the track is sending and its
// subscriber wants, and the extra bitrate it costs over from's; none at or above a layer
// held back (heldBack).
func (t *allocTrack) nextLayer(from int, now int64) (int, uint64, bool) {
	want := min(t.d.maxLayer(), t.held.below(t.d.receiver.now()))
	base := t.cost(from, now)
	for l := from + 1; l <= want; l++ {
		if b := t.cost(l, now); b > 0 {
			return l, b - min(b, base), true
		}
	}
	return from, 0, false
}

// cost returns what forwarding layer costs: its bitrate, or the recent peak of it when
// higher (keyframes, and the publisher's encoder ramping, make a layer's bitrate jump;
// a dip must not make a layer look as if it fits). 0 when the layer is not receiving.
func (t *allocTrack) cost(layer int, now int64) uint64 {
	// Each receiver has its own clock: now, from another down track's, would not do.
	b := t.d.receiver.layerBitrate(layer, t.d.receiver.now())
	if b == 0 || layer < 0 || layer >= NumLayers {
		return b
	}
	if t.estimated && t.mean[layer] > 0 {
		// The estimate leaves the queue's room for a keyframe's burst (it cuts on the delay a
		// queue adds, not on a drop): a layer costs what it sends over seconds. Its peak, a
		// keyframe's second, would keep a 1 Mbit/s line on the lowest layer.
		return max(t.mean[layer], b/2)
	}
	return max(b, t.peak[layer])
}

// updatePeaks folds the layers' bitrates into their decaying peaks; once per evaluation.
func (t *allocTrack) updatePeaks(_ int64) {
	now := t.d.receiver.now()
	for l := range t.peak {
		b := t.d.receiver.layerBitrate(l, now)
		t.peak[l] = max(b, t.peak[l]*peakDecayNum/peakDecayDen)
		if t.mean[l] == 0 {
			t.mean[l] = b
		} else {
			t.mean[l] = (3*t.mean[l] + b) / 4
		}
	}
}
