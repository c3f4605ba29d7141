package sfu

import (
	"testing"

	"github.com/pion/rtp"
)

// A fan-out to many down tracks is split over workers, and every down track still gets every
// packet once, in order; a small one stays in the receive loop.
func TestFanoutShards(t *testing.T) {
	cases := []struct {
		name        string
		downTracks  int
		maxWorkers  int
		wantWorkers int
	}{
		{"small stays inline", fanoutShard*2 - 1, 3, 0},
		{"two shards", fanoutShard * 2, 3, 1},
		{"capped by the workers allowed", fanoutShard*10 + 7, 3, 3},
		{"one core", fanoutShard * 4, 0, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rig := newTestRig(t, opusCodec, LayerLow)
			fan := rig.layers[LayerLow].fan
			fan.max = c.maxWorkers
			defer fan.stop()
			writers := make([]*recordWriter, c.downTracks)
			for i := range writers {
				_, writers[i] = rig.bind(opusCodec)
			}
			const packets = 30
			for i := range packets {
				rig.clock.advance(20e6)
				rig.feed(LayerLow, rtp.Header{SequenceNumber: uint16(100 + i), Timestamp: uint32(960 * i)}, []byte{byte(i), 1, 2, 3})
			}
			if len(fan.workers) != c.wantWorkers {
				t.Errorf("%d workers started, want %d", len(fan.workers), c.wantWorkers)
			}
			for i, w := range writers {
				got := w.packets()
				if len(got) != packets {
					t.Fatalf("down track %d got %d packets, want %d", i, len(got), packets)
				}
				for j, p := range got {
					if p.Payload[0] != byte(j) || (j > 0 && p.SequenceNumber != got[j-1].SequenceNumber+1) {
						t.Fatalf("down track %d packet %d: payload %d seq %d", i, j, p.Payload[0], p.SequenceNumber)
					}
				}
			}
		})
	}
}
