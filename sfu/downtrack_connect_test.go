package sfu

import (
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// TestDownTrackAwaitsConnection: a down track made with AwaitConnected neither forwards nor
// asks for a keyframe before SetConnected, however many packets of its layer arrive; at
// SetConnected it asks at once, past the throttle of a keyframe request made for another
// subscriber whose keyframe already came, and then forwards from the next keyframe.
func TestDownTrackAwaitsConnection(t *testing.T) {
	rig := newTestRig(t, vp8Codec, 0)
	// Another subscriber's request a moment ago, answered: the throttle would hold a
	// plain request for half a second.
	rig.r.RequestKeyframe(LayerLow)
	rig.clock.advance(150 * time.Millisecond)
	w := &recordWriter{}
	d := rig.bindParams(vp8Codec, w, DownTrackParams{AwaitConnected: true})
	seq := uint16(1)
	feed := func(key bool) {
		rig.feed(0, rtp.Header{SequenceNumber: seq, Timestamp: uint32(seq) * 3000}, vp8Payload(true, seq, 0, 0, key))
		seq++
		rig.clock.advance(20 * time.Millisecond)
	}
	feed(true)
	for range 30 { // 600 ms of delta frames: the forwarder would have asked twice by now
		feed(false)
	}
	if n := len(w.packets()); n != 0 {
		t.Fatalf("%d packets forwarded before the connection was up", n)
	}
	if n := len(rig.rtcp.plis()); n != 1 {
		t.Fatalf("%d keyframe requests before the connection was up, want only the other subscriber's", n)
	}

	rig.r.RequestKeyframe(LayerLow) // the other subscriber again: its keyframe comes below
	feed(true)
	for range 5 { // urgentPLIGap
		feed(false)
	}
	d.SetConnected()
	if got := rig.rtcp.plis(); !equalU32(got, []uint32{1000, 1000, 1000}) {
		t.Fatalf("PLIs %v after SetConnected, want an urgent third to 1000", got)
	}
	d.SetConnected() // once only
	feed(false)
	if n := len(w.packets()); n != 0 {
		t.Fatalf("a delta frame was forwarded first (%d packets)", n)
	}
	feed(true)
	feed(false)
	if n := len(w.packets()); n != 2 {
		t.Fatalf("%d packets forwarded after the keyframe, want 2", n)
	}
	if n := len(rig.rtcp.plis()); n != 3 {
		t.Errorf("%d PLIs in all, want 3", n)
	}
}

// TestDownTrackBoundAfterConnected: a track that a renegotiation binds after the connection
// is up asks for its keyframe when bound, without waiting for a packet.
func TestDownTrackBoundAfterConnected(t *testing.T) {
	rig := newTestRig(t, vp8Codec, 0)
	rig.feed(0, rtp.Header{SequenceNumber: 1}, vp8Payload(true, 1, 0, 0, false)) // layer 0 is receiving
	d, err := NewDownTrack(DownTrackParams{Receiver: rig.r, StreamID: "PA_pub|TR_test", AwaitConnected: true})
	if err != nil {
		t.Fatal(err)
	}
	d.SetConnected() // not bound yet: nothing to ask for
	if n := len(rig.rtcp.plis()); n != 0 {
		t.Fatalf("%d PLIs before the track was bound", n)
	}
	if _, err := d.Bind((&fakeContext{codecs: []webrtc.RTPCodecParameters{vp8Codec}, ssrc: 5555}).withWriter(&recordWriter{})); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return len(rig.rtcp.plis()) == 1 }) // asked from a goroutine
}

// TestReceiverUrgentKeyframe: an urgent request bypasses the PLI throttle once the keyframe
// asked for last has come, never within urgentPLIGap of the last request, and not while a
// keyframe asked for is still on its way.
func TestReceiverUrgentKeyframe(t *testing.T) {
	rig := newTestRig(t, vp8Codec, 0)
	count := func() int { return len(rig.rtcp.plis()) }
	key := func() { rig.feed(0, rtp.Header{SequenceNumber: 1}, vp8Payload(true, 1, 0, 0, true)) }

	if !rig.r.requestKeyframe(LayerLow, false) || count() != 1 {
		t.Fatal("first request not sent")
	}
	rig.clock.advance(150 * time.Millisecond)
	if rig.r.requestKeyframe(LayerLow, true) || count() != 1 {
		t.Fatal("urgent request sent while the keyframe asked for is on its way")
	}
	key()
	if rig.r.requestKeyframe(LayerLow, false) || count() != 1 {
		t.Fatal("plain request passed the throttle")
	}
	if !rig.r.requestKeyframe(LayerLow, true) || count() != 2 {
		t.Fatal("urgent request held back though the keyframe came")
	}
	key()
	rig.clock.advance(urgentPLIGap - time.Millisecond)
	if rig.r.requestKeyframe(LayerLow, true) || count() != 2 {
		t.Fatal("urgent request within urgentPLIGap of the last")
	}
	rig.clock.advance(time.Millisecond)
	if !rig.r.requestKeyframe(LayerLow, true) || count() != 3 {
		t.Fatal("urgent request after urgentPLIGap held back")
	}
	rig.clock.advance(DefaultPLIThrottle)
	if !rig.r.requestKeyframe(LayerLow, false) || count() != 4 {
		t.Fatal("plain request after the throttle held back")
	}
}

// TestDownTrackFirstPLIUrgent: the subscriber's first keyframe request is urgent (its first
// keyframe came before it could take it), later ones wait for the throttle.
func TestDownTrackFirstPLIUrgent(t *testing.T) {
	rig := newTestRig(t, vp8Codec, 0)
	d, _ := rig.bind(vp8Codec)
	rig.feed(0, rtp.Header{SequenceNumber: 1}, vp8Payload(true, 1, 0, 0, false)) // the forwarder asks
	if n := len(rig.rtcp.plis()); n != 1 {
		t.Fatalf("%d PLIs from the forwarder, want 1", n)
	}
	rig.clock.advance(150 * time.Millisecond)
	rig.feed(0, rtp.Header{SequenceNumber: 2}, vp8Payload(true, 2, 0, 0, true)) // forwarded, lost on the way
	rig.clock.advance(50 * time.Millisecond)
	pli := []rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: 5555}}
	d.handleRTCP(pli)
	if n := len(rig.rtcp.plis()); n != 2 {
		t.Fatalf("%d PLIs after the subscriber's first, want 2 (urgent)", n)
	}
	rig.feed(0, rtp.Header{SequenceNumber: 3}, vp8Payload(true, 3, 0, 0, true))
	rig.clock.advance(150 * time.Millisecond)
	d.handleRTCP(pli)
	if n := len(rig.rtcp.plis()); n != 2 {
		t.Fatalf("%d PLIs after the subscriber's second, want 2 (throttled)", n)
	}
}

// TestReceiverHeldKeyframe: an urgent request within urgentPLIGap of the last, whose keyframe
// came already, is held back, not dropped: the first packet after the gap sends it, unless a
// keyframe came meanwhile (it reached the subscriber that asked).
func TestReceiverHeldKeyframe(t *testing.T) {
	rig := newTestRig(t, vp8Codec, 0)
	count := func() int { return len(rig.rtcp.plis()) }
	seq := uint16(0)
	feed := func(key bool) {
		seq++
		rig.feed(0, rtp.Header{SequenceNumber: seq}, vp8Payload(true, seq, 0, 0, key))
	}

	if !rig.r.requestKeyframe(LayerLow, false) || count() != 1 {
		t.Fatal("first request not sent")
	}
	rig.clock.advance(20 * time.Millisecond)
	feed(true) // its keyframe
	rig.clock.advance(30 * time.Millisecond)
	if rig.r.requestKeyframe(LayerLow, true) || count() != 1 {
		t.Fatal("urgent request sent within urgentPLIGap of the last")
	}
	rig.clock.advance(30 * time.Millisecond)
	feed(false)
	if count() != 1 {
		t.Fatal("held request sent before urgentPLIGap passed")
	}
	rig.clock.advance(urgentPLIGap - 60*time.Millisecond)
	feed(false)
	if count() != 2 {
		t.Fatalf("%d PLIs once urgentPLIGap passed, want the held request sent (2)", count())
	}
	feed(false)
	if count() != 2 {
		t.Fatal("held request sent twice")
	}

	// Held, then a keyframe comes before the gap passed: nothing more to ask for.
	rig.clock.advance(20 * time.Millisecond)
	feed(true)
	rig.clock.advance(20 * time.Millisecond)
	if rig.r.requestKeyframe(LayerLow, true) || count() != 2 {
		t.Fatal("urgent request sent within urgentPLIGap of the last")
	}
	rig.clock.advance(20 * time.Millisecond)
	feed(true)
	rig.clock.advance(urgentPLIGap)
	feed(false)
	if count() != 2 {
		t.Fatalf("%d PLIs, want 2: the keyframe after the held request served it", count())
	}
}

// TestDownTrackFirstPLIHeld: the subscriber's first keyframe request, coming shortly after
// the urgent request made when its connection came up and whose keyframe it did not get
// (a loaded client), is sent once urgentPLIGap has passed, not dropped until the publisher's
// next keyframe (a ttff-bench run waited 550 ms for its first picture so).
func TestDownTrackFirstPLIHeld(t *testing.T) {
	rig := newTestRig(t, vp8Codec, 0)
	w := &recordWriter{}
	d := rig.bindParams(vp8Codec, w, DownTrackParams{AwaitConnected: true})
	seq := uint16(0)
	feed := func(key bool) {
		seq++
		rig.feed(0, rtp.Header{SequenceNumber: seq, Timestamp: uint32(seq) * 3000}, vp8Payload(true, seq, 0, 0, key))
		rig.clock.advance(16 * time.Millisecond)
	}
	feed(false) // the layer is receiving
	d.SetConnected()
	if n := len(rig.rtcp.plis()); n != 1 {
		t.Fatalf("%d PLIs at SetConnected, want the urgent one", n)
	}
	feed(true) // forwarded, and lost for the subscriber
	if len(w.packets()) == 0 {
		t.Fatal("the keyframe was not forwarded")
	}
	for range 4 {
		feed(false)
	}
	d.handleRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: 5555}}) // 80 ms after the urgent request
	if n := len(rig.rtcp.plis()); n != 1 {
		t.Fatalf("%d PLIs right after the subscriber's, want 1 (within urgentPLIGap)", n)
	}
	for range 3 { // the packets at 80, 96 and 112 ms after the urgent request
		feed(false)
	}
	if n := len(rig.rtcp.plis()); n != 2 {
		t.Fatalf("%d PLIs after urgentPLIGap, want the subscriber's sent (2)", n)
	}
}
