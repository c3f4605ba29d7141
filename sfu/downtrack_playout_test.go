package sfu

import (
	"bytes"
	"encoding/binary"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"

	"github.com/sanke-edu/sanke/sfu/bwe"
)

const testPlayoutID = 6

// The value's layout: 12 bits of minimum, 12 of maximum, in 10 ms units, saturating.
func TestPutPlayoutDelay(t *testing.T) {
	for _, c := range []struct {
		lo, hi time.Duration
		want   [3]byte
	}{
		{100 * time.Millisecond, 10 * time.Second, [3]byte{0x00, 0xa3, 0xe8}},
		{0, 10 * time.Second, [3]byte{0x00, 0x03, 0xe8}},
		{400 * time.Millisecond, 400 * time.Millisecond, [3]byte{0x02, 0x80, 0x28}},
		{time.Minute, time.Minute, [3]byte{0xff, 0xff, 0xff}},
	} {
		var v [3]byte
		putPlayoutDelay(&v, c.lo, c.hi)
		if v != c.want {
			t.Errorf("%v..%v: % x, want % x", c.lo, c.hi, v, c.want)
		}
	}
}

// playoutRR is a receiver report about ssrc 5555 with loss (fraction) and highest seq.
func playoutRR(loss float64, seq uint16) []rtcp.Packet {
	return []rtcp.Packet{&rtcp.ReceiverReport{Reports: []rtcp.ReceptionReport{{
		SSRC: 5555, FractionLost: uint8(loss * 256), LastSequenceNumber: 1<<16 | uint32(seq)}}}}
}

// A clean link gets no playout delay; a lossy one (reports' loss, without an estimator)
// gets the minimum delay on every video packet until a report covers enough of them; a
// link that turns clean again is sent a zero minimum, once acknowledged likewise.
func TestPlayoutDelayFollowsLoss(t *testing.T) {
	rig := newTestRig(t, vp8Codec, 0)
	d, err := NewDownTrack(DownTrackParams{Receiver: rig.r, StreamID: "PA_pub|TR_test", SubscriberID: "PA_sub"})
	if err != nil {
		t.Fatal(err)
	}
	w := &recordWriter{}
	codec := vp8Codec
	codec.PayloadType = 100
	ctx := &fakeContext{codecs: []webrtc.RTPCodecParameters{codec}, ssrc: 5555, writer: w,
		exts: []webrtc.RTPHeaderExtensionParameter{{URI: PlayoutDelayURI, ID: testPlayoutID}}}
	if _, err := d.Bind(ctx); err != nil {
		t.Fatal(err)
	}
	rig.r.AddDownTrack(d)

	seq := uint16(100)
	// feed forwards n packets and returns their playout-delay values (nil: none).
	feed := func(n int) (vals [][]byte, last uint16) {
		before := len(w.packets())
		for range n {
			rig.feed(0, rtp.Header{SequenceNumber: seq, Timestamp: 3000 * uint32(seq), Marker: true}, vp8Payload(true, 1, 1, 1, seq == 100))
			seq++
		}
		pkts := w.packets()[before:]
		if len(pkts) != n {
			t.Fatalf("%d packets forwarded, want %d", len(pkts), n)
		}
		for _, p := range pkts {
			vals = append(vals, p.GetExtension(testPlayoutID))
		}
		return vals, pkts[n-1].SequenceNumber
	}
	expect := func(what string, vals [][]byte, want []byte) {
		t.Helper()
		for i, v := range vals {
			if !bytes.Equal(v, want) {
				t.Fatalf("%s: packet %d carries % x, want % x", what, i, v, want)
			}
		}
	}

	vals, last := feed(5)
	expect("before reports", vals, nil)
	for range 5 {
		d.handleRTCP(playoutRR(0.01, last)) // clean: nothing to say
	}
	vals, last = feed(5)
	expect("clean link", vals, nil)

	d.handleRTCP(playoutRR(0.25, last)) // lossy: 100 ms (no RTT known yet), max 10 s
	vals, last = feed(playoutAckAfter - 1)
	on := []byte{0x00, 0xa3, 0xe8}
	expect("lossy link", vals, on)
	d.handleRTCP(playoutRR(0.25, last)) // covers too few of them: sent on
	vals, _ = feed(1)
	expect("lossy link, unacknowledged", vals, on)
	_, last = feed(3)
	d.handleRTCP(playoutRR(0.25, last))
	vals, last = feed(5)
	expect("lossy link, acknowledged", vals, nil)

	for range 3 { // the usual loss falls, not yet under the threshold
		d.handleRTCP(playoutRR(0, last))
	}
	vals, last = feed(3)
	expect("loss falling", vals, nil)
	for range 20 { // until the average is under playoutLossOff
		if d.handleRTCP(playoutRR(0, last)); d.playoutPending() {
			break
		}
		_, last = feed(1)
	}
	vals, _ = feed(3)
	expect("clean again", vals, []byte{0x00, 0x03, 0xe8})
}

// playoutPending reports whether a playout delay is being sent.
func (d *DownTrack) playoutPending() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.playout.pending
}

// With transport-cc negotiated too, its sequence number stays the first extension, at
// twccOffset, on the direct path; the playout delay follows it.
func TestPlayoutDelayKeepsTWCCOffset(t *testing.T) {
	alloc := NewAllocator(nil)
	alloc.UseEstimator(bwe.NewController(bwe.Config{}))
	rig := newTestRig(t, vp8Codec, 0)
	out, peer := newDirectOutput(t, true)
	out.SetRecorder(alloc.cc.History())
	d, err := NewDownTrack(DownTrackParams{Receiver: rig.r, StreamID: "PA_pub|TR_test", SubscriberID: "PA_sub",
		Output: out, Allocator: alloc})
	if err != nil {
		t.Fatal(err)
	}
	codec := vp8Codec
	codec.PayloadType = 100
	ctx := &fakeContext{codecs: []webrtc.RTPCodecParameters{withTWCC(codec)}, ssrc: 5555, writer: &recordWriter{},
		exts: []webrtc.RTPHeaderExtensionParameter{{URI: sdp.TransportCCURI, ID: testTWCCID}, {URI: PlayoutDelayURI, ID: testPlayoutID}}}
	if _, err := d.Bind(ctx); err != nil {
		t.Fatal(err)
	}
	rig.r.AddDownTrack(d)
	d.mu.Lock()
	d.adaptPlayout(0.2, 0.2, 100*time.Millisecond, 0) // the estimator's usual loss: 20%
	d.mu.Unlock()
	for i := range uint16(2) {
		rig.feed(0, rtp.Header{SequenceNumber: 100 + i, Timestamp: 3000}, vp8Payload(true, 1, 1, 1, i == 0))
	}
	for i, p := range peer.read(t, 2) {
		raw, _ := p.Marshal()
		if got := binary.BigEndian.Uint16(raw[twccOffset:]); got != twccOf(t, p) || got != uint16(i+1) {
			t.Errorf("packet %d: % x at twccOffset, extension %d", i, raw[twccOffset:twccOffset+2], twccOf(t, p))
		}
		if v := p.GetExtension(testPlayoutID); !bytes.Equal(v, []byte{0x03, 0x23, 0xe8}) { // 500 ms
			t.Errorf("packet %d: playout delay % x", i, v)
		}
	}
}
