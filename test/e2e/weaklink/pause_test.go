package weaklink

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/livekit/protocol/livekit"

	tc "github.com/sanke-edu/sanke/test/testclient"
	"github.com/sanke-edu/sanke/test/testmedia"
)

// TestVideoPausesBeforeAudio: a teacher publishes a microphone (48 kbit/s Opus) and a 720p
// simulcast camera (its lowest layer 150 kbit/s); a teaching point subscribes over a line
// that drops from 3 Mbit/s to 180 kbit/s, room for the voice but not for the voice and the
// smallest picture. The server pauses the camera for it and says so (the stream state
// update livekit-client turns into TrackStreamStateChanged), the voice keeps coming every
// second, and when the line is back the camera resumes: ACTIVE, and video arrives again.
func TestVideoPausesBeforeAudio(t *testing.T) {
	files := testmedia.Get(t)
	l := newLink(t, "3mbit")
	srv := startServer(t, true)
	const room = "pause"

	pub := tc.Join(t, srv.Target, room, "teacher", nil)
	mic, err := tc.PublishOpus(pub.Room, files, nil)
	if err != nil {
		t.Fatal(err)
	}
	camera, err := tc.PublishSimulcastVP8(pub.Room, files, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The subscriber's signaling goes through a tap on the host's end of the link: the Go
	// SDK ignores stream state updates, the tap records them.
	tap := tc.StartSignalTapOn(t, l.hostIP, srv.Target)
	url := tap.Target().URL
	sub := startSubscriber(t, l, url, srv.Target.Token(t, "point", tc.SubscribeOnlyGrant(room)))

	// Both flow on the wide line.
	waitSecond(t, sub, 30*time.Second, "audio and video on the 3 Mbit/s line", func(s second) bool {
		return s.audio > 2000 && s.video > 20000
	})

	l.setRate(t, "180kbit")
	narrowed := time.Now()
	paused := waitStreamState(t, tap, 30*time.Second, camera.SID(), livekit.StreamState_PAUSED)
	if paused.ParticipantSid != pub.Room.LocalParticipant.SID() {
		t.Fatalf("PAUSED names participant %s, want the teacher %s", paused.ParticipantSid, pub.Room.LocalParticipant.SID())
	}
	t.Logf("camera paused %.1f s after the line narrowed", time.Since(narrowed).Seconds())
	if s := streamStatesFor(tap, mic.SID()); len(s) > 0 {
		t.Fatalf("the microphone got stream states: %v", s)
	}

	// Paused: the voice keeps coming (48 kbit/s is 6 KB/s), the picture does not. Judged over
	// 3 s together, at half the rate, with audio in every second: a loaded machine's slow
	// reader may shift bytes from one second's report to the next.
	drain(sub)
	var audio []int64
	var total int64
	for range 3 {
		s := nextSecond(t, sub)
		audio = append(audio, s.audio)
		total += s.audio
		if s.audio == 0 {
			t.Fatalf("no audio in a second while the camera is paused (seconds so far %v)", audio)
		}
	}
	if total < 3*3000 {
		t.Fatalf("only %d bytes of audio in 3 s while the camera is paused (%v), want at least 9000", total, audio)
	}
	t.Logf("audio bytes per second while paused: %v", audio)

	l.setRate(t, "3mbit")
	restored := time.Now()
	waitStreamState(t, tap, 40*time.Second, camera.SID(), livekit.StreamState_ACTIVE)
	t.Logf("camera active %.1f s after the line came back", time.Since(restored).Seconds())
	waitSecond(t, sub, 15*time.Second, "video again after ACTIVE", func(s second) bool { return s.video > 10000 })
	// And it stays: past the moment the resume is judged (3 s after its keyframe), video
	// keeps coming every second.
	for i := range 5 {
		if s := nextSecond(t, sub); s.video < 5000 {
			t.Fatalf("second %d after the resume: %d bytes of video (stream states %v)", i+1, s.video, streamStatesFor(tap, camera.SID()))
		}
	}

	states := streamStatesFor(tap, camera.SID())
	if len(states) < 2 || states[0] != livekit.StreamState_PAUSED || states[len(states)-1] != livekit.StreamState_ACTIVE {
		t.Fatalf("camera stream states %v, want PAUSED first and ACTIVE last", states)
	}
	for i := 1; i < len(states); i++ {
		if states[i] == states[i-1] {
			t.Fatalf("camera stream states %v: the same state twice in a row", states)
		}
	}
}

// waitStreamState waits for a stream state update to the client naming track in state and
// returns its entry.
func waitStreamState(t *testing.T, tap *tc.SignalTap, timeout time.Duration, track string, state livekit.StreamState) *livekit.StreamStateInfo {
	t.Helper()
	var found *livekit.StreamStateInfo
	tc.Eventually(t, timeout, fmt.Sprintf("stream state %s for %s", state, track), func() (bool, string) {
		for _, m := range tap.Messages() {
			for _, s := range m.Response.GetStreamStateUpdate().GetStreamStates() {
				if s.TrackSid == track && s.State == state {
					found = s
					return true, ""
				}
			}
		}
		return false, signalTypes(tap)
	})
	return found
}

// streamStatesFor lists the states the client was told for track, in order.
func streamStatesFor(tap *tc.SignalTap, track string) []livekit.StreamState {
	var out []livekit.StreamState
	for _, m := range tap.Messages() {
		for _, s := range m.Response.GetStreamStateUpdate().GetStreamStates() {
			if s.TrackSid == track {
				out = append(out, s.State)
			}
		}
	}
	return out
}

// signalTypes summarizes the messages the tap saw, for a failure's message.
func signalTypes(tap *tc.SignalTap) string {
	counts := map[string]int{}
	for _, m := range tap.Messages() {
		counts[m.Type()]++
	}
	var b strings.Builder
	for k, v := range counts {
		b.WriteString(k + "=" + strconv.Itoa(v) + " ")
	}
	return "signal messages: " + b.String()
}

// drain forgets the subscriber's reports so far.
func drain(s *subscriber) {
	for {
		select {
		case <-s.seconds:
		default:
			return
		}
	}
}

// nextSecond returns the subscriber's next one-second report.
func nextSecond(t *testing.T, s *subscriber) second {
	t.Helper()
	select {
	case sec := <-s.seconds:
		return sec
	case <-time.After(10 * time.Second):
		t.Fatalf("no report from the subscriber in 10 s:\n%s", s.output.String())
		return second{}
	}
}

// waitSecond waits for a one-second report that satisfies ok.
func waitSecond(t *testing.T, s *subscriber, timeout time.Duration, what string, ok func(second) bool) {
	t.Helper()
	drain(s)
	deadline := time.After(timeout)
	var last second
	for {
		select {
		case sec := <-s.seconds:
			if ok(sec) {
				return
			}
			last = sec
		case <-deadline:
			t.Fatalf("%s: not within %v (last second: %d bytes of audio, %d of video)", what, timeout, last.audio, last.video)
		}
	}
}
