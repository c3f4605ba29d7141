package e2e

import (
	"fmt"
	"testing"
	"time"

	"github.com/livekit/protocol/livekit"
	lksdk "github.com/livekit/server-sdk-go/v2"
	"github.com/pion/webrtc/v4"

	tc "github.com/sanke-edu/sanke/test/testclient"
	"github.com/sanke-edu/sanke/test/testmedia"
)

// TestCore is issue 2's first end-to-end test, in both signaling modes on one server:
// "dual" is the default publisher + subscriber PeerConnections (/rtc with query parameters),
// "single" is lksdk.WithSinglePeerConnection() (the Go SDK's join_request on /rtc, one
// PeerConnection). In each mode alice publishes three real VP8 simulcast layers and Opus;
// bob asks for LOW and carol for HIGH. The test asserts:
//   - each receives the right layer, judged by the VP8 keyframe headers (320x180, 1280x720);
//   - bob switching LOW -> HIGH -> LOW -> MEDIUM changes the resolution each time while the
//     forwarded stream stays one continuous RTP stream: no sequence gap, no timestamp going
//     backwards, no picture-id jump, and never a second without packets; carol is unaffected;
//   - audio reaches both;
//   - mute/unmute of alice's audio reaches bob and carol as SDK events, and audio flows again;
//   - a data packet for [carol] reaches carol only, stamped with alice's identity; a broadcast
//     reaches both exactly once;
//   - when alice leaves, bob and carol see her disconnect and her tracks unsubscribed.
func TestCore(t *testing.T) {
	srv := startServer(t)
	files := testmedia.Get(t)
	inEachPeerConnectionMode(t, func(t *testing.T, connect []lksdk.ConnectOption) {
		runCore(t, srv.Target(), files, connect)
	})
	serverAlive(t, srv)
}

func runCore(t *testing.T, target tc.Target, files testmedia.Files, connect []lksdk.ConnectOption) {
	room := roomName(t, "core")
	single := len(connect) > 0
	gaps := newArrivalGaps()
	join := func(identity string) *tc.Client {
		c := tc.Join(t, target, room, identity, &tc.JoinOptions{ConnectOptions: connect, OnPacket: gaps.OnPacket})
		if hasSub := c.Room.LocalParticipant.GetSubscriberPeerConnection() != nil; hasSub == single {
			t.Fatalf("%s: subscriber PeerConnection present=%v in %s mode", identity, hasSub, t.Name())
		}
		return c
	}

	alice := join("alice")
	video, err := tc.PublishSimulcastVP8(alice.Room, files, nil)
	if err != nil {
		t.Fatal(err)
	}
	audio, err := tc.PublishOpus(alice.Room, files, nil)
	if err != nil {
		t.Fatal(err)
	}
	bob := join("bob")
	carol := join("carol")

	// Layers: bob LOW, carol HIGH.
	bobPub := bob.WaitForPublication(eventWait, "alice", lksdk.TrackKindVideo)
	if err := bobPub.SetVideoQuality(livekit.VideoQuality_LOW); err != nil {
		t.Fatal(err)
	}
	carolPub := carol.WaitForPublication(eventWait, "alice", lksdk.TrackKindVideo)
	if err := carolPub.SetVideoQuality(livekit.VideoQuality_HIGH); err != nil {
		t.Fatal(err)
	}
	bobVideo := bob.WaitForTrack(mediaWait, "alice", webrtc.RTPCodecTypeVideo)
	carolVideo := carol.WaitForTrack(mediaWait, "alice", webrtc.RTPCodecTypeVideo)
	if bobPub.SID() != video.SID() || bobVideo.Snapshot().TrackSID != video.SID() {
		t.Fatalf("bob's video publication %s / track %s, alice published %s", bobPub.SID(), bobVideo.Snapshot().TrackSID, video.SID())
	}
	waitResolution(t, bobVideo, 320, 180, "bob (LOW)")
	waitResolution(t, carolVideo, 1280, 720, "carol (HIGH)")

	// Audio reaches both.
	bobAudio := bob.WaitForTrack(mediaWait, "alice", webrtc.RTPCodecTypeAudio)
	carolAudio := carol.WaitForTrack(mediaWait, "alice", webrtc.RTPCodecTypeAudio)
	for name, ts := range map[string]*tc.TrackStats{"bob": bobAudio, "carol": carolAudio} {
		expectFlow(t, ts, 50, name+" audio")
		if s := ts.Snapshot(); s.MimeType != webrtc.MimeTypeOpus || s.TrackSID != audio.SID() {
			t.Errorf("%s audio: %s, want opus track %s", name, s, audio.SID())
		}
	}

	// Layer switches for bob: LOW -> HIGH -> LOW -> MEDIUM. (Before bob's LOW request took
	// effect he may have received the default layer, HIGH: only what follows is compared.)
	gaps.reset(bobVideo)
	gaps.reset(carolVideo)
	seen := len(bobVideo.Snapshot().Resolutions) - 1
	carolSeen := len(carolVideo.Snapshot().Resolutions)
	for _, step := range []struct {
		q    livekit.VideoQuality
		w, h int
	}{
		{livekit.VideoQuality_HIGH, 1280, 720},
		{livekit.VideoQuality_LOW, 320, 180},
		{livekit.VideoQuality_MEDIUM, 640, 360},
	} {
		if err := bobPub.SetVideoQuality(step.q); err != nil {
			t.Fatal(err)
		}
		waitResolution(t, bobVideo, step.w, step.h, "bob ("+step.q.String()+")")
	}
	expectFlow(t, bobVideo, 60, "bob video after the switches")
	b := bobVideo.Snapshot()
	t.Logf("bob video: %s; resolutions %v; worst arrival gap %v", b, sizes(b.Resolutions), gaps.worstGap(bobVideo))
	if got, want := sizes(b.Resolutions[seen:]), "320x180 1280x720 320x180 640x360"; got != want {
		t.Errorf("bob's resolutions over time: %s, want them to end with %s", sizes(b.Resolutions), want)
	}
	if b.Gaps != 0 || b.Missing != 0 || b.TimestampBackwards != 0 || b.PictureIDJumps != 0 {
		t.Errorf("bob's video is not one continuous stream across layer switches: %s", b)
	}
	if d := gaps.worstGap(bobVideo); d > time.Second {
		t.Errorf("bob's video stalled for %v during the layer switches", d)
	}
	c := carolVideo.Snapshot()
	if len(c.Resolutions) != carolSeen || !c.HasResolution(1280, 720) || c.Gaps != 0 || c.TimestampBackwards != 0 || c.PictureIDJumps != 0 {
		t.Errorf("carol's video (HIGH) was disturbed while bob switched: resolutions %s; %s", sizes(c.Resolutions), c)
	}
	if d := gaps.worstGap(carolVideo); d > time.Second {
		t.Errorf("carol's video stalled for %v while bob switched layers", d)
	}

	// Mute and unmute alice's audio.
	audio.SetMuted(true)
	for _, cl := range []*tc.Client{bob, carol} {
		waitTrackEvent(t, cl, tc.EventTrackMuted, "alice", audio.SID())
		if pub := cl.WaitForPublication(eventWait, "alice", lksdk.TrackKindAudio); !pub.IsMuted() {
			t.Errorf("%s: alice's audio publication not muted after the mute event", cl.Identity)
		}
	}
	audio.SetMuted(false)
	for _, cl := range []*tc.Client{bob, carol} {
		waitTrackEvent(t, cl, tc.EventTrackUnmuted, "alice", audio.SID())
	}
	expectFlow(t, bobAudio, 25, "bob audio after unmute")
	expectFlow(t, carolAudio, 25, "carol audio after unmute")

	// Data packets. The reliable channel is ordered end to end, so once a later packet has
	// arrived, an earlier one that did not arrive never will.
	send := func(topic string, dest []string) {
		t.Helper()
		opts := []lksdk.DataPublishOption{lksdk.WithDataPublishReliable(true), lksdk.WithDataPublishTopic(topic)}
		if dest != nil {
			opts = append(opts, lksdk.WithDataPublishDestination(dest))
		}
		if err := alice.Room.LocalParticipant.PublishDataPacket(lksdk.UserData([]byte("payload "+topic)), opts...); err != nil {
			t.Fatalf("publish data %q: %v", topic, err)
		}
	}
	send("to-carol", []string{"carol"})
	send("everyone", nil)
	send("end", nil)
	for _, cl := range []*tc.Client{bob, carol} {
		cl.WaitForData(eventWait, func(m tc.DataMessage) bool { return m.Topic == "end" })
		counts := map[string]int{}
		for _, m := range cl.Data() {
			counts[m.Topic]++
			if m.From != "alice" || string(m.Payload) != "payload "+m.Topic || m.Kind != "user" {
				t.Errorf("%s got data packet %q from %q (kind %s, payload %q), want alice's", cl.Identity, m.Topic, m.From, m.Kind, m.Payload)
			}
		}
		wantToCarol := 0
		if cl == carol {
			wantToCarol = 1
		}
		if counts["to-carol"] != wantToCarol || counts["everyone"] != 1 || counts["end"] != 1 {
			t.Errorf("%s received data topics %v, want to-carol:%d everyone:1 end:1", cl.Identity, counts, wantToCarol)
		}
	}

	// Leave.
	alice.Disconnect()
	for _, cl := range []*tc.Client{bob, carol} {
		cl.WaitForEvent(eventWait, tc.EventParticipantDisconnected, "alice")
		for _, sid := range []string{video.SID(), audio.SID()} {
			waitTrackEvent(t, cl, tc.EventTrackUnsubscribed, "alice", sid)
		}
		if cl.Room.GetParticipantByIdentity("alice") != nil {
			t.Errorf("%s still lists alice after she left", cl.Identity)
		}
	}
}

// waitTrackEvent waits until c observed an event of kind about participant's track sid.
func waitTrackEvent(t *testing.T, c *tc.Client, kind tc.EventKind, participant, sid string) tc.Event {
	t.Helper()
	var ev tc.Event
	tc.Eventually(t, eventWait, fmt.Sprintf("%s sees %s of %s's track %s", c.Identity, kind, participant, sid), func() (bool, string) {
		var ok bool
		ev, ok = c.FindEvent(func(e tc.Event) bool {
			return e.Kind == kind && e.Participant == participant && e.TrackSID == sid
		})
		return ok, fmt.Sprintf("%d events", len(c.Events()))
	})
	return ev
}

// sizes renders a list of resolutions as "WxH WxH ...".
func sizes(rs []tc.Resolution) string {
	s := ""
	for i, r := range rs {
		if i > 0 {
			s += " "
		}
		s += fmt.Sprintf("%dx%d", r.Width, r.Height)
	}
	return s
}
