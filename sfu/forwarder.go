package sfu

import (
	"time"

	"github.com/pion/rtp"

	"github.com/sanke-edu/sanke/sfu/srtpout"
)

const (
	// keyframeRetry is how often a forwarder waiting for a keyframe asks the
	// receiver again; the receiver's own throttle decides what is sent.
	keyframeRetry = 250 * time.Millisecond
	// maxLateness is how far (in sequence numbers) behind the newest packet
	// a packet may arrive and still be a late packet rather than a restart
	// of the publisher's numbering.
	maxLateness = 3000
)

// inPacket is one received RTP packet as handed to every down track of a
// receiver. It is only valid during the call: down tracks must not keep it,
// nor write into its payload (the receiver reuses the buffer).
type inPacket struct {
	layer     int
	header    *rtp.Header
	payload   []byte
	keyframe  bool
	vp8       vp8Descriptor // valid if hasVP8
	hasVP8    bool
	arrival   int64     // receiver clock, nanoseconds
	available layerMask // layers receiving when the packet arrived
	// Audio: primary is the Opus frame (the payload, or its primary block when the publisher
	// sends RED; redPT is that frame's payload type), red[d] its RED payload with d earlier
	// frames (nil unless a down track wraps at d), recovered marks a frame rebuilt from the
	// redundancy of the next packet.
	primary   []byte
	red       [maxREDDistance + 1][]byte
	redPT     uint8
	recovered bool
	// batch collects the fan-out's packets for down tracks with a direct Output; the
	// receive loop sends it after the fan-out. nil outside a fan-out.
	batch *srtpout.Batch
}

// forwardResult tells a down track what to do with one packet.
type forwardResult struct {
	send     bool
	seq      uint16
	ts       uint32
	mungeVP8 bool // write vp8 into a copy of the payload
	vp8      vp8Fields
	keyframe int  // >= 0: ask the publisher for a keyframe on this layer
	switched bool // the packet starts a new lock (first packet, layer switch or resume)
}

// forwarder decides, for one down track, which packets of a receiver are
// sent and how their sequence numbers, timestamps and VP8 descriptors are
// rewritten so the subscriber sees one continuous stream across layer
// switches, pauses and publisher mutes.
//
// It locks onto one layer at a time. Inside a lock, out = in + offset, so
// losses stay gaps and late packets land where they belong. A new lock
// (switch) starts only on a keyframe and moves the offsets so that the first
// packet follows the last one sent.
//
// A forwarder is not safe for concurrent use; its DownTrack serializes calls.
type forwarder struct {
	video     bool
	clockRate uint32

	maxLayer int  // what the subscriber asked for; LayerNone pauses
	capLayer int  // the highest layer the subscriber's downlink has room for (Allocator)
	paused   bool // subscriber disabled the track
	muted    bool // publisher muted the track
	bwPaused bool // the Allocator paused the track: its lowest layer does not fit the downlink

	current int // layer locked onto; LayerNone while waiting for one
	target  int // layer wanted
	last    int // layer of the newest packet sent, LayerNone before any
	// upLayer is the layer of the last lock onto a higher layer than the one before (or the
	// first lock), at upAt (receiver clock): the Allocator judges a switch up by what follows.
	upLayer int
	upAt    int64

	started   bool   // something was sent already
	seqOffset uint16 // out seq = in seq + seqOffset
	firstSeq  uint16 // test hook: the first packet's output seq; 0 keeps the publisher's numbering
	tsOffset  uint32 // out ts = in ts + tsOffset
	lockSeq   uint16 // first input seq of the lock: older packets are dropped
	highest   uint16 // newest input seq sent in this lock

	lastSeq     uint16 // newest output seq
	lastTS      uint32 // timestamp of the newest output packet
	lastSentAt  int64  // receiver clock of the newest output packet
	lastKeyReq  int64  // receiver clock of the last keyframe request
	keyReqLayer int    // layer of the last keyframe request
	askedOnce   bool   // lastKeyReq and keyReqLayer are valid

	vp8 vp8Munger

	// Padding (probes) takes output sequence numbers between input packets, moving
	// seqOffset on. pads remembers, for the last few paddings, the newest input sequence
	// number before it and the offset then in force, so that a late packet from before a
	// padding keeps its place; padsLost says older ones were forgotten.
	pads     [4]padMark
	padsN    int
	padsLost bool
}

// padMark is one padding in a forwarder's stream.
type padMark struct {
	boundary uint16 // f.highest when the padding was sent
	offset   uint16 // seqOffset before it
}

// newForwarder returns a forwarder for a track of the given kind, wanting
// the highest layer.
func newForwarder(video bool, clockRate uint32) *forwarder {
	return &forwarder{
		video:     video,
		clockRate: clockRate,
		maxLayer:  LayerHigh,
		capLayer:  LayerHigh,
		current:   LayerNone,
		target:    LayerNone,
		last:      LayerNone,
	}
}

// stopped reports whether nothing may be sent.
func (f *forwarder) stopped() bool {
	return f.paused || f.muted || f.bwPaused || f.maxLayer < 0
}

// update applies a state change; if it stops the forwarder, the lock is
// dropped so that a later resume waits for a keyframe.
func (f *forwarder) update(change func()) {
	change()
	if f.stopped() {
		f.current = LayerNone
		f.target = LayerNone
	}
}

// bwPausedOnly reports whether the Allocator's pause is all that stops the forwarder.
func (f *forwarder) bwPausedOnly() bool {
	return f.bwPaused && !f.paused && !f.muted && f.maxLayer >= 0
}

// setMaxLayer sets the highest layer the subscriber wants (LayerNone for
// none).
func (f *forwarder) setMaxLayer(layer int) {
	f.update(func() { f.maxLayer = min(max(layer, LayerNone), NumLayers-1) })
}

// setCapLayer sets the highest layer the subscriber's downlink has room for (at least
// LayerLow: a cap never stops the track).
func (f *forwarder) setCapLayer(layer int) {
	f.capLayer = min(max(layer, LayerLow), NumLayers-1)
}

// setPaused pauses or resumes forwarding for the subscriber.
func (f *forwarder) setPaused(paused bool) {
	f.update(func() { f.paused = paused })
}

// setBWPaused pauses or resumes forwarding for lack of downlink bandwidth; only the
// Allocator decides this (a cap never stops a track).
func (f *forwarder) setBWPaused(paused bool) {
	f.update(func() { f.bwPaused = paused })
}

// dropAbove stops forwarding the current layer at once if it is above layer, instead of
// forwarding it until the lower layer's keyframe arrives: the Allocator's emergency
// downswitch, when the link is far too narrow for what is sent. It reports whether the
// lock was dropped.
func (f *forwarder) dropAbove(layer int) bool {
	if f.current == LayerNone || f.current <= layer {
		return false
	}
	f.current = LayerNone
	return true
}

// setMuted follows the publisher's mute state.
func (f *forwarder) setMuted(muted bool) {
	f.update(func() { f.muted = muted })
}

// targetFor returns the layer the forwarder would want given the available
// layers, LayerNone when stopped.
func (f *forwarder) targetFor(available layerMask) int {
	if f.stopped() {
		return LayerNone
	}
	if !f.video {
		return LayerLow
	}
	want := min(f.maxLayer, f.capLayer)
	fallback := f.current
	if fallback == LayerNone {
		fallback = want
	}
	return pickLayer(want, available, fallback)
}

// forward decides the fate of packet p.
func (f *forwarder) forward(p *inPacket) forwardResult {
	res := forwardResult{keyframe: LayerNone}
	if f.stopped() {
		return res
	}
	f.target = f.targetFor(p.available)

	if p.layer == f.current && f.current != LayerNone {
		behind := int(int16(f.highest - p.header.SequenceNumber))
		if behind > maxLateness {
			// The publisher restarted its numbering: start over as
			// after a pause.
			f.current = LayerNone
		} else {
			f.maybeAskKeyframe(p, &res)
			return f.send(p, res)
		}
	}
	if p.layer == f.target && (p.keyframe || !f.video) {
		if f.video && (f.last == LayerNone || p.layer > f.last) {
			f.upLayer, f.upAt = p.layer, p.arrival
		}
		f.relock(p)
		res.switched = true
		return f.send(p, res)
	}
	f.maybeAskKeyframe(p, &res)
	return res
}

// maybeAskKeyframe asks for a keyframe of the target layer while the
// forwarder waits for one: at once for a new target, then every
// keyframeRetry.
func (f *forwarder) maybeAskKeyframe(p *inPacket, res *forwardResult) {
	if !f.video || f.current == f.target || f.target == LayerNone {
		return
	}
	if f.askedOnce && f.keyReqLayer == f.target && p.arrival-f.lastKeyReq < int64(keyframeRetry) {
		return
	}
	f.askedOnce = true
	f.keyReqLayer = f.target
	f.lastKeyReq = p.arrival
	res.keyframe = f.target
}

// relock locks onto p's layer with p as the first packet, keeping the output
// continuous: out seq = last seq + 1 and out ts = last ts + the wall time
// elapsed since the last packet sent (at least one tick).
func (f *forwarder) relock(p *inPacket) {
	seq, ts := p.header.SequenceNumber, p.header.Timestamp
	first := !f.started
	if first {
		f.seqOffset, f.tsOffset = 0, 0
		if f.firstSeq != 0 {
			f.seqOffset = f.firstSeq - seq
		}
		f.started = true
	} else {
		f.seqOffset = f.lastSeq + 1 - seq
		step := max(ticks(p.arrival-f.lastSentAt, f.clockRate), 1)
		f.tsOffset = f.lastTS + step - ts
	}
	if p.hasVP8 {
		f.vp8.relock(&p.vp8, first)
	}
	f.current = p.layer
	f.lockSeq = seq
	f.highest = seq - 1
	f.padsN, f.padsLost = 0, false // a new lock: nothing from before it is sent
}

// padSeq takes the next output sequence number for a padding packet, between the newest
// packet sent and the next. ok is false when nothing was sent yet, and while stopped or
// waiting for a keyframe, except when only the Allocator paused the track (bwPaused): its
// padding is what probes whether the lowest layer fits again, and the resume's relock
// numbers on from it.
func (f *forwarder) padSeq() (seq uint16, ts uint32, ok bool) {
	if !f.started || !(f.current != LayerNone && !f.stopped() || f.bwPausedOnly()) {
		return 0, 0, false
	}
	if f.padsN > 0 && f.pads[(f.padsN-1)%len(f.pads)].boundary == f.highest {
		// Another padding packet at the same boundary: the mark stands.
	} else {
		if f.padsN >= len(f.pads) {
			f.padsLost = true
		}
		f.pads[f.padsN%len(f.pads)] = padMark{boundary: f.highest, offset: f.seqOffset}
		f.padsN++
	}
	f.seqOffset++
	f.lastSeq++
	return f.lastSeq, f.lastTS, true
}

// lateOffset returns the sequence offset for a late packet seq (not the newest): the offset
// in force before the first padding that came after it. ok is false when that padding is
// forgotten.
func (f *forwarder) lateOffset(seq uint16) (uint16, bool) {
	first := max(f.padsN-len(f.pads), 0)
	for i := first; i < f.padsN; i++ {
		m := f.pads[i%len(f.pads)]
		if int16(seq-m.boundary) <= 0 {
			if i == first && f.padsLost {
				// An older, forgotten padding may lie between: its offset is unknown.
				return 0, false
			}
			return m.offset, true
		}
	}
	return f.seqOffset, true
}

// send rewrites p for the current lock. Packets older than the lock are
// dropped; late packets keep their place (same offsets) without moving the
// stream forward.
func (f *forwarder) send(p *inPacket, res forwardResult) forwardResult {
	seq := p.header.SequenceNumber
	newest := int16(seq-f.highest) > 0
	if !newest && int16(seq-f.lockSeq) < 0 {
		return res
	}
	offset := f.seqOffset
	if !newest && f.padsN > 0 {
		var ok bool
		if offset, ok = f.lateOffset(seq); !ok {
			return res
		}
	}
	res.send = true
	res.seq = seq + offset
	res.ts = p.header.Timestamp + f.tsOffset
	if p.hasVP8 && !f.vp8.identity() {
		res.mungeVP8 = true
		res.vp8 = f.vp8.munge(&p.vp8, newest)
	} else if p.hasVP8 && newest {
		f.vp8.munge(&p.vp8, true) // keep the reference for the next switch
	}
	if newest {
		f.highest = seq
		f.lastSeq = res.seq
		f.lastTS = res.ts
		f.lastSentAt = p.arrival
		f.last = p.layer
	}
	return res
}

// ticks converts a duration in nanoseconds to clock-rate units without
// overflowing for long durations. Negative durations give 0.
func ticks(ns int64, clockRate uint32) uint32 {
	if ns <= 0 {
		return 0
	}
	sec, rem := uint64(ns)/1e9, uint64(ns)%1e9
	return uint32(sec*uint64(clockRate) + rem*uint64(clockRate)/1e9)
}
