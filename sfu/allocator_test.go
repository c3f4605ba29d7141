package sfu

import (
	"slices"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
)

// allocRig is one subscriber's Allocator with down tracks of receivers whose layers have
// set bitrates, all on one fake clock.
type allocRig struct {
	t     *testing.T
	clock *fakeClock
	a     *Allocator
	rigs  []*testRig
	downs []*DownTrack
	// What each down track's subscriber reported last: extended highest sequence number
	// and cumulative loss.
	highest []uint32
	lost    []uint32
}

func newAllocRig(t *testing.T) *allocRig {
	return &allocRig{t: t, clock: &fakeClock{}, a: NewAllocator(nil)}
}

// track adds a down track of a receiver whose layers send bitrates (bits/s, 0: layer off),
// with the given priority; codec opusCodec makes an audio track.
func (ar *allocRig) track(codec webrtc.RTPCodecParameters, priority int, bitrates ...uint64) *DownTrack {
	ar.t.Helper()
	var layers []int
	for l, b := range bitrates {
		if b > 0 {
			layers = append(layers, l)
		}
	}
	rig := newTestRig(ar.t, codec, layers...)
	if len(ar.rigs) == 0 {
		ar.clock = rig.clock
	}
	rig.r.clock = ar.clock.now
	for l, b := range bitrates {
		if b > 0 {
			rig.layers[l].bitrate.Store(b)
		}
	}
	codec.PayloadType = 100
	d, _ := ar.bind(rig, DownTrackParams{Priority: priority}, codec)
	return d
}

// redVoice adds a RED down track of an Opus receiver (a subscriber that negotiated RED).
func (ar *allocRig) redVoice() *DownTrack {
	ar.t.Helper()
	rig := newTestRig(ar.t, opusCodec, 0)
	if len(ar.rigs) == 0 {
		ar.clock = rig.clock
	}
	rig.r.clock = ar.clock.now
	d, c := ar.bind(rig, DownTrackParams{RED: true}, opusNACK(111), redCodec)
	if !isRED(c) {
		ar.t.Fatalf("bound %s; want RED", c.MimeType)
	}
	rig.r.AddDownTrack(d) // fed frames, it sends them
	return d
}

// bind adds a down track of rig's receiver made with p, bound to codecs, and returns it
// with the codec it bound.
func (ar *allocRig) bind(rig *testRig, p DownTrackParams, codecs ...webrtc.RTPCodecParameters) (*DownTrack, webrtc.RTPCodecParameters) {
	ar.t.Helper()
	p.Receiver, p.StreamID, p.Allocator = rig.r, "PA_pub|TR_test", ar.a
	d, err := NewDownTrack(p)
	if err != nil {
		ar.t.Fatal(err)
	}
	ssrc := webrtc.SSRC(5000 + len(ar.downs))
	c, err := d.Bind((&fakeContext{codecs: codecs, ssrc: ssrc}).withWriter(discardWriter{}))
	if err != nil {
		ar.t.Fatal(err)
	}
	ar.rigs = append(ar.rigs, rig)
	ar.downs = append(ar.downs, d)
	ar.highest = append(ar.highest, 1000)
	ar.lost = append(ar.lost, 0)
	ar.keepAlive()
	return d, c
}

// keepAlive marks every layer with a bitrate as receiving now.
func (ar *allocRig) keepAlive() {
	for _, rig := range ar.rigs {
		for _, l := range rig.layers {
			if l != nil {
				l.lastPacket.Store(ar.clock.now())
			}
		}
	}
}

// second advances the clock by one second in which down track i sent packets of bytes
// each (retransmissions excluded), the stream's sequence numbers advanced by packets +
// holes (holes: packets the publisher's uplink lost, never sent), and the subscriber lost
// lost of those it was sent; then each subscriber sends its receiver report.
func (ar *allocRig) second(packets, bytes, holes, lost []uint64) {
	ar.clock.advance(time.Second)
	ar.keepAlive()
	for i, d := range ar.downs {
		d.mu.Lock()
		d.counters.packets += packets[i]
		d.counters.bytes += packets[i] * bytes[i]
		d.mu.Unlock()
		ar.highest[i] += uint32(packets[i] + holes[i])
		ar.lost[i] += uint32(holes[i] + lost[i])
		d.handleReports([]rtcp.ReceptionReport{{SSRC: d.ssrc, LastSequenceNumber: ar.highest[i], TotalLost: ar.lost[i] & 0xffffff}})
	}
}

// probeState returns whether a probe runs and the current backoff.
func (ar *allocRig) probeState() (bool, time.Duration) {
	ar.a.mu.Lock()
	defer ar.a.mu.Unlock()
	return ar.a.probing, ar.a.backoff
}

// forwarding makes d's forwarder lock onto layer, as a keyframe of it would.
func forwarding(d *DownTrack, layer int) {
	d.mu.Lock()
	d.fwd.current = layer
	d.mu.Unlock()
}

func TestAllocatorShare(t *testing.T) {
	const kbps = 1000
	tests := []struct {
		name      string
		budget    uint64
		cameraMax int
		want      []int // camera, screen share, audio
	}{
		{"no limit", 0, LayerHigh, []int{LayerHigh, LayerHigh, LayerHigh}},
		{"below every lowest layer: the camera pauses", 250 * kbps, LayerHigh, []int{LayerNone, LayerLow, LayerHigh}},
		{"not even the screen share's lowest layer: both pause", 120 * kbps, LayerHigh, []int{LayerNone, LayerNone, LayerHigh}},
		{"room for one step: the screen share first", 700 * kbps, LayerHigh, []int{LayerLow, LayerMedium, LayerHigh}},
		{"one step each", 1200 * kbps, LayerHigh, []int{LayerMedium, LayerMedium, LayerHigh}},
		{"screen share to the top, camera medium", 2000 * kbps, LayerHigh, []int{LayerMedium, LayerHigh, LayerHigh}},
		{"everything", 3500 * kbps, LayerHigh, []int{LayerHigh, LayerHigh, LayerHigh}},
		{"never above what the subscriber wants", 3500 * kbps, LayerLow, []int{LayerLow, LayerHigh, LayerHigh}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ar := newAllocRig(t)
			camera := ar.track(vp8Codec, 0, 150*kbps, 500*kbps, 1700*kbps)
			ar.track(vp8Codec, 1, 100*kbps, 300*kbps, 1000*kbps)
			ar.track(opusCodec, 0, 40*kbps)
			camera.SetMaxLayer(tc.cameraMax)
			ar.a.mu.Lock()
			got, total := ar.a.share(tc.budget, ar.clock.now())
			ar.a.mu.Unlock()
			// The allocator keeps the screen share (priority 1) first.
			want := []int{tc.want[1], tc.want[0], tc.want[2]}
			if !slices.Equal(got, want) {
				t.Errorf("layers (screen, camera, audio) = %v, want %v", got, want)
			}
			if tc.budget > 0 && total > tc.budget {
				t.Errorf("cost %d over budget %d", total, tc.budget)
			}
		})
	}
}

func TestAllocatorController(t *testing.T) {
	const kbps = 1000
	ar := newAllocRig(t)
	camera := ar.track(vp8Codec, 0, 150*kbps, 500*kbps, 1700*kbps)
	// 1.7 Mbps of HIGH: 150 packets/s of 1,357 bytes (+60 overhead each).
	high := func(lossPerSecond, holes uint64) {
		ar.second([]uint64{150}, []uint64{1357}, []uint64{holes}, []uint64{lossPerSecond})
	}
	medium := func(lossPerSecond uint64) {
		ar.second([]uint64{50}, []uint64{1190}, []uint64{0}, []uint64{lossPerSecond})
	}
	step := func(name string, wantCap int) {
		t.Helper()
		if got := camera.Stats().CapLayer; got != wantCap {
			t.Fatalf("%s: cap layer %d, want %d (budget %d)", name, got, wantCap, ar.a.Budget())
		}
	}

	// Reports without loss leave everything alone, and so do 10% holes that the
	// publisher's uplink left: the subscriber received all that was sent.
	for range 5 {
		high(0, 15)
	}
	step("upstream holes", LayerHigh)
	if b := ar.a.Budget(); b != 0 {
		t.Fatalf("budget %d without downstream loss", b)
	}

	// 30% loss: budget = what arrived, 1.7 Mbps x 0.7 ~ 1.19 Mbps, which fits MEDIUM, not HIGH. The
	// next second's loss, from packets sent before the cut, does not cut again.
	high(45, 0)
	high(75, 0)
	step("congested", LayerMedium)
	if l := camera.TargetLayer(); l != LayerMedium {
		t.Fatalf("target layer %d under a MEDIUM cap with all layers receiving", l)
	}
	b := ar.a.Budget()
	if b < 1100*kbps || b > 1300*kbps {
		t.Fatalf("budget after 30%% loss = %d, want ~1.19 Mbps", b)
	}

	// Quiet for the backoff (4 s): a probe raises the cap to HIGH.
	for range 3 {
		medium(0)
	}
	step("before the probe", LayerMedium)
	medium(0)
	medium(0)
	step("probe", LayerHigh)

	// The probe brings 5% loss: undone, and the next try waits 8 s.
	high(8, 0)
	step("probe failed", LayerMedium)
	if got := ar.a.Budget(); got != b {
		t.Fatalf("budget after the failed probe = %d, want the one before it, %d", got, b)
	}
	for range 6 {
		medium(0)
	}
	step("backoff doubled", LayerMedium)
	for range 3 {
		medium(0)
	}
	step("second probe", LayerHigh)

	// This time the link holds: the cap stays, and the backoff is back to 4 s. The 3 s
	// count from the moment the probed layer is forwarded (its keyframe), not from the probe.
	forwarding(camera, LayerHigh)
	for range 3 {
		high(0, 0)
	}
	if probing, _ := ar.probeState(); !probing {
		t.Fatal("probe confirmed 2 s after its layer was first forwarded")
	}
	high(0, 0)
	step("probe held", LayerHigh)
	if probing, backoff := ar.probeState(); probing || backoff != probeBackoffMin {
		t.Fatalf("after a probe that held: probing %v, backoff %v", probing, backoff)
	}

	// Losses between 2% and 10% hold the budget where it is.
	for range 6 {
		high(6, 0)
	}
	step("moderate loss", LayerHigh)

	// A removed down track is forgotten.
	camera.Close()
	if n := len(ar.a.tracks); n != 0 {
		t.Fatalf("%d tracks after Close", n)
	}
}

// A wireless line that loses 5% of whatever it carries: after a cut, that loss becomes the
// line's usual loss, probes still happen, and one that fits holds despite it.
func TestAllocatorSteadyRandomLoss(t *testing.T) {
	ar := newAllocRig(t)
	camera := ar.track(vp8Codec, 0, 150_000, 500_000, 1_700_000)
	ar.second([]uint64{150}, []uint64{1357}, []uint64{0}, []uint64{0})
	ar.second([]uint64{150}, []uint64{1357}, []uint64{0}, []uint64{45})
	if c := camera.Stats().CapLayer; c != LayerMedium {
		t.Fatalf("cap %d after 30%% loss", c)
	}
	forwarding(camera, LayerMedium)
	probed := 0
	for i := range 20 {
		ar.second([]uint64{100}, []uint64{600}, []uint64{0}, []uint64{5})
		if camera.Stats().CapLayer == LayerHigh {
			probed = i + 1
			break
		}
	}
	if probed == 0 {
		t.Fatal("no probe in 20 s of a steady 5% loss")
	}
	forwarding(camera, LayerHigh)
	for range 4 {
		ar.second([]uint64{150}, []uint64{1357}, []uint64{0}, []uint64{7})
	}
	if probing, backoff := ar.probeState(); probing || backoff != probeBackoffMin || camera.Stats().CapLayer != LayerHigh {
		t.Fatalf("probe after %d s: probing %v, backoff %v, cap %d", probed, probing, backoff, camera.Stats().CapLayer)
	}
	t.Logf("probed %d s after the cut; usual loss %.3f", probed, ar.a.baseline)
}

// A probed layer that never gets forwarded (no keyframe of it came) fails the probe.
func TestAllocatorProbeNeverForwarded(t *testing.T) {
	ar := newAllocRig(t)
	camera := ar.track(vp8Codec, 0, 150_000, 500_000, 1_700_000)
	medium := func() { ar.second([]uint64{50}, []uint64{1190}, []uint64{0}, []uint64{0}) }
	ar.second([]uint64{150}, []uint64{1357}, []uint64{0}, []uint64{0})
	ar.second([]uint64{150}, []uint64{1357}, []uint64{0}, []uint64{45})
	forwarding(camera, LayerMedium)
	for range 4 {
		medium()
	}
	if c := camera.Stats().CapLayer; c != LayerHigh {
		t.Fatalf("cap %d: no probe after 4 quiet seconds", c)
	}
	for range 4 {
		medium()
	}
	if probing, _ := ar.probeState(); !probing {
		t.Fatal("probe given up before probeSwitchTimeout")
	}
	medium()
	if probing, backoff := ar.probeState(); probing || backoff != 2*probeBackoffMin || camera.Stats().CapLayer != LayerMedium {
		t.Fatalf("5 s without the probed layer: probing %v, backoff %v, cap %d", probing, backoff, camera.Stats().CapLayer)
	}
}

// A layer costs its recent peak: a dip in its bitrate (between keyframes, a still picture)
// does not make it fit a budget it overran; a lasting drop does, once the peak has faded.
func TestAllocatorPeakCost(t *testing.T) {
	ar := newAllocRig(t)
	camera := ar.track(vp8Codec, 0, 150_000, 500_000, 1_700_000)
	quiet := func() { ar.second([]uint64{50}, []uint64{1190}, []uint64{0}, []uint64{0}) }
	quiet()
	quiet() // the peaks have seen 1.7 Mbps
	ar.a.mu.Lock()
	ar.a.budget, ar.a.quietSince, ar.a.backoff = 1_300_000, ar.clock.now(), probeBackoffMax // no probe meanwhile
	ar.a.allocate(ar.clock.now())
	ar.a.mu.Unlock()
	if c := camera.Stats().CapLayer; c != LayerMedium {
		t.Fatalf("cap %d under 1.3 Mbit/s", c)
	}
	ar.rigs[0].layers[LayerHigh].bitrate.Store(1_000_000)
	quiet()
	if c := camera.Stats().CapLayer; c != LayerMedium {
		t.Fatalf("cap %d after one second of a 1 Mbit/s top layer", c)
	}
	for range 5 {
		quiet()
	}
	if c := camera.Stats().CapLayer; c != LayerHigh {
		t.Fatalf("cap %d after six seconds of a 1 Mbit/s top layer (peak faded to %d)", c, ar.a.tracks[0].peak[LayerHigh])
	}
}

// A budget set while the subscriber wanted only the lowest layer serves a later wish for
// more at the next evaluation, as far as it goes.
func TestAllocatorFollowsWishes(t *testing.T) {
	ar := newAllocRig(t)
	camera := ar.track(vp8Codec, 0, 150_000, 500_000, 1_700_000)
	camera.SetMaxLayer(LayerLow)
	ar.a.mu.Lock()
	ar.a.budget = 1_000_000
	ar.a.allocate(ar.clock.now())
	ar.a.mu.Unlock()
	if c := camera.Stats().CapLayer; c != LayerLow {
		t.Fatalf("cap %d while the subscriber wants the lowest layer", c)
	}
	camera.SetMaxLayer(LayerHigh)
	for range 3 {
		ar.second([]uint64{20}, []uint64{1000}, []uint64{0}, []uint64{0})
	}
	if c := camera.Stats().CapLayer; c != LayerMedium {
		t.Fatalf("cap %d after the subscriber asked for more with 1 Mbit/s of budget, want the middle layer", c)
	}
}

func TestAllocatorWaitsForEnoughPackets(t *testing.T) {
	ar := newAllocRig(t)
	camera := ar.track(vp8Codec, 0, 150_000, 500_000, 1_700_000)
	// 5 packets a second, 2 of them lost: the window grows until it holds 30 packets.
	for range 6 {
		ar.second([]uint64{5}, []uint64{1000}, []uint64{0}, []uint64{2})
	}
	if c := camera.Stats().CapLayer; c != LayerHigh || ar.a.Budget() != 0 {
		t.Fatalf("cap %d, budget %d after 25 packets", c, ar.a.Budget())
	}
	ar.second([]uint64{5}, []uint64{1000}, []uint64{0}, []uint64{2})
	// 30 packets of 1,060 bytes on the wire over 6 s, 40% lost: 42.4 kbps x 0.6 arrived.
	if b := ar.a.Budget(); b < 24500 || b > 26500 {
		t.Fatalf("budget %d after 30 packets, want ~25.4 kbps", b)
	}
	// Not even the lowest layer (150 kbit/s) fits: the camera pauses.
	if st := camera.Stats(); st.CapLayer != LayerLow || !st.BWPaused {
		t.Fatalf("cap %d, paused %v: want paused at the lowest layer", st.CapLayer, st.BWPaused)
	}
}

func TestLost24(t *testing.T) {
	for _, tc := range []struct {
		in   uint32
		want int32
	}{{0, 0}, {5, 5}, {0x7fffff, 0x7fffff}, {0xffffff, -1}, {0x800000, -0x800000}} {
		if got := lost24(tc.in); got != tc.want {
			t.Errorf("lost24(%#x) = %d, want %d", tc.in, got, tc.want)
		}
	}
}

// A line that lets the voice's small packets through and drops half the camera's large ones
// carries what arrived of each: the loss is weighed by bitrate, not counted in packets
// (16 of 126 packets lost would read as a 13% loss and a line 40% wider than it is).
func TestAllocatorLossWeighedByBitrate(t *testing.T) {
	ar := newAllocRig(t)
	ar.track(vp8Codec, 0, 150_000, 500_000, 1_500_000)
	ar.track(opusCodec, 0, 50_000)
	// Camera: 32 packets/s of 1,140 bytes (300 kbit/s with overhead); voice: 94 packets/s
	// of 6 bytes, 50 kbit/s with overhead. Then half the camera's packets are lost.
	for _, lost := range []uint64{0, 0, 16} {
		ar.second([]uint64{32, 94}, []uint64{1140, 6}, []uint64{0, 0}, []uint64{lost, 0})
	}
	// Arrived: 150 kbit/s of camera + 50 of voice.
	if b := ar.a.Budget(); b < 190_000 || b > 210_000 {
		t.Fatalf("budget %d, want ~200 kbit/s (what arrived)", b)
	}
}
