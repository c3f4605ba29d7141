package room

import (
	"strings"

	"github.com/pion/webrtc/v4"
)

// isConnected reports whether the PeerConnection has connected once.
func (t *transport) isConnected() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.connected
}

// preferTCPAfterUDPFailure is called when the media path died while the signal connection
// lived. If the path was UDP and the node has ICE-TCP, the next ICE restart leaves our UDP
// candidates out of the descriptions and trickles (LiveKit's rule after a UDP failure): the
// client then connects over ICE-TCP (or its TURN relay) at once instead of trying UDP
// pairs that time out first. It stays so for the PeerConnection's life: a client whose UDP
// failed once in a session is likely to lose it again.
func (t *transport) preferTCPAfterUDPFailure() {
	if !t.media.hasTCP() {
		return
	}
	pair, err := t.pc.SCTP().Transport().ICETransport().GetSelectedCandidatePair()
	if err != nil || pair == nil || pair.Local == nil || pair.Local.Protocol != webrtc.ICEProtocolUDP {
		return
	}
	t.mu.Lock()
	changed := !t.tcpOnly
	t.tcpOnly = true
	t.mu.Unlock()
	if changed {
		t.logger.Info("UDP path failed with the signal connection alive: offering ICE-TCP only from now on")
	}
}

// keepCandidate reports whether our candidate c may be sent to the client.
func (t *transport) keepCandidate(c *webrtc.ICECandidate) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return !t.tcpOnly || c.Protocol != webrtc.ICEProtocolUDP
}

// filterDescriptionLocked drops our UDP candidates from sd when the transport offers ICE-TCP
// only. Caller holds t.mu.
func (t *transport) filterDescriptionLocked(sd webrtc.SessionDescription) webrtc.SessionDescription {
	if !t.tcpOnly {
		return sd
	}
	sd.SDP = dropUDPCandidates(sd.SDP)
	return sd
}

// dropUDPCandidates removes the UDP a=candidate lines of an SDP.
func dropUDPCandidates(sdp string) string {
	var b strings.Builder
	b.Grow(len(sdp))
	for line := range strings.Lines(sdp) {
		if rest, ok := strings.CutPrefix(line, "a=candidate:"); ok {
			// foundation component transport priority address port typ ...
			if f := strings.Fields(rest); len(f) > 2 && strings.EqualFold(f[2], "udp") {
				continue
			}
		}
		b.WriteString(line)
	}
	return b.String()
}
