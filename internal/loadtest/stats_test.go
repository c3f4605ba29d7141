package loadtest

import (
	"encoding/binary"
	"math"
	"testing"

	"github.com/pion/rtp"
)

func seqRange(from, to int) []uint16 {
	var s []uint16
	for i := from; i <= to; i++ {
		s = append(s, uint16(i))
	}
	return s
}

func cat(parts ...[]uint16) []uint16 {
	var s []uint16
	for _, p := range parts {
		s = append(s, p...)
	}
	return s
}

func TestSeqTracker(t *testing.T) {
	tests := []struct {
		name                                               string
		seqs                                               []uint16
		expected, received, lost, dups, late, gaps, tooOld uint64
	}{
		{name: "empty"},
		{name: "in order", seqs: seqRange(0, 99), expected: 100, received: 100},
		{name: "one gap of two", seqs: cat(seqRange(0, 9), seqRange(12, 20)), expected: 21, received: 19, lost: 2, gaps: 1},
		{name: "two gaps", seqs: cat(seqRange(0, 4), seqRange(6, 9), seqRange(11, 11)), expected: 12, received: 10, lost: 2, gaps: 2},
		{name: "reordered pair", seqs: []uint16{0, 1, 3, 2, 4}, expected: 5, received: 5, late: 1, gaps: 1},
		{name: "duplicate", seqs: []uint16{0, 1, 1, 2}, expected: 3, received: 3, dups: 1},
		{name: "duplicate of a late packet", seqs: []uint16{0, 2, 1, 1, 3}, expected: 4, received: 4, dups: 1, late: 1, gaps: 1},
		{name: "wraparound", seqs: cat(seqRange(65530, 65535), seqRange(0, 5)), expected: 12, received: 12},
		{name: "gap across wraparound", seqs: []uint16{65534, 65535, 1, 2}, expected: 5, received: 4, lost: 1, gaps: 1},
		{name: "first packet late", seqs: []uint16{5, 4, 6}, expected: 3, received: 3, late: 1},
		{name: "big jump", seqs: []uint16{0, 2000}, expected: 2001, received: 2, lost: 1999, gaps: 1},
		{name: "too old after jump", seqs: cat(seqRange(0, 2000), []uint16{5}), expected: 2001, received: 2001, tooOld: 1},
		{name: "late within history after jump", seqs: []uint16{0, 1, 500, 499}, expected: 501, received: 4, lost: 497, late: 1, gaps: 1},
		{name: "history slot reused", seqs: cat(seqRange(0, 1030), []uint16{1030 - 1023}), expected: 1031, received: 1031, dups: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s seqTracker
			for _, q := range tt.seqs {
				s.push(q)
			}
			got := []uint64{s.expected(), s.received, s.lost(), s.dups, s.late, s.gaps, s.tooOld}
			want := []uint64{tt.expected, tt.received, tt.lost, tt.dups, tt.late, tt.gaps, tt.tooOld}
			names := []string{"expected", "received", "lost", "dups", "late", "gaps", "tooOld"}
			for i := range got {
				if got[i] != want[i] {
					t.Errorf("%s = %d, want %d", names[i], got[i], want[i])
				}
			}
		})
	}
}

func TestJitter(t *testing.T) {
	const ms = int64(1_000_000)
	tests := []struct {
		name      string
		clockRate uint32
		tsStep    uint32
		tsStart   uint32
		arrivals  func(i int) int64 // ns
		n         int
		want      float64 // ms
	}{
		{
			name: "constant transit", clockRate: 48000, tsStep: 960, n: 200,
			arrivals: func(i int) int64 { return int64(i)*20*ms + 3*ms }, want: 0,
		},
		{
			// |D| = 2 ms at every step: J_n = 2 ms * (1 - (15/16)^n).
			name: "alternating 2 ms", clockRate: 48000, tsStep: 960, n: 50,
			arrivals: func(i int) int64 { return int64(i)*20*ms + int64(i%2)*2*ms },
			want:     2 * (1 - math.Pow(15.0/16, 49)),
		},
		{
			name: "alternating across timestamp wrap", clockRate: 90000, tsStep: 3000, tsStart: math.MaxUint32 - 3000*10, n: 400,
			arrivals: func(i int) int64 { return int64(i)*100*ms/3 + int64(i%2)*ms },
			want:     1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var j jitterCalc
			for i := range tt.n {
				j.push(tt.tsStart+uint32(i)*tt.tsStep, tt.arrivals(i), tt.clockRate)
			}
			// Arrivals are converted to timestamp units with integer arithmetic: allow one unit.
			tol := 1000/float64(tt.clockRate) + 1e-9
			if got := j.ms(tt.clockRate); math.Abs(got-tt.want) > tol {
				t.Errorf("jitter = %.4f ms, want %.4f ms", got, tt.want)
			}
		})
	}
}

func TestHistogram(t *testing.T) {
	var h histogram
	if h.quantile(0.5) != 0 || h.mean() != 0 {
		t.Fatal("empty histogram must report 0")
	}
	for v := uint64(1); v <= 10000; v++ {
		h.record(v)
	}
	for _, q := range []float64{0.5, 0.95, 0.99} {
		want := q * 10000
		if got := h.quantile(q); math.Abs(got-want)/want > 1.0/histSub {
			t.Errorf("quantile(%v) = %v, want %v within %.1f%%", q, got, want, 100.0/histSub)
		}
	}
	if h.max != 10000 || h.quantile(1) != 10000 {
		t.Errorf("max = %d, quantile(1) = %v", h.max, h.quantile(1))
	}
	if got := h.mean(); math.Abs(got-5000.5) > 1e-9 {
		t.Errorf("mean = %v", got)
	}

	// Small values are exact; merging adds counts.
	var a, b histogram
	for range 99 {
		a.record(7)
	}
	b.record(40)
	a.merge(&b)
	if a.n != 100 || a.quantile(0.99) != 7 || a.quantile(1) != 40 {
		t.Errorf("n %d p99 %v p100 %v", a.n, a.quantile(0.99), a.quantile(1))
	}
	// Huge values land in the last bucket but max stays exact.
	var c histogram
	c.record(1 << 40)
	if c.max != 1<<40 || c.quantile(0.5) > float64(c.max) {
		t.Errorf("clamped value: max %d p50 %v", c.max, c.quantile(0.5))
	}
	// Every bucket's bounds contain the values mapped to it.
	for _, v := range []uint64{0, 63, 64, 65, 127, 128, 1000, 123456, 1 << 29} {
		i := bucketOf(v)
		low, w := bucketBounds(i)
		if v < low || v >= low+w {
			t.Errorf("value %d in bucket %d [%d, %d)", v, i, low, low+w)
		}
	}
}

// packet builds an RTP packet carrying a generator payload for track/layer sent at sendNs.
func packet(t *testing.T, seq uint16, ts uint32, track, layer int, sendNs int64, video bool) []byte {
	t.Helper()
	var payload []byte
	if video {
		v := &vp8Packetizer{width: 320, height: 180, fill: testFill}
		v.frame(true, 500, func(p []byte, _ bool) { payload = append([]byte(nil), p...) })
	} else {
		payload = append([]byte(nil), opusPayload(make([]byte, 200), 80, testFill, uint32(seq))...)
	}
	stampTrailer(payload[len(payload)-trailerSize:], trailer{sendNs: sendNs, track: uint16(track), layer: uint8(layer)})
	p := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: seq, Timestamp: ts, SSRC: 1}, Payload: payload}
	if err := p.SetExtension(1, []byte{0x10}); err != nil {
		t.Fatal(err)
	}
	b, err := p.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var testFill = newFiller(42)

func TestStreamStats(t *testing.T) {
	const us = int64(1000)
	s := newStreamStats(3, 90000, true)
	now := int64(10_000_000_000)
	// 10 packets, 1 ms apart, each 500 µs after it was sent; seq 4 is lost, seq 7 comes twice.
	for i := range 10 {
		if i == 4 {
			continue
		}
		b := packet(t, uint16(100+i), 3000*uint32(i), 3, 2, now-500*us, true)
		s.onPacket(b, now, 0)
		if i == 7 {
			s.onPacket(b, now, 0)
		}
		now += 1000 * us
	}
	// A packet for another track, one with a damaged body, one without a trailer.
	s.onPacket(packet(t, 110, 30000, 5, 0, now-500*us, true), now, 0)
	bad := packet(t, 111, 33000, 3, 0, now-500*us, true)
	bad[len(bad)-trailerSize-1] ^= 0xff
	s.onPacket(bad, now, 0)
	foreign := packet(t, 112, 36000, 3, 0, now, true)
	binary.BigEndian.PutUint32(foreign[len(foreign)-4:], 0)
	s.onPacket(foreign, now, 0)
	s.onPacket([]byte{1, 2, 3}, now, 0) // not RTP

	c, first := s.totals()
	if first != 10_000_000_000 {
		t.Errorf("first packet at %d", first)
	}
	check := func(name string, got, want uint64) {
		t.Helper()
		if got != want {
			t.Errorf("%s = %d, want %d", name, got, want)
		}
	}
	check("packets", c.Packets, 14)
	check("expected", c.Expected, 13)
	check("received", c.Received, 12)
	check("lost", c.Lost(), 1)
	check("gaps", c.Gaps, 1)
	check("duplicates", c.Duplicates, 1)
	check("misrouted", c.Misrouted, 1)
	check("corrupt", c.Corrupt, 2) // damaged body + not RTP
	check("foreign", c.Foreign, 1)
	check("layer f packets", c.LayerPkts[2], 10)
	check("layer q packets", c.LayerPkts[0], 1)
	_, h, k, _ := s.window()
	check("socket latency samples", k.n, 0)
	check("latency samples", h.n, 11)
	if p50 := h.quantile(0.5); math.Abs(p50-500) > 500.0/histSub {
		t.Errorf("latency p50 = %v µs, want 500", p50)
	}

	// The window counts only what arrives between startWindow and endWindow.
	s.startWindow()
	for i := range 5 {
		s.onPacket(packet(t, uint16(113+i), 39000+3000*uint32(i), 3, 1, now-2000*us, true), now, 0)
	}
	s.endWindow()
	s.onPacket(packet(t, 200, 99000, 3, 1, now, true), now, 0) // after the window: a gap, not counted
	w, h, _, _ := s.window()
	check("window packets", w.Packets, 5)
	check("window expected", w.Expected, 5)
	check("window lost", w.Lost(), 0)
	check("window layer h", w.LayerPkts[1], 5)
	check("window latency samples", h.n, 5)
	if p := h.quantile(0.99); math.Abs(p-2000) > 2000.0/histSub {
		t.Errorf("window latency p99 = %v µs, want 2000", p)
	}
	tot, _ := s.totals()
	check("total gaps after window", tot.Gaps, 2)
}

func TestStreamStatsAudio(t *testing.T) {
	s := newStreamStats(1, 48000, false)
	for i := range 50 {
		s.onPacket(packet(t, uint16(65500+i), 960*uint32(i), 1, 0, int64(i)*20e6, false), int64(i)*20e6+300_000, int64(i)*20e6+100_000)
	}
	c, _ := s.totals()
	if c.Packets != 50 || c.Lost() != 0 || c.Corrupt != 0 || c.Foreign != 0 || c.LayerPkts[0] != 50 {
		t.Errorf("counters %+v", c)
	}
	_, h, k, j := s.window()
	if h.n != 50 || math.Abs(h.quantile(0.5)-300) > 300.0/histSub || j > 0.03 {
		t.Errorf("latency n %d p50 %v jitter %v", h.n, h.quantile(0.5), j)
	}
	if k.n != 50 || k.quantile(0.5) != 100 {
		t.Errorf("socket latency n %d p50 %v", k.n, k.quantile(0.5))
	}
}

func TestStreamStatsPadding(t *testing.T) {
	s := newStreamStats(0, 90000, true)
	s.onPacket(packet(t, 1, 0, 0, 2, 0, true), 1000, 0)
	// A padding-only packet (a bandwidth probe) takes a sequence number but carries no media.
	p := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: 2, Timestamp: 0, SSRC: 1, Padding: true},
		PaddingSize: 200}
	b, err := p.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	s.onPacket(b, 2000, 0)
	s.onPacket(packet(t, 3, 3000, 0, 2, 0, true), 3000, 0)
	c, _ := s.totals()
	if c.Padding != 1 || c.Foreign != 0 || c.Corrupt != 0 || c.Lost() != 0 || c.Received != 3 || c.LayerPkts[2] != 2 {
		t.Errorf("counters %+v", c)
	}
}

func TestArrivalRing(t *testing.T) {
	var r arrivalRing
	r.put(7, 100, 5000)
	if at, ok := r.get(7, 100); !ok || at != 5000 {
		t.Errorf("get = %d %v", at, ok)
	}
	if _, ok := r.get(8, 100); ok {
		t.Error("other ssrc found")
	}
	r.put(7, 100+arrivalSlots, 6000) // same slot, a lap later
	if _, ok := r.get(7, 100); ok {
		t.Error("overwritten entry found")
	}
	if _, ok := r.get(9, 3); ok {
		t.Error("empty slot found")
	}
}
