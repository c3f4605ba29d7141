package sfu

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// redCodec is RED as browsers offer it (fmtp: Opus in every block).
var redCodec = webrtc.RTPCodecParameters{
	RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: MimeTypeRED, ClockRate: 48000, Channels: 2, SDPFmtpLine: "111/111"},
	PayloadType:        63,
}

// opusFrame returns a recognisable Opus frame for sequence number seq.
func opusFrame(seq uint16, size int) []byte {
	b := bytes.Repeat([]byte{byte(seq)}, size)
	b[0] = 0xfc // an Opus TOC byte (CELT FB 20 ms)
	return b
}

func TestREDRoundTrip(t *testing.T) {
	const ts = 960 * 10
	for d := 0; d <= maxREDDistance; d++ {
		t.Run(fmt.Sprintf("distance=%d", d), func(t *testing.T) {
			var earlier []redFrame
			for k := d; k >= 1; k-- {
				earlier = append(earlier, redFrame{ts: ts - uint32(960*k), data: opusFrame(uint16(100-k), 60+k)})
			}
			primary := opusFrame(100, 80)
			buf := make([]byte, 1500)
			n, blocks := encodeRED(buf, 111, ts, primary, earlier)
			if blocks != d || n != 1+80+d*4+sumLen(earlier) {
				t.Fatalf("encoded %d bytes with %d blocks", n, blocks)
			}
			var got [MaxREDBlocks]REDBlock
			m, err := ParseRED(buf[:n], got[:])
			if err != nil || m != d+1 {
				t.Fatalf("parsed %d blocks, err %v", m, err)
			}
			for i, f := range earlier {
				if got[i].PayloadType != 111 || got[i].TSOffset != uint16(ts-f.ts) || !bytes.Equal(got[i].Data, f.data) {
					t.Errorf("block %d = pt %d offset %d len %d", i, got[i].PayloadType, got[i].TSOffset, len(got[i].Data))
				}
			}
			if p := got[d]; p.PayloadType != 111 || p.TSOffset != 0 || !bytes.Equal(p.Data, primary) {
				t.Errorf("primary = pt %d offset %d len %d", p.PayloadType, p.TSOffset, len(p.Data))
			}
			data, pt, ok := redPrimary(buf[:n])
			if !ok || pt != 111 || !bytes.Equal(data, primary) {
				t.Errorf("redPrimary = %v %d", ok, pt)
			}
		})
	}
}

func sumLen(fs []redFrame) int {
	n := 0
	for _, f := range fs {
		n += len(f.data)
	}
	return n
}

// Redundant blocks the header cannot describe, or that would make the packet too large, are
// left out, the oldest first; the primary always goes.
func TestREDLimits(t *testing.T) {
	buf := make([]byte, 1500)
	const ts = 100000
	var blocks [MaxREDBlocks]REDBlock
	count := func(n int) int {
		t.Helper()
		m, err := ParseRED(buf[:n], blocks[:])
		if err != nil {
			t.Fatal(err)
		}
		return m - 1
	}
	// A frame 2^14 ticks back is too far; the newer one goes.
	earlier := []redFrame{{ts: ts - 1<<14, data: opusFrame(1, 50)}, {ts: ts - 960, data: opusFrame(2, 50)}}
	if n, b := encodeRED(buf, 111, ts, opusFrame(3, 50), earlier); b != 1 || count(n) != 1 {
		t.Errorf("offset limit: %d blocks", b)
	}
	// A frame not before the primary (reordered) ends the redundancy.
	earlier = []redFrame{{ts: ts - 1920, data: opusFrame(1, 50)}, {ts: ts, data: opusFrame(2, 50)}}
	if _, b := encodeRED(buf, 111, ts, opusFrame(3, 50), earlier); b != 0 {
		t.Errorf("same timestamp: %d blocks", b)
	}
	// A 1024-byte frame cannot be a block.
	earlier = []redFrame{{ts: ts - 960, data: opusFrame(2, 1024)}}
	if _, b := encodeRED(buf, 111, ts, opusFrame(3, 50), earlier); b != 0 {
		t.Errorf("length limit: %d blocks", b)
	}
	// Three 400-byte frames and a 400-byte primary: only one redundant block fits in 1200.
	earlier = []redFrame{{ts: ts - 2880, data: opusFrame(1, 400)}, {ts: ts - 1920, data: opusFrame(2, 400)}, {ts: ts - 960, data: opusFrame(3, 400)}}
	n, b := encodeRED(buf, 111, ts, opusFrame(4, 400), earlier)
	if b != 1 || n > redMaxPayload || count(n) != 1 || blocks[0].TSOffset != 960 {
		t.Errorf("size limit: %d blocks in %d bytes", b, n)
	}
	// A primary larger than the limit still goes, alone.
	if n, b := encodeRED(buf, 111, ts, opusFrame(4, 1300), earlier); b != 0 || n != 1301 {
		t.Errorf("large primary: %d blocks in %d bytes", b, n)
	}
	// No room for the primary: nothing.
	if n, _ := encodeRED(buf[:10], 111, ts, opusFrame(4, 20), nil); n != 0 {
		t.Errorf("wrote %d bytes into 10", n)
	}
}

func TestParseREDMalformed(t *testing.T) {
	var blocks [MaxREDBlocks]REDBlock
	for name, p := range map[string][]byte{
		"empty":            {},
		"truncated header": {0x80 | 111, 0, 4},
		"only headers":     {0x80 | 111, 0x0f, 0x00, 0x05},
		"block too long":   {0x80 | 111, 0x0f, 0x00, 0x05, 111, 1, 2},
	} {
		if _, err := ParseRED(p, blocks[:]); !errors.Is(err, ErrBadRED) {
			t.Errorf("%s: err %v", name, err)
		}
	}
	// A primary with no data is valid (an empty frame).
	if n, err := ParseRED([]byte{111}, blocks[:]); err != nil || n != 1 || len(blocks[0].Data) != 0 {
		t.Errorf("empty primary: %d %v", n, err)
	}
	// More blocks than room: the newest are kept.
	buf := make([]byte, 1500)
	earlier := []redFrame{{ts: 1000, data: []byte{1}}, {ts: 2000, data: []byte{2}}, {ts: 3000, data: []byte{3}}}
	n, _ := encodeRED(buf, 111, 4000, []byte{4}, earlier)
	m, err := ParseRED(buf[:n], blocks[:2])
	if err != nil || m != 2 || blocks[0].Data[0] != 3 || blocks[0].TSOffset != 1000 || blocks[1].Data[0] != 4 {
		t.Errorf("kept %d blocks: %+v", m, blocks[:2])
	}
}

func TestSetREDPayloadTypes(t *testing.T) {
	buf := make([]byte, 1500)
	n, _ := encodeRED(buf, 111, 4000, []byte{9, 9}, []redFrame{{ts: 2080, data: []byte{1}}, {ts: 3040, data: []byte{2}}})
	setREDPayloadTypes(buf[:n], 109)
	var blocks [MaxREDBlocks]REDBlock
	m, err := ParseRED(buf[:n], blocks[:])
	if err != nil || m != 3 {
		t.Fatalf("%d blocks, %v", m, err)
	}
	for i := range m {
		if blocks[i].PayloadType != 109 {
			t.Errorf("block %d has pt %d", i, blocks[i].PayloadType)
		}
	}
	if blocks[2].Data[0] != 9 || blocks[0].TSOffset != 1920 || blocks[1].TSOffset != 960 {
		t.Errorf("data or offsets changed: %+v", blocks[:m])
	}
}

// feedAudio hands one audio packet with payload type pt to the rig's only layer.
func (rig *testRig) feedAudio(seq uint16, pt uint8, payload []byte) {
	rig.t.Helper()
	h := rtp.Header{SequenceNumber: seq, Timestamp: uint32(seq) * 960, SSRC: 1000, PayloadType: pt}
	rig.r.handlePacket(rig.layers[0], &rig.pkt, rtpBytes(rig.t, h, payload))
}

// feedPadding hands the rig's only layer a padding-only RED packet (a bandwidth probe).
func (rig *testRig) feedPadding(seq uint16, ts uint32) {
	rig.t.Helper()
	h := rtp.Header{Version: 2, SequenceNumber: seq, Timestamp: ts, SSRC: 1000, PayloadType: 63, Padding: true, PaddingSize: 100}
	b, err := (&rtp.Packet{Header: h}).Marshal()
	if err != nil {
		rig.t.Fatal(err)
	}
	rig.r.handlePacket(rig.layers[0], &rig.pkt, b)
}

// redPacket is the RED payload a publisher sends for seq with distance d (like Chrome, which
// sends one earlier frame).
func redPacket(seq uint16, d int) []byte {
	var earlier []redFrame
	for k := d; k >= 1; k-- {
		earlier = append(earlier, redFrame{ts: uint32(seq-uint16(k)) * 960, data: opusFrame(seq-uint16(k), 40)})
	}
	buf := make([]byte, 1500)
	n, _ := encodeRED(buf, 111, uint32(seq)*960, opusFrame(seq, 40), earlier)
	return buf[:n]
}

// bindCodecs binds a down track of the rig's receiver to the codecs negotiated with a
// subscriber.
func (rig *testRig) bindCodecs(codecs ...webrtc.RTPCodecParameters) (*DownTrack, *recordWriter, webrtc.RTPCodecParameters) {
	rig.t.Helper()
	w := &recordWriter{}
	d, c := rig.bindCodecsTo(w, codecs...)
	return d, w, c
}

// bindCodecsTo is bindCodecs writing to w.
func (rig *testRig) bindCodecsTo(w webrtc.TrackLocalWriter, codecs ...webrtc.RTPCodecParameters) (*DownTrack, webrtc.RTPCodecParameters) {
	rig.t.Helper()
	d, err := NewDownTrack(DownTrackParams{Receiver: rig.r, StreamID: "PA_pub|TR_test", SubscriberID: "PA_sub", RED: true})
	if err != nil {
		rig.t.Fatal(err)
	}
	c, err := d.Bind((&fakeContext{codecs: codecs, ssrc: 5555}).withWriter(w))
	if err != nil {
		rig.t.Fatal(err)
	}
	rig.r.AddDownTrack(d)
	return d, c
}

// opusNACK is Opus as negotiated with a subscriber that NACKs audio.
func opusNACK(pt uint8) webrtc.RTPCodecParameters {
	c := opusCodec
	c.PayloadType = webrtc.PayloadType(pt)
	c.RTCPFeedback = []webrtc.RTCPFeedback{{Type: webrtc.TypeRTCPFBNACK}}
	return c
}

// A publisher's RED reaches a subscriber without RED as its primaries; packets lost upstream
// come back from the redundancy of the next packet, in their place; a retransmission of what
// was recovered is not sent twice; a NACK is answered with the primary.
func TestREDUnwrapAndRecover(t *testing.T) {
	rig := newTestRig(t, redCodec, 0)
	d, w, c := rig.bindCodecs(opusNACK(111))
	if c.MimeType != webrtc.MimeTypeOpus {
		t.Fatalf("bound %s", c.MimeType)
	}
	// The publisher sends distance 2; upstream loses 12 and 13, then 17 (one back).
	for _, seq := range []uint16{10, 11, 14, 15, 16, 18} {
		rig.feedAudio(seq, 63, redPacket(seq, 2))
	}
	// 12 again, late (a retransmission), is a duplicate of what was recovered.
	rig.feedAudio(12, 63, redPacket(12, 2))
	// Chromium sends plain Opus on the RED stream when a frame has nothing to repeat.
	rig.feedAudio(19, 111, opusFrame(19, 40))
	// And padding-only packets (bandwidth probes), which go on as they came. Upstream lost one
	// (20): the gap is no lost frame, 21's redundancy (19) is not sent again.
	rig.feedPadding(21, 19*960)
	rig.feedAudio(22, 63, redPacket(22, 1))
	got := w.packets()
	var seqs []uint16
	for _, p := range got {
		seqs = append(seqs, p.SequenceNumber)
		if p.SequenceNumber == 21 {
			if len(p.Payload) != 0 || !p.Padding || p.Header.PaddingSize != 100 {
				t.Errorf("padding packet: %d bytes of payload, padding %v (%d)", len(p.Payload), p.Padding, p.Header.PaddingSize)
			}
			continue
		}
		in := p.SequenceNumber // the forwarder keeps numbers within a lock
		if p.PayloadType != 111 || !bytes.Equal(p.Payload, opusFrame(in, 40)) || p.Timestamp != uint32(in)*960 {
			t.Errorf("packet %d: pt %d ts %d payload % x", in, p.PayloadType, p.Timestamp, p.Payload[:4])
		}
	}
	if want := []uint16{10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 21, 22}; fmt.Sprint(seqs) != fmt.Sprint(want) {
		t.Errorf("sent %v, want %v", seqs, want)
	}
	if r := rig.r.audio.recStats.recovered.Load(); r != 3 {
		t.Errorf("recovered %d, want 3", r)
	}
	// The recovered 13 is answered from the cache like any packet.
	d.handleRTCP([]rtcp.Packet{nack(5555, 13, 15, 19)})
	re := w.packets()[len(got):]
	if len(re) != 3 || !bytes.Equal(re[0].Payload, opusFrame(13, 40)) || !bytes.Equal(re[1].Payload, opusFrame(15, 40)) ||
		!bytes.Equal(re[2].Payload, opusFrame(19, 40)) {
		t.Errorf("retransmissions: %v", re)
	}
}

// A plain Opus publisher reaches a RED subscriber wrapped at the subscriber's distance, which
// follows the loss it reports; inner payload types are the subscriber's; a NACK is answered
// with the primary alone.
func TestREDWrapAdapts(t *testing.T) {
	rig := newTestRig(t, opusCodec, 0)
	red := redCodec
	red.RTCPFeedback = []webrtc.RTCPFeedback{{Type: webrtc.TypeRTCPFBNACK}}
	d, w, c := rig.bindCodecs(opusNACK(109), red)
	if !isRED(c) {
		t.Fatalf("bound %s, want RED", c.MimeType)
	}
	var blocks [MaxREDBlocks]REDBlock
	check := func(seq uint16, wantBlocks int) {
		t.Helper()
		rig.feedAudio(seq, 111, opusFrame(seq, 40))
		ps := w.packets()
		p := ps[len(ps)-1]
		n, err := ParseRED(p.Payload, blocks[:])
		if err != nil || p.PayloadType != 63 || n != wantBlocks+1 {
			t.Fatalf("seq %d: pt %d, %d blocks (want %d), %v", seq, p.PayloadType, n-1, wantBlocks, err)
		}
		for i := range n {
			back := blocks[i].TSOffset / 960 // upstream losses leave holes
			if blocks[i].PayloadType != 109 || !bytes.Equal(blocks[i].Data, opusFrame(seq-back, 40)) || (i == n-1) != (back == 0) {
				t.Errorf("seq %d block %d: pt %d offset %d", seq, i, blocks[i].PayloadType, blocks[i].TSOffset)
			}
		}
	}
	check(1, 0) // nothing before the first packet
	check(2, 1)
	check(3, startREDDistance)
	// 20% loss: distance 5 at once (as many frames as there are before it).
	report := func(lost uint8) {
		d.handleRTCP([]rtcp.Packet{&rtcp.ReceiverReport{Reports: []rtcp.ReceptionReport{{SSRC: 5555, FractionLost: lost}}}})
	}
	report(51)
	check(4, 3)
	check(5, 4)
	check(6, 5)
	// Less loss: the distance holds for redHold after the report that asked for more, then
	// goes where the reports since ask (4.3%: distance 4).
	rig.clock.advance(time.Second)
	report(0)
	check(7, 5)
	rig.clock.advance(redHold)
	report(11)
	check(8, 4)
	// Upstream lost 9: the 4 newest frames kept (5 to 8), the hole left out.
	check(10, 4)
	// A NACK is answered with the primary alone, as RED.
	d.handleRTCP([]rtcp.Packet{nack(5555, 8)})
	ps := w.packets()
	p := ps[len(ps)-1]
	if n, err := ParseRED(p.Payload, blocks[:]); err != nil || n != 1 || blocks[0].PayloadType != 109 ||
		!bytes.Equal(blocks[0].Data, opusFrame(8, 40)) || p.SequenceNumber != 8 {
		t.Errorf("retransmission: %d blocks, %v, seq %d", n, err, p.SequenceNumber)
	}
	// Closing releases the receiver's work.
	d.Close()
	for i := range rig.r.audio.want {
		if n := rig.r.audio.want[i].Load(); n != 0 {
			t.Errorf("distance %d still wanted by %d", i, n)
		}
	}
}

// BenchmarkAudioRED is the receive path of one audio packet with 10 down tracks: a plain
// subscriber and a RED one at each distance, for a publisher sending Opus or Chrome's RED.
func BenchmarkAudioRED(b *testing.B) {
	for _, pub := range []webrtc.RTPCodecParameters{opusCodec, redCodec} {
		b.Run(pub.MimeType, func(b *testing.B) {
			rig := newTestRig(b, pub, 0)
			for i := range 10 {
				d, _ := rig.bindCodecsTo(discardWriter{}, opusNACK(111), redCodec)
				d.mu.Lock()
				if i%2 == 0 {
					d.releaseAudio()
					d.audio.mode = audioPrimary
				} else {
					d.adaptRED([]float64{0, 0.02, 0.1, 0.3}[i%4], rig.clock.now())
				}
				d.mu.Unlock()
			}
			payload := opusFrame(1, 120)
			pt := uint8(111)
			if isRED(pub) {
				payload, pt = redPacket(1, 1), 63
			}
			buf := rtpBytes(b, rtp.Header{SequenceNumber: 1, Timestamp: 960, SSRC: 1000, PayloadType: pt}, payload)
			var pkt rtp.Packet
			l := rig.layers[0]
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				seq, ts := uint16(i+1), uint32(i+1)*960
				buf[2], buf[3] = byte(seq>>8), byte(seq)
				buf[4], buf[5], buf[6], buf[7] = byte(ts>>24), byte(ts>>16), byte(ts>>8), byte(ts)
				rig.r.handlePacket(l, &pkt, buf)
			}
		})
	}
}

// chromeCapture reads testdata/red-chrome156.rtp: the first packets of a microphone Chromium 156
// published through livekit-client 2.23 with RED (captured with rtc.capture_audio_dir: each
// packet after its length, 2 bytes big-endian).
func chromeCapture(t *testing.T) []rtp.Packet {
	t.Helper()
	b, err := os.ReadFile("testdata/red-chrome156.rtp")
	if err != nil {
		t.Fatal(err)
	}
	var pkts []rtp.Packet
	for len(b) > 0 {
		if len(b) < 2 || len(b) < 2+int(binary.BigEndian.Uint16(b)) {
			t.Fatal("truncated capture")
		}
		n := int(binary.BigEndian.Uint16(b))
		var p rtp.Packet
		if err := p.Unmarshal(slices.Clone(b[2 : 2+n])); err != nil {
			t.Fatal(err)
		}
		pkts = append(pkts, p)
		b = b[2+n:]
	}
	return pkts
}

// What Chromium sends: RED (PT 63) with one earlier frame (the previous one it encoded, 20 ms
// back or more after a silence), on a stream that also carries padding-only packets (its
// bandwidth probes, 74 of these 240 packets).
func TestChromeREDCapture(t *testing.T) {
	pkts := chromeCapture(t)
	var blocks [MaxREDBlocks]REDBlock
	count := map[int]int{}
	padding := 0
	for _, p := range pkts {
		if p.PayloadType != 63 {
			t.Fatalf("packet %d has payload type %d", p.SequenceNumber, p.PayloadType)
		}
		if len(p.Payload) == 0 {
			padding++
			continue
		}
		n, err := ParseRED(p.Payload, blocks[:])
		if err != nil {
			t.Fatalf("packet %d: %v", p.SequenceNumber, err)
		}
		count[n-1]++
		for _, b := range blocks[:n-1] {
			if b.PayloadType != 111 || b.TSOffset == 0 || b.TSOffset%960 != 0 {
				t.Errorf("packet %d: redundant block pt %d offset %d", p.SequenceNumber, b.PayloadType, b.TSOffset)
			}
		}
	}
	t.Logf("%d packets: redundant blocks per packet %v, %d padding only", len(pkts), count, padding)
	if count[1] < len(pkts)/2 || count[2] != 0 || count[3] != 0 || padding == 0 {
		t.Errorf("redundant blocks per packet %v, %d padding only; want mostly 1 (Chromium's distance), some padding", count, padding)
	}
}

// feedCapture hands the capture's packets, but those in drop, to the rig's only layer.
func (rig *testRig) feedCapture(pkts []rtp.Packet, drop map[uint16]bool) {
	rig.t.Helper()
	for _, p := range pkts {
		if drop[p.SequenceNumber] {
			continue
		}
		b, err := p.Marshal()
		if err != nil {
			rig.t.Fatal(err)
		}
		rig.r.handlePacket(rig.layers[0], &rig.pkt, b)
	}
}

// primaries maps the capture's timestamps to their primary frames.
func primaries(t *testing.T, pkts []rtp.Packet) map[uint32][]byte {
	t.Helper()
	out := map[uint32][]byte{}
	for _, p := range pkts {
		if len(p.Payload) == 0 {
			continue
		}
		data, _, ok := redPrimary(p.Payload)
		if !ok {
			t.Fatalf("packet %d is not RED", p.SequenceNumber)
		}
		out[p.Timestamp] = data
	}
	return out
}

// Chromium's RED reaches a subscriber without RED as its primaries, padding as it came; a
// lost packet comes back from the next one's redundancy, in its place; of two lost in a row
// only the second does (Chromium repeats one frame).
func TestChromeREDUnwrap(t *testing.T) {
	pkts := chromeCapture(t)
	frames := primaries(t, pkts)
	// Two media packets whose successors are media with their frame as redundancy.
	var single, pair uint16
	for i := 2; i+1 < len(pkts) && (single == 0 || pair == 0); i++ {
		prev, p, next := pkts[i-1], pkts[i], pkts[i+1]
		if len(prev.Payload) == 0 || len(p.Payload) == 0 || len(next.Payload) == 0 || p.SequenceNumber != prev.SequenceNumber+1 {
			continue
		}
		if i > 40 && single == 0 {
			single = p.SequenceNumber
		} else if i > 120 && pair == 0 {
			pair = p.SequenceNumber
		}
	}
	drop := map[uint16]bool{single: true, pair - 1: true, pair: true}
	rig := newTestRig(t, redCodec, 0)
	_, w, _ := rig.bindCodecs(opusNACK(111))
	rig.feedCapture(pkts, drop)

	got := map[uint16]rtp.Packet{}
	for _, p := range w.packets() {
		got[p.SequenceNumber] = p
	}
	for _, p := range pkts {
		o, ok := got[p.SequenceNumber]
		switch {
		case p.SequenceNumber == pair-1:
			if ok {
				t.Errorf("packet %d, the first of two lost, was sent", p.SequenceNumber)
			}
		case !ok:
			t.Errorf("packet %d not sent (dropped upstream: %v)", p.SequenceNumber, drop[p.SequenceNumber])
		case len(p.Payload) == 0:
			if len(o.Payload) != 0 || !o.Padding || o.Header.PaddingSize != p.Header.PaddingSize {
				t.Errorf("padding packet %d sent as %d bytes, padding %v", p.SequenceNumber, len(o.Payload), o.Padding)
			}
		case o.PayloadType != 111 || o.Timestamp != p.Timestamp || !bytes.Equal(o.Payload, frames[p.Timestamp]):
			t.Errorf("packet %d: pt %d ts %d (want %d), not its primary", p.SequenceNumber, o.PayloadType, o.Timestamp, p.Timestamp)
		}
	}
	if r := rig.r.audio.recStats.recovered.Load(); r != 2 {
		t.Errorf("recovered %d frames, want 2", r)
	}
}

// Chromium's frames wrapped at each distance: the primary after the d frames before it, each
// at its timestamp offset, with the subscriber's payload types.
func TestChromeREDWrap(t *testing.T) {
	pkts := chromeCapture(t)
	frames := primaries(t, pkts)
	for dist := 0; dist <= maxREDDistance; dist++ {
		t.Run(fmt.Sprintf("distance=%d", dist), func(t *testing.T) {
			rig := newTestRig(t, redCodec, 0)
			d, w, _ := rig.bindCodecs(opusNACK(109), redCodec)
			d.mu.Lock()
			rig.r.audio.wantDistance(d.audio.dist, dist)
			d.audio.dist = dist
			d.mu.Unlock()
			rig.feedCapture(pkts, nil)
			var blocks [MaxREDBlocks]REDBlock
			var seen []uint32 // timestamps of the frames sent so far
			full := 0
			for _, p := range w.packets() {
				if len(p.Payload) == 0 {
					continue
				}
				n, err := ParseRED(p.Payload, blocks[:])
				if err != nil || p.PayloadType != 63 {
					t.Fatalf("packet %d: pt %d, %v", p.SequenceNumber, p.PayloadType, err)
				}
				want := min(dist, len(seen))
				if n-1 != want {
					t.Fatalf("packet %d: %d redundant blocks, want %d", p.SequenceNumber, n-1, want)
				}
				for i := range n {
					ts := p.Timestamp - uint32(blocks[i].TSOffset)
					if i < n-1 && ts != seen[len(seen)-want+i] {
						t.Errorf("packet %d block %d: ts %d, want %d", p.SequenceNumber, i, ts, seen[len(seen)-want+i])
					}
					if blocks[i].PayloadType != 109 || !bytes.Equal(blocks[i].Data, frames[ts]) {
						t.Errorf("packet %d block %d: pt %d, not the frame of ts %d", p.SequenceNumber, i, blocks[i].PayloadType, ts)
					}
				}
				if n-1 == dist {
					full++
				}
				seen = append(seen, p.Timestamp)
			}
			if full < len(frames)-dist-1 {
				t.Errorf("%d of %d packets carry %d redundant blocks", full, len(frames), dist)
			}
		})
	}
}

// A subscriber not known to decode RED gets Opus even when the PeerConnection negotiated RED
// (for the client's own sections, in a single PeerConnection).
func TestREDOnlyWhenAllowed(t *testing.T) {
	rig := newTestRig(t, redCodec, 0)
	d, err := NewDownTrack(DownTrackParams{Receiver: rig.r, StreamID: "PA_pub|TR_test", SubscriberID: "PA_sub"})
	if err != nil {
		t.Fatal(err)
	}
	w := &recordWriter{}
	c, err := d.Bind((&fakeContext{codecs: []webrtc.RTPCodecParameters{redCodec, opusNACK(111)}, ssrc: 5555}).withWriter(w))
	if err != nil || c.MimeType != webrtc.MimeTypeOpus {
		t.Fatalf("bound %s, %v; want Opus", c.MimeType, err)
	}
	rig.r.AddDownTrack(d)
	rig.feedAudio(1, 63, redPacket(1, 1))
	if ps := w.packets(); len(ps) != 1 || ps[0].PayloadType != 111 || !bytes.Equal(ps[0].Payload, opusFrame(1, 40)) {
		t.Errorf("sent %v", ps)
	}
	for i := range rig.r.audio.want {
		if n := rig.r.audio.want[i].Load(); n != 0 {
			t.Errorf("distance %d wanted by %d", i, n)
		}
	}
}
