package sfu

import "time"

// Video pauses before audio degrades. A teaching point on a 150-200 kbit/s line cannot
// take even the lowest layer of a camera beside the teacher's voice; forwarding it anyway
// queues the audio behind it, and the class hears nothing. So the Allocator keeps the
// audio's room out of the budget (what the audio down tracks send, with a margin) and
// shares only the rest among the video; when even the lowest layers do not fit, it pauses
// video tracks, the lowest priority first (cameras before the screen share), and the
// subscriber is told (LiveKit's stream state PAUSED, which livekit-client reports as
// TrackStreamStateChanged). A paused track stays paused for at least pausedMinWait
// (LiveKit's PausedMinWait) and resumes when the budget has room for its lowest layer
// with a margin; with loss as the only measure of the link, resuming is the probe that
// finds the room, and a resume that brings loss pauses the track again and doubles the
// wait before the next. With the TWCC estimate as the budget, the estimator's probe finds it:
// the paused track sends the padding (at its lowest layer's frame ends, which still
// arrive), and a probe that succeeds resumes it. The subscriber hears ACTIVE when the
// resumed track's first keyframe goes out, as LiveKit does.
//
// When the budget falls far below what the video sends (a line that suddenly carries a
// fraction of the top layer), the Allocator does not wait for the lower layer's keyframe
// while the old layer keeps flooding the line: it drops the old layer at once (emergency
// downswitch). A short freeze beats the audio starving behind a queue.
const (
	// audioReserveFactor is the margin on the audio's sent bitrate kept out of the
	// video's share (Opus's bitrate moves with the voice; retransmissions and redundancy
	// come on top).
	audioReserveFactor = 1.25
	// pausedMinWait is the least time a paused track stays paused.
	pausedMinWait = 5 * time.Second
	// resumeHeadroom is the margin on a paused track's lowest layer the budget must have
	// room for before it resumes.
	resumeHeadroom = 1.2
	// resumeProbeSlack is the loss over the quiet mark a resume probe bears: it asks
	// whether the audio and a lowest layer fit at all (on a line too narrow for them far
	// more is lost), and a lowest layer's few packets a second make one lost packet look
	// like percents.
	resumeProbeSlack = 0.03
	// emergencyRatio is the share of the video's sent bitrate under which a budget drops
	// the layers above their caps at once.
	emergencyRatio = 0.6
)

// streamState is where a video track stands with respect to bandwidth pauses.
type streamState uint8

const (
	streamActive   streamState = iota
	streamPaused               // paused; the subscriber was told
	streamResuming             // resumed, waiting for the keyframe that makes it active again
)

// OnStreamState sets f to be called when a video down track is paused for lack of
// downlink bandwidth (paused true), and when it is forwarded again after such a pause
// (false: its first keyframe went out). Calls come in order, under the Allocator's lock: f
// must return quickly and must not call the Allocator.
func (a *Allocator) OnStreamState(f func(d *DownTrack, paused bool)) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.onStreamState = f
}

// reserve returns the room audio track t takes out of the budget: its recent peak sent
// bitrate (a voice's bitrate follows its loudness; a reserve that followed it would pause
// and resume video as the speaker pauses), or the publisher's before the first measure,
// with audioReserveFactor. None under the TWCC estimate when t's packets carry no
// transport-wide number (RED to Chromium): the estimator never sees them, so its estimate
// is already the room beside them (its cuts are what arrived of the numbered packets, its
// probes pad the numbered ones to their goal while the audio flows); reserving the audio
// again kept a 1 Mbit/s line's middle layer out of a 700 kbit/s estimate.
func (t *allocTrack) reserve(now int64) uint64 {
	if t.estimated && t.d.unnumbered.Load() {
		return 0
	}
	return uint64(float64(max(t.ratePeak, t.cost(LayerLow, now))) * audioReserveFactor)
}

// lowCost returns what video track t's lowest layer costs; 0 if the subscriber wants no
// layer of it (nothing is sent).
func (t *allocTrack) lowCost(now int64) uint64 {
	if t.d.maxLayer() < LayerLow {
		return 0
	}
	return t.cost(LayerLow, now)
}

// lowNow returns video track t's lowest layer's bitrate now (lowCost without the peak).
func (t *allocTrack) lowNow(now int64) uint64 {
	if t.d.maxLayer() < LayerLow {
		return 0
	}
	return t.d.receiver.layerBitrate(LayerLow, now)
}

// pauseToFit marks video tracks paused (layers[i] = LayerNone) until the lowest layers of
// the others, with total (what the tracks cost at their lowest layers, audio reserve
// included), fit budget. Tracks paused already stay so unless they may resume (paused
// for pausedMinWait, room for their lowest layer x resumeHeadroom, at its recent peak);
// more are paused from the lowest priority up while the lowest layers at their bitrate
// now (not their peak: a keyframe must not pause a track that fits) do not fit, except
// the track a running probe resumed. It returns the cost of what is left.
func (a *Allocator) pauseToFit(layers []int, total, budget uint64, now int64) uint64 {
	for i, t := range a.tracks {
		if t.video && t.state == streamPaused {
			layers[i] = LayerNone
			total -= min(total, t.lowCost(now))
		}
	}
	need := total
	for i, t := range a.tracks {
		if t.video && layers[i] == LayerLow {
			need -= min(need, t.lowCost(now)-t.lowNow(now))
		}
	}
	if a.probeHeld(budget, now) {
		need = 0
	}
	for i := len(a.tracks) - 1; i >= 0 && need > budget; i-- {
		t := a.tracks[i]
		if a.probing && a.probeTrack == t && t.state != streamPaused {
			// Resumed by the running probe: the keyframe it asked for makes its lowest layer
			// dearer for a while; the probe's loss decides whether it goes back.
			continue
		}
		if c := t.lowCost(now); t.video && layers[i] == LayerLow && c > 0 {
			layers[i] = LayerNone
			total -= min(total, c)
			need -= min(need, t.lowNow(now))
		}
	}
	for i, t := range a.tracks {
		if !t.video || t.state != streamPaused || now-t.pausedAt < int64(pausedMinWait) {
			continue
		}
		if c := t.lowCost(now); total+uint64(float64(c)*resumeHeadroom) <= budget {
			layers[i] = LayerLow
			total += c
		}
	}
	return total
}

// probeResume starts a probe that resumes the first paused track (by priority) that has
// been paused for pausedMinWait: the budget grows to fit its lowest layer x
// resumeHeadroom. It reports whether it did. a.mu must be held.
func (a *Allocator) probeResume(layers []int, total uint64, now int64, loss float64, rate uint64) bool {
	for i, t := range a.tracks {
		if !t.video || layers[i] != LayerNone || t.state != streamPaused || now-t.pausedAt < int64(pausedMinWait) {
			continue
		}
		c := t.lowCost(now)
		if c == 0 {
			continue
		}
		a.probing, a.probeStart, a.preProbe, a.resumeProbe = true, now, a.budget, true
		a.probeTrack, a.probeLayer, a.switched = t, LayerLow, false
		a.setBudget(uint64((float64(total)+float64(c)*resumeHeadroom)*probeHeadroom), now, loss, rate, "probe resume")
		return true
	}
	return false
}

// probeFailLoss returns the loss above which the running probe fails, given the quiet
// mark (see resumeProbeSlack).
func (a *Allocator) probeFailLoss(quiet float64) float64 {
	if a.resumeProbe {
		return quiet + resumeProbeSlack
	}
	return quiet
}

// applyPause pauses or resumes video track t as the share says (layer LayerNone:
// paused). a.mu must be held.
func (a *Allocator) applyPause(t *allocTrack, layer int, now int64) {
	switch {
	case layer == LayerNone && t.state != streamPaused:
		announce := t.state == streamActive // a track still resuming was never shown active
		t.state, t.pausedAt = streamPaused, now
		t.d.setBWPaused(true)
		a.logger.Info("video paused for the downlink", "track", t.d.ID(), "budget_kbps", a.budget/1000)
		if announce && a.onStreamState != nil {
			a.onStreamState(t.d, true)
		}
	case layer != LayerNone && t.state == streamPaused:
		t.state = streamResuming
		t.d.setBWPaused(false)
		a.logger.Info("video resumed for the downlink", "track", t.d.ID(), "budget_kbps", a.budget/1000)
	}
}

// resumed is called by d when a resumed track's first keyframe went out: the subscriber
// hears that the stream is active again.
func (a *Allocator) resumed(d *DownTrack) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, t := range a.tracks {
		if t.d == d && t.state == streamResuming {
			t.state = streamActive
			if a.onStreamState != nil {
				a.onStreamState(d, false)
			}
		}
	}
}

// emergencyDrop drops, at once, every video track's current layer above its cap when the
// budget is under emergencyRatio of the video's sent bitrate. a.mu must be held.
func (a *Allocator) emergencyDrop(layers []int, budget uint64) {
	if a.videoRate == 0 || budget == 0 || float64(budget) >= emergencyRatio*float64(a.videoRate) {
		return
	}
	for i, t := range a.tracks {
		if t.video && layers[i] >= LayerLow {
			t.d.dropAbove(layers[i])
		}
	}
}

// resumeProbed resumes (layers[i] = LayerLow) the first paused track, by priority, that has
// been paused for pausedMinWait, after a successful probe: with the estimate as the budget,
// that probe asked for its lowest layer. For pausedMinWait after, no track is paused while
// the budget stays at least what it was (see probeHeld). It reports whether it resumed one.
// a.mu must be held.
func (a *Allocator) resumeProbed(layers []int, now int64) bool {
	for i, t := range a.tracks {
		if t.video && t.state == streamPaused && layers[i] == LayerNone && now-t.pausedAt >= int64(pausedMinWait) &&
			t.lowCost(now) > 0 {
			layers[i] = LayerLow
			a.resumedAt, a.resumeFloor = now, a.estimateBudget()
			return true
		}
	}
	return false
}

// probeHeld reports whether a probe's resume still stands at budget: the probe proved the
// resumed layer fits, and the proven rate may be a little short of the audio's reserve and
// the layer's cost with its keyframe; only a lower estimate (a cut), or pausedMinWait
// without one, undoes it. a.mu must be held.
func (a *Allocator) probeHeld(budget uint64, now int64) bool {
	if a.resumeFloor == 0 {
		return false
	}
	if budget < a.resumeFloor || now-a.resumedAt >= int64(pausedMinWait) {
		a.resumeFloor = 0
		return false
	}
	return true
}
