package sfu

import (
	"time"

	"github.com/pion/rtp"
)

// PlayoutDelayURI is the playout-delay header extension (webrtc.org experiments): a video
// sender tells the receiver the least and most delay to play its frames with. Chromium
// keeps the last value received for the stream and applies the minimum to its jitter buffer
// as it would the page's jitterBufferTarget.
const PlayoutDelayURI = "http://www.webrtc.org/experiments/rtp-hdrext/playout-delay"

// The playout delay a lossy link gets: a frame whose packets need two or more rounds of
// retransmission (the NACK lost too; each round a round trip and the wait before a NACK is
// sent again) arrives several round trips late, past Chromium's usual jitter buffer of
// about 150 ms, which then drops it and freezes. A minimum of five round trips, within the
// bounds, lets those frames play (R1 of test/browser, 20% loss, 100 ms round trip:
// Chromium's video froze 3% of the time, 21-23% with three round trips, 42% with none); a
// clean link gets none (a lower delay is worth more there than what it would save).
const (
	playoutRTTs      = 5
	playoutMin       = 100 * time.Millisecond
	playoutMax       = 500 * time.Millisecond
	playoutCeiling   = 10 * time.Second // the maximum sent: Chromium's own default
	playoutStep      = 50 * time.Millisecond
	playoutLossOn    = 0.05 // usual loss above which the delay is asked for
	playoutLossOff   = 0.02 // and below which it is withdrawn
	playoutLossAvg   = 0.25 // weight of a report's loss when no estimator keeps the usual loss
	playoutAckAfter  = 16   // packets carrying a value that a report must cover before it stops
	playoutUnitNanos = int64(10 * time.Millisecond)
)

// playoutState is a video down track's playout-delay extension: sent on every packet from
// a change of value until a receiver report covers playoutAckAfter packets that carried it
// (as libwebrtc's own sender does), so a loss of some of them does not lose the value.
type playoutState struct {
	id      uint8
	exts    [2]rtp.Extension // twcc (when negotiated) first, so that twccOffset holds; then ours
	val     [3]byte
	delay   time.Duration // the minimum asked for; 0: none
	on      bool          // the link is lossy enough (with hysteresis)
	pending bool          // the value is being sent
	started bool          // from is set
	from    uint16        // first sequence number that carried the pending value
	loss    float64       // reports' loss average, without an estimator
}

// bindPlayout sets the extension up for id (0: not negotiated) and forgets what was sent.
// d.mu must be held, after the TWCC extension was bound.
func (d *DownTrack) bindPlayout(id uint8) {
	p := &d.playout
	*p = playoutState{}
	if id == 0 || id >= 15 || !d.receiver.video() {
		return
	}
	var tmpl rtp.Header // rtp.Extension's fields are unexported: let pion build them
	if d.twccID != 0 && tmpl.SetExtension(d.twccID, d.twccVal[:]) != nil {
		return
	}
	if tmpl.SetExtension(id, p.val[:]) != nil {
		return
	}
	p.id = id
	copy(p.exts[:], tmpl.Extensions)
}

// playoutExtensions returns the extensions of a packet numbered seq when the playout delay
// is being sent, else nil. d.mu must be held.
func (d *DownTrack) playoutExtensions(seq uint16) []rtp.Extension {
	p := &d.playout
	if !p.pending {
		return nil
	}
	if !p.started {
		p.started, p.from = true, seq
	}
	if d.twccID == 0 {
		return p.exts[:1]
	}
	return p.exts[:2]
}

// adaptPlayout follows the link with the playout delay after a receiver report: loss is
// the usual loss the estimator found (negative: none, the report's fraction is averaged
// instead), rtt the round trip, lastSeq the report's highest sequence number. d.mu must be
// held.
func (d *DownTrack) adaptPlayout(loss, reported float64, rtt time.Duration, lastSeq uint16) {
	p := &d.playout
	if p.id == 0 {
		return
	}
	p.loss += playoutLossAvg * (reported - p.loss)
	if loss < 0 {
		loss = p.loss
	}
	if p.pending && p.started && int16(lastSeq-p.from) >= playoutAckAfter {
		p.pending = false
	}
	switch {
	case !p.on && loss > playoutLossOn:
		p.on = true
	case p.on && loss < playoutLossOff:
		p.on = false
	}
	var want time.Duration
	if p.on {
		want = min(max(playoutRTTs*rtt, playoutMin), playoutMax)
	}
	if diff := want - p.delay; (want == 0) == (p.delay == 0) && diff < playoutStep && diff > -playoutStep {
		return
	}
	p.delay = want
	putPlayoutDelay(&p.val, want, playoutCeiling)
	p.pending, p.started = true, false
	d.logger.Debug("playout delay", "min", want, "loss", loss, "rtt", rtt)
}

// putPlayoutDelay writes the extension's value: 12 bits of minimum and 12 of maximum
// delay, in 10 ms units.
func putPlayoutDelay(v *[3]byte, minDelay, maxDelay time.Duration) {
	lo := min(int64(minDelay)/playoutUnitNanos, 0xfff)
	hi := min(int64(maxDelay)/playoutUnitNanos, 0xfff)
	v[0] = byte(lo >> 4)
	v[1] = byte(lo<<4) | byte(hi>>8)
	v[2] = byte(hi)
}
