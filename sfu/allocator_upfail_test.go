package sfu

import (
	"testing"
	"time"

	"github.com/sanke-edu/sanke/sfu/bwe"
)

// A switch up that overflows the line within seconds holds that layer back for a minute,
// whatever probes prove meanwhile, then lets it be tried again; failing again soon after
// doubles the hold. A cut without overflow (a line that carries the layer, the estimate
// moving) holds nothing back.
func TestAllocatorHoldsBackALayerTheLineDropped(t *testing.T) {
	const kbps = 1000
	ar := newAllocRig(t)
	ar.a.UseEstimator(bwe.NewController(bwe.Config{}))
	camera := ar.track(vp8Codec, 0, 150*kbps, 340*kbps, 790*kbps)
	cp := func() int { return camera.Stats().CapLayer }
	switchUp := func(layer int) {
		camera.mu.Lock()
		camera.fwd.current, camera.fwd.upLayer, camera.fwd.upAt = layer, layer, ar.clock.now()
		camera.mu.Unlock()
	}
	probes := uint64(0)
	est := func(target uint64, overflowing, probed bool) {
		if probed {
			probes++
		}
		ar.clock.advance(time.Second)
		ar.keepAlive()
		e := bwe.Estimate{Source: bwe.SourceTWCC, Target: target * kbps, Limited: true,
			Loss: 0.02, Baseline: 0.02, Probes: probes, ProbesOK: probes}
		if overflowing {
			// The cut's estimate: a standing queue and loss over the usual (its Overflowing
			// waits for a window after the cut).
			e.QueueDelay, e.Loss = 150*time.Millisecond, 0.3
		}
		ar.a.onEstimate(e)
	}
	est(3000, false, false)
	if c := cp(); c != LayerHigh {
		t.Fatalf("3 Mbit/s: cap %d, want high", c)
	}
	// A cut without overflow right after the switch: nothing held back.
	switchUp(LayerHigh)
	est(500, false, false)
	if c := cp(); c != LayerMedium {
		t.Fatalf("500 kbit/s: cap %d, want medium", c)
	}
	est(1000, false, true)
	if c := cp(); c != LayerHigh {
		t.Fatalf("a probe proved 1 Mbit/s after a cut without overflow: cap %d, want high", c)
	}
	// The switch up overflows the line: the cut under it holds it back.
	switchUp(LayerHigh)
	est(600, true, false)
	if c := cp(); c != LayerMedium {
		t.Fatalf("overflowing at 600 kbit/s: cap %d, want medium", c)
	}
	for s := range 55 {
		est(1000, false, s%5 == 0)
		if c := cp(); c != LayerMedium {
			t.Fatalf("%d s after the failed switch, probes proving 1 Mbit/s: cap %d, want medium (held back)", s+1, c)
		}
	}
	for range 10 {
		est(1000, false, true)
	}
	if c := cp(); c != LayerHigh {
		t.Fatalf("a minute after: cap %d, want high again", c)
	}
	// It fails again: held back for two minutes.
	switchUp(LayerHigh)
	est(600, true, false)
	for range 100 {
		est(1000, false, true)
	}
	if c := cp(); c != LayerMedium {
		t.Fatalf("100 s after the second failure: cap %d, want medium", c)
	}
	for range 30 {
		est(1000, false, true)
	}
	if c := cp(); c != LayerHigh {
		t.Fatalf("130 s after the second failure: cap %d, want high", c)
	}
}
