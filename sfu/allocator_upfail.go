package sfu

import (
	"time"

	"github.com/sanke-edu/sanke/sfu/bwe"
)

// A layer that the line could not carry. On a 1 Mbit/s line a 790 kbit/s 1280x720 layer
// beside the voice runs it at 96%: a probe proves the rate now and then (its padding is
// paced, the layer's keyframes are not), and each switch up to it stood the line's queue
// full at 35-60% loss within a second, the video freezing until the emergency downswitch;
// every few seconds, as long as the class lasted. So when a track is capped down while the
// line overflows within upFailWindow of its switch up to a layer (or of starting on it),
// that layer and those above are held back, first for upHoldMin, doubling with each failure
// that follows within upHoldMax of the last, up to upHoldMax. A layer the line carries
// (a clean line, or one back from a drop) is never held back: its switch does not overflow.
const (
	upFailWindow = 4 * time.Second
	upHoldMin    = time.Minute
	upHoldMax    = 8 * time.Minute
	// upFailQueue and upFailLoss: a standing queue over upFailQueue with upFailLoss more
	// loss than the usual is a line overflowing, also in the estimate that cut for it (whose
	// Overflowing waits for a window after the cut).
	upFailQueue = 30 * time.Millisecond
	upFailLoss  = 0.03
)

// heldBack is a track's layer held back after failing, on its receiver's clock.
type heldBack struct {
	layer  int   // the layer held back, with those above it
	until  int64 // 0: none
	hold   int64 // the last hold's length
	failed int64 // when it last failed
}

// below returns the highest layer the track may take now: under the layer held back while
// it is, else the highest there is.
func (h *heldBack) below(now int64) int {
	if h.until == 0 || now >= h.until {
		return NumLayers - 1
	}
	return h.layer - 1
}

// failedUp holds back the layer track t switched up to, when the Allocator caps it under
// that layer within upFailWindow of the switch while the line overflows. a.mu must be held.
func (a *Allocator) failedUp(t *allocTrack, capped int) {
	overflowed := a.overflowing() || a.ccUsed && a.est.Source == bwe.SourceTWCC &&
		a.est.QueueDelay > upFailQueue && a.est.Loss > a.est.Baseline+upFailLoss
	if !t.video || !overflowed {
		return
	}
	up, at := t.d.lastUp()
	now := t.d.receiver.now()
	if up <= capped || now-at > int64(upFailWindow) {
		return
	}
	h := &t.held
	h.hold = min(max(2*h.hold, int64(upHoldMin)), int64(upHoldMax))
	if h.failed == 0 || now-h.failed > int64(upHoldMax) {
		h.hold = int64(upHoldMin)
	}
	h.layer, h.until, h.failed = up, now+h.hold, now
	a.logger.Info("layer held back", "track", t.d.ID(), "layer", up, "for", time.Duration(h.hold),
		"after_ms", (now-at)/int64(time.Millisecond), "budget_kbps", a.estimateBudget()/1000)
}
