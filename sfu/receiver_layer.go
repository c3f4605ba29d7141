package sfu

import (
	"sync/atomic"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtp"

	"github.com/sanke-edu/sanke/sfu/packetcache"
)

const (
	// layerTimeout is how long a layer may go without packets before it no
	// longer counts as available (and forwarders fall back to another).
	layerTimeout = 1500 * time.Millisecond
	// bitrateWindow is the period over which a layer's bitrate is measured.
	bitrateWindow = time.Second
)

// packetSource is what a layer reads RTP packets from; *webrtc.TrackRemote
// implements it.
type packetSource interface {
	Read(b []byte) (int, interceptor.Attributes, error)
	SetReadDeadline(t time.Time) error
}

// senderReport is the mapping between the publisher's wall clock and RTP
// clock from its last RTCP sender report on one layer.
type senderReport struct {
	ntp uint64 // NTP timestamp from the report
	rtp uint32 // RTP timestamp from the report
	at  int64  // receiver clock when it arrived
}

// upLayer is one incoming stream of a Receiver: a simulcast layer, or the
// only stream of a track.
type upLayer struct {
	index int
	rid   string
	ssrc  uint32
	src   packetSource
	cache *packetcache.Cache

	lastPacket atomic.Int64 // receiver clock of the newest packet, 0 before any
	lastPLI    atomic.Int64 // receiver clock of the last keyframe request sent
	lastKey    atomic.Int64 // receiver clock of the newest keyframe, 0 before any
	// heldSince is when an urgent keyframe request was held back by urgentPLIGap (0: none):
	// the receive path sends it once the gap has passed, unless a keyframe came meanwhile.
	heldSince atomic.Int64
	sr        atomic.Pointer[senderReport]

	packets   atomic.Uint64
	bytes     atomic.Uint64
	lost      atomic.Uint64
	keyframes atomic.Uint64
	plis      atomic.Uint64
	bitrate   atomic.Uint64 // bits per second over the last window

	// Receive loop only.
	fan         *fanout
	seq         seqTracker
	windowStart int64
	windowBytes uint64
}

// newUpLayer returns the state of a layer reading from src.
func newUpLayer(index int, rid string, ssrc uint32, src packetSource, cacheSize int) *upLayer {
	return &upLayer{index: index, rid: rid, ssrc: ssrc, src: src, cache: packetcache.New(cacheSize),
		fan: newFanout()}
}

// record updates the statistics with packet h of size bytes arriving at now.
// Only the receive loop calls it.
func (l *upLayer) record(h *rtp.Header, size int, media bool, now int64) {
	// Padding-only packets (bandwidth probes) keep flowing after an encoder stops a layer:
	// they must not make the layer look alive, or subscribers never fall back from it.
	if media {
		l.lastPacket.Store(now)
	}
	l.packets.Add(1)
	l.bytes.Add(uint64(size))
	l.lost.Store(l.seq.add(h.SequenceNumber))

	if l.windowStart == 0 {
		l.windowStart = now
	}
	l.windowBytes += uint64(size)
	if elapsed := now - l.windowStart; elapsed >= int64(bitrateWindow) {
		l.bitrate.Store(l.windowBytes * 8 * uint64(time.Second) / uint64(elapsed))
		l.windowStart, l.windowBytes = now, 0
	}
}

// active reports whether the layer received a packet within layerTimeout.
func (l *upLayer) active(now int64) bool {
	last := l.lastPacket.Load()
	return last != 0 && now-last < int64(layerTimeout)
}

// stats returns the layer's statistics at now.
func (l *upLayer) stats(now int64) LayerStats {
	s := LayerStats{
		Layer:     l.index,
		RID:       l.rid,
		SSRC:      l.ssrc,
		Packets:   l.packets.Load(),
		Bytes:     l.bytes.Load(),
		Lost:      l.lost.Load(),
		Keyframes: l.keyframes.Load(),
		PLIs:      l.plis.Load(),
		Active:    l.active(now),
	}
	if s.Active {
		s.Bitrate = l.bitrate.Load()
	}
	return s
}

// seqTracker counts packets lost in one stream: expected (from the extended
// highest sequence number) minus received.
type seqTracker struct {
	started  bool
	base     uint32 // extended first sequence number
	highest  uint32 // extended highest sequence number
	received uint64
}

// add records seq and returns the number of packets lost so far.
func (s *seqTracker) add(seq uint16) uint64 {
	if !s.started {
		s.started = true
		s.base = uint32(seq)
		s.highest = s.base
		s.received = 1
		return 0
	}
	s.received++
	if diff := int16(seq - uint16(s.highest)); diff > 0 {
		s.highest += uint32(diff)
	}
	expected := uint64(s.highest-s.base) + 1
	if expected > s.received {
		return expected - s.received
	}
	return 0 // duplicates (retransmissions) can outnumber losses
}
