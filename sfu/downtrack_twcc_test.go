package sfu

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/pion/interceptor/pkg/twcc"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"

	"github.com/sanke-edu/sanke/sfu/bwe"
	"github.com/sanke-edu/sanke/sfu/srtpout"
)

const testTWCCID = 5

// withTWCC returns codec with transport-cc feedback negotiated.
func withTWCC(codec webrtc.RTPCodecParameters) webrtc.RTPCodecParameters {
	codec.RTCPFeedback = append(append([]webrtc.RTCPFeedback(nil), codec.RTCPFeedback...),
		webrtc.RTCPFeedback{Type: webrtc.TypeRTCPFBTransportCC})
	return codec
}

// bindCC binds a down track of the rig's receiver to w (and out, if not nil) under alloc,
// with the transport-cc header extension negotiated as id 5.
func (rig *testRig) bindCC(codec webrtc.RTPCodecParameters, w webrtc.TrackLocalWriter, out *srtpout.Sender, alloc *Allocator, ssrc webrtc.SSRC) *DownTrack {
	rig.t.Helper()
	d, err := NewDownTrack(DownTrackParams{Receiver: rig.r, StreamID: "PA_pub|TR_test", SubscriberID: "PA_sub",
		Output: out, Allocator: alloc})
	if err != nil {
		rig.t.Fatal(err)
	}
	codec.PayloadType = 100
	ctx := &fakeContext{codecs: []webrtc.RTPCodecParameters{withTWCC(codec)}, ssrc: ssrc, writer: w,
		exts: []webrtc.RTPHeaderExtensionParameter{{URI: sdp.TransportCCURI, ID: testTWCCID}}}
	if _, err := d.Bind(ctx); err != nil {
		rig.t.Fatal(err)
	}
	rig.r.AddDownTrack(d)
	return d
}

func twccOf(t *testing.T, p rtp.Packet) uint16 {
	t.Helper()
	ext := p.GetExtension(testTWCCID)
	if len(ext) != 2 {
		t.Fatalf("packet %d has no transport-cc extension: %+v", p.SequenceNumber, p.Header)
	}
	return binary.BigEndian.Uint16(ext)
}

// Video on the direct path and audio on pion's path of one subscriber connection share one
// transport-wide counter: dense, in send order, at the extension's place in the header;
// retransmissions are numbered too. Without transport-cc negotiated, no extension is sent.
func TestTWCCStampsBothPaths(t *testing.T) {
	alloc := NewAllocator(nil)
	alloc.UseEstimator(bwe.NewController(bwe.Config{}))
	video := newTestRig(t, vp8Codec, 0)
	audio := newTestRig(t, opusCodec, 0)
	out, peer := newDirectOutput(t, true)
	out.SetRecorder(alloc.cc.History())
	vd := video.bindCC(vp8Codec, &recordWriter{}, out, alloc, 5555)
	aw := &recordWriter{}
	audio.bindCC(opusCodec, aw, nil, alloc, 6666)
	plainRig := newTestRig(t, vp8Codec, 0)
	_, plain := plainRig.bind(vp8Codec)

	var order []string // which path sent each number
	for i := range uint16(6) {
		video.feed(0, rtp.Header{SequenceNumber: 100 + i, Timestamp: 3000}, vp8Payload(true, 1, 1, 1, i == 0))
		order = append(order, "video")
		audio.feed(0, rtp.Header{SequenceNumber: 10 + i, Timestamp: 960 * uint32(i)}, []byte{1, 2, 3})
		order = append(order, "audio")
		plainRig.feed(0, rtp.Header{SequenceNumber: 100 + i, Timestamp: 3000}, vp8Payload(true, 1, 1, 1, i == 0))
	}
	vd.handleRTCP([]rtcp.Packet{nack(5555, 101)})
	order = append(order, "video")
	vpkts := peer.read(t, 7)
	apkts := aw.packets()
	var vi, ai int
	for n, path := range order {
		var got uint16
		if path == "video" {
			got = twccOf(t, vpkts[vi])
			vi++
		} else {
			got = twccOf(t, apkts[ai])
			ai++
		}
		if int(got) != n+1 {
			t.Fatalf("packet %d (%s) numbered %d, want %d", n, path, got, n+1)
		}
	}
	raw, _ := vpkts[0].Marshal()
	if raw[0]&0x10 == 0 || binary.BigEndian.Uint16(raw[12:]) != 0xBEDE || raw[16]>>4 != testTWCCID {
		t.Errorf("header layout % x", raw[:20])
	}
	for _, p := range plain.packets() {
		if p.Extension {
			t.Fatalf("extension sent without transport-cc negotiated: %+v", p.Header)
		}
	}
}

// Probe padding: after the last packet of a frame, padding-only packets numbered on from
// the stream with the frame's timestamp; NACKs for them are not answered; a late packet from
// before the padding keeps its place.
func TestProbePadding(t *testing.T) {
	alloc := NewAllocator(nil)
	cc := bwe.NewController(bwe.Config{Start: 500_000})
	alloc.UseEstimator(cc)
	rig := newTestRig(t, vp8Codec, 0)
	w := &recordWriter{}
	d := rig.bindCC(vp8Codec, w, nil, alloc, 5555)
	rec := twcc.NewRecorder(1)
	fed := 0
	seq := uint16(1000)
	frame := func(n int) {
		for i := range n {
			rig.feed(0, rtp.Header{SequenceNumber: seq, Timestamp: uint32(3000 * fed), Marker: i == n-1},
				append(vp8Payload(true, 1, 1, 1, fed == 0 && i == 0), make([]byte, 900)...))
			seq++
		}
		fed++
	}
	// 4 s of 30 fps (about 700 kbit/s) acknowledged 20 ms after sending: a calm link.
	sentTo := 0
	for f := range 120 {
		frame(3)
		rig.clock.advance(33 * time.Millisecond)
		if f%3 == 2 {
			pkts := w.packets()
			for _, p := range pkts[sentTo:] {
				rec.Record(5555, twccOf(t, p), (rig.clock.now()+d.ccOffset)/1000-10_000)
			}
			sentTo = len(pkts)
			for _, fb := range rec.BuildFeedbackPacket() {
				raw, err := fb.Marshal()
				if err != nil {
					t.Fatal(err)
				}
				if n := d.takeTWCC(raw); n != 0 {
					t.Fatalf("TWCC left %d bytes for pion's parser", n)
				}
			}
		}
	}
	if e := alloc.Estimate(); e.Source != bwe.SourceTWCC || e.Acked == 0 {
		t.Fatalf("estimate after 4 s of feedback: %+v", e)
	}
	if !cc.StartProbe(700_000, 500_000, rig.clock.now()+d.ccOffset) {
		t.Fatalf("no probe on a calm link: %+v", alloc.Estimate())
	}
	before := len(w.packets())
	frame(3)
	rig.clock.advance(100 * time.Millisecond)
	// The next frame loses its middle packet on the way in; it comes late, after the padding.
	ts := uint32(3000 * fed)
	payload := append(vp8Payload(true, 1, 1, 1, false), make([]byte, 900)...)
	rig.feed(0, rtp.Header{SequenceNumber: seq, Timestamp: ts}, payload)
	rig.feed(0, rtp.Header{SequenceNumber: seq + 2, Timestamp: ts, Marker: true}, payload)
	pkts := w.packets()[before:]
	var padding []rtp.Packet
	for i, p := range pkts {
		if p.Padding && len(p.Payload) == 0 {
			padding = append(padding, p)
			if pkts[i-1].Timestamp != p.Timestamp || (!pkts[i-1].Marker && !pkts[i-1].Padding) {
				t.Fatalf("padding %d not at a frame boundary", p.SequenceNumber)
			}
		}
		if i > 0 && p.SequenceNumber != pkts[i-1].SequenceNumber+1 && !(p.Marker && p.Timestamp == ts) {
			t.Fatalf("sequence gap: %d after %d", p.SequenceNumber, pkts[i-1].SequenceNumber)
		}
	}
	if len(padding) == 0 {
		t.Fatalf("no probe padding sent: %d packets after; stats %+v; est %+v", len(pkts), d.Stats(), alloc.Estimate())
	}
	if s := d.Stats(); s.ProbePackets != uint64(len(padding)) || s.Downlink.Source != "twcc" {
		t.Errorf("stats: probe packets %d (sent %d), downlink %+v", s.ProbePackets, len(padding), s.Downlink)
	}
	// A NACK for padding is not answered.
	n := len(w.packets())
	d.handleRTCP([]rtcp.Packet{nack(5555, padding[0].SequenceNumber)})
	if len(w.packets()) != n {
		t.Error("padding retransmitted")
	}
	// The late packet fills its own gap, not a number the padding took.
	var first, last rtp.Packet
	for _, p := range pkts {
		if p.Timestamp == ts+d.fwd.tsOffset && !p.Padding {
			if first.SequenceNumber == 0 {
				first = p
			}
			last = p
		}
	}
	rig.feed(0, rtp.Header{SequenceNumber: seq + 1, Timestamp: ts}, payload)
	late := w.packets()[n]
	if late.SequenceNumber != first.SequenceNumber+1 || last.SequenceNumber != first.SequenceNumber+2 {
		t.Errorf("late packet numbered %d between %d and %d", late.SequenceNumber, first.SequenceNumber, last.SequenceNumber)
	}
}
