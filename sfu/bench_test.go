package sfu

import (
	"fmt"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/sanke-edu/sanke/sfu/bwe"
	"github.com/sanke-edu/sanke/sfu/srtpout"
)

// BenchmarkForward measures one down track's hot path per packet: layer
// decision, header rewrite, VP8 munging into scratch space, NACK record and
// the write (to a writer that discards).
func BenchmarkForward(b *testing.B) {
	for _, bc := range []struct {
		name     string
		switchUp bool // switch layers first so VP8 munging is needed
		twcc     bool // number the packets (transport-cc negotiated)
	}{
		{"vp8-munged", true, false},
		{"passthrough", false, false},
		{"passthrough-twcc", false, true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			rig := newTestRig(b, vp8Codec, 0, 1)
			var d *DownTrack
			if bc.twcc {
				alloc := NewAllocator(nil)
				alloc.UseEstimator(bwe.NewController(bwe.Config{}))
				d = rig.bindCC(vp8Codec, discardWriter{}, nil, alloc, 5555)
			} else {
				d = rig.bindTo(vp8Codec, discardWriter{})
			}
			d.SetMaxLayer(LayerLow)
			rig.feed(0, rtp.Header{SequenceNumber: 1, Timestamp: 1}, vp8Payload(true, 1, 1, 1, true))
			if bc.switchUp {
				rig.feed(1, rtp.Header{SequenceNumber: 90, Timestamp: 1}, vp8Payload(true, 499, 9, 3, false))
				d.SetMaxLayer(LayerMedium)
			}
			rig.clock.advance(10 * time.Millisecond)
			layer := d.TargetLayer()
			payload := append(vp8Payload(true, 500, 9, 3, true), make([]byte, 1000)...)
			rig.feed(layer, rtp.Header{SequenceNumber: 100, Timestamp: 1}, payload)
			if d.CurrentLayer() != layer || d.fwd.vp8.identity() == bc.switchUp {
				b.Fatalf("not forwarding layer %d with munging %v", layer, bc.switchUp)
			}

			desc, _ := parseVP8Descriptor(payload)
			h := rtp.Header{SequenceNumber: 100, Timestamp: 1, Marker: true}
			in := inPacket{layer: layer, header: &h, payload: payload, vp8: desc, hasVP8: true, available: 0b011, arrival: rig.r.now()}
			b.ReportAllocs()
			b.SetBytes(int64(len(payload)))
			b.ResetTimer()
			for range b.N {
				h.SequenceNumber++
				d.writeRTP(&in)
			}
			b.StopTimer()
			if s := d.Stats(); s.Packets < uint64(b.N) {
				b.Fatalf("forwarded %d of %d packets", s.Packets, b.N)
			}
		})
	}
}

// BenchmarkFanout measures the whole receive path of one packet (parse,
// account, cache, inspect) fanned out to n down tracks; ns/op is per
// received packet.
func BenchmarkFanout(b *testing.B) {
	for _, n := range []int{1, 10, 100} {
		b.Run(fmt.Sprintf("downtracks=%d", n), func(b *testing.B) {
			rig := newTestRig(b, vp8Codec, 0)
			for range n {
				rig.bindTo(vp8Codec, discardWriter{})
			}
			payload := append(vp8Payload(true, 1, 1, 1, true), make([]byte, 1000)...)
			rig.feed(0, rtp.Header{SequenceNumber: 0, Timestamp: 1}, payload)
			buf := rtpBytes(b, rtp.Header{SequenceNumber: 1, Timestamp: 1, SSRC: 1000, PayloadType: 96}, payload)
			l := rig.layers[0]
			var pkt rtp.Packet
			b.ReportAllocs()
			b.SetBytes(int64(len(buf)))
			b.ResetTimer()
			for i := range b.N {
				seq := uint16(i + 1)
				buf[2], buf[3] = byte(seq>>8), byte(seq)
				rig.r.handlePacket(l, &pkt, buf)
			}
			b.StopTimer()
			for _, d := range rig.r.DownTracks() {
				if d.Stats().Packets < uint64(b.N) {
					b.Fatal("a down track missed packets")
				}
			}
		})
	}
}

// BenchmarkDirectStamp is one down track's direct path per packet (forward, marshal into the
// batch, AES-GCM, sendmmsg to loopback in batches of 64) without and with transport-wide
// numbering: the difference is what stamping costs (header extension, SendHistory.Sent,
// the 2-byte store); playout adds the playout-delay extension a lossy link is sent.
func BenchmarkDirectStamp(b *testing.B) {
	for _, c := range []struct{ twcc, playout bool }{{false, false}, {true, false}, {true, true}} {
		twcc := c.twcc
		name := fmt.Sprintf("twcc=%v", twcc)
		if c.playout {
			name += ",playout"
		}
		b.Run(name, func(b *testing.B) {
			rig := newTestRig(b, vp8Codec, 0)
			t := &testing.T{}
			out, _ := newDirectOutput(t, true)
			var d *DownTrack
			if twcc {
				alloc := NewAllocator(nil)
				alloc.UseEstimator(bwe.NewController(bwe.Config{}))
				out.SetRecorder(alloc.cc.History())
				d = rig.bindCC(vp8Codec, discardWriter{}, out, alloc, 5555)
			} else {
				d = rig.bindOut(vp8Codec, discardWriter{}, out)
			}
			if c.playout {
				d.mu.Lock()
				d.bindPlayout(testPlayoutID)
				d.adaptPlayout(0.2, 0.2, 100*time.Millisecond, 0) // no report follows: sent on every packet
				d.mu.Unlock()
			}
			payload := append(vp8Payload(true, 500, 9, 3, true), make([]byte, 1000)...)
			rig.feed(0, rtp.Header{SequenceNumber: 100, Timestamp: 1}, payload)
			desc, _ := parseVP8Descriptor(payload)
			h := rtp.Header{SequenceNumber: 100, Timestamp: 1}
			batch := srtpout.NewBatch(srtpout.DefaultBatchSize)
			in := inPacket{layer: 0, header: &h, payload: payload, vp8: desc, hasVP8: true, available: 0b001,
				arrival: rig.r.now(), batch: batch}
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				h.SequenceNumber++
				d.writeRTP(&in)
			}
			batch.Flush()
			b.StopTimer()
			if s := d.Stats(); !s.Direct || s.Packets < uint64(b.N) {
				b.Fatalf("direct %v, forwarded %d of %d packets", s.Direct, s.Packets, b.N)
			}
			if c.playout && !d.playoutPending() {
				b.Fatal("playout delay not being sent")
			}
		})
	}
}
