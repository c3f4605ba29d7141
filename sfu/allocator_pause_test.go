package sfu

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
)

// setBudget stands in for the budget's source (the loss controller today, a delay-based
// estimate later): the budget becomes b and is shared out at once.
func (ar *allocRig) setBudget(b uint64) {
	ar.keepAlive()
	ar.a.mu.Lock()
	defer ar.a.mu.Unlock()
	ar.a.budget = b
	ar.a.allocate(ar.clock.now())
}

// keyframe forwards a keyframe of layer through d, as the receiver's fan-out would.
func (ar *allocRig) keyframe(d *DownTrack, layer int, seq uint16) {
	now := ar.clock.now()
	d.writeRTP(&inPacket{layer: layer, header: &rtp.Header{SequenceNumber: seq, Timestamp: uint32(seq) * 3000},
		payload: []byte{0}, keyframe: true, arrival: now, available: d.receiver.availableMask(now)})
}

// streamStates records the Allocator's stream state callbacks, naming the down tracks.
type streamStates struct {
	names  map[*DownTrack]string
	events []string
}

func watchStreamStates(a *Allocator, names map[*DownTrack]string) *streamStates {
	s := &streamStates{names: names}
	a.OnStreamState(func(d *DownTrack, paused bool) {
		state := "active"
		if paused {
			state = "paused"
		}
		s.events = append(s.events, s.names[d]+" "+state)
	})
	return s
}

func (s *streamStates) want(t *testing.T, when string, want ...string) {
	t.Helper()
	if !slices.Equal(s.events, want) {
		t.Fatalf("%s: stream states %q, want %q", when, s.events, want)
	}
}

func paused(d *DownTrack) bool { return d.Stats().BWPaused }

// Budget 300 kbit/s, two voices of 50 kbit/s (62.5 kbit/s of reserve each), two cameras of
// 150 kbit/s at their lowest layer: the student's camera pauses, the teacher's (higher
// priority) stays; at 200 kbit/s the teacher's pauses too; the voices never. Neither comes
// back within 5 s of its pause; after that each does once the budget has room, and the
// subscriber hears ACTIVE only when its keyframe went out.
func TestAllocatorPausesVideoBeforeAudio(t *testing.T) {
	const kbps = 1000
	ar := newAllocRig(t)
	teacher := ar.track(vp8Codec, 1, 150*kbps, 500*kbps, 1500*kbps)
	student := ar.track(vp8Codec, 0, 150*kbps, 500*kbps, 1500*kbps)
	voice1 := ar.track(opusCodec, 0, 50*kbps)
	voice2 := ar.track(opusCodec, 0, 50*kbps)
	states := watchStreamStates(ar.a, map[*DownTrack]string{teacher: "teacher", student: "student"})
	forwarding(teacher, LayerHigh)
	forwarding(student, LayerHigh)

	ar.setBudget(300 * kbps)
	if !paused(student) || paused(teacher) || teacher.Stats().CapLayer != LayerLow {
		t.Fatalf("at 300 kbit/s: student paused %v, teacher paused %v cap %d", paused(student), paused(teacher), teacher.Stats().CapLayer)
	}
	if student.CurrentLayer() != LayerNone || student.TargetLayer() != LayerNone {
		t.Fatal("a paused camera is still forwarded")
	}
	states.want(t, "300 kbit/s", "student paused")
	studentPaused := ar.clock.now()

	ar.clock.advance(time.Second)
	ar.setBudget(200 * kbps)
	if !paused(teacher) {
		t.Fatal("at 200 kbit/s (125 of them for the voices) the teacher's 150 kbit/s camera still goes")
	}
	states.want(t, "200 kbit/s", "student paused", "teacher paused")
	for _, v := range []*DownTrack{voice1, voice2} {
		if paused(v) || v.TargetLayer() == LayerNone {
			t.Fatal("a voice paused")
		}
	}

	// The link recovers at once: nothing resumes before 5 s of pause.
	ar.clock.advance(time.Second)
	ar.setBudget(2000 * kbps)
	ar.clock.advance(time.Duration(studentPaused + int64(pausedMinWait) - ar.clock.now() - 1))
	ar.setBudget(2000 * kbps)
	if !paused(student) || !paused(teacher) {
		t.Fatalf("resumed before %v: student %v, teacher %v", pausedMinWait, !paused(student), !paused(teacher))
	}
	plis := len(ar.rigs[1].rtcp.plis())

	// 5 s after its pause the student's camera resumes (the teacher's, paused a second
	// later, waits): at the lowest layer, asking for its keyframe; the subscriber still
	// sees it paused until the keyframe goes out.
	ar.clock.advance(1)
	ar.setBudget(2000 * kbps)
	if paused(student) || !paused(teacher) {
		t.Fatalf("at 5 s: student paused %v, teacher paused %v", paused(student), paused(teacher))
	}
	if got := ar.rigs[1].rtcp.plis(); len(got) != plis+1 || got[plis] != 1000 {
		t.Fatalf("PLIs on resume %v, want one for the lowest layer (SSRC 1000)", got[plis:])
	}
	states.want(t, "resumed, no keyframe yet", "student paused", "teacher paused")
	ar.keyframe(student, LayerLow, 100)
	if student.CurrentLayer() != LayerLow {
		t.Fatalf("student forwards layer %d after its keyframe", student.CurrentLayer())
	}
	states.want(t, "student's keyframe", "student paused", "teacher paused", "student active")
	ar.keyframe(student, LayerLow, 101)
	states.want(t, "a second keyframe", "student paused", "teacher paused", "student active")

	ar.clock.advance(time.Second)
	ar.setBudget(2000 * kbps)
	if paused(teacher) {
		t.Fatal("the teacher's camera stays paused 5 s after its pause with room for it")
	}
	ar.keyframe(teacher, LayerLow, 100)
	states.want(t, "teacher's keyframe", "student paused", "teacher paused", "student active", "teacher active")
}

// A camera paused, then resumed before its keyframe came, then paused again: the
// subscriber, who never saw it active, hears nothing more.
func TestAllocatorPauseWhileResuming(t *testing.T) {
	ar := newAllocRig(t)
	camera := ar.track(vp8Codec, 0, 150_000, 500_000, 1_500_000)
	states := watchStreamStates(ar.a, map[*DownTrack]string{camera: "camera"})
	ar.setBudget(100_000)
	ar.clock.advance(pausedMinWait)
	ar.setBudget(1_000_000)
	if paused(camera) {
		t.Fatal("not resumed")
	}
	ar.setBudget(100_000)
	if !paused(camera) {
		t.Fatal("not paused again")
	}
	states.want(t, "pause, resume, pause", "camera paused")
	ar.keyframe(camera, LayerLow, 1)
	states.want(t, "a keyframe while paused", "camera paused")
}

// With loss as the only measure, the way back is a probe: after 5 s of pause and the
// quiet backoff, the budget grows to the voice's reserve + the camera's lowest layer x 1.2;
// a resume that brings loss pauses the camera again and doubles the wait, one that holds
// stays.
func TestAllocatorResumeProbe(t *testing.T) {
	ar := newAllocRig(t)
	camera := ar.track(vp8Codec, 0, 150_000, 500_000, 1_500_000)
	ar.track(opusCodec, 0, 50_000)
	states := watchStreamStates(ar.a, map[*DownTrack]string{camera: "camera"})
	// Camera: 1.7 Mbit/s (150 packets/s of 1,357 bytes); voice: 50 packets/s of 65 bytes,
	// 50 kbit/s with overhead.
	second := func(cameraPackets, cameraBytes, lossPerMille uint64) {
		ar.second([]uint64{cameraPackets, 50}, []uint64{cameraBytes, 65}, []uint64{0, 0},
			[]uint64{cameraPackets * lossPerMille / 1000, 50 * lossPerMille / 1000})
	}
	second(150, 1357, 0)
	second(150, 1357, 900) // 90% lost: the line carries ~175 kbit/s, not 62.5 + 150
	if !paused(camera) {
		t.Fatalf("camera not paused on a %d bit/s budget", ar.a.Budget())
	}
	states.want(t, "90% loss", "camera paused")

	// Only the voice goes, without loss. The backoff (4 s) passes, but not 5 s of pause.
	for range 4 {
		second(0, 0, 0)
	}
	if probing, _ := ar.probeState(); probing || !paused(camera) {
		t.Fatalf("4 s after the pause: probing %v, paused %v", probing, paused(camera))
	}
	second(0, 0, 0)
	if paused(camera) {
		t.Fatal("no resume probe 5 s after the pause")
	}
	b := ar.a.Budget()
	if want := uint64((62_500 + 180_000) * probeHeadroom); b < want-1000 || b > want+1000 {
		t.Fatalf("resume probe budget %d, want ~%d (reserve + lowest layer x 1.2)", b, want)
	}
	ar.keyframe(camera, LayerLow, 500)
	states.want(t, "resumed", "camera paused", "camera active")

	// The lowest layer (150 kbit/s: 40 packets of 409 bytes) brings 20% loss to itself. The
	// window of its first keyframe is not judged (a burst partly in flight); the next one
	// pauses the camera again, and the next try waits twice as long.
	lossy := func() { ar.second([]uint64{40, 50}, []uint64{409, 65}, []uint64{0, 0}, []uint64{8, 0}) }
	lossy()
	if probing, _ := ar.probeState(); !probing || paused(camera) {
		t.Fatal("the keyframe's window judged")
	}
	lossy()
	if probing, backoff := ar.probeState(); probing || backoff != 2*probeBackoffMin || !paused(camera) {
		t.Fatalf("after a failed resume: probing %v, backoff %v, paused %v", probing, backoff, paused(camera))
	}
	states.want(t, "resume failed", "camera paused", "camera active", "camera paused")
	for range 7 {
		second(0, 0, 0)
	}
	if !paused(camera) {
		t.Fatal("resumed again before the doubled backoff")
	}
	second(0, 0, 0)
	if paused(camera) {
		t.Fatal("no second resume probe after 8 quiet seconds")
	}
	ar.keyframe(camera, LayerLow, 600)
	// The keyframe asked for makes the lowest layer 300 kbit/s for a second, and its peak
	// fades slowly: that pauses nothing, neither during the probe nor after it held.
	ar.rigs[0].layers[LayerLow].bitrate.Store(300_000)
	second(40, 409, 0)
	ar.rigs[0].layers[LayerLow].bitrate.Store(150_000)
	for range 3 {
		second(40, 409, 0)
	}
	if probing, backoff := ar.probeState(); probing || backoff != probeBackoffMin || paused(camera) {
		t.Fatalf("a resume that held: probing %v, backoff %v, paused %v", probing, backoff, paused(camera))
	}
	states.want(t, "resume held", "camera paused", "camera active", "camera paused", "camera active")
}

// When the budget falls under 60% of the video being sent, the top layer stops at once
// and the lower layer's keyframe is asked for; a milder cut keeps forwarding the top
// layer until the lower one's keyframe comes.
func TestAllocatorEmergencyDownswitch(t *testing.T) {
	for _, tc := range []struct {
		lossPerSecond uint64 // of 150 packets
		dropped       bool
	}{{75, true}, {45, false}} {
		t.Run(fmt.Sprintf("loss %d%%", tc.lossPerSecond*100/150), func(t *testing.T) {
			ar := newAllocRig(t)
			camera := ar.track(vp8Codec, 0, 150_000, 500_000, 1_700_000)
			forwarding(camera, LayerHigh)
			ar.second([]uint64{150}, []uint64{1357}, []uint64{0}, []uint64{0})
			ar.second([]uint64{150}, []uint64{1357}, []uint64{0}, []uint64{tc.lossPerSecond})
			if c := camera.Stats().CapLayer; c != LayerMedium {
				t.Fatalf("cap %d, want the middle layer (budget %d)", c, ar.a.Budget())
			}
			if dropped := camera.CurrentLayer() == LayerNone; dropped != tc.dropped {
				t.Fatalf("top layer dropped at once: %v, want %v (budget %d)", dropped, tc.dropped, ar.a.Budget())
			}
			if tc.dropped && !slices.Contains(ar.rigs[0].rtcp.plis(), 1001) {
				t.Fatalf("no PLI for the middle layer: %v", ar.rigs[0].rtcp.plis())
			}
			if paused(camera) {
				t.Fatal("a downswitch paused the camera")
			}
		})
	}
}

// Packets sent after the newest one a receiver report covers were on their way when it
// left: they are not counted as sent, hence not as lost, in that report's window.
func TestAllocatorInFlightNotLost(t *testing.T) {
	ar := newAllocRig(t)
	camera := ar.track(vp8Codec, 0, 150_000, 500_000, 1_500_000)
	camera.SetMaxLayer(LayerLow)
	report := func(highest uint32) {
		camera.handleReports([]rtcp.ReceptionReport{{SSRC: camera.ssrc, LastSequenceNumber: highest}})
	}
	send := func(from, to uint16) {
		for s := from; s <= to; s++ {
			ar.keyframe(camera, LayerLow, s)
		}
	}
	send(1, 10)
	report(10)
	send(11, 50)
	report(45) // 46-50 still on their way
	ar.a.mu.Lock()
	sent, received := ar.a.tracks[0].sent, ar.a.tracks[0].received
	ar.a.mu.Unlock()
	if sent != 35 || received != 35 {
		t.Fatalf("window: %d sent, %d received; want 35 and 35", sent, received)
	}
}
