package e2e

import (
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/livekit/protocol/livekit"
	lksdk "github.com/livekit/server-sdk-go/v2"
	"github.com/pion/webrtc/v4"

	tc "github.com/sanke-edu/sanke/test/testclient"
	"github.com/sanke-edu/sanke/test/testmedia"
)

// TestSyncStreams checks lip sync's msid (room.sync_streams, on by default): a subscriber
// receives a participant's camera and microphone in one MediaStream, "<participant sid>|camera",
// and a screen share in another, "<participant sid>|screen", the track sid in the msid's
// track id:
//   - the Go SDK, with two PeerConnections and with one, still finds each track's
//     publication (it reads the msid's track id), and media flows;
//   - a camera published again after the first was unpublished is found as the new track:
//     with two PeerConnections it gets a transceiver of its own (a browser's reused one would
//     still carry the first camera's track id);
//   - the server's offer to a Chromium client says so; Firefox (which makes up its own track
//     ids) and clients before protocol 10 get a stream per track, "<participant sid>|<track sid>".
func TestSyncStreams(t *testing.T) {
	srv := startServer(t)
	files := testmedia.Get(t)
	inEachPeerConnectionMode(t, func(t *testing.T, connect []lksdk.ConnectOption) {
		runSyncStreams(t, srv.Target(), files, connect)
	})
	t.Run("offers", func(t *testing.T) { syncStreamOffers(t, srv.Target(), files) })
	serverAlive(t, srv)
}

// publishCameraAndMicrophone publishes a single-layer VP8 camera and an Opus microphone.
func publishCameraAndMicrophone(t *testing.T, c *tc.Client, files testmedia.Files) (cam, mic *tc.Publication) {
	t.Helper()
	cam, err := tc.PublishVP8(c.Room, files.VP8[testmedia.Low], nil)
	if err != nil {
		t.Fatal(err)
	}
	mic, err = tc.PublishOpus(c.Room, files, nil)
	if err != nil {
		t.Fatal(err)
	}
	return cam, mic
}

// subscribedMsid records the msid each subscribed track came with, by publication sid.
type subscribedMsid struct {
	mu   sync.Mutex
	msid map[string]string // "<stream id> <track id>"
}

func (s *subscribedMsid) callback() *lksdk.RoomCallback {
	return &lksdk.RoomCallback{ParticipantCallback: lksdk.ParticipantCallback{
		OnTrackSubscribed: func(track *webrtc.TrackRemote, pub *lksdk.RemoteTrackPublication, _ *lksdk.RemoteParticipant) {
			s.mu.Lock()
			s.msid[pub.SID()] = track.StreamID() + " " + track.ID()
			s.mu.Unlock()
		},
	}}
}

// await waits until the track sid was subscribed and checks its msid.
func (s *subscribedMsid) await(t *testing.T, sid, want, what string) {
	t.Helper()
	var got string
	tc.Eventually(t, eventWait, "the subscriber gets the "+what, func() (bool, string) {
		s.mu.Lock()
		defer s.mu.Unlock()
		var ok bool
		got, ok = s.msid[sid]
		return ok, fmt.Sprintf("%d tracks subscribed", len(s.msid))
	})
	if got != want {
		t.Errorf("%s: msid %q, want %q", what, got, want)
	}
}

func runSyncStreams(t *testing.T, target tc.Target, files testmedia.Files, connect []lksdk.ConnectOption) {
	room := roomName(t, "sync")
	teacher := tc.Join(t, target, room, "teacher", &tc.JoinOptions{ConnectOptions: connect})
	got := &subscribedMsid{msid: map[string]string{}}
	pupil := tc.Join(t, target, room, "pupil", &tc.JoinOptions{ConnectOptions: connect, Callback: got.callback()})

	cam, mic := publishCameraAndMicrophone(t, teacher, files)
	screen, err := tc.PublishVP8(teacher.Room, files.VP8[testmedia.Low], &tc.VideoOptions{Name: "screen", Source: livekit.TrackSource_SCREEN_SHARE})
	if err != nil {
		t.Fatal(err)
	}
	psid := teacher.Room.LocalParticipant.SID()
	got.await(t, cam.SID(), psid+"|camera "+cam.SID(), "camera")
	got.await(t, mic.SID(), psid+"|camera "+mic.SID(), "microphone")
	got.await(t, screen.SID(), psid+"|screen "+screen.SID(), "screen share")
	for _, p := range []*tc.Publication{cam, mic, screen} {
		expectFlow(t, pupil.Track(p.SID()), 20, "pupil's "+p.SID())
	}

	if err := cam.Unpublish(); err != nil {
		t.Fatal(err)
	}
	pupil.WaitForEvent(eventWait, tc.EventTrackUnsubscribed, "teacher")
	cam2, err := tc.PublishVP8(teacher.Room, files.VP8[testmedia.Low], &tc.VideoOptions{Name: "camera2"})
	if err != nil {
		t.Fatal(err)
	}
	got.await(t, cam2.SID(), psid+"|camera "+cam2.SID(), "second camera")
	expectFlow(t, pupil.Track(cam2.SID()), 20, "pupil's second camera")
}

// syncStreamOffers checks the msid lines of the server's offers to raw clients of each kind.
func syncStreamOffers(t *testing.T, target tc.Target, files testmedia.Files) {
	room := roomName(t, "offers")
	teacher := tc.Join(t, target, room, "teacher", nil)
	cam, mic := publishCameraAndMicrophone(t, teacher, files)
	// Published once media flows (a watcher receives both): each raw client's first offer
	// carries both tracks, and it never answers to get another.
	watcher := tc.Join(t, target, room, "watcher", nil)
	watcher.WaitForTrack(mediaWait, "teacher", webrtc.RTPCodecTypeVideo)
	watcher.WaitForTrack(mediaWait, "teacher", webrtc.RTPCodecTypeAudio)
	psid := teacher.Room.LocalParticipant.SID()
	shared := []string{psid + "|camera " + cam.SID(), psid + "|camera " + mic.SID()}
	own := []string{psid + "|" + cam.SID() + " " + cam.SID(), psid + "|" + mic.SID() + " " + mic.SID()}
	for _, c := range []struct {
		name  string
		query url.Values
		want  []string
	}{
		{"chrome", url.Values{"browser": {"Chrome"}}, shared},
		{"firefox", url.Values{"browser": {"Firefox"}}, own},
		{"protocol9", url.Values{"browser": {"Chrome"}, "protocol": {"9"}}, own},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.query.Set("sdk", "js")
			token := target.Token(t, c.name, tc.JoinGrant(room))
			raw := dialRaw(t, target, token, c.query)
			raw.startReading()
			raw.waitJoin()
			offer := raw.waitMessage("an offer with both tracks", func(m *livekit.SignalResponse) bool {
				sdp := m.GetOffer().GetSdp()
				return strings.Contains(sdp, cam.SID()) && strings.Contains(sdp, mic.SID())
			}).GetOffer().GetSdp()
			for _, msid := range c.want {
				if !strings.Contains(offer, "a=msid:"+msid+"\r\n") {
					t.Errorf("the offer lacks a=msid:%s; its msid lines: %q", msid, msidLines(offer))
				}
			}
		})
	}
}

// msidLines returns the msid attributes of an SDP.
func msidLines(sdp string) []string {
	var out []string
	for _, l := range strings.Split(sdp, "\r\n") {
		if strings.HasPrefix(l, "a=msid:") {
			out = append(out, l)
		}
	}
	return out
}
