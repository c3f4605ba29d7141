package sfu

import (
	"strings"

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
// used until reports come: a rural link is assumed lossy.
var redLoss = [maxREDDistance]float64{0.01, 0.02, 0.03, 0.04, 0.05}

const (
	startREDDistance = 2
	// redStepDown is how many reports in a row must show a lower band before the distance
	// drops one step (it rises at the first report above).
	redStepDown = 3
)

// audioOut is an audio down track's output state, guarded by the DownTrack's mu.
type audioOut struct {
	mode   audioMode
	opusPT uint8 // the subscriber's Opus payload type (inside RED blocks)
	dist   int   // RED distance (audioRED), -1 while not counted at the receiver
	lower  int   // reports in a row in a lower band
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
		out.dist = startREDDistance
		a.wantDistance(-1, out.dist)
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
	d.audio.mode, d.audio.dist, d.audio.lower = audioAsIs, -1, 0
}

// adaptRED follows the subscriber's reported loss with the RED distance: up at once, down
// one step after redStepDown reports in a lower band. d.mu must be held.
func (d *DownTrack) adaptRED(lost float64) {
	out := &d.audio
	if out.mode != audioRED || out.dist < 0 {
		return
	}
	want := distanceFor(lost)
	switch {
	case want > out.dist:
		out.lower = 0
	case want < out.dist:
		if out.lower++; out.lower < redStepDown {
			return
		}
		out.lower = 0
		want = out.dist - 1
	default:
		out.lower = 0
		return
	}
	d.receiver.audio.wantDistance(out.dist, want)
	out.dist = want
	d.logger.Debug("red distance", "distance", want, "lost", lost)
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
