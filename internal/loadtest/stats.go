package loadtest

import (
	"sync"
)

// seqHistory is how many sequence numbers behind the highest one a seqTracker remembers, to
// tell a late packet (which fills a gap) from a duplicate.
const seqHistory = 1024

// seqTracker accounts one RTP stream by sequence number, as RFC 3550 (appendix A.3) does:
// expected = highest extended sequence number - first + 1, lost = expected - received, where
// received counts distinct packets. A packet that arrives after a higher one fills its gap
// (late); one seen before is a duplicate. The zero value is ready to use.
type seqTracker struct {
	started  bool
	first    uint64 // extended sequence number of the oldest packet counted
	highest  uint64 // extended highest sequence number
	received uint64 // distinct packets
	dups     uint64
	late     uint64 // arrived after a higher sequence number
	tooOld   uint64 // older than the history: neither counted nor checked
	gaps     uint64 // forward jumps by more than one
	seen     [seqHistory / 64]uint64
}

// seqBase keeps extended sequence numbers positive when a stream starts with late packets.
const seqBase = 1 << 32

func (s *seqTracker) has(ext uint64) bool {
	return s.seen[ext/64%uint64(len(s.seen))]&(1<<(ext%64)) != 0
}

func (s *seqTracker) set(ext uint64) {
	s.seen[ext/64%uint64(len(s.seen))] |= 1 << (ext % 64)
}

func (s *seqTracker) clear(ext uint64) {
	s.seen[ext/64%uint64(len(s.seen))] &^= 1 << (ext % 64)
}

// push accounts the packet with sequence number seq.
func (s *seqTracker) push(seq uint16) {
	if !s.started {
		s.started = true
		s.highest = seqBase + uint64(seq)
		s.first = s.highest
		s.received = 1
		s.set(s.highest)
		return
	}
	delta := int64(int16(seq - uint16(s.highest)))
	if delta > 0 {
		if delta > 1 {
			s.gaps++
		}
		// Forget what falls out of the history window, then move the window forward.
		if delta >= seqHistory {
			s.seen = [seqHistory / 64]uint64{}
		} else {
			for e := s.highest + 1; e <= s.highest+uint64(delta); e++ {
				s.clear(e)
			}
		}
		s.highest += uint64(delta)
		s.set(s.highest)
		s.received++
		return
	}
	back := uint64(-delta)
	if back >= seqHistory {
		s.tooOld++
		return
	}
	ext := s.highest - back
	if s.has(ext) {
		s.dups++
		return
	}
	s.set(ext)
	s.received++
	s.late++
	if ext < s.first {
		s.first = ext
	}
}

// expected returns how many packets the stream should have delivered so far.
func (s *seqTracker) expected() uint64 {
	if !s.started {
		return 0
	}
	return s.highest - s.first + 1
}

// lost returns expected - received (never negative).
func (s *seqTracker) lost() uint64 {
	e := s.expected()
	if s.received >= e {
		return 0
	}
	return e - s.received
}

// jitterCalc is the RFC 3550 interarrival jitter estimate (section 6.4.1, appendix A.8), in
// RTP timestamp units: J += (|D| - J) / 16 with D = (Rj - Ri) - (Sj - Si) over consecutive
// arrivals.
type jitterCalc struct {
	started     bool
	lastArrival int64 // in timestamp units
	lastTS      uint32
	j           float64
}

// push accounts a packet with RTP timestamp ts that arrived at arrivalNs (any monotonic
// nanosecond clock), for a stream with the given clock rate.
func (c *jitterCalc) push(ts uint32, arrivalNs int64, clockRate uint32) {
	// microseconds first: nanoseconds times 90000 would overflow after a few days.
	arrival := arrivalNs / 1000 * int64(clockRate) / 1_000_000
	if !c.started {
		c.started = true
		c.lastArrival, c.lastTS = arrival, ts
		return
	}
	d := (arrival - c.lastArrival) - int64(int32(ts-c.lastTS))
	if d < 0 {
		d = -d
	}
	c.j += (float64(d) - c.j) / 16
	c.lastArrival, c.lastTS = arrival, ts
}

// ms returns the jitter in milliseconds.
func (c *jitterCalc) ms(clockRate uint32) float64 {
	if clockRate == 0 {
		return 0
	}
	return c.j * 1000 / float64(clockRate)
}

// maxLayers is the number of simulcast layers a stream is accounted by (audio uses layer 0).
const maxLayers = 3

// counters are the cumulative totals of one received stream; a measurement window is the
// difference of two snapshots.
type counters struct {
	Packets     uint64            // every packet read, duplicates included
	Bytes       uint64            // RTP payload bytes
	LayerPkts   [maxLayers]uint64 // packets by the publisher's layer (from the trailer)
	LayerBytes  [maxLayers]uint64
	Expected    uint64 // by sequence number
	Received    uint64 // distinct
	Duplicates  uint64
	Late        uint64
	Gaps        uint64
	TooOld      uint64
	Corrupt     uint64 // payload checksum mismatch or malformed trailer
	Foreign     uint64 // no generator trailer
	Padding     uint64 // padding only (bandwidth probes): counted by sequence number only
	Misrouted   uint64 // trailer names another track than the one this stream carries
	LatencyMiss uint64 // trailer time in the future (clock error); not recorded
}

func (c counters) sub(o counters) counters {
	r := counters{
		Packets: c.Packets - o.Packets, Bytes: c.Bytes - o.Bytes,
		Expected: c.Expected - o.Expected, Received: c.Received - o.Received,
		Duplicates: c.Duplicates - o.Duplicates, Late: c.Late - o.Late, Gaps: c.Gaps - o.Gaps,
		TooOld: c.TooOld - o.TooOld, Corrupt: c.Corrupt - o.Corrupt, Foreign: c.Foreign - o.Foreign,
		Padding:   c.Padding - o.Padding,
		Misrouted: c.Misrouted - o.Misrouted, LatencyMiss: c.LatencyMiss - o.LatencyMiss,
	}
	for i := range c.LayerPkts {
		r.LayerPkts[i] = c.LayerPkts[i] - o.LayerPkts[i]
		r.LayerBytes[i] = c.LayerBytes[i] - o.LayerBytes[i]
	}
	return r
}

func (c *counters) add(o counters) {
	c.Packets += o.Packets
	c.Bytes += o.Bytes
	c.Expected += o.Expected
	c.Received += o.Received
	c.Duplicates += o.Duplicates
	c.Late += o.Late
	c.Gaps += o.Gaps
	c.TooOld += o.TooOld
	c.Corrupt += o.Corrupt
	c.Foreign += o.Foreign
	c.Padding += o.Padding
	c.Misrouted += o.Misrouted
	c.LatencyMiss += o.LatencyMiss
	for i := range c.LayerPkts {
		c.LayerPkts[i] += o.LayerPkts[i]
		c.LayerBytes[i] += o.LayerBytes[i]
	}
}

// Lost returns expected - received, never negative.
func (c counters) Lost() uint64 {
	if c.Received >= c.Expected {
		return 0
	}
	return c.Expected - c.Received
}

// streamStats accounts one track received by one subscriber. The reading goroutine calls
// onPacket; the run takes window snapshots concurrently, hence the mutex (uncontended on the
// packet path).
type streamStats struct {
	track     int // generator track index this stream should carry
	clockRate uint32
	video     bool

	mu       sync.Mutex
	seq      seqTracker
	jit      jitterCalc
	c        counters
	lat      histogram // publish -> read by the subscriber, µs, since the window started
	sockLat  histogram // publish -> arrival in the subscriber's socket, µs
	firstNs  int64     // arrival of the first packet, 0 before
	winStart counters  // snapshot at the start of the window
	winEnd   counters
	ended    bool
	endLat   *histogram
	endSock  *histogram
	endJit   float64
}

func newStreamStats(track int, clockRate uint32, video bool) *streamStats {
	return &streamStats{track: track, clockRate: clockRate, video: video}
}

// onPacket accounts one decrypted RTP packet b read at nowNs (generator clock) that arrived in
// the socket at sockNs (0: unknown).
func (s *streamStats) onPacket(b []byte, nowNs, sockNs int64) {
	h, ok := parseRTP(b)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.firstNs == 0 {
		s.firstNs = nowNs
	}
	s.c.Packets++
	if !ok {
		s.c.Corrupt++
		return
	}
	payload := b[h.payloadStart:h.payloadEnd]
	s.c.Bytes += uint64(len(payload))
	s.seq.push(h.seq)
	s.c.Expected, s.c.Received = s.seq.expected(), s.seq.received
	s.c.Duplicates, s.c.Late, s.c.Gaps, s.c.TooOld = s.seq.dups, s.seq.late, s.seq.gaps, s.seq.tooOld
	if len(payload) == 0 {
		s.c.Padding++
		return
	}
	s.jit.push(h.ts, nowNs, s.clockRate)

	t, res := checkPayload(payload, s.video)
	switch res {
	case payloadForeign:
		s.c.Foreign++
		return
	case payloadCorrupt:
		s.c.Corrupt++
		return
	}
	layer := int(t.layer)
	if layer >= maxLayers {
		layer = maxLayers - 1
	}
	s.c.LayerPkts[layer]++
	s.c.LayerBytes[layer] += uint64(len(payload))
	if int(t.track) != s.track {
		s.c.Misrouted++
	}
	if d := nowNs - t.sendNs; d >= 0 {
		s.lat.record(uint64(d / 1000))
	} else {
		s.c.LatencyMiss++
	}
	if sockNs != 0 {
		s.sockLat.record(uint64(max(sockNs-t.sendNs, 0) / 1000))
	}
}

// startWindow begins the measurement window: counters are snapshotted, latency restarts.
func (s *streamStats) startWindow() {
	s.mu.Lock()
	s.winStart = s.c
	s.lat.reset()
	s.sockLat.reset()
	s.mu.Unlock()
}

// endWindow freezes the window's figures; later packets still count in the totals.
func (s *streamStats) endWindow() {
	s.mu.Lock()
	if !s.ended {
		s.ended = true
		s.winEnd = s.c
		h, k := s.lat, s.sockLat
		s.endLat, s.endSock = &h, &k
		s.endJit = s.jit.ms(s.clockRate)
	}
	s.mu.Unlock()
}

// window returns the window's counters, latency to the reader and to the socket, and jitter
// at its end (the window so far before endWindow).
func (s *streamStats) window() (counters, *histogram, *histogram, float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.ended {
		h, k := s.lat, s.sockLat
		return s.c.sub(s.winStart), &h, &k, s.jit.ms(s.clockRate)
	}
	return s.winEnd.sub(s.winStart), s.endLat, s.endSock, s.endJit
}

// totals returns the cumulative counters and the first packet's arrival.
func (s *streamStats) totals() (counters, int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.c, s.firstNs
}
