package sfu

import (
	"testing"
	"time"

	"github.com/pion/rtp"
)

// fstep is one step of a forwarder scenario: a control change (do), or a
// packet and what must come out of it.
type fstep struct {
	do func(f *forwarder)

	layer     int
	seq       uint16
	ts        uint32
	key       bool
	atMS      int64     // arrival, milliseconds
	available layerMask // 0 means: just the packet's layer

	wantSend bool
	wantSeq  uint16
	wantTS   uint32
	wantKey  int // keyframe request; the zero value 0 means LayerLow, use none
}

// none marks "no keyframe request" in fstep.wantKey.
const none = LayerNone

// runForwarder plays steps against a fresh forwarder.
func runForwarder(t *testing.T, video bool, steps []fstep) *forwarder {
	t.Helper()
	clock := uint32(90000)
	if !video {
		clock = 48000
	}
	f := newForwarder(video, clock)
	for i, s := range steps {
		if s.do != nil {
			s.do(f)
			continue
		}
		avail := s.available
		if avail == 0 {
			avail = 1 << s.layer
		}
		p := &inPacket{
			layer:     s.layer,
			header:    &rtp.Header{SequenceNumber: s.seq, Timestamp: s.ts},
			keyframe:  s.key,
			arrival:   s.atMS * int64(time.Millisecond),
			available: avail,
		}
		res := f.forward(p)
		if res.send != s.wantSend {
			t.Fatalf("step %d (layer %d seq %d): send = %v, want %v", i, s.layer, s.seq, res.send, s.wantSend)
		}
		if res.send && (res.seq != s.wantSeq || res.ts != s.wantTS) {
			t.Fatalf("step %d (layer %d seq %d): out seq/ts = %d/%d, want %d/%d",
				i, s.layer, s.seq, res.seq, res.ts, s.wantSeq, s.wantTS)
		}
		if res.keyframe != s.wantKey {
			t.Fatalf("step %d (layer %d seq %d): keyframe request %d, want %d", i, s.layer, s.seq, res.keyframe, s.wantKey)
		}
	}
	return f
}

func TestForwarderSequenceAndTimestamps(t *testing.T) {
	tests := []struct {
		name  string
		video bool
		steps []fstep
	}{
		{
			name:  "single layer passes through, loss stays a gap, late packets keep their place",
			video: true,
			steps: []fstep{
				{seq: 100, ts: 1000, key: true, wantSend: true, wantSeq: 100, wantTS: 1000, wantKey: none},
				{seq: 101, ts: 1000, wantSend: true, wantSeq: 101, wantTS: 1000, wantKey: none},
				{seq: 103, ts: 4000, atMS: 33, wantSend: true, wantSeq: 103, wantTS: 4000, wantKey: none},
				{seq: 102, ts: 1000, atMS: 40, wantSend: true, wantSeq: 102, wantTS: 1000, wantKey: none},
				{seq: 103, ts: 4000, atMS: 41, wantSend: true, wantSeq: 103, wantTS: 4000, wantKey: none},
				{seq: 99, ts: 0, atMS: 42, wantSend: false, wantKey: none}, // older than the lock
				{seq: 104, ts: 4000, atMS: 43, wantSend: true, wantSeq: 104, wantTS: 4000, wantKey: none},
			},
		},
		{
			name:  "video waits for a keyframe and asks for one, throttled",
			video: true,
			steps: []fstep{
				{seq: 1, ts: 10, atMS: 0, wantKey: LayerLow},
				{seq: 2, ts: 10, atMS: 100, wantKey: none},
				{seq: 3, ts: 20, atMS: 300, wantKey: LayerLow},
				{seq: 4, ts: 30, key: true, atMS: 310, wantSend: true, wantSeq: 4, wantTS: 30, wantKey: none},
			},
		},
		{
			name:  "sequence number and timestamp wraparound",
			video: true,
			steps: []fstep{
				{seq: 65534, ts: 4294967000, key: true, wantSend: true, wantSeq: 65534, wantTS: 4294967000, wantKey: none},
				{seq: 65535, ts: 4294967000, wantSend: true, wantSeq: 65535, wantTS: 4294967000, wantKey: none},
				{seq: 0, ts: 2704, atMS: 33, wantSend: true, wantSeq: 0, wantTS: 2704, wantKey: none},
				{seq: 65535, ts: 4294967000, atMS: 34, wantSend: true, wantSeq: 65535, wantTS: 4294967000, wantKey: none}, // late
				{seq: 2, ts: 2704, atMS: 35, wantSend: true, wantSeq: 2, wantTS: 2704, wantKey: none},
			},
		},
		{
			name:  "switch up on keyframe: old layer flows until then, output continuous",
			video: true,
			steps: []fstep{
				{layer: 0, seq: 1000, ts: 5000, key: true, available: 0b001, wantSend: true, wantSeq: 1000, wantTS: 5000, wantKey: none},
				{layer: 0, seq: 1001, ts: 8000, atMS: 33, available: 0b011, wantSend: true, wantSeq: 1001, wantTS: 8000, wantKey: LayerMedium},
				{layer: 1, seq: 7000, ts: 90000, atMS: 34, available: 0b011, wantKey: none},
				{layer: 0, seq: 1002, ts: 8000, atMS: 35, available: 0b011, wantSend: true, wantSeq: 1002, wantTS: 8000, wantKey: none},
				// 65 ms after the last packet sent: ts advances 65*90 ticks.
				{layer: 1, seq: 7001, ts: 93000, key: true, atMS: 100, available: 0b011, wantSend: true, wantSeq: 1003, wantTS: 8000 + 5850, wantKey: none},
				{layer: 0, seq: 1003, ts: 11000, atMS: 101, available: 0b011, wantKey: none}, // old layer dropped
				{layer: 1, seq: 7003, ts: 96000, atMS: 133, available: 0b011, wantSend: true, wantSeq: 1005, wantTS: 16850, wantKey: none},
				{layer: 1, seq: 7002, ts: 93000, atMS: 134, available: 0b011, wantSend: true, wantSeq: 1004, wantTS: 13850, wantKey: none},
				{layer: 1, seq: 7000, ts: 90000, atMS: 135, available: 0b011, wantKey: none}, // before the switch
			},
		},
		{
			name:  "switch across wraparound, timestamp advances at least one tick",
			video: true,
			steps: []fstep{
				{layer: 0, seq: 65535, ts: 4294967295, key: true, available: 0b011, wantSend: false, wantKey: LayerMedium},
				{layer: 1, seq: 65535, ts: 4294967295, key: true, available: 0b011, wantSend: true, wantSeq: 65535, wantTS: 4294967295, wantKey: none},
				{do: func(f *forwarder) { f.setMaxLayer(LayerLow) }},
				{layer: 0, seq: 10, ts: 100, key: true, available: 0b011, wantSend: true, wantSeq: 0, wantTS: 0, wantKey: none},
				{layer: 0, seq: 11, ts: 3100, atMS: 33, available: 0b011, wantSend: true, wantSeq: 1, wantTS: 3000, wantKey: none},
			},
		},
		{
			name:  "fallback when the forwarded layer stops, back up when it returns",
			video: true,
			steps: []fstep{
				{layer: 2, seq: 500, ts: 1000, key: true, available: 0b101, wantSend: true, wantSeq: 500, wantTS: 1000, wantKey: none},
				{layer: 0, seq: 80, ts: 7000, atMS: 10, available: 0b101, wantKey: none},
				// Layer 2 went quiet: only layer 0 is available.
				{layer: 0, seq: 81, ts: 7000, atMS: 1600, available: 0b001, wantKey: LayerLow},
				{layer: 0, seq: 82, ts: 10000, key: true, atMS: 1700, available: 0b001, wantSend: true, wantSeq: 501, wantTS: 1000 + 153000, wantKey: none},
				// Layer 2 is back.
				{layer: 0, seq: 83, ts: 13000, atMS: 1733, available: 0b101, wantSend: true, wantSeq: 502, wantTS: 154000 + 3000, wantKey: LayerHigh},
				{layer: 2, seq: 900, ts: 50, key: true, atMS: 1766, available: 0b101, wantSend: true, wantSeq: 503, wantTS: 157000 + 2970, wantKey: none},
			},
		},
		{
			name:  "pause and resume: nothing while paused, then continuous from a keyframe",
			video: true,
			steps: []fstep{
				{seq: 10, ts: 100, key: true, wantSend: true, wantSeq: 10, wantTS: 100, wantKey: none},
				{do: func(f *forwarder) { f.setPaused(true) }},
				{seq: 11, ts: 3100, key: true, atMS: 33, wantKey: none},
				{do: func(f *forwarder) { f.setPaused(false) }},
				{seq: 40, ts: 90100, atMS: 1000, wantKey: LayerLow},
				{seq: 41, ts: 93100, key: true, atMS: 1033, wantSend: true, wantSeq: 11, wantTS: 100 + 92970, wantKey: none},
			},
		},
		{
			name:  "max layer none pauses like SetPaused",
			video: true,
			steps: []fstep{
				{seq: 10, ts: 100, key: true, wantSend: true, wantSeq: 10, wantTS: 100, wantKey: none},
				{do: func(f *forwarder) { f.setMaxLayer(LayerNone) }},
				{seq: 11, ts: 100, key: true, wantKey: none},
				{do: func(f *forwarder) { f.setMaxLayer(LayerHigh) }},
				{seq: 12, ts: 100, key: true, atMS: 10, wantSend: true, wantSeq: 11, wantTS: 100 + 900, wantKey: none},
			},
		},
		{
			name:  "publisher restarts its numbering: relock on a keyframe",
			video: true,
			steps: []fstep{
				{seq: 40000, ts: 100, key: true, wantSend: true, wantSeq: 40000, wantTS: 100, wantKey: none},
				{seq: 30000, ts: 5, atMS: 10, wantKey: LayerLow},
				{seq: 30001, ts: 5, key: true, atMS: 20, wantSend: true, wantSeq: 40001, wantTS: 100 + 1800, wantKey: none},
			},
		},
		{
			name:  "audio starts on any packet and stays continuous across mute",
			video: false,
			steps: []fstep{
				{seq: 7, ts: 960, wantSend: true, wantSeq: 7, wantTS: 960, wantKey: none},
				{seq: 8, ts: 1920, atMS: 20, wantSend: true, wantSeq: 8, wantTS: 1920, wantKey: none},
				{do: func(f *forwarder) { f.setMuted(true) }},
				{seq: 9, ts: 2880, atMS: 40, wantKey: none},
				{do: func(f *forwarder) { f.setMuted(false) }},
				{seq: 60, ts: 51840, atMS: 1040, wantSend: true, wantSeq: 9, wantTS: 1920 + 48960, wantKey: none},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			runForwarder(t, tc.video, tc.steps)
		})
	}
}

func TestForwarderLayers(t *testing.T) {
	f := runForwarder(t, true, []fstep{
		{do: func(f *forwarder) { f.setMaxLayer(LayerMedium) }},
		{layer: 2, seq: 1, ts: 1, key: true, available: 0b111, wantKey: LayerMedium},
		{layer: 1, seq: 1, ts: 1, key: true, available: 0b111, wantSend: true, wantSeq: 1, wantTS: 1, wantKey: none},
	})
	if f.current != LayerMedium || f.target != LayerMedium {
		t.Errorf("current/target = %d/%d, want medium", f.current, f.target)
	}
	if got := f.targetFor(0b001); got != LayerLow {
		t.Errorf("targetFor(low only) = %d, want low", got)
	}
	f.setPaused(true)
	if f.current != LayerNone || f.targetFor(0b111) != LayerNone {
		t.Errorf("paused: current/target = %d/%d, want none", f.current, f.targetFor(0b111))
	}
}

func TestForwarderVP8Munging(t *testing.T) {
	type vstep struct {
		layer    int
		seq      uint16
		pic      uint16
		tl0      uint8
		keyIdx   uint8
		key      bool
		wantSend bool
		want     vp8Fields
	}
	tests := []struct {
		name  string
		steps []vstep
	}{
		{
			name: "continuous across a layer switch",
			steps: []vstep{
				{layer: 0, seq: 10, pic: 100, tl0: 5, keyIdx: 3, key: true, wantSend: true, want: vp8Fields{100, 5, 3}},
				{layer: 0, seq: 11, pic: 101, tl0: 6, keyIdx: 3, wantSend: true, want: vp8Fields{101, 6, 3}},
				{layer: 1, seq: 900, pic: 7000, tl0: 200, keyIdx: 20, key: true, wantSend: true, want: vp8Fields{102, 7, 4}},
				{layer: 1, seq: 901, pic: 7000, tl0: 200, keyIdx: 20, wantSend: true, want: vp8Fields{102, 7, 4}},
				{layer: 1, seq: 902, pic: 7001, tl0: 201, keyIdx: 20, wantSend: true, want: vp8Fields{103, 8, 4}},
				{layer: 1, seq: 903, pic: 7003, tl0: 203, keyIdx: 20, wantSend: true, want: vp8Fields{105, 10, 4}}, // lost frame stays a gap
			},
		},
		{
			name: "15-bit picture id, 8-bit tl0 and 5-bit keyidx wrap",
			steps: []vstep{
				{layer: 0, seq: 10, pic: 0x7fff, tl0: 255, keyIdx: 31, key: true, wantSend: true, want: vp8Fields{0x7fff, 255, 31}},
				{layer: 1, seq: 50, pic: 12, tl0: 40, keyIdx: 9, key: true, wantSend: true, want: vp8Fields{0, 0, 0}},
				{layer: 1, seq: 51, pic: 13, tl0: 41, keyIdx: 9, wantSend: true, want: vp8Fields{1, 1, 0}},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newForwarder(true, 90000)
			for i, s := range tc.steps {
				payload := vp8Payload(true, s.pic, s.tl0, s.keyIdx, s.key)
				d, ok := parseVP8Descriptor(payload)
				if !ok {
					t.Fatal("bad fixture")
				}
				if s.layer == 1 {
					f.setMaxLayer(LayerMedium)
				} else {
					f.setMaxLayer(LayerLow)
				}
				res := f.forward(&inPacket{
					layer:     s.layer,
					header:    &rtp.Header{SequenceNumber: s.seq},
					payload:   payload,
					keyframe:  s.key,
					vp8:       d,
					hasVP8:    true,
					arrival:   int64(i+1) * int64(time.Millisecond),
					available: 0b011,
				})
				if res.send != s.wantSend {
					t.Fatalf("step %d: send = %v", i, res.send)
				}
				got := vp8Fields{d.pictureID, d.tl0PicIdx, d.keyIdx}
				if res.mungeVP8 {
					got = res.vp8
				}
				if got != s.want {
					t.Fatalf("step %d: vp8 = %+v, want %+v", i, got, s.want)
				}
			}
		})
	}
}

func TestTicks(t *testing.T) {
	tests := []struct {
		ns    int64
		clock uint32
		want  uint32
	}{
		{-5, 90000, 0},
		{0, 90000, 0},
		{int64(time.Second), 90000, 90000},
		{int64(20 * time.Millisecond), 48000, 960},
		{int64(10 * time.Hour), 90000, uint32(uint64(36000) * 90000)}, // wraps like RTP time
	}
	for _, tc := range tests {
		if got := ticks(tc.ns, tc.clock); got != tc.want {
			t.Errorf("ticks(%d, %d) = %d, want %d", tc.ns, tc.clock, got, tc.want)
		}
	}
}

// A track the Allocator paused still takes padding numbers (its resume probe), and the
// resume's keyframe numbers on from them; paused by the subscriber or muted, it takes none.
func TestForwarderPaddingWhileBWPaused(t *testing.T) {
	var pads []uint16
	pad := func(f *forwarder) {
		seq, _, ok := f.padSeq()
		if !ok {
			t.Fatal("no padding number for a bandwidth-paused track")
		}
		pads = append(pads, seq)
	}
	f := runForwarder(t, true, []fstep{
		{seq: 100, ts: 1000, key: true, wantSend: true, wantSeq: 100, wantTS: 1000, wantKey: none},
		{do: func(f *forwarder) { f.setBWPaused(true) }},
		{seq: 101, ts: 4000, atMS: 33, wantKey: none},
		{do: pad},
		{do: pad},
		{do: func(f *forwarder) { f.setBWPaused(false) }},
		{seq: 102, ts: 7000, key: true, atMS: 66, wantSend: true, wantSeq: 103, wantTS: 1000 + 66*90, wantKey: none},
	})
	if len(pads) != 2 || pads[0] != 101 || pads[1] != 102 {
		t.Fatalf("padding numbers %v, want [101 102]", pads)
	}
	f.setPaused(true)
	f.setBWPaused(true)
	if _, _, ok := f.padSeq(); ok {
		t.Fatal("padding for a track its subscriber paused")
	}
}

// The forwarder remembers its last switch up (or first lock), for the Allocator.
func TestForwarderRemembersSwitchUp(t *testing.T) {
	f := newForwarder(true, 90000)
	f.setMaxLayer(LayerHigh)
	send := func(layer int, seq uint16, key bool, at int64) {
		f.setCapLayer(layer)
		f.forward(&inPacket{layer: layer, header: &rtp.Header{SequenceNumber: seq}, keyframe: key, arrival: at, available: 0b111})
	}
	send(LayerMedium, 1, true, 100)
	if f.upLayer != LayerMedium || f.upAt != 100 {
		t.Fatalf("first lock: up %d at %d", f.upLayer, f.upAt)
	}
	send(LayerHigh, 1, true, 200)
	if f.upLayer != LayerHigh || f.upAt != 200 {
		t.Fatalf("switch up: up %d at %d", f.upLayer, f.upAt)
	}
	send(LayerLow, 1, true, 300)
	if f.upLayer != LayerHigh || f.upAt != 200 {
		t.Fatalf("switch down moved it: up %d at %d", f.upLayer, f.upAt)
	}
}
