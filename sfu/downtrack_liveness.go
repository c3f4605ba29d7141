package sfu

// Activity returns the packets sent to the subscriber so far (retransmissions included) and
// the RTCP packets read from it: a subscriber that is sent media but reports nothing for
// seconds has lost its path (see the room's liveness check).
func (d *DownTrack) Activity() (sent, rtcp uint64) {
	sent, _ = d.sentCounters()
	return sent, d.rtcpReads.Load()
}

// RequestKeyframe asks the publisher for a keyframe of the layer the down track forwards (or
// waits for): the subscriber asked for one, or its path changed (an ICE restart) and it has
// likely lost packets. The receiver throttles the requests.
func (d *DownTrack) RequestKeyframe() {
	d.mu.Lock()
	layer := d.fwd.current
	if layer == LayerNone {
		layer = d.fwd.target
	}
	d.mu.Unlock()
	d.receiver.RequestKeyframe(layer)
}
