package testclient

// END-TO-END TEST. It needs a running server: by default StartTarget builds ./cmd/sanke and
// runs `sanke serve --dev` (so it FAILS until Sanke's server works); with SANKE_REF_URL set
// (for example ws://127.0.0.1:7880 for a LiveKit server in --dev mode) it runs against that
// server instead, which is how this harness was validated.

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/livekit/protocol/livekit"
	lksdk "github.com/livekit/server-sdk-go/v2"
	"github.com/pion/webrtc/v4"

	"github.com/sanke-edu/sanke/test/testmedia"
)

// SignalDumpEnv names a file that TestE2ESimulcast writes the signaling transcript to.
const SignalDumpEnv = "SANKE_TEST_SIGNAL_DUMP"

// TestE2ESimulcast (E2E) publishes three VP8 simulcast layers and Opus from one Go SDK client
// and checks that a LOW subscriber gets 320x180, a HIGH one 1280x720, that switching layers
// works (MEDIUM gives 640x360), that media is continuous (no sequence gaps, no timestamp going
// back, no broken frames, 30 fps), and that data, mute and leave reach the subscribers.
func TestE2ESimulcast(t *testing.T) {
	target := StartTarget(t)
	tap := StartSignalTap(t, target)
	tt := tap.Target()
	t.Cleanup(func() {
		if path := os.Getenv(SignalDumpEnv); path != "" {
			text := "HTTP requests:\n" + strings.Join(tap.Requests(), "\n") + "\n\nMessages:\n" + tap.Transcript()
			if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
				t.Errorf("write %s: %v", path, err)
			}
		}
		if t.Failed() {
			t.Logf("signaling transcript:\n%s", tap.Transcript())
		}
	})
	files := testmedia.Get(t)
	room := fmt.Sprintf("e2e-simulcast-%d", time.Now().UnixNano())
	t.Logf("E2E against %s (%s), room %s", target.Name, target.URL, room)

	pub := Join(t, tt, room, "publisher", nil)
	video, err := PublishSimulcastVP8(pub.Room, files, nil)
	if err != nil {
		t.Fatal(err)
	}
	audio, err := PublishOpus(pub.Room, files, nil)
	if err != nil {
		t.Fatal(err)
	}

	low := Join(t, tt, room, "sub-low", nil)
	high := Join(t, tt, room, "sub-high", nil)
	lowPub := low.WaitForPublication(10*time.Second, "publisher", lksdk.TrackKindVideo)
	if err := lowPub.SetVideoQuality(livekit.VideoQuality_LOW); err != nil {
		t.Fatal(err)
	}
	highPub := high.WaitForPublication(10*time.Second, "publisher", lksdk.TrackKindVideo)
	if err := highPub.SetVideoQuality(livekit.VideoQuality_HIGH); err != nil {
		t.Fatal(err)
	}

	lowVideo := low.WaitForTrack(15*time.Second, "publisher", webrtc.RTPCodecTypeVideo)
	highVideo := high.WaitForTrack(15*time.Second, "publisher", webrtc.RTPCodecTypeVideo)
	waitResolution := func(ts *TrackStats, w, h int) {
		t.Helper()
		Eventually(t, 15*time.Second, fmt.Sprintf("%dx%d frames", w, h), func() (bool, string) {
			s := ts.Snapshot()
			return s.HasResolution(w, h) && s.Frames > 15, s.String()
		})
	}
	waitResolution(lowVideo, 320, 180)
	waitResolution(highVideo, 1280, 720)

	// Every layer reaches the server: the LOW subscriber moves to MEDIUM, then back.
	if err := lowPub.SetVideoQuality(livekit.VideoQuality_MEDIUM); err != nil {
		t.Fatal(err)
	}
	waitResolution(lowVideo, 640, 360)
	if err := lowPub.SetVideoQuality(livekit.VideoQuality_LOW); err != nil {
		t.Fatal(err)
	}
	waitResolution(lowVideo, 320, 180)

	// Continuity over a measurement window.
	before := map[string]TrackSnapshot{"low": lowVideo.Snapshot(), "high": highVideo.Snapshot()}
	time.Sleep(3 * time.Second) // the window being measured, not an assertion on timing
	after := map[string]TrackSnapshot{"low": lowVideo.Snapshot(), "high": highVideo.Snapshot()}
	for name, a := range after {
		b := before[name]
		fps := a.FPSSince(b)
		t.Logf("%s: %.1f fps, %.0f kbit/s; %s", name, fps, a.BitrateSince(b)/1000, a)
		if fps < 20 || fps > 40 {
			t.Errorf("%s: %.1f fps, want ~30", name, fps)
		}
		if a.Gaps != b.Gaps || a.BrokenFrames != b.BrokenFrames || a.TimestampBackwards != b.TimestampBackwards {
			t.Errorf("%s: not continuous in the window: before %s; after %s", name, b, a)
		}
	}
	for name, s := range after {
		// Across the whole subscription, layer switches included, the forwarded stream stays
		// one continuous RTP stream.
		if s.Gaps != 0 || s.TimestampBackwards != 0 || s.PictureIDJumps != 0 {
			t.Errorf("%s: stream not continuous across switches: %s", name, s)
		}
	}
	if br := after["low"].BitrateSince(before["low"]); br > 400_000 {
		t.Errorf("low subscriber gets %.0f bit/s: not the low layer?", br)
	}
	if br := after["high"].BitrateSince(before["high"]); br < 700_000 {
		t.Errorf("high subscriber gets %.0f bit/s: not the high layer?", br)
	}

	// Audio reaches both subscribers at 50 packets/s with levels.
	for _, c := range []*Client{low, high} {
		a := c.WaitForTrack(10*time.Second, "publisher", webrtc.RTPCodecTypeAudio)
		Eventually(t, 10*time.Second, c.Identity+" audio", func() (bool, string) {
			s := a.Snapshot()
			return s.Packets > 100 && s.Gaps == 0, s.String()
		})
	}
	for _, l := range video.Stats() {
		t.Logf("publisher layer %s %dx%d: %+v", l.RID, l.Width, l.Height, l)
	}

	// Data packets.
	if err := pub.Room.LocalParticipant.PublishDataPacket(lksdk.UserData([]byte("hello")),
		lksdk.WithDataPublishReliable(true), lksdk.WithDataPublishTopic("greeting")); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*Client{low, high} {
		m := c.WaitForData(10*time.Second, func(m DataMessage) bool { return m.Topic == "greeting" })
		if string(m.Payload) != "hello" || m.From != "publisher" {
			t.Errorf("%s got data %+v", c.Identity, m)
		}
	}

	// Mute, then leave.
	audio.SetMuted(true)
	high.WaitForEvent(10*time.Second, EventTrackMuted, "publisher")
	pub.Disconnect()
	for _, c := range []*Client{low, high} {
		c.WaitForEvent(10*time.Second, EventParticipantDisconnected, "publisher")
	}
	Eventually(t, 10*time.Second, "subscriber tracks end", func() (bool, string) {
		s := lowVideo.Snapshot()
		return s.Ended || lowVideo.Snapshot().LastPacketAt.Before(time.Now().Add(-2*time.Second)), s.String()
	})

	// Signaling basics every LiveKit client relies on: on each connection the server speaks
	// first, with a JoinResponse carrying the room and the participant.
	first := map[int]SignalMessage{}
	for _, m := range tap.Messages() {
		if _, seen := first[m.Conn]; !seen && !m.FromClient {
			first[m.Conn] = m
		}
	}
	if len(first) != 3 {
		t.Errorf("%d signaling connections with server messages, want 3", len(first))
	}
	for conn, m := range first {
		if m.Type() != "join" || m.Response.GetJoin().GetRoom().GetName() != room || m.Response.GetJoin().GetParticipant().GetSid() == "" {
			t.Errorf("connection %d: first server message is %s, want a join for room %s", conn, m, room)
		}
	}
}
