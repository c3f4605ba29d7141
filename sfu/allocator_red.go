package sfu

import (
	"time"

	"github.com/sanke-edu/sanke/sfu/bwe"
)

// RED's redundancy within the downlink. A RED down track's distance follows the loss its
// subscriber reports, and at distance d each packet carries d earlier frames besides its own:
// up to 6 times the voice's bitrate. Where the loss is the line's own (random loss on a
// roomy line) that is what keeps the voice whole. Where it is congestion (a thin line's
// queue overflowing) the redundancy is more of what overflows it: on a 180 kbit/s line
// distance 5 of a 48 kbit/s voice alone is 320 kbit/s, and the line dropped a third of the
// voice's packets. And the estimator never sees it (Chromium numbers only plain Opus with
// transport-wide sequence numbers), so it cannot make room for it.
//
// So the Allocator limits the distance to what fits redShare of the downlink: the estimate
// once the path has shown its limit (for numbered packets, so the room beside the unnumbered
// audio; also on a new path, which starts from the old one's), or the loss controller's
// budget; a line that never showed a limit is not limited. The
// limit is the same for every audio track of the subscriber, the largest distance at which
// all of them together fit, the voices priced at their recent peak frame rate and size. A
// subscriber whose loss asks for redundancy still gets distance 1 at least (see
// audioOut.redDistance). On a congested line the estimate falls, and the redundancy with it;
// on a roomy line with random loss (3 Mbit/s, 20% loss: an estimate of 1 Mbit/s or more)
// distance 5 fits and stays.
const (
	// redShare is the share of the downlink the audio with its redundancy may take.
	redShare = 0.25
	// redRaiseMargin is the share of redShare a larger distance must fit in to raise the
	// limit.
	redRaiseMargin = 0.85
	// redBlockHeader is the RED header bytes of each redundant block; the primary's is 1.
	redBlockHeader = 4
	// audioPeakDecay is how much of an audio track's peak frame rate and size is left after
	// each measure (once a second at most): a voice's talk spurts set it, its silences (DTX)
	// fade it to half in 14 s.
	audioPeakDecay = 0.95
	// audioMeasureInterval is the least time between two measures of a voice's frames.
	audioMeasureInterval = time.Second
)

// audioFrames is what an audio allocTrack knows of its voice's frames (capRED's clock).
type audioFrames struct {
	at            int64   // receiver clock of the last measure, 0 before any
	frames, bytes uint64  // the receiver's counters then
	rate, size    float64 // recent peak frames per second and bytes per frame
}

// capRED limits the RED distance of the audio tracks to what fits redShare of the downlink
// (see the comment above). a.mu must be held.
func (a *Allocator) capRED() {
	room := a.budget // the loss controller's: 0 while it saw no congestion
	a.estLimited = a.estLimited || a.est.Limited
	switch {
	case !a.ccUsed:
	case !a.estLimited:
		room = 0 // the start estimate, a guess
	case a.est.Source == bwe.SourceTWCC:
		// What the line carries (no retransmissions of RED to budget). A new path (the
		// estimator's Reset) starts from the old one's target: no guess either.
		room = a.est.Target
	default:
		room = a.estimateBudget()
	}
	for _, t := range a.tracks {
		if !t.video {
			t.measureFrames(t.d.receiver.now())
		}
	}
	limit := maxREDDistance
	if room > 0 {
		// Down as soon as the limit does not fit; up only to a distance that fits with
		// redRaiseMargin to spare, so that a voice's bitrate and the estimate moving by a few
		// percent do not move the distance back and forth.
		allowed := redShare * float64(room)
		fit, spare := maxREDDistance, maxREDDistance
		for fit > 0 && a.audioCost(fit) > allowed {
			fit--
		}
		for spare > 0 && a.audioCost(spare) > redRaiseMargin*allowed {
			spare--
		}
		limit = min(max(a.redLimit, spare), fit)
	}
	if room > 0 && a.est.Source == bwe.SourceTWCC {
		limit = a.videoFirst(limit, a.tracks[0].d.receiver.now())
	}
	if limit != a.redLimit {
		a.logger.Debug("red limit", "distance", limit, "room_kbps", room/1000,
			"voice_kbps", uint64(a.audioCost(0))/1000)
		a.redLimit = limit
	}
	for _, t := range a.tracks {
		if !t.video {
			t.d.limitRED(limit)
		}
	}
}

// videoFirstMaxLoss is the most loss of the line's own (the estimate's baseline) at which
// the redundancy beyond distance 1 gives way to the video (videoFirst): distance 1 leaves p²
// of the frames lost, at most 0.09% here. On a lossier line (20% random loss, or bursts
// that take several frames in a row) every distance counts for the voice.
const videoFirstMaxLoss = 0.03

// videoFirst lowers the RED limit to distance 1 on a line with little loss of its own when
// a video track is held below the layer its subscriber wants, or has no room to spare: the
// estimate measures the room beside the unnumbered audio, so every step of distance given
// up is room a probe then finds for the video. On a 1 Mbit/s line at 2% loss distance 2
// took 122 kbit/s, 1280x720 did not fit beside it and the subscriber sat on 640 (at
// distance 1, 86 kbit/s, it fits). A video track with all it wants and room to spare leaves
// the redundancy what fits the spare. a.mu must be held.
func (a *Allocator) videoFirst(limit int, now int64) int {
	if limit <= 1 || a.est.Baseline > videoFirstMaxLoss {
		return limit
	}
	layers := make([]int, len(a.tracks))
	var step uint64
	for i, t := range a.tracks {
		switch {
		case !t.video:
		case t.state == streamPaused:
			layers[i] = LayerNone
			step += t.lowCost(now)
		default:
			layers[i] = t.capped
			if _, extra, ok := t.nextLayer(t.capped, now); ok {
				step += extra
			}
		}
	}
	if step > 0 {
		return 1
	}
	spare := float64(a.estimateBudget()) - float64(a.layersCost(layers, now))
	base := a.audioCost(1)
	d := 1
	for d < limit && a.audioCost(d+1)-base <= redRaiseMargin*spare {
		d++
	}
	return d
}

// audioCost is what the audio tracks send, bits per second on the wire, when those that
// wrap RED wrap at distance dist. a.mu must be held.
func (a *Allocator) audioCost(dist int) float64 {
	var cost float64
	for _, t := range a.tracks {
		if t.video {
			continue
		}
		f := &t.frames
		size := f.size
		if t.d.wrapsRED.Load() {
			size = float64(dist+1)*f.size + float64(dist*redBlockHeader+1)
		}
		cost += 8 * f.rate * (packetOverhead + size)
	}
	return cost
}

// measureFrames updates audio track t's peak frame rate and size from its receiver's
// counters, once per audioMeasureInterval.
func (t *allocTrack) measureFrames(now int64) {
	up := t.d.receiver.audio
	if up == nil {
		return
	}
	f := &t.frames
	frames, bytes := up.frames.Load(), up.frameBytes.Load()
	elapsed := now - f.at
	if f.at != 0 && elapsed < int64(audioMeasureInterval) {
		return
	}
	var rate, size float64
	if n := frames - f.frames; n > 0 && f.at != 0 {
		rate = float64(n) * float64(time.Second) / float64(elapsed)
		size = float64(bytes-f.bytes) / float64(n)
	}
	if f.at != 0 {
		f.rate = max(rate, f.rate*audioPeakDecay)
		f.size = max(size, f.size*audioPeakDecay)
	}
	f.at, f.frames, f.bytes = now, frames, bytes
}
