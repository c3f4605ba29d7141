package sfu

import (
	"bytes"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

func TestMatchCodec(t *testing.T) {
	h264 := func(pt webrtc.PayloadType, fmtp string) webrtc.RTPCodecParameters {
		return webrtc.RTPCodecParameters{
			RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000, SDPFmtpLine: fmtp},
			PayloadType:        pt,
		}
	}
	const baseline = "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"
	const high = "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=640032"
	tests := []struct {
		name       string
		want       webrtc.RTPCodecParameters
		negotiated []webrtc.RTPCodecParameters
		wantPT     webrtc.PayloadType
		wantOK     bool
	}{
		{"same fmtp preferred", h264(0, high), []webrtc.RTPCodecParameters{h264(102, baseline), h264(112, high)}, 112, true},
		{"mime fallback", h264(0, "x=1"), []webrtc.RTPCodecParameters{opusCodec, h264(102, baseline)}, 102, true},
		{"case-insensitive mime", vp8Codec, []webrtc.RTPCodecParameters{{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: "video/vp8"}, PayloadType: 120}}, 120, true},
		{"missing", vp8Codec, []webrtc.RTPCodecParameters{h264(102, baseline)}, 0, false},
	}
	for _, tc := range tests {
		got, ok := matchCodec(tc.want, tc.negotiated)
		if ok != tc.wantOK || got.PayloadType != tc.wantPT {
			t.Errorf("%s: got PT %d, %v; want %d, %v", tc.name, got.PayloadType, ok, tc.wantPT, tc.wantOK)
		}
	}
}

func TestDownTrackIdentity(t *testing.T) {
	rig := newTestRig(t, vp8Codec, 0)
	if _, err := NewDownTrack(DownTrackParams{StreamID: "s"}); !errors.Is(err, ErrNoReceiver) {
		t.Errorf("no receiver: err = %v", err)
	}
	if _, err := NewDownTrack(DownTrackParams{Receiver: rig.r}); !errors.Is(err, ErrNoStreamID) {
		t.Errorf("no stream id: err = %v", err)
	}
	d, err := NewDownTrack(DownTrackParams{Receiver: rig.r, StreamID: "PA_pub|TR_test"})
	if err != nil {
		t.Fatal(err)
	}
	var _ webrtc.TrackLocal = d
	if d.ID() != "TR_test" || d.StreamID() != "PA_pub|TR_test" || d.RID() != "" || d.Kind() != webrtc.RTPCodecTypeVideo {
		t.Errorf("identity = %q %q %q %v", d.ID(), d.StreamID(), d.RID(), d.Kind())
	}
	if _, err := d.Bind(&fakeContext{codecs: []webrtc.RTPCodecParameters{opusCodec}}); !errors.Is(err, webrtc.ErrUnsupportedCodec) {
		t.Errorf("Bind without VP8: err = %v", err)
	}
}

func TestDownTrackOnBind(t *testing.T) {
	rig := newTestRig(t, vp8Codec, 0)
	d, _ := NewDownTrack(DownTrackParams{Receiver: rig.r, StreamID: "s"})
	bound := make(chan struct{}, 2)
	d.OnBind(func() { bound <- struct{}{} })
	rig.feed(0, rtp.Header{SequenceNumber: 1}, vp8Payload(true, 1, 0, 0, true))
	if _, err := d.Bind((&fakeContext{codecs: []webrtc.RTPCodecParameters{vp8Codec}, ssrc: 1}).withWriter(discardWriter{})); err != nil {
		t.Fatal(err)
	}
	d.OnBind(func() { bound <- struct{}{} }) // already bound: runs too
	for range 2 {
		select {
		case <-bound:
		case <-time.After(5 * time.Second):
			t.Fatal("OnBind callback did not run")
		}
	}
}

func TestDownTrackRewritesHeaders(t *testing.T) {
	rig := newTestRig(t, vp8Codec, 0)
	d, w := rig.bind(vp8Codec)
	rig.feed(0, rtp.Header{SequenceNumber: 1}, vp8Payload(true, 1, 0, 0, false)) // before any keyframe: dropped
	before := rig.r.Stats().Packets

	h := rtp.Header{SequenceNumber: 2, Timestamp: 3000, Marker: true, CSRC: []uint32{7}, Padding: true, PaddingSize: 4}
	if err := h.SetExtension(1, []byte{0x90}); err != nil {
		t.Fatal(err)
	}
	if err := h.SetExtension(3, []byte{1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	payload := vp8Payload(true, 2, 0, 0, true)
	rig.feed(0, h, payload)

	got := w.packets()
	if len(got) != 1 || before != 1 {
		t.Fatalf("wrote %d packets (receiver saw %d before), want 1", len(got), before)
	}
	p := got[0]
	if p.SSRC != 5555 || p.PayloadType != 100 || p.SequenceNumber != 2 || p.Timestamp != 3000 || !p.Marker {
		t.Errorf("header = ssrc %d pt %d seq %d ts %d marker %v", p.SSRC, p.PayloadType, p.SequenceNumber, p.Timestamp, p.Marker)
	}
	if p.Extension || len(p.Extensions) != 0 || len(p.CSRC) != 0 {
		t.Errorf("publisher extensions/CSRC not stripped: %+v", p.Header)
	}
	if !p.Padding || p.Header.PaddingSize != 4 {
		t.Errorf("padding = %v/%d, want true/4", p.Padding, p.Header.PaddingSize)
	}
	if !bytes.Equal(p.Payload, payload) {
		t.Errorf("payload changed")
	}
	if d.CurrentLayer() != LayerLow || d.TargetLayer() != LayerLow {
		t.Errorf("layers = %d/%d", d.CurrentLayer(), d.TargetLayer())
	}
	if s := d.Stats(); s.Packets != 1 || s.Bytes != uint64(len(payload)) {
		t.Errorf("stats = %+v", s)
	}
}

// nack builds a NACK from the subscriber for seqs.
func nack(ssrc uint32, seqs ...uint16) *rtcp.TransportLayerNack {
	return &rtcp.TransportLayerNack{MediaSSRC: ssrc, Nacks: rtcp.NackPairsFromSequenceNumbers(seqs)}
}

func TestDownTrackNACKAcrossSwitch(t *testing.T) {
	rig := newTestRig(t, vp8Codec, 0, 1)
	d, w := rig.bind(vp8Codec)
	d.SetMaxLayer(LayerLow)

	// Layer 0, then a switch up to layer 1, whose numbering differs.
	for i := range uint16(4) {
		rig.feed(0, rtp.Header{SequenceNumber: 10 + i, Timestamp: 100}, vp8Payload(true, 300+i, uint8(i), 1, i == 0))
	}
	d.SetMaxLayer(LayerHigh)
	rig.clock.advance(33 * time.Millisecond)
	for i := range uint16(4) {
		rig.feed(1, rtp.Header{SequenceNumber: 60000 + i, Timestamp: 9000}, vp8Payload(true, 20000+i, 90, 7, i == 0))
	}
	orig := w.packets()
	if len(orig) != 8 {
		t.Fatalf("forwarded %d packets, want 8", len(orig))
	}
	if d.CurrentLayer() != LayerMedium {
		t.Fatalf("current layer %d, want medium", d.CurrentLayer())
	}

	// The subscriber lost output packets 11, 14 and 16, and names one
	// never sent.
	d.handleRTCP([]rtcp.Packet{nack(5555, 11, 14, 16, 9000)})
	got := w.packets()[8:]
	if len(got) != 3 {
		t.Fatalf("retransmitted %d packets, want 3", len(got))
	}
	for i, want := range []rtp.Packet{orig[1], orig[4], orig[6]} {
		gb, _ := got[i].Marshal()
		wb, _ := want.Marshal()
		if !bytes.Equal(gb, wb) {
			t.Errorf("retransmission %d:\n got % x\nwant % x", i, gb, wb)
		}
	}
	s := d.Stats()
	if s.NACKs != 4 || s.Retransmits != 3 || s.NACKMisses != 1 {
		t.Errorf("stats = nacks %d retransmits %d misses %d", s.NACKs, s.Retransmits, s.NACKMisses)
	}

	// A repeated NACK right away is ignored; later it is answered again.
	d.handleRTCP([]rtcp.Packet{nack(5555, 11)})
	if n := len(w.packets()); n != 11 {
		t.Errorf("repeated NACK: %d packets written, want 11", n)
	}
	rig.clock.advance(200 * time.Millisecond)
	d.handleRTCP([]rtcp.Packet{nack(5555, 11)})
	if n := len(w.packets()); n != 12 {
		t.Errorf("NACK after 200ms: %d packets written, want 12", n)
	}
	// A NACK for another SSRC is not ours.
	d.handleRTCP([]rtcp.Packet{nack(1, 12)})
	if n := len(w.packets()); n != 12 {
		t.Errorf("foreign NACK answered")
	}
}

// A subscriber on a congested line NACKs most of what it gets, again every round trip: each
// packet is sent again at most maxResends times, and retransmissions stay within the budget
// (half the forwarded bytes, plus the initial allowance).
func TestDownTrackNACKStorm(t *testing.T) {
	rig := newTestRig(t, vp8Codec, 0)
	d, w := rig.bind(vp8Codec)
	filler := make([]byte, 1000)
	var seqs []uint16
	for i := range uint16(100) {
		rig.feed(0, rtp.Header{SequenceNumber: 10 + i, Timestamp: 100 + 3000*uint32(i/5)},
			append(vp8Payload(true, 300+i/5, uint8(i/5), 1, i == 0), filler...))
		seqs = append(seqs, 10+i)
	}
	sent := w.packets()
	if len(sent) != 100 {
		t.Fatalf("forwarded %d packets, want 100", len(sent))
	}
	forwarded := 0
	for _, p := range sent {
		forwarded += len(p.Payload)
	}
	for range 10 {
		rig.clock.advance(200 * time.Millisecond)
		d.handleRTCP([]rtcp.Packet{nack(5555, seqs...)})
	}
	perSeq := map[uint16]int{}
	rtxBytes := 0
	for _, p := range w.packets()[100:] {
		perSeq[p.SequenceNumber]++
		rtxBytes += len(p.Payload)
	}
	for seq, n := range perSeq {
		if n > maxResends {
			t.Errorf("packet %d sent again %d times", seq, n)
		}
	}
	if limit := rtxBurst/4 + forwarded/2; rtxBytes > limit {
		t.Errorf("retransmitted %d bytes, budget %d (forwarded %d)", rtxBytes, limit, forwarded)
	}
	s := d.Stats()
	if s.RtxLimited == 0 || s.Retransmits != uint64(len(w.packets())-100) {
		t.Errorf("stats: retransmits %d, limited %d", s.Retransmits, s.RtxLimited)
	}
	t.Logf("1000 NACKs for 100 packets (%d bytes): %d retransmissions, %d bytes, %d refused", forwarded, s.Retransmits, rtxBytes, s.RtxLimited)
}

// On a lossy link the subscriber asks for a lost packet again one round trip after it
// asked: that NACK reaches us about one round trip after our answer (a little less with
// jitter) and is answered, up to maxResends times; a duplicate within half a round trip is not.
func TestDownTrackNACKRepeatedEachRoundTrip(t *testing.T) {
	rig := newTestRig(t, vp8Codec, 0)
	d, w := rig.bind(vp8Codec)
	rig.feed(0, rtp.Header{SequenceNumber: 10, Timestamp: 100}, vp8Payload(true, 300, 0, 1, true))
	d.mu.Lock()
	d.reports.rtt = 100 * time.Millisecond
	d.mu.Unlock()
	d.handleRTCP([]rtcp.Packet{nack(5555, 10)})
	rig.clock.advance(40 * time.Millisecond)
	d.handleRTCP([]rtcp.Packet{nack(5555, 10)}) // a duplicate: not again yet
	if n := len(w.packets()); n != 2 {
		t.Fatalf("%d packets after a NACK and its duplicate, want 2", n)
	}
	rig.clock.advance(55 * time.Millisecond) // 95 ms after the answer
	d.handleRTCP([]rtcp.Packet{nack(5555, 10)})
	rig.clock.advance(95 * time.Millisecond)
	d.handleRTCP([]rtcp.Packet{nack(5555, 10)})
	if n := len(w.packets()) - 1; n != 3 {
		t.Fatalf("sent again %d times for three NACKs a round trip apart, want 3", n)
	}
	for range 8 {
		rig.clock.advance(95 * time.Millisecond)
		d.handleRTCP([]rtcp.Packet{nack(5555, 10)})
	}
	// 20% random loss loses a packet maxResends+1 times in a row less than once in 50,000.
	if n := len(w.packets()) - 1; n != maxResends || math.Pow(0.2, maxResends+1) > 1.0/50000 {
		t.Errorf("sent again %d times for NACKs a round trip apart, want %d (at most %d)", n, maxResends, maxResends)
	}
}

func TestDownTrackKeyframeRequests(t *testing.T) {
	rig := newTestRig(t, vp8Codec, 0, 1)
	d, _ := rig.bind(vp8Codec)
	d.SetMaxLayer(LayerMedium)
	rig.feed(1, rtp.Header{SequenceNumber: 1}, vp8Payload(true, 1, 0, 0, true))

	steps := []struct {
		pkt     rtcp.Packet
		advance time.Duration
		want    []uint32
	}{
		{&rtcp.PictureLossIndication{MediaSSRC: 5555}, 0, []uint32{1001}},
		{&rtcp.FullIntraRequest{MediaSSRC: 5555}, 100 * time.Millisecond, []uint32{1001}}, // throttled
		{&rtcp.PictureLossIndication{MediaSSRC: 5555}, 500 * time.Millisecond, []uint32{1001, 1001}},
	}
	for i, s := range steps {
		rig.clock.advance(s.advance)
		d.handleRTCP([]rtcp.Packet{s.pkt})
		if got := rig.rtcp.plis(); !equalU32(got, s.want) {
			t.Fatalf("step %d: PLIs to %v, want %v", i, got, s.want)
		}
	}
	if s := d.Stats(); s.PLIs != 2 || s.FIRs != 1 {
		t.Errorf("stats PLIs %d FIRs %d", s.PLIs, s.FIRs)
	}
}

func equalU32(a, b []uint32) bool {
	return len(a) == len(b) && (len(a) == 0 || bytes.Equal(u32bytes(a), u32bytes(b)))
}

func u32bytes(v []uint32) []byte {
	out := make([]byte, 0, 4*len(v))
	for _, x := range v {
		out = append(out, byte(x>>24), byte(x>>16), byte(x>>8), byte(x))
	}
	return out
}

func TestDownTrackSenderReports(t *testing.T) {
	rig := newTestRig(t, vp8Codec, 0, 1)
	d, _ := rig.bind(vp8Codec)
	wall := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	if sr := d.senderReport(wall); sr != nil {
		t.Fatalf("sender report before anything was sent: %+v", sr)
	}

	// No publisher SR yet: wall clock and last timestamp advanced.
	d.SetMaxLayer(LayerLow)
	rig.feed(0, rtp.Header{SequenceNumber: 10, Timestamp: 1000}, vp8Payload(true, 1, 0, 0, true))
	rig.clock.advance(100 * time.Millisecond)
	sr := d.senderReport(wall)
	if sr.SSRC != 5555 || sr.NTPTime != toNTP(wall) || sr.RTPTime != 1000+9000 || sr.PacketCount != 1 {
		t.Errorf("without publisher SR: %+v", sr)
	}

	// Switch to layer 1 (timestamp offset appears), then layer 1's SR.
	d.SetMaxLayer(LayerMedium)
	rig.feed(1, rtp.Header{SequenceNumber: 500, Timestamp: 50000}, vp8Payload(true, 1, 0, 0, true))
	out := rig.r.now()
	lastTS, switchTS := uint32(1000+9000), uint32(50000)
	offset := lastTS - switchTS // the switch came 100 ms after ts 1000
	const pubNTP = uint64(0xe5_0000_0000_0000)
	rig.r.HandleRTCP([]rtcp.Packet{&rtcp.SenderReport{SSRC: 1001, NTPTime: pubNTP, RTPTime: 49000}})
	rig.clock.advance(500 * time.Millisecond)
	sr = d.senderReport(wall)
	if sr.NTPTime != pubNTP+1<<31 || sr.RTPTime != 49000+offset+45000 || sr.PacketCount != 2 {
		t.Errorf("with publisher SR (switch at %d): ntp %x rtp %d count %d; want ntp %x rtp %d",
			out, sr.NTPTime, sr.RTPTime, sr.PacketCount, pubNTP+1<<31, 49000+offset+45000)
	}

	// The subscriber's receiver report echoes it 300 ms later after
	// holding it 100 ms: RTT 200 ms.
	rig.clock.advance(300 * time.Millisecond)
	d.handleRTCP([]rtcp.Packet{&rtcp.ReceiverReport{Reports: []rtcp.ReceptionReport{{
		SSRC: 5555, FractionLost: 64, TotalLost: 3, Jitter: 900,
		LastSenderReport: uint32(sr.NTPTime >> 16), Delay: 65536 / 10,
	}}}})
	s := d.Stats()
	if s.FractionLost != 0.25 || s.TotalLost != 3 || s.Jitter != 10*time.Millisecond ||
		(s.RTT-200*time.Millisecond).Abs() > time.Millisecond { // DLSR is in 1/65536 s
		t.Errorf("report stats = lost %v/%d jitter %v rtt %v", s.FractionLost, s.TotalLost, s.Jitter, s.RTT)
	}
}

func TestNTP(t *testing.T) {
	if got := toNTP(time.Unix(0, 500_000_000)); got != uint64(ntpEpochOffset)<<32|1<<31 {
		t.Errorf("toNTP(1970 + 0.5s) = %x", got)
	}
	if got := nanosToNTP(int64(1500 * time.Millisecond)); got != 1<<32|1<<31 {
		t.Errorf("nanosToNTP(1.5s) = %x", got)
	}
}

func TestMuteAndPause(t *testing.T) {
	rig := newTestRig(t, vp8Codec, 0)
	d, w := rig.bind(vp8Codec)
	seq := uint16(100)
	send := func(key bool) {
		seq++
		rig.clock.advance(10 * time.Millisecond)
		rig.feed(0, rtp.Header{SequenceNumber: seq, Timestamp: uint32(seq) * 900}, vp8Payload(true, seq, 0, 0, key))
	}
	send(true)
	send(false)
	rig.r.SetMuted(true)
	send(true)
	rig.r.SetMuted(false)
	if plis := rig.rtcp.plis(); len(plis) != 1 {
		t.Errorf("unmute sent %d PLIs, want 1", len(plis))
	}
	send(false) // waits for a keyframe
	send(true)
	d.SetPaused(true)
	send(true)
	d.SetPaused(false)
	send(true)

	var seqs []uint16
	for _, p := range w.packets() {
		seqs = append(seqs, p.SequenceNumber)
	}
	want := []uint16{101, 102, 103, 104}
	if len(seqs) != len(want) {
		t.Fatalf("sent seqs %v, want %v", seqs, want)
	}
	for i := range want {
		if seqs[i] != want[i] {
			t.Fatalf("sent seqs %v, want %v", seqs, want)
		}
	}
}

// A down track keeps the record for retransmissions only when the subscriber negotiated
// NACK; without it (audio, as browsers negotiate Opus) NACKs are counted as misses.
func TestDownTrackSentRecordOnlyWithNACK(t *testing.T) {
	noNACK := vp8Codec
	noNACK.RTCPFeedback = []webrtc.RTCPFeedback{{Type: webrtc.TypeRTCPFBNACK, Parameter: "pli"}}
	for _, tc := range []struct {
		name        string
		codec       webrtc.RTPCodecParameters
		retransmits uint64
	}{
		{"nack", vp8Codec, 2},
		{"pli only", noNACK, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rig := newTestRig(t, vp8Codec, 0)
			d, w := rig.bind(tc.codec)
			for i := range uint16(3) {
				rig.feed(0, rtp.Header{SequenceNumber: 10 + i, Timestamp: 100}, vp8Payload(true, 300+i, uint8(i), 1, i == 0))
			}
			first := w.packets()[0].SequenceNumber
			d.handleRTCP([]rtcp.Packet{nack(5555, first, first+2)})
			s := d.Stats()
			if (d.sent != nil) != (tc.retransmits > 0) || s.Retransmits != tc.retransmits || s.NACKMisses != 2-tc.retransmits {
				t.Fatalf("ring %v, retransmits %d, misses %d", d.sent != nil, s.Retransmits, s.NACKMisses)
			}
		})
	}
}

// An audio down track reports every audioReportInterval, its first report as soon as it has
// sent something; video every time it is asked (the Reporter asks every second).
func TestDownTrackReportIntervals(t *testing.T) {
	wall := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		name  string
		codec webrtc.RTPCodecParameters
		want  string // a report (x) or none (.) at 0, 1, ... 10 s
	}{
		{"audio", opusCodec, "x....x....x"},
		{"video", vp8Codec, "xxxxxxxxxxx"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rig := newTestRig(t, tc.codec, 0)
			d, _ := rig.bind(tc.codec)
			payload := []byte{0xfc, 1, 2}
			if tc.codec.MimeType == webrtc.MimeTypeVP8 {
				payload = vp8Payload(true, 1, 0, 0, true)
			}
			rig.feed(0, rtp.Header{SequenceNumber: 10, Timestamp: 1000}, payload)
			got := ""
			for range len(tc.want) {
				if d.senderReport(wall) != nil {
					got += "x"
				} else {
					got += "."
				}
				rig.clock.advance(time.Second)
			}
			if got != tc.want {
				t.Fatalf("reports %s, want %s", got, tc.want)
			}
		})
	}
}

// A paused video track (by the subscriber, or by the Allocator because its lowest layer does
// not fit the downlink) does not answer NACKs for what it sent before: the subscriber
// restarts on a keyframe, and on a line too narrow for the video those resends would crowd
// out the voice (browser test 8b lost 8% of the voice to 128 resends after the pause). The
// Allocator's pause also empties the resend budget earned at the old rate, so that after the
// resume resends draw only on what the new rate earns.
func TestDownTrackNoResendsWhilePaused(t *testing.T) {
	rig := newTestRig(t, vp8Codec, 0)
	d, w := rig.bind(vp8Codec)
	filler := make([]byte, 1000)
	for i := range uint16(20) {
		rig.feed(0, rtp.Header{SequenceNumber: 10 + i, Timestamp: 100 + 3000*uint32(i/5)},
			append(vp8Payload(true, 300+i/5, uint8(i/5), 1, i == 0), filler...))
	}
	if n := len(w.packets()); n != 20 {
		t.Fatalf("forwarded %d packets, want 20", n)
	}
	var out []uint16
	for _, p := range w.packets() {
		out = append(out, p.SequenceNumber)
	}
	nackAll := func() int {
		t.Helper()
		before := len(w.packets())
		rig.clock.advance(200 * time.Millisecond)
		d.handleRTCP([]rtcp.Packet{nack(5555, out...)})
		return len(w.packets()) - before
	}

	d.SetPaused(true)
	if n := nackAll(); n != 0 {
		t.Fatalf("paused by the subscriber: %d packets resent", n)
	}
	d.SetPaused(false)
	d.setBWPaused(true)
	if n := nackAll(); n != 0 {
		t.Fatalf("paused for the downlink: %d packets resent", n)
	}
	if s := d.Stats(); s.Retransmits != 0 || s.RtxLimited != 2*uint64(len(out)) {
		t.Errorf("paused: stats retransmits %d, refused %d", s.Retransmits, s.RtxLimited)
	}

	// Resumed (as setBWPaused(false) does, without the Allocator this rig has not got) on
	// a keyframe of 5 packets: that earns about 2.5 packets of resends.
	d.mu.Lock()
	d.fwd.setBWPaused(false)
	d.mu.Unlock()
	for i := range uint16(5) {
		rig.feed(0, rtp.Header{SequenceNumber: 30 + i, Timestamp: 100 + 3000*10},
			append(vp8Payload(true, 310, 10, 1, i == 0), filler...))
	}
	if n := len(w.packets()); n != 25 {
		t.Fatalf("resumed: forwarded %d packets in all, want 25", n)
	}
	if n := nackAll(); n < 1 || n > 3 {
		t.Errorf("resumed: %d resends for 20 NACKed packets, want what 5 new packets earn (1-3)", n)
	}
}
