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

// pathTraffic counts what the PeerConnection's selected ICE candidate pair received (0
// without one): application bytes (RTCP, DTLS, SCTP) plus STUN checks and answers to our
// keepalives. It rises as long as the client's packets reach us.
//
// It reads nothing before the PeerConnection has connected once: pion's ICETransport sets
// its gatherer when ICE starts without the lock its stats reader would need (a data race);
// the connection state callback that sets t.connected comes after that start.
func (t *transport) pathTraffic() uint64 {
	if !t.isConnected() {
		return 0
	}
	st, ok := t.pc.SCTP().Transport().ICETransport().GetSelectedCandidatePairStats()
	if !ok {
		return 0
	}
	return st.BytesReceived + st.RequestsReceived + st.ResponsesReceived
}

// isUp reports whether the PeerConnection is connected now: it has connected once and is
// not between ICE candidate pairs (a restart under way, a path being checked).
func (t *transport) isUp() bool {
	return t != nil && t.isConnected() && t.pc.ConnectionState() == webrtc.PeerConnectionStateConnected
}

// preferTCPAfterUDPFailure is called when the media path died while the signal connection
// lived. If the path ran over UDP, the client's own UDP candidates (host, server-reflexive,
// peer-reflexive) are ignored from now on, so the next ICE restart connects over ICE-TCP or
// the client's TURN relay (TURN/TCP, TURN/TLS) at once instead of trying UDP pairs that time
// out first (LiveKit's rule after a UDP failure). Our own UDP candidate stays: a TURN relay
// reaches it. It holds for the PeerConnection's life: a client whose UDP failed once in a
// session is likely to lose it again.
func (t *transport) preferTCPAfterUDPFailure() {
	pair, err := t.pc.SCTP().Transport().ICETransport().GetSelectedCandidatePair()
	if err != nil || pair == nil || pair.Remote == nil || pair.Remote.Protocol != webrtc.ICEProtocolUDP ||
		pair.Remote.Typ == webrtc.ICECandidateTypeRelay {
		return
	}
	t.mu.Lock()
	changed := !t.avoidUDP
	t.avoidUDP = true
	t.mu.Unlock()
	if changed {
		t.logger.Info("UDP path failed with the signal connection alive: ignoring the client's UDP candidates but relayed ones")
	}
}

// usableAfterUDPFailure reports whether the client's candidate c can carry media once its
// UDP failed: a TCP candidate, or a relayed one. Candidates that do not parse are kept
// (pion refuses them itself).
func usableAfterUDPFailure(c webrtc.ICECandidateInit) bool {
	// candidate:foundation component transport priority address port typ type ...
	f := strings.Fields(strings.TrimPrefix(c.Candidate, "candidate:"))
	if len(f) < 8 {
		return true
	}
	return !strings.EqualFold(f[2], "udp") || f[7] == "relay"
}
