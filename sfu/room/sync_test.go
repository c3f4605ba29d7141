package room

import (
	"strings"
	"testing"

	"github.com/livekit/protocol/auth"
	"github.com/livekit/protocol/livekit"
	"github.com/pion/webrtc/v4"
)

// TestStreamOf checks the stream a published track is synchronised in: the one the client
// named, else its source's pair, none for an unknown source.
func TestStreamOf(t *testing.T) {
	for _, c := range []struct {
		req  *livekit.AddTrackRequest
		want string
	}{
		{&livekit.AddTrackRequest{Source: livekit.TrackSource_CAMERA}, "camera"},
		{&livekit.AddTrackRequest{Source: livekit.TrackSource_MICROPHONE}, "camera"},
		{&livekit.AddTrackRequest{Source: livekit.TrackSource_SCREEN_SHARE}, "screen"},
		{&livekit.AddTrackRequest{Source: livekit.TrackSource_SCREEN_SHARE_AUDIO}, "screen"},
		{&livekit.AddTrackRequest{Source: livekit.TrackSource_UNKNOWN}, ""},
		{&livekit.AddTrackRequest{Source: livekit.TrackSource_MICROPHONE, Stream: "lectern"}, "lectern"},
		// A name that could break the msid line of other subscribers' offers is ignored.
		{&livekit.AddTrackRequest{Source: livekit.TrackSource_MICROPHONE, Stream: "x\r\na=ice-ufrag:evil"}, "camera"},
		{&livekit.AddTrackRequest{Source: livekit.TrackSource_CAMERA, Stream: "two words"}, "camera"},
		{&livekit.AddTrackRequest{Source: livekit.TrackSource_UNKNOWN, Stream: strings.Repeat("a", maxStreamName+1)}, ""},
		{&livekit.AddTrackRequest{Source: livekit.TrackSource_UNKNOWN, Stream: strings.Repeat("a", maxStreamName)}, strings.Repeat("a", maxStreamName)},
	} {
		if got := streamOf(c.req); got != c.want {
			t.Errorf("streamOf(%v) = %q, want %q", c.req, got, c.want)
		}
	}
}

// TestDownStream checks the msid stream id a subscriber receives a track in: the publisher's
// shared stream for a Chromium client from protocol 10 while room.sync_streams is on, a
// stream of the track's own otherwise (Firefox, older clients, sync off, a track in no
// stream), and once the subscriber's PeerConnection holds maxIdleTransceivers free
// transceivers of the track's kind (two PeerConnections: a shared track takes a new one).
func TestDownStream(t *testing.T) {
	r := testRoom(t)
	owner, _ := testParticipant(r, "teacher", &auth.VideoGrant{})
	sub, _ := testParticipant(r, "pupil", &auth.VideoGrant{})
	pc, err := webrtc.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	sub.subscriber = &transport{pc: pc}
	t.Cleanup(func() { // before the room closes: it would close this bare transport
		sub.subscriber = nil
		_ = pc.Close()
	})
	cam := &PublishedTrack{owner: owner, info: &livekit.TrackInfo{Sid: "TR_cam", Type: livekit.TrackType_VIDEO, Stream: "camera"}}
	mic := &PublishedTrack{owner: owner, info: &livekit.TrackInfo{Sid: "TR_mic", Type: livekit.TrackType_AUDIO, Stream: "camera"}}
	bot := &PublishedTrack{owner: owner, info: &livekit.TrackInfo{Sid: "TR_bot", Type: livekit.TrackType_AUDIO}}
	shared, own := owner.sid+"|camera", func(tr *PublishedTrack) string { return owner.sid + "|" + tr.SID() }
	chrome := &livekit.ClientInfo{Protocol: 16, Browser: "Chrome"}

	expect := func(step string, tr *PublishedTrack, wantID string, wantShared bool) {
		t.Helper()
		if id, ok := r.downStream(sub, tr); id != wantID || ok != wantShared {
			t.Errorf("%s: %s in %q (shared %v), want %q (%v)", step, tr.SID(), id, ok, wantID, wantShared)
		}
	}
	r.cfg.SyncStreams = true
	sub.clientInfo = chrome
	expect("chrome", cam, shared, true)
	expect("chrome", mic, shared, true)
	expect("chrome, no stream", bot, own(bot), false)
	sub.clientInfo = &livekit.ClientInfo{Protocol: 16, Browser: "Firefox"}
	expect("firefox", cam, own(cam), false)
	sub.clientInfo = &livekit.ClientInfo{Protocol: 9, Browser: "Chrome"}
	expect("protocol 9", mic, own(mic), false)
	sub.clientInfo = chrome
	r.cfg.SyncStreams = false
	expect("sync_streams off", cam, own(cam), false)
	r.cfg.SyncStreams = true

	for range maxIdleTransceivers {
		if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo,
			webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
			t.Fatal(err)
		}
	}
	expect("idle video transceivers", cam, own(cam), false)
	expect("idle video transceivers", mic, shared, true)
	sub.single = true // the client offers its sections: nothing grows
	expect("one PeerConnection", cam, shared, true)
}
