package bwe

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/pion/rtcp"
)

// The reader walks what pion's marshaller writes: run-length chunks, one- and two-bit
// status vectors, small and large (negative) deltas, across the sequence number wrap.
func TestTWCCReaderMatchesPion(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for round := range 200 {
		base := uint16(65500 + round*7) // some wrap
		n := 1 + rng.IntN(300)
		recv := make([]bool, n)
		deltas := make([]int64, n)
		for i := range recv {
			recv[i] = rng.IntN(4) != 0
			if round%5 == 0 {
				recv[i] = true // long runs
			}
			if recv[i] {
				switch rng.IntN(6) {
				case 0:
					deltas[i] = -int64(rng.IntN(200)) // negative: large
				case 1:
					deltas[i] = int64(256 + rng.IntN(5000)) // large
				default:
					deltas[i] = int64(rng.IntN(256))
				}
			}
		}
		recv[0] = true
		raw := buildTWCC(t, base, recv, deltas, uint32(round*1000), uint8(round))
		var r TWCCReader
		if err := r.Reset(raw); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		if r.BaseSeq != base || int(r.Count) != n || r.FbCount != uint8(round) || r.RefTime != uint32(round*1000)&0xffffff {
			t.Fatalf("round %d: header %+v", round, r)
		}
		for i := range n {
			seq, got, d, ok, err := r.Next()
			if err != nil || !ok {
				t.Fatalf("round %d packet %d: ok %v err %v", round, i, ok, err)
			}
			if seq != base+uint16(i) || got != recv[i] || (got && d != deltas[i]*deltaUnit) {
				t.Fatalf("round %d packet %d: seq %d recv %v delta %d, want %d %v %d", round, i, seq, got, d,
					base+uint16(i), recv[i], deltas[i]*deltaUnit)
			}
		}
		if _, _, _, ok, _ := r.Next(); ok {
			t.Fatalf("round %d: more statuses than the count", round)
		}
	}
}

// buildTWCC marshals a TWCC packet with pion/rtcp: statuses and deltas in 250 µs units.
func buildTWCC(t *testing.T, base uint16, recv []bool, deltas []int64, ref uint32, count uint8) []byte {
	t.Helper()
	p := &rtcp.TransportLayerCC{SenderSSRC: 1, MediaSSRC: 7, BaseSequenceNumber: base,
		PacketStatusCount: uint16(len(recv)), ReferenceTime: ref & 0xffffff, FbPktCount: count}
	syms := make([]uint16, len(recv))
	for i, r := range recv {
		switch {
		case !r:
			syms[i] = rtcp.TypeTCCPacketNotReceived
		case deltas[i] < 0 || deltas[i] > 255:
			syms[i] = rtcp.TypeTCCPacketReceivedLargeDelta
		default:
			syms[i] = rtcp.TypeTCCPacketReceivedSmallDelta
		}
		if r {
			p.RecvDeltas = append(p.RecvDeltas, &rtcp.RecvDelta{Type: syms[i], Delta: deltas[i] * deltaUnit / 1000})
		}
	}
	for i := 0; i < len(syms); {
		// A run when the next 8 are equal, else a 2-bit vector of 7.
		j := i
		for j < len(syms) && syms[j] == syms[i] {
			j++
		}
		if j-i >= 8 {
			p.PacketChunks = append(p.PacketChunks, &rtcp.RunLengthChunk{PacketStatusSymbol: syms[i], RunLength: uint16(j - i)})
			i = j
			continue
		}
		end := min(i+7, len(syms))
		v := &rtcp.StatusVectorChunk{SymbolSize: rtcp.TypeTCCSymbolSizeTwoBit, SymbolList: append([]uint16(nil), syms[i:end]...)}
		for len(v.SymbolList) < 7 {
			v.SymbolList = append(v.SymbolList, rtcp.TypeTCCPacketNotReceived)
		}
		p.PacketChunks = append(p.PacketChunks, v)
		i = end
	}
	size := p.MarshalSize()
	p.Header = rtcp.Header{Count: rtcp.FormatTCC, Type: rtcp.TypeTransportSpecificFeedback,
		Padding: size != 20+2*len(p.PacketChunks)+deltaBytes(p), Length: uint16(size/4 - 1)}
	raw, err := p.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func TestTWCCReaderOneBitVectorAndErrors(t *testing.T) {
	// Header: V=2 FMT=15 PT=205, length 5 (24 bytes); base 10, count 14, ref 1, fb 0; one
	// 1-bit vector chunk (first and last received), two small deltas, padding to 24.
	raw := []byte{0x8f, 205, 0, 5, 0, 0, 0, 1, 0, 0, 0, 7, 0, 10, 0, 14, 0, 0, 1, 0,
		0xa0, 0x01, 4, 8}
	var r TWCCReader
	if err := r.Reset(raw); err != nil {
		t.Fatal(err)
	}
	var got []uint16
	for {
		seq, recv, d, ok, err := r.Next()
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			break
		}
		if recv {
			got = append(got, seq)
			if want := map[uint16]int64{10: 4, 23: 8}[seq] * deltaUnit; d != want {
				t.Errorf("seq %d delta %d, want %d", seq, d, want)
			}
		}
	}
	if len(got) != 2 || got[0] != 10 || got[1] != 23 {
		t.Errorf("received %v, want [10 23]", got)
	}
	// Truncated: the deltas are missing.
	if err := r.Reset(append(raw[:20:20], 0xa0, 0x01, 0, 0)[:24]); err != nil {
		t.Fatal(err)
	}
	short := raw[:22]
	short[3] = 4 // claims 20 bytes: chunk cut off
	if err := r.Reset(short); err == nil {
		t.Error("a packet without its chunks parsed")
	}
	if err := r.Reset([]byte{0x81, 205, 0, 1, 0, 0, 0, 0}); err == nil {
		t.Error("a NACK parsed as TWCC")
	}
}

func TestParseREMB(t *testing.T) {
	raw, err := (&rtcp.ReceiverEstimatedMaximumBitrate{SenderSSRC: 1, Bitrate: 1_234_000, SSRCs: []uint32{5}}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	pt, f, pkt, _, ok := NextRTCP(raw)
	if !ok || pt != rtcpPSFB || f != fmtAFB {
		t.Fatalf("NextRTCP: %d %d %v", pt, f, ok)
	}
	bps, ok := ParseREMB(pkt)
	if !ok || bps < 1_233_000 || bps > 1_235_000 {
		t.Errorf("REMB %d %v, want 1234000", bps, ok)
	}
	c := NewController(Config{})
	c.OnREMB(bps, 1)
	if e := c.Estimate(1); e.Source != SourceREMB || e.Target != bps {
		t.Errorf("estimate %+v after REMB", e)
	}
}

// Stamping and parsing allocate nothing.
func TestZeroAllocs(t *testing.T) {
	h := NewSendHistory()
	if a := testing.AllocsPerRun(1000, func() { h.Sent(1, 1200, 0, 0) }); a != 0 {
		t.Errorf("Sent allocates %v", a)
	}
	c := NewController(Config{})
	recv := make([]bool, 100)
	deltas := make([]int64, 100)
	for i := range recv {
		recv[i], deltas[i] = i%5 != 0, int64(i%7)
	}
	for range 100 {
		c.History().Sent(1, 1200, 0, 0)
	}
	raw := buildTWCC(t, 1, recv, deltas, 5, 0)
	now := int64(second)
	if a := testing.AllocsPerRun(1000, func() {
		now += 100 * ms
		raw[19]++ // next feedback count
		if err := c.OnTWCC(raw, now); err != nil {
			t.Fatal(err)
		}
	}); a != 0 {
		t.Errorf("OnTWCC allocates %v", a)
	}
}

// With no feedback while sending, the target holds, then halves every 2 s.
func TestMissingFeedback(t *testing.T) {
	c := NewController(Config{Start: 2_000_000})
	link := &bottleneck{rate: 3e6, queueLimit: 100 * ms, prop: 20 * ms}
	s := newSim(t, c, link, 2e6)
	s.run(5*second, nil)
	before := c.Estimate(s.now).Target
	s.loseFb = 1
	s.run(1500*ms, nil)
	e := c.Estimate(s.now)
	if !e.FeedbackMissing || e.Target > before {
		t.Errorf("after 1.5 s without feedback: missing %v target %d (before %d)", e.FeedbackMissing, kbps(e.Target), kbps(before))
	}
	s.run(3*second, nil)
	if e := c.Estimate(s.now); e.Target > before*6/10 {
		t.Errorf("after 4.5 s without feedback the target is %d kbps (before %d)", kbps(e.Target), kbps(before))
	}
	s.loseFb = 0
	s.run(3*second, nil)
	if e := c.Estimate(s.now); e.FeedbackMissing {
		t.Error("feedback back, still missing")
	}
}

// Probes start only on a calm link, are paced to their goal and prove the capacity.
func TestProber(t *testing.T) {
	t.Run("gating", func(t *testing.T) {
		c := NewController(Config{Start: 600_000})
		if c.StartProbe(500_000, 300_000, int64(second)) {
			t.Fatal("probe without feedback")
		}
		// 10% random loss over a 1% baseline learned first: never probe while it lasts.
		link := &bottleneck{rate: 3e6, queueLimit: 100 * ms, prop: 20 * ms, loss: 0.01}
		s := newSim(t, c, link, 500_000)
		s.run(10*second, nil)
		link.loss = 0.1
		s.run(1500*ms, nil)
		started := false
		s.run(5*second, func(s *sim) { started = started || c.StartProbe(500_000, 300_000, s.now) })
		if started {
			t.Errorf("probed at loss %.2f over baseline %.2f", c.Estimate(s.now).Loss, c.Estimate(s.now).Baseline)
		}
		link.loss = 0.01
		s.run(3*second, nil)
		s.run(5*second, func(s *sim) { started = started || c.StartProbe(500_000, 300_000, s.now) })
		if !started {
			t.Error("no probe once the link is calm again")
		}
	})
	t.Run("idle path", func(t *testing.T) {
		// Heavy loss, then nothing sent (the only video paused): the loss last seen does not
		// gate a probe once it is 2 s old; while it is fresh it does.
		c := NewController(Config{Start: 600_000})
		link := &bottleneck{rate: 3e6, queueLimit: 100 * ms, prop: 20 * ms, loss: 0.01}
		s := newSim(t, c, link, 500_000)
		s.run(10*second, nil)
		// A link of 150 kbit/s under 500 offered: a standing queue and heavy loss.
		link.rate, link.loss = 150_000, 0
		s.run(1500*ms, nil)
		if c.StartProbe(500_000, 300_000, s.now) {
			t.Fatalf("probed a congested link: %+v", c.Estimate(s.now))
		}
		s.offered = 0
		s.run(5*second, nil)
		link.rate = 3e6
		before := c.Estimate(s.now)
		if before.Loss < 0.2 || !c.StartProbe(200_000, 300_000, s.now) {
			t.Fatalf("no probe after 5 s of silence: %+v", before)
		}
		// The cluster is all there is (padding at frame boundaries); nothing follows it, and
		// it is still judged.
		start := s.now
		s.run(3*second, func(s *sim) { s.padFrame(start) })
		if e := c.Estimate(s.now); e.Probes != 1 || e.ProbesOK != 1 || c.Probing() || e.Target <= before.Target {
			t.Errorf("probe on the idle path not judged a success: %+v (before %+v)", e, before)
		}
	})
	t.Run("pacing and success", func(t *testing.T) {
		c := NewController(Config{Start: 600_000})
		link := &bottleneck{rate: 3e6, queueLimit: 100 * ms, prop: 20 * ms}
		s := newSim(t, c, link, 500_000)
		s.run(8*second, nil)
		if !c.StartProbe(500_000, 500_000, s.now) {
			t.Fatal("no probe on a calm link")
		}
		start := s.now
		var padded int
		s.run(2*second, func(s *sim) { padded += s.padFrame(start) })
		// Goal 500 + 1.2 x 500 = 1100 kbps for 500 ms: about 69 KB, media included.
		sentAll := c.hist.clusterBytes
		if sentAll < 60_000 || sentAll > 80_000 {
			t.Errorf("cluster sent %d bytes, want about 69000", sentAll)
		}
		e := c.Estimate(s.now)
		if e.Probes != 1 || e.ProbesOK != 1 || e.Target < 1_000_000 {
			t.Errorf("after the probe: %+v (padding %d bytes)", e, padded)
		}
	})
	t.Run("random loss", func(t *testing.T) {
		// 20% lost at random, on the way and on the padding: the probe still proves the
		// room, and the target is a sending rate, not the 80% that arrived.
		for seed := uint64(1); seed <= 5; seed++ {
			c := NewController(Config{Start: 600_000})
			link := &bottleneck{rate: 3e6, queueLimit: 100 * ms, prop: 50 * ms, loss: 0.2}
			s := newSim(t, c, link, 500_000)
			link.rng = rand.New(rand.NewPCG(seed, 2))
			s.run(10*second, nil)
			var started bool
			s.run(5*second, func(s *sim) {
				if !started {
					started = c.StartProbe(500_000, 500_000, s.now)
				}
				s.pad(c.ProbePadding(s.now))
			})
			if e := c.Estimate(s.now); !started || e.ProbesOK != 1 || e.Target < 900_000 {
				t.Errorf("seed %d: started %v, after the probe %+v", seed, started, e)
			}
		}
	})
	t.Run("recovery after a long thin spell", func(t *testing.T) {
		// A minute at 500 kbit/s, probing for the next layer all along (every probe fails),
		// then the line is back at 3 Mbit/s: a probe proves it within 12 s, not after a
		// minute-long backoff.
		c := NewController(Config{Start: 400_000})
		link := &bottleneck{rate: 500_000, queueLimit: 200 * ms, prop: 25 * ms}
		s := newSim(t, c, link, 350_000)
		try := func(s *sim) {
			c.StartProbe(350_000, 400_000, s.now)
			s.pad(c.ProbePadding(s.now))
		}
		s.run(60*second, try)
		// Each failed probe is aborted at its overuse; the backoff (2, 4, then 8 s) runs from
		// there: 8 probes in the minute, not one every 5 s of no overuse.
		failed := c.Estimate(s.now).Probes
		if failed < 3 || failed > 8 || c.Estimate(s.now).ProbesOK != 0 {
			t.Fatalf("thin spell: %+v, want a few failed probes, backing off", c.Estimate(s.now))
		}
		link.rate = 3e6
		var at int64
		back := s.now
		s.run(20*second, func(s *sim) {
			try(s)
			if at == 0 && c.Estimate(s.now).ProbesOK > 0 {
				at = s.now
			}
		})
		if at == 0 || at-back > 12*second {
			t.Errorf("first successful probe %d ms after the line came back (%d failed before)", (at-back)/ms, failed)
		}
	})
	t.Run("capped climb", func(t *testing.T) {
		// After a thin spell (the estimate about 450 kbit/s), the line is wide again and a
		// track asks for 900 kbit/s more: probes of 1.5 times the estimate climb there one
		// right after the other, not one every probeBackoffMin.
		c := NewController(Config{Start: 1_000_000})
		link := &bottleneck{rate: 500_000, queueLimit: 200 * ms, prop: 25 * ms}
		s := newSim(t, c, link, 900_000)
		s.run(10*second, nil)
		s.offered = 350_000
		s.run(10*second, nil)
		link.rate = 3e6
		s.run(6*second, nil)
		before := c.Estimate(s.now)
		if !before.Limited || before.Target > 700_000 {
			t.Fatalf("after the thin spell: %+v, want a target under 700 kbps", before)
		}
		start, at := s.now, int64(0)
		s.run(6*second, func(s *sim) {
			c.StartProbe(350_000, 900_000, s.now)
			s.pad(c.ProbePadding(s.now))
			if at == 0 && c.Estimate(s.now).Target >= 1_250_000 {
				at = s.now
			}
		})
		e := c.Estimate(s.now)
		t.Logf("from %d kbps: %d kbps %d ms after the first probe, %d probes (%d ok)", kbps(before.Target), kbps(e.Target), (at-start)/ms, e.Probes, e.ProbesOK)
		if at == 0 || at-start > 3500*ms || e.ProbesOK < 2 {
			t.Errorf("climb from %d kbps: 1250 kbps reached %d ms after the first probe (0: never), %d probes ok, want within 3.5 s in steps",
				kbps(before.Target), (at-start)/ms, e.ProbesOK)
		}
	})
	t.Run("overshoot cuts once", func(t *testing.T) {
		// A probe far over a 1 Mbit/s line: its overuse cuts the target once, never under
		// the media sent before it, and the drain of the probe's queue does not cut again.
		c := NewController(Config{Start: 1_000_000})
		link := &bottleneck{rate: 1e6, queueLimit: 200 * ms, prop: 25 * ms}
		s := newSim(t, c, link, 700_000)
		s.run(10*second, nil)
		before := c.Estimate(s.now).Target
		if !c.StartProbe(700_000, 600_000, s.now) {
			t.Fatal("no probe on a calm link")
		}
		cuts, lowest := 0, before
		s.run(3*second, func(s *sim) {
			s.pad(c.ProbePadding(s.now))
			if tg := c.Estimate(s.now).Target; tg < lowest {
				cuts++
				lowest = tg
			}
		})
		t.Logf("target %d kbps before, lowest %d, %d cuts", kbps(before), kbps(lowest), cuts)
		if cuts != 1 || lowest < 700_000 { // the media sent before the probe (its usage) still fits
			t.Errorf("a failed probe cut %d times, to %d kbps from %d", cuts, kbps(lowest), kbps(before))
		}
	})
	t.Run("bottleneck fails it", func(t *testing.T) {
		c := NewController(Config{Start: 600_000})
		link := &bottleneck{rate: 700_000, queueLimit: 100 * ms, prop: 20 * ms}
		s := newSim(t, c, link, 500_000)
		s.run(8*second, nil)
		if !c.StartProbe(500_000, 500_000, s.now) {
			t.Fatal("no probe on a calm link")
		}
		s.run(2*second, func(s *sim) { s.pad(c.ProbePadding(s.now)) })
		if e := c.Estimate(s.now); e.ProbesOK != 0 || e.Target > 900_000 {
			t.Errorf("probe into a 700 kbps link: %+v", e)
		}
		if c.StartProbe(500_000, 500_000, s.now) {
			t.Error("probed again right after a failure")
		}
	})
}

func TestResetForgetsPath(t *testing.T) {
	c := NewController(Config{})
	link := &bottleneck{rate: 3e6, queueLimit: 100 * ms, prop: 20 * ms}
	s := newSim(t, c, link, 1e6)
	s.run(3*second, nil)
	c.Reset()
	if e := c.Estimate(s.now); e.Acked != 0 {
		t.Errorf("acked %d after Reset", e.Acked)
	}
	c.OnReport(300 * time.Millisecond)
	if c.RTT() != 300*time.Millisecond {
		t.Error("RTT not kept")
	}
}

// deltaBytes is the size of p's receive deltas.
func deltaBytes(p *rtcp.TransportLayerCC) int {
	n := 0
	for _, d := range p.RecvDeltas {
		n++
		if d.Type == rtcp.TypeTCCPacketReceivedLargeDelta {
			n++
		}
	}
	return n
}

// padFrame sends the probe padding due at frame boundaries (every 35 ms from start), as
// down tracks do; it returns the bytes sent.
func (s *sim) padFrame(start int64) int {
	if (s.now-start)%(35*ms) != 0 {
		return 0
	}
	return s.pad(s.c.ProbePadding(s.now))
}

// pad sends due bytes of probe padding through the link as 295-byte packets (255 of padding
// and the headers) and returns the bytes sent.
func (s *sim) pad(due int) int {
	sent := 0
	for ; due > 0; due -= 295 {
		seq := s.c.History().Sent(s.now, 295, FlagProbe, 0)
		sent += 295
		if at, ok := s.link.send(s.now, 295); ok {
			s.inFlight = append(s.inFlight, arrival{seq, at})
		}
	}
	return sent
}

// BenchmarkSent is the per-packet cost of numbering (SendHistory.Sent, uncontended).
func BenchmarkSent(b *testing.B) {
	h := NewSendHistory()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		h.Sent(int64(i), 1200, 0, 0)
	}
}

// BenchmarkOnTWCC is the cost of one feedback packet about 100 packets (20% lost).
func BenchmarkOnTWCC(b *testing.B) {
	t := &testing.T{}
	c := NewController(Config{})
	recv := make([]bool, 100)
	deltas := make([]int64, 100)
	for i := range recv {
		recv[i], deltas[i] = i%5 != 0, int64(i%7)
	}
	raw := buildTWCC(t, 1, recv, deltas, 5, 0)
	now := int64(second)
	b.ReportAllocs()
	for b.Loop() {
		for range 100 {
			c.History().Sent(now, 1200, 0, 0)
		}
		base := uint16(c.hist.next - 100)
		raw[12], raw[13] = byte(base>>8), byte(base)
		now += 100 * ms
		raw[19]++
		if err := c.OnTWCC(raw, now); err != nil {
			b.Fatal(err)
		}
	}
}

// Feedback about packets the history has already forgotten is ignored and counted.
func TestHistoryOverrun(t *testing.T) {
	c := NewController(Config{})
	for range historySize + 500 {
		c.History().Sent(1, 1200, 0, 0)
	}
	recv := make([]bool, 100)
	for i := range recv {
		recv[i] = true
	}
	if err := c.OnTWCC(buildTWCC(t, 1, recv, make([]int64, 100), 5, 0), 2); err != nil {
		t.Fatal(err)
	}
	if c.hist.tooOld != 100 {
		t.Errorf("%d packets counted too old, want 100", c.hist.tooOld)
	}
	if e := c.Estimate(2); e.Acked != 0 {
		t.Errorf("forgotten packets acknowledged: %+v", e)
	}
}

// The first loss window has no baseline to judge by, but heavy loss behind a standing queue
// is no line's usual: thin1m's start (the top layer's keyframe into a 1 Mbit/s line) lost
// 59% at 137 ms of queue with a flat trend, and the cut waited a window more, a second more
// of the video frozen. Random loss with no queue (20% at the start of a roomy lossy line) is
// no cut: it is the baseline being learnt.
func TestFirstWindowOverflowCuts(t *testing.T) {
	window := func(queueMs float64, lost int) Estimate {
		c := NewController(Config{})
		c.src = SourceTWCC
		c.winStart, c.winLost, c.winRecv = 1, int64(lost), int64(100-lost)
		c.tl.smoothed, c.tl.minCur, c.tl.minPrev = 25+queueMs, 25, 25
		now := int64(1 + lossWindow)
		c.evaluateLoss(now)
		return c.estimateLocked(now)
	}
	if e := window(137, 59); !e.Limited {
		t.Errorf("59%% lost behind 137 ms of queue in the first window: no cut (%+v)", e)
	}
	if e := window(0, 20); e.Limited {
		t.Errorf("20%% random loss with no queue in the first window: a cut (%+v)", e)
	}
	if e := window(137, 5); e.Limited {
		t.Errorf("5%% lost behind a queue in the first window: a cut (%+v)", e)
	}
}
