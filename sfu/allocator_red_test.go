package sfu

import (
	"testing"
	"time"

	"github.com/pion/rtcp"

	"github.com/sanke-edu/sanke/sfu/bwe"
)

// redLink is one subscriber's RED down track of a 48 kbit/s voice (120-byte frames, 50 a
// second) under an Allocator, on a fake clock: each second the voice's frames go out, the
// subscriber reports a loss and the estimator gives an estimate.
type redLink struct {
	t   *testing.T
	ar  *allocRig
	rig *testRig
	a   *Allocator
	d   *DownTrack
	seq uint16
}

func newREDLink(t *testing.T) *redLink {
	ar := newAllocRig(t)
	ar.a.UseEstimator(bwe.NewController(bwe.Config{}))
	d := ar.redVoice()
	return &redLink{t: t, ar: ar, rig: ar.rigs[0], a: ar.a, d: d}
}

// second plays one second of the voice, then the subscriber's report of lost (a fraction)
// and the estimate est, and returns the distance sent after them.
func (l *redLink) second(lost float64, est bwe.Estimate) int {
	for range 50 {
		l.rig.clock.advance(20 * time.Millisecond)
		l.seq++
		l.rig.feedAudio(l.seq, 111, opusFrame(l.seq, 120))
	}
	l.ar.keepAlive() // any video track's layers still arrive
	l.d.handleRTCP([]rtcp.Packet{&rtcp.ReceiverReport{Reports: []rtcp.ReceptionReport{{SSRC: l.d.ssrc, FractionLost: uint8(lost * 256)}}}})
	l.a.onEstimate(est)
	return l.dist()
}

func (l *redLink) dist() int {
	l.d.mu.Lock()
	defer l.d.mu.Unlock()
	return l.d.audio.dist
}

// twccAt is a TWCC estimate of kbps on a path that showed its limit, with 20% random loss.
func twccAt(kbps uint64) bwe.Estimate {
	return bwe.Estimate{Source: bwe.SourceTWCC, Target: kbps * 1000, Limited: true, Loss: 0.2, Baseline: 0.2}
}

// A roomy line with 20% random loss (3 Mbit/s: an estimate of a megabit or more) keeps the
// largest distance: the redundancy is a small share of it.
func TestREDRoomyLineKeepsDistance(t *testing.T) {
	l := newREDLink(t)
	// Before the path showed a limit, the estimate is a guess: it limits nothing.
	start := twccAt(100)
	start.Limited = false
	if d := l.second(0.2, start); d != maxREDDistance {
		t.Errorf("distance %d on a start estimate, want %d", d, maxREDDistance)
	}
	for s := range 20 {
		if d := l.second(0.2, twccAt(1500)); d < 4 && s > 0 {
			t.Fatalf("second %d: distance %d at 20%% loss on a 1.5 Mbit/s estimate, want 4 or more", s, d)
		}
	}
	if d := l.dist(); d != maxREDDistance {
		t.Errorf("distance %d, want %d", d, maxREDDistance)
	}
}

// A tight estimate caps the distance to what fits redShare of it, at once (no report
// needed), down to distance 1 while the loss asks for any; the cap lifts when the estimate
// grows.
func TestREDCappedByEstimate(t *testing.T) {
	l := newREDLink(t)
	for range 3 {
		l.second(0.2, twccAt(3000))
	}
	if d := l.dist(); d != maxREDDistance {
		t.Fatalf("distance %d at 20%% loss on 3 Mbit/s, want %d", d, maxREDDistance)
	}
	// 48 kbit/s of 120-byte frames: distance d costs 50·8·(60 + 120(d+1) + 4d + 1) bit/s,
	// 122.4 kbit/s at 1, 171.6 at 2, 221 at 3, 270.8 at 4; a quarter of the estimate must hold
	// it, and to go up again redRaiseMargin of that quarter.
	for _, c := range []struct {
		kbps uint64
		want int
	}{
		{1000, 3}, {700, 2}, {180, 1}, {100, 1},
		{700, 1},  // 2 fits, not with the margin
		{900, 2},  // 3 fits, not with the margin
		{1100, 3}, // 4 fits, not with the margin
		{1300, 4}, {3000, 5},
	} {
		l.a.onEstimate(twccAt(c.kbps)) // no report: the limit applies at once
		if d := l.dist(); d != c.want {
			t.Errorf("estimate %d kbit/s: distance %d, want %d", c.kbps, d, c.want)
		}
	}
	// A new path starts from the old one's target: still the room.
	est := twccAt(180)
	est.Limited = false
	l.a.onEstimate(est)
	if d := l.dist(); d != 1 {
		t.Errorf("estimate 180 kbit/s on a new path: distance %d, want 1", d)
	}
	// The same from the loss controller's budget (a subscriber without congestion feedback).
	l.a.mu.Lock()
	l.a.ccUsed, l.a.budget = false, 900_000
	l.a.allocate(l.rig.clock.now())
	l.a.mu.Unlock()
	if d := l.dist(); d != 2 {
		t.Errorf("loss budget 900 kbit/s: distance %d, want 2", d)
	}
	// No loss, no redundancy, whatever the room.
	l.a.mu.Lock()
	l.a.budget = 100_000
	l.a.allocate(l.rig.clock.now())
	l.a.mu.Unlock()
	for range int(redHold/time.Second) + 1 {
		l.second(0, twccAt(100))
	}
	if d := l.dist(); d != 0 {
		t.Errorf("no loss on a tight line: distance %d, want 0", d)
	}
}

// After a start burst the distance comes down within redHold of its last lossy report, and
// the hold keeps it from flapping with reports that alternate.
func TestREDStepsDownAfterLoss(t *testing.T) {
	l := newREDLink(t)
	est := twccAt(3000)
	for range 3 {
		l.second(0.3, est) // the start burst
	}
	if d := l.dist(); d != maxREDDistance {
		t.Fatalf("distance %d in the burst, want %d", d, maxREDDistance)
	}
	down := 0
	for s := 1; s <= 20 && down == 0; s++ {
		if l.second(0.015, est) == 1 { // the line's own 1.5%
			down = s
		}
	}
	if down == 0 || time.Duration(down)*time.Second > redHold+time.Second {
		t.Fatalf("distance down to 1 after %d s of 1.5%% loss, want within %v", down, redHold+time.Second)
	}
	// Loss every third second holds its distance between the reports.
	for s := range 15 {
		lost := 0.0
		if s%3 == 0 {
			lost = 0.06
		}
		if d := l.second(lost, est); d != maxREDDistance {
			t.Fatalf("second %d of intermittent loss: distance %d, want %d held", s, d, maxREDDistance)
		}
	}
}

// Video first on a thin line with little random loss: redundancy the loss does not need
// (distance 2 where 2% needs 1) gives way while the camera is held below the layer it
// wants, or has it with no room to spare, as the estimate measures the room beside the
// unnumbered audio; with room to spare, or on a lossier line, the voice keeps it.
func TestREDGivesWayToVideo(t *testing.T) {
	const kbps = 1000
	l := newREDLink(t)
	camera := l.ar.track(vp8Codec, 0, 150*kbps, 370*kbps, 855*kbps)
	// The voice costs 72.4 kbit/s plain, 122.4 at distance 1, 171.6 at 2 (TestREDCappedByEstimate).
	est := func(target uint64, loss float64) bwe.Estimate {
		return bwe.Estimate{Source: bwe.SourceTWCC, Target: target * kbps, Limited: true, Loss: loss, Baseline: loss}
	}
	for _, c := range []struct {
		what   string
		target uint64
		loss   float64
		probed bool
		layer  int
		dist   int
	}{
		{"a roomy line: the loss's distance", 3000, 0.02, false, LayerHigh, 2},
		{"the camera held on 640, a lossy line", 700, 0.05, false, LayerMedium, 2},
		{"the camera held on 640", 700, 0.02, false, LayerMedium, 1},
		// A probe proved 900 (the room the redundancy left): the camera moves up; its spare
		// (27) does not hold distance 2 again.
		{"the top layer, no room to spare", 900, 0.02, true, LayerHigh, 1},
		{"a roomy line again", 3000, 0.02, false, LayerHigh, 2},
	} {
		e := est(c.target, c.loss)
		if c.probed {
			e.Probes, e.ProbesOK = 1, 1
		}
		var d int
		for range 3 {
			d = l.second(0.025, e) // 2.3% (6/256) asks for distance 2 (redLoss)
		}
		if got := camera.Stats().CapLayer; got != c.layer {
			t.Errorf("%s (%d kbit/s): camera capped at %d, want %d", c.what, c.target, got, c.layer)
		}
		if d != c.dist {
			t.Errorf("%s (%d kbit/s): distance %d, want %d", c.what, c.target, d, c.dist)
		}
	}
}
