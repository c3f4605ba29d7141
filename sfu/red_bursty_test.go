package sfu

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
)

// gilbertElliott decides the loss of a packet sent at a time on a link whose bad state (every
// packet lost) lasts burst on average and covers a share loss of the time, as `sanke linksim`
// impairs the rural benchmark's bursty link (exponential state durations, seeded).
type gilbertElliott struct {
	rng     *rand.Rand
	burst   float64 // mean bad time, ms
	good    float64 // mean good time, ms
	bad     bool
	until   float64 // when the state ends, ms
	started bool
}

// last returns the last packet written and how many were.
func (w *recordWriter) last() (rtp.Packet, int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.pkts) == 0 {
		return rtp.Packet{}, 0
	}
	return w.pkts[len(w.pkts)-1], len(w.pkts)
}

// newGilbertElliott returns a link losing a share loss of the time in bursts of burstMs.
func newGilbertElliott(seed uint64, loss, burstMs float64) *gilbertElliott {
	return &gilbertElliott{rng: rand.New(rand.NewPCG(seed, 0)), burst: burstMs, good: burstMs * (1 - loss) / loss}
}

// lost reports whether a packet sent at ms (increasing) is lost.
func (g *gilbertElliott) lost(ms float64) bool {
	if !g.started {
		g.started, g.until = true, g.rng.ExpFloat64()*g.good
	}
	for ms >= g.until {
		g.bad = !g.bad
		mean := g.good
		if g.bad {
			mean = g.burst
		}
		g.until += g.rng.ExpFloat64() * mean
	}
	return g.bad
}

// A RED subscriber on a rural link with bursty loss (Gilbert-Elliott, 10% of the time in
// bursts of 50 ms on average, the benchmark's "bursty") reports its loss every second, as
// Chromium does, and its down track adapts the distance to the reports. It must rebuild as
// many frames from what arrives (primaries and redundant blocks) as a subscriber held at the
// largest distance on the same link: a burst longer than the distance loses its first
// frames, so distance bands made for random loss (3 blocks, 60 ms, at 10%) left about 3% of
// the frames unrebuilt where the largest distance leaves 1-2%.
func TestREDCoversBurstyLoss(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3} {
		rig := newTestRig(t, opusCodec, 0)
		d, w, c := rig.bindCodecs(opusNACK(111), redCodec)
		if !isRED(c) {
			t.Fatalf("bound %s, want RED", c.MimeType)
		}
		dm, wm, _ := rig.bindCodecs(opusNACK(111), redCodec) // held at the largest distance
		dm.mu.Lock()
		rig.r.audio.wantDistance(dm.audio.dist, maxREDDistance)
		dm.audio.dist = maxREDDistance
		dm.mu.Unlock()
		link := newGilbertElliott(seed, 0.10, 50)
		const frames, perReport, settle = 3000, 50, 500                  // 60 s of 20 ms frames, a report a second
		got := [2][]bool{make([]bool, frames+1), make([]bool, frames+1)} // frame seq arrived, in any block
		var blocks [MaxREDBlocks]REDBlock
		lostInReport, lost := 0, 0
		for seq := uint16(1); seq <= frames; seq++ {
			rig.clock.advance(20 * time.Millisecond)
			rig.feedAudio(seq, 111, opusFrame(seq, 60))
			if link.lost(float64(seq) * 20) {
				lostInReport++
				if seq > settle {
					lost++
				}
			} else {
				for i, rec := range []*recordWriter{w, wm} {
					p, count := rec.last()
					if count != int(seq) || p.SequenceNumber != seq {
						t.Fatalf("seq %d: %d packets out, the last %d", seq, count, p.SequenceNumber)
					}
					n, err := ParseRED(p.Payload, blocks[:])
					if err != nil {
						t.Fatalf("seq %d: %v", seq, err)
					}
					for _, b := range blocks[:n] {
						if back := int(b.TSOffset) / 960; int(seq)-back > 0 {
							got[i][int(seq)-back] = true
						}
					}
				}
			}
			if seq%perReport == 0 {
				frac := uint8(min(255, lostInReport*256/perReport))
				d.handleRTCP([]rtcp.Packet{&rtcp.ReceiverReport{Reports: []rtcp.ReceptionReport{{SSRC: 5555, FractionLost: frac}}}})
				lostInReport = 0
			}
		}
		var missing [2]int
		for i := range got {
			for seq := settle + 1; seq <= frames; seq++ {
				if !got[i][seq] {
					missing[i]++
				}
			}
		}
		pct := func(n int) float64 { return 100 * float64(n) / float64(frames-settle) }
		t.Logf("seed %d: %.1f%% of the packets lost; frames not rebuilt: %.2f%% adapted (distance %d at the end), %.2f%% at distance %d",
			seed, pct(lost), pct(missing[0]), d.audio.dist, pct(missing[1]), maxREDDistance)
		if math.Abs(pct(lost)-10) > 4 {
			t.Fatalf("seed %d: the link lost %.1f%%, not about 10%%", seed, pct(lost))
		}
		if missing[0] > missing[1]+(frames-settle)/1000 {
			t.Errorf("seed %d: %.2f%% of the frames not rebuilt, %.2f%% at distance %d: the distance did not follow the bursts",
				seed, pct(missing[0]), pct(missing[1]), maxREDDistance)
		}
		d.Close()
		dm.Close()
	}
}
