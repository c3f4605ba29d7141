package sfu

import (
	"strings"
	"time"

	"github.com/pion/webrtc/v4"
)

// audioMode is what an audio down track sends of each upstream packet.
type audioMode uint8

const (
	audioAsIs    audioMode = iota // the publisher's payload (video, and Opus to Opus)
	audioPrimary                  // the Opus frame of the publisher's RED (RED to a subscriber without it)
	audioRED                      // RED wrapped by the receiver, at the down track's distance
)

// Loss bands of the RED distance (fractions of packets the subscriber reports lost): below
// redLoss[d] distance d covers the loss, so the distance is the first band above the loss.
// Rural loss comes in bursts (the benchmark's Gilbert-Elliott link: 10% of the time in bursts
// of 50 ms on average), and a burst longer than the distance loses its first frames for good:
// about p·e^(-20ms·d/50ms) of the frames at loss p. Bands made for random loss (p^(d+1): 1%,
// 3%, 6%, 10%, 15%) held such a link at distance 3, which left about 3% of its frames
// unrecoverable against 1-2% at distance 5 (TestREDCoversBurstyLoss); these keep that residual
// near 1% of the frames up to 5% loss and take the most redundancy above. startREDDistance is
// held as a report asking for it would be: a rural link is assumed lossy until reports say.
var redLoss = [maxREDDistance]float64{0.01, 0.02, 0.03, 0.04, 0.05}

const (
	startREDDistance = 2
	// redHold is how long a report's loss holds its distance: the distance is the largest any
	// report of the last redHold asked for, so it rises at the first report above and falls,
	// straight to where the recent reports are, redHold after the last one that asked for
	// more. Bursts of loss come about twice a second on the rural bursty link, so a hold of
	// seconds keeps its distance between them; after a start burst the distance is back
	// where the line's own loss wants it within redHold of the burst's report (a step down per
	// three reports kept a burst's distance 5 for most of a minute). Chromium reports on its
	// audio every 1-5 s: at the slowest, two clean reports in a row.
	redHold = 6 * time.Second
)

// audioOut is an audio down track's output state, guarded by the DownTrack's mu.
type audioOut struct {
	mode   audioMode
	opusPT uint8 // the subscriber's Opus payload type (inside RED blocks)
	// dist is the RED distance sent (audioRED): lossDist within limit; -1 while not
	// counted at the receiver.
	dist int
	// lossDist is the distance the reported loss asks for; limit the most the Allocator
	// lets the redundancy take (see Allocator.capRED), maxREDDistance until it says.
	lossDist, limit int
	// asked is, for each distance, the receiver clock of the last report whose loss asked
	// for it (0: none since bound).
	asked [maxREDDistance + 1]int64
}

// distanceFor returns the RED distance covering a fraction lost.
func distanceFor(lost float64) int {
	for d, limit := range redLoss {
		if lost < limit {
			return d
		}
	}
	return maxREDDistance
}

// bindAudio picks, among the codecs negotiated with the subscriber, what an audio track is sent
// as: RED wrapped by the receiver when the subscriber decodes it (DownTrackParams.RED) and
// negotiated it, else Opus (the primary of a publisher's RED). It returns the codec to bind.
// d.mu must be held.
func (d *DownTrack) bindAudio(negotiated []webrtc.RTPCodecParameters) (webrtc.RTPCodecParameters, bool) {
	a := d.receiver.audio
	var opus, red *webrtc.RTPCodecParameters
	for i, c := range negotiated {
		switch {
		case isRED(c) && red == nil && d.allowRED:
			red = &negotiated[i]
		case strings.EqualFold(c.MimeType, webrtc.MimeTypeOpus) && opus == nil:
			opus = &negotiated[i]
		}
	}
	if opus == nil {
		return webrtc.RTPCodecParameters{}, false
	}
	d.releaseAudio()
	out := &d.audio
	out.opusPT = uint8(opus.PayloadType)
	switch {
	case red != nil:
		out.mode = audioRED
		out.lossDist = startREDDistance
		out.asked[startREDDistance] = d.receiver.now() // held like a report's (see redHold)
		out.dist = out.redDistance()
		a.wantDistance(-1, out.dist)
		d.wrapsRED.Store(true)
		return *red, true
	case a.red:
		out.mode = audioPrimary
	default:
		out.mode = audioAsIs
	}
	return *opus, true
}

// releaseAudio stops the receiver building RED for this down track. d.mu must be held.
func (d *DownTrack) releaseAudio() {
	if d.audio.mode == audioRED && d.audio.dist >= 0 {
		d.receiver.audio.wantDistance(d.audio.dist, -1)
	}
	d.audio.mode, d.audio.dist, d.audio.lossDist, d.audio.asked = audioAsIs, -1, 0, [maxREDDistance + 1]int64{}
	d.wrapsRED.Store(false)
}

// adaptRED follows the subscriber's reported loss (at now, the receiver's clock) with the
// RED distance: the largest the reports of the last redHold asked for, within the
// Allocator's limit. d.mu must be held.
func (d *DownTrack) adaptRED(lost float64, now int64) {
	out := &d.audio
	if out.mode != audioRED || out.dist < 0 {
		return
	}
	want := distanceFor(lost)
	out.asked[want] = now
	out.lossDist = want
	for k := maxREDDistance; k > want; k-- {
		if at := out.asked[k]; at != 0 && now-at < int64(redHold) {
			out.lossDist = k
			break
		}
	}
	d.setREDDistance(lost)
}

// limitRED sets the most RED distance the Allocator lets this down track send (see
// Allocator.capRED); it applies at once. Calls that change nothing take no lock.
func (d *DownTrack) limitRED(limit int) {
	if int(d.redLimit.Swap(int32(limit))) == limit {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.audio.limit = limit
	if d.audio.mode == audioRED && d.audio.dist >= 0 {
		d.setREDDistance(-1)
	}
}

// redDistance is the distance to send: what the loss asks for within the Allocator's limit,
// but at least 1 while the loss asks for any (one earlier frame in each packet doubles the
// voice's bitrate and halves what a lost packet costs it). d.mu must be held.
func (a *audioOut) redDistance() int {
	if a.lossDist == 0 {
		return 0
	}
	return min(a.lossDist, max(a.limit, 1))
}

// setREDDistance moves the receiver's work to the distance redDistance says; lost is the
// loss reported that moved it, for the log (-1: the limit moved it). d.mu must be held.
func (d *DownTrack) setREDDistance(lost float64) {
	out := &d.audio
	want := out.redDistance()
	if want == out.dist {
		return
	}
	d.receiver.audio.wantDistance(out.dist, want)
	out.dist = want
	d.logger.Debug("red distance", "distance", want, "lost", lost, "loss_wants", out.lossDist, "limit", out.limit)
}

// payloadFor returns what d sends of p, and the payload type to write into its RED block
// headers (0: none to rewrite). d.mu must be held.
func (d *DownTrack) payloadFor(p *inPacket) (payload []byte, redPT uint8) {
	if len(p.payload) == 0 {
		return p.payload, 0 // padding only
	}
	switch d.audio.mode {
	case audioPrimary:
		return p.primary, 0
	case audioRED:
		// The distance wanted, else the nearest built (the receiver may have read the
		// counts just before this down track moved).
		payload = p.red[d.audio.dist]
		for k := 1; payload == nil && k <= maxREDDistance; k++ {
			if i := d.audio.dist - k; i >= 0 && p.red[i] != nil {
				payload = p.red[i]
			} else if i := d.audio.dist + k; i <= maxREDDistance && p.red[i] != nil {
				payload = p.red[i]
			}
		}
		if p.redPT != d.audio.opusPT {
			redPT = d.audio.opusPT
		}
		return payload, redPT
	}
	return p.payload, 0
}

// audioResendPayload turns a cached packet's payload into what this down track sends again:
// the primary (audioPrimary), or the primary alone as RED (audioRED: the frames around it
// went out already), its one-byte header written in place just before it. buf is the cache
// copy's buffer and payload (of payload type pt) is buf[off:off+len(payload)], after at least
// a 12-byte header. ok
// is false for a malformed RED packet.
func (d *DownTrack) audioResendPayload(buf []byte, off int, pt uint8, payload []byte) ([]byte, bool) {
	if d.audio.mode == audioAsIs {
		return payload, true
	}
	primary, ok := d.receiver.audio.primaryOf(payload, pt)
	if !ok || d.audio.mode == audioPrimary {
		return primary, ok
	}
	end := off + len(payload) // the primary is the payload's tail
	start := end - len(primary)
	if start < 1 || end > len(buf) {
		return nil, false
	}
	buf[start-1] = d.audio.opusPT & 0x7f
	return buf[start-1 : end], true
}
