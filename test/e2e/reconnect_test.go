package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/livekit/protocol/livekit"
	lksdk "github.com/livekit/server-sdk-go/v2"
	"github.com/pion/webrtc/v4"

	tc "github.com/sanke-edu/sanke/test/testclient"
	"github.com/sanke-edu/sanke/test/testmedia"
)

// TestReconnect cuts alice's signaling websocket (she connects through a SignalTap; her
// media goes straight to the server) and checks that her tracks keep reaching subscribers:
//   - "resume": the tap drops the connection; the SDK reconnects with reconnect=1 and the
//     server resumes the same participant (same sid, never reported as gone to the watcher);
//     the watcher's packet counts keep growing, and the resumed signaling works (a mute and a
//     data packet sent after the resume reach the watcher);
//   - "subscriber resume": the watcher's own websocket is cut (it connects through a second
//     tap); it resumes, its packet counts keep growing and it still hears about a mute;
//   - "full rejoin": both taps are pointed at a second server, both websockets are cut and
//     the first server is killed: the new server answers each resume attempt (reconnect=1)
//     with a leave asking for a full reconnect (action RECONNECT); alice and the watcher
//     join it afresh, alice republishes, and the watcher receives her tracks again.
func TestReconnect(t *testing.T) {
	srv := startServer(t)
	target := srv.Target()
	files := testmedia.Get(t)
	tap := tc.StartSignalTap(t, target)
	room := roomName(t, "reconnect")
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("signaling transcript through the tap:\nrequests: %s\n%s", strings.Join(tap.Requests(), "\n"), tap.Transcript())
		}
	})

	alice := tc.Join(t, tap.Target(), room, "alice", nil)
	audio, err := tc.PublishOpus(alice.Room, files, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tc.PublishVP8(alice.Room, files.VP8[testmedia.Low], nil); err != nil {
		t.Fatal(err)
	}
	wtap := tc.StartSignalTap(t, target)
	watcher := tc.Join(t, wtap.Target(), room, "watcher", nil)
	wAudio := watcher.WaitForTrack(mediaWait, "alice", webrtc.RTPCodecTypeAudio)
	wVideo := watcher.WaitForTrack(mediaWait, "alice", webrtc.RTPCodecTypeVideo)
	expectFlow(t, wAudio, 25, "watcher audio")
	expectFlow(t, wVideo, 15, "watcher video")

	t.Run("resume", func(t *testing.T) {
		sid := alice.Room.LocalParticipant.SID()
		requests := len(tap.Requests())
		if n := tap.Cut(); n != 1 {
			t.Fatalf("cut %d websockets, want alice's 1", n)
		}
		alice.WaitForEvent(eventWait, tc.EventReconnecting, "")
		alice.WaitForEvent(15*time.Second, tc.EventReconnected, "")
		var resumeReq string
		for _, r := range tap.Requests()[requests:] {
			if strings.Contains(r, "/rtc") && strings.Contains(r, "reconnect=1") {
				resumeReq = r
			}
		}
		if resumeReq == "" {
			t.Errorf("no /rtc request with reconnect=1 after the cut; requests: %v", tap.Requests()[requests:])
		}
		if got := alice.Room.LocalParticipant.SID(); got != sid {
			t.Errorf("alice's sid changed from %s to %s: not a resume", sid, got)
		}
		expectFlow(t, wAudio, 50, "watcher audio after alice's resume")
		expectFlow(t, wVideo, 30, "watcher video after alice's resume")
		if watcher.HasEvent(tc.EventParticipantDisconnected, "alice") {
			t.Errorf("the watcher saw alice disconnect during a resume")
		}
		// The resumed signaling connection carries requests again.
		audio.SetMuted(true)
		waitTrackEvent(t, watcher, tc.EventTrackMuted, "alice", audio.SID())
		audio.SetMuted(false)
		waitTrackEvent(t, watcher, tc.EventTrackUnmuted, "alice", audio.SID())
		if err := alice.Room.LocalParticipant.PublishDataPacket(lksdk.UserData([]byte("back")),
			lksdk.WithDataPublishReliable(true), lksdk.WithDataPublishTopic("after-resume")); err != nil {
			t.Fatal(err)
		}
		watcher.WaitForData(eventWait, func(m tc.DataMessage) bool { return m.Topic == "after-resume" && m.From == "alice" })
	})

	t.Run("subscriber resume", func(t *testing.T) {
		if n := wtap.Cut(); n != 1 {
			t.Fatalf("cut %d websockets, want the watcher's 1", n)
		}
		watcher.WaitForEvent(eventWait, tc.EventReconnecting, "")
		watcher.WaitForEvent(15*time.Second, tc.EventReconnected, "")
		expectFlow(t, wAudio, 50, "watcher audio after its own resume")
		expectFlow(t, wVideo, 30, "watcher video after its own resume")
		// Signaling to the resumed subscriber works: it hears about a mute.
		audio.SetMuted(true)
		tc.Eventually(t, eventWait, "the watcher sees alice's second mute", func() (bool, string) {
			n := 0
			for _, e := range watcher.Events() {
				if e.Kind == tc.EventTrackMuted && e.TrackSID == audio.SID() {
					n++
				}
			}
			return n == 2, fmt.Sprintf("%d mutes seen", n)
		})
		audio.SetMuted(false)
	})

	t.Run("full rejoin", func(t *testing.T) {
		// A second server, which knows nothing of the room; both taps now lead to it, as a
		// load balancer would after the first server died.
		srv2 := startServer(t)
		sid := alice.Room.LocalParticipant.SID()
		oldTracks := map[string]bool{}
		for _, p := range alice.Room.LocalParticipant.TrackPublications() {
			oldTracks[p.SID()] = true
		}
		requests, messages := len(tap.Requests()), len(tap.Messages())
		tap.SetUpstream(srv2.Target())
		wtap.SetUpstream(srv2.Target())
		if n := tap.Cut() + wtap.Cut(); n != 2 {
			t.Fatalf("cut %d websockets, want alice's and the watcher's", n)
		}
		srv.Kill() // the first server "crashes" with the session

		// Both resume attempts are answered with a leave asking for a full reconnect; both
		// clients join the new server, alice republishes and the watcher receives her tracks.
		tc.Eventually(t, 20*time.Second, "alice rejoins on the new server with her tracks", func() (bool, string) {
			got := alice.Room.LocalParticipant.SID()
			pubs := alice.Room.LocalParticipant.TrackPublications()
			n := 0
			for _, p := range pubs {
				if p.SID() != "" && !oldTracks[p.SID()] {
					n++
				}
			}
			return got != sid && got != "" && n == 2 && len(pubs) == 2, fmt.Sprintf("sid %q (was %s), %d republished", got, sid, n)
		})
		start := time.Now()
		for _, p := range alice.Room.LocalParticipant.TrackPublications() {
			var ts *tc.TrackStats
			tc.Eventually(t, mediaWait, "the watcher subscribes to alice's republished "+p.Kind().String(), func() (bool, string) {
				ts = watcher.Track(p.SID())
				return ts != nil, fmt.Sprintf("%d tracks", len(watcher.Tracks()))
			})
			expectFlow(t, ts, 30, "watcher receives alice's republished "+p.Kind().String())
		}
		t.Logf("alice's tracks flow to the watcher on the new server %v after both rejoined", time.Since(start).Round(time.Millisecond))

		var resumed, joined bool
		for _, r := range tap.Requests()[requests:] {
			if strings.HasPrefix(r, "GET /rtc") && strings.Contains(r, "reconnect=1") {
				resumed = true
			} else if strings.HasPrefix(r, "GET /rtc") && !strings.Contains(r, "validate") {
				joined = true
			}
		}
		if !resumed || !joined {
			t.Errorf("alice's requests after the cut (resume attempt %v, fresh join %v): %v", resumed, joined, tap.Requests()[requests:])
		}
		var leave *livekit.LeaveRequest
		for _, m := range tap.Messages()[messages:] {
			if l := m.Response.GetLeave(); l != nil && leave == nil {
				leave = l
			}
		}
		if leave.GetAction() != livekit.LeaveRequest_RECONNECT {
			t.Errorf("leave sent to alice's resume attempt: %v, want action RECONNECT", leave)
		}
		serverAlive(t, srv2)
	})
}
