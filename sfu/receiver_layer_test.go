package sfu

import (
	"testing"
	"time"

	"github.com/pion/rtp"
)

// A layer whose encoder stopped keeps receiving padding-only probes; it must stop counting
// as available so subscribers fall back to a layer that still carries video.
func TestPaddingOnlyIsNotActivity(t *testing.T) {
	l := newUpLayer(LayerHigh, "f", 1, nil, 16)
	start := int64(time.Second)
	l.record(&rtp.Header{SequenceNumber: 1}, 1200, true, start)
	if !l.active(start) {
		t.Fatal("a layer that just received media should be active")
	}
	later := start + int64(layerTimeout) + int64(100*time.Millisecond)
	for seq, now := uint16(2), start; now <= later; seq, now = seq+1, now+int64(20*time.Millisecond) {
		l.record(&rtp.Header{SequenceNumber: seq, Padding: true}, 255, false, now)
	}
	if l.active(later) {
		t.Error("padding-only packets kept the layer active")
	}
	if got := l.stats(later).Packets; got < 2 {
		t.Errorf("padding packets should still be counted as received, got %d", got)
	}
}
