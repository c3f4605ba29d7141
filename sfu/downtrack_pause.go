package sfu

// The Allocator's controls of a down track when the downlink is too narrow: pausing the
// video so that the audio keeps its room, and the emergency downswitch (see
// allocator_pause.go).

// setBWPaused pauses the track for lack of downlink bandwidth, or resumes it. A resumed
// track waits for a keyframe of its layer, which it requests at once; when that keyframe
// starts a new lock, the Allocator hears of it (resumed) and tells the subscriber the
// stream is active again.
func (d *DownTrack) setBWPaused(paused bool) {
	available := d.receiver.availableMask(d.receiver.now())
	d.mu.Lock()
	was := d.fwd.bwPaused
	d.fwd.setBWPaused(paused)
	if paused {
		d.rtxTokens = 0 // the budget earned at the old rate is not the paused line's
	}
	d.bwResumed = was && !paused
	target := d.fwd.targetFor(available)
	d.mu.Unlock()
	if was == paused {
		return
	}
	d.logger.Debug("downlink pause", "paused", paused)
	if !paused && target != LayerNone {
		d.receiver.RequestKeyframe(target)
	}
}

// dropAbove stops forwarding the current layer at once if it is above layer, and asks for
// a keyframe of layer (see forwarder.dropAbove).
func (d *DownTrack) dropAbove(layer int) {
	d.mu.Lock()
	dropped := d.fwd.dropAbove(layer)
	d.mu.Unlock()
	if dropped {
		d.logger.Debug("downlink emergency downswitch", "layer", layer)
		d.receiver.RequestKeyframe(layer)
	}
}

// lastUp returns the layer the track last switched up to (or started on) and when, on its
// receiver's clock; LayerNone before any.
func (d *DownTrack) lastUp() (layer int, at int64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.fwd.upAt == 0 {
		return LayerNone, 0
	}
	return d.fwd.upLayer, d.fwd.upAt
}
