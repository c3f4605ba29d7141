package sfu

import (
	"math"
	"slices"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

func TestReceiverReadLoopAndSelfClose(t *testing.T) {
	r := NewReceiver(ReceiverParams{TrackID: "TR_a", Kind: webrtc.RTPCodecTypeVideo, Codec: vp8Codec})
	src := newChanSource()
	if r.addLayer(LayerLow, "", 42, src) == nil {
		t.Fatal("addLayer failed")
	}
	if r.addLayer(LayerLow, "q", 43, newChanSource()) != nil {
		t.Error("second stream for the same layer accepted")
	}
	d, err := NewDownTrack(DownTrackParams{Receiver: r, StreamID: "PA|TR_a"})
	if err != nil {
		t.Fatal(err)
	}
	w := &recordWriter{}
	if _, err := d.Bind((&fakeContext{codecs: []webrtc.RTPCodecParameters{vp8Codec}, ssrc: 9}).withWriter(w)); err != nil {
		t.Fatal(err)
	}
	r.AddDownTrack(d)
	r.AddDownTrack(d) // no effect
	if n := len(r.DownTracks()); n != 1 {
		t.Fatalf("%d down tracks, want 1", n)
	}

	closed := make(chan struct{})
	r.OnClose(func() { close(closed) })
	for i := range uint16(5) {
		src.ch <- rtpBytes(t, rtp.Header{SequenceNumber: i, SSRC: 42, PayloadType: 96}, vp8Payload(true, i, 0, 0, i == 0))
	}
	waitFor(t, func() bool { return len(w.packets()) == 5 })
	if got := r.AvailableLayers(); !slices.Equal(got, []int{LayerLow}) {
		t.Errorf("AvailableLayers = %v", got)
	}

	close(src.ch) // the track ended: the receiver closes itself
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("receiver did not close when its only track ended")
	}
	if !d.Closed() || !r.Closed() {
		t.Error("down track not closed with its receiver")
	}
	calledNow := false
	r.OnClose(func() { calledNow = true })
	if !calledNow {
		t.Error("OnClose after close did not run")
	}
	d2, _ := NewDownTrack(DownTrackParams{Receiver: r, StreamID: "PA|TR_a"})
	r.AddDownTrack(d2)
	if !d2.Closed() {
		t.Error("down track added to a closed receiver stays open")
	}
}

func TestReceiverCloseStopsReadLoops(t *testing.T) {
	r := NewReceiver(ReceiverParams{Kind: webrtc.RTPCodecTypeVideo, Codec: vp8Codec})
	srcs := []*chanSource{newChanSource(), newChanSource()}
	r.addLayer(LayerLow, "q", 1, srcs[0])
	r.addLayer(LayerHigh, "f", 2, srcs[1])
	d, _ := NewDownTrack(DownTrackParams{Receiver: r, StreamID: "s"})
	r.AddDownTrack(d)
	dClosed := false
	d.OnClose(func() { dClosed = true })
	r.Close()
	r.Close()
	waitFor(t, func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		return r.running == 0
	})
	if !dClosed || len(r.DownTracks()) != 0 {
		t.Error("down track not closed and removed")
	}
	if r.addLayer(LayerMedium, "h", 3, newChanSource()) != nil {
		t.Error("layer added to a closed receiver")
	}
}

func TestReceiverAvailableLayers(t *testing.T) {
	rig := newTestRig(t, vp8Codec, 0, 1, 2)
	rig.feed(0, rtp.Header{SequenceNumber: 1}, vp8Payload(true, 1, 0, 0, false))
	rig.feed(2, rtp.Header{SequenceNumber: 1}, vp8Payload(true, 1, 0, 0, false))
	steps := []struct {
		advance time.Duration
		feed    int // layer to feed after advancing, LayerNone for none
		want    []int
	}{
		{0, LayerNone, []int{0, 2}},
		{time.Second, 2, []int{0, 2}},
		{time.Second, LayerNone, []int{2}},
		{time.Second, LayerNone, []int{}},
		{0, 1, []int{1}},
	}
	for i, s := range steps {
		rig.clock.advance(s.advance)
		if s.feed != LayerNone {
			rig.feed(s.feed, rtp.Header{SequenceNumber: 2}, vp8Payload(true, 2, 0, 0, false))
		}
		if got := rig.r.AvailableLayers(); !slices.Equal(got, s.want) {
			t.Errorf("step %d: AvailableLayers = %v, want %v", i, got, s.want)
		}
	}
}

func TestReceiverRequestKeyframe(t *testing.T) {
	rig := newTestRig(t, vp8Codec, 0, 2)
	rig.r.RequestKeyframe(LayerLow)
	rig.r.RequestKeyframe(LayerHigh)
	rig.r.RequestKeyframe(LayerLow)    // throttled
	rig.r.RequestKeyframe(LayerMedium) // not attached
	rig.r.RequestKeyframe(7)           // out of range
	rig.clock.advance(DefaultPLIThrottle)
	rig.r.RequestKeyframe(LayerLow)
	if got, want := rig.rtcp.plis(), []uint32{1000, 1002, 1000}; !slices.Equal(got, want) {
		t.Errorf("PLIs to %v, want %v", got, want)
	}

	audio := newTestRig(t, opusCodec, 0)
	audio.r.RequestKeyframe(LayerLow)
	if got := audio.rtcp.plis(); len(got) != 0 {
		t.Errorf("audio keyframe request sent %v", got)
	}
}

func TestReceiverAudioLevel(t *testing.T) {
	rig := newTestRig(t, opusCodec, 0)
	seq := uint16(0)
	feed := func(dBov uint8, n int) {
		for range n {
			seq++
			rig.clock.advance(20 * time.Millisecond)
			h := rtp.Header{SequenceNumber: seq}
			if err := h.SetExtension(1, []byte{0x80 | dBov}); err != nil {
				t.Fatal(err)
			}
			rig.feed(0, h, []byte{0xfc, 0x01})
		}
	}
	steps := []struct {
		name       string
		do         func()
		wantLevel  float64 // approximate
		wantActive bool
	}{
		{"no samples", func() {}, 0, false},
		{"speech at -20 dBov", func() { feed(20, 100) }, 0.1, true},
		{"silence", func() { feed(127, 100) }, 0, false},
		{"speech again", func() { feed(30, 100) }, 0.0316, true},
		{"muted", func() { rig.r.SetMuted(true) }, 0, false},
		{"unmuted", func() { rig.r.SetMuted(false) }, 0.0316, true},
		{"stale", func() { rig.clock.advance(2 * time.Second) }, 0, false},
	}
	for _, s := range steps {
		s.do()
		level, active := rig.r.AudioLevel()
		if math.Abs(level-s.wantLevel) > 0.002 || active != s.wantActive {
			t.Errorf("%s: AudioLevel = %.4f, %v; want ~%.4f, %v", s.name, level, active, s.wantLevel, s.wantActive)
		}
	}
}

func TestReceiverStats(t *testing.T) {
	rig := newTestRig(t, vp8Codec, 0, 1)
	for _, seq := range []uint16{65534, 65535, 1, 2, 0} { // 0 arrives late
		rig.clock.advance(100 * time.Millisecond)
		rig.feed(0, rtp.Header{SequenceNumber: seq}, vp8Payload(true, seq, 0, 0, seq == 65534))
	}
	rig.feed(0, rtp.Header{SequenceNumber: 5}, vp8Payload(true, 5, 0, 0, false)) // 3 and 4 lost
	rig.clock.advance(600 * time.Millisecond)
	rig.feed(0, rtp.Header{SequenceNumber: 6}, vp8Payload(true, 6, 0, 0, false))

	s := rig.r.Stats()
	if s.TrackID != "TR_test" || s.MimeType != webrtc.MimeTypeVP8 || len(s.Layers) != 2 {
		t.Fatalf("stats = %+v", s)
	}
	l := s.Layers[0]
	if l.Packets != 7 || l.Lost != 2 || l.Keyframes != 1 || !l.Active || l.SSRC != 1000 {
		t.Errorf("layer 0 = %+v", l)
	}
	if l.Bitrate == 0 || l.Bitrate != s.Bitrate || s.Packets != 7 {
		t.Errorf("bitrate %d total %d packets %d", l.Bitrate, s.Bitrate, s.Packets)
	}
	if s.Layers[1].Active || s.Layers[1].Bitrate != 0 {
		t.Errorf("idle layer 1 = %+v", s.Layers[1])
	}
}

// waitFor polls cond for up to five seconds.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in time")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
