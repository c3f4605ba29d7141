package e2e

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	lksdk "github.com/livekit/server-sdk-go/v2"
	"github.com/pion/webrtc/v4"

	tc "github.com/sanke-edu/sanke/test/testclient"
	"github.com/sanke-edu/sanke/test/testmedia"
)

// TestFirstFrameRoundTrips bounds the round trips between a subscriber's join and its first
// picture (issue 14, time to first frame) by counting them, not by timing them: on a 300 ms
// line every extra one is a visible wait. Alice publishes VP8 simulcast and Opus; bob joins
// (through a signal tap, the server logging at debug level) and the test asserts, in both
// signaling modes:
//   - dual PeerConnections: the server's first offer to bob carries the data channels and
//     both of alice's tracks (one offer, not one for the channels and another for the tracks),
//     and it was made during the join, not after the negotiation debounce (the server's log:
//     the offer before the join's own "participant joined" line);
//   - single PeerConnection: the server never asks bob for more receive sections
//     (media_sections_requirement): alice's tracks ride in the answer to bob's first offer;
//   - bob's first video keyframe was asked for when bob's connection came up, urgently (the
//     server's timeline: DTLS connected, then the request, sent), and no keyframe was asked
//     for on bob's behalf before (it would have been lost).
func TestFirstFrameRoundTrips(t *testing.T) {
	srv := startServer(t, tc.WithConfigYAML("log:\n  level: debug\n"))
	files := testmedia.Get(t)
	for _, mode := range []string{"dual", "single"} {
		t.Run(mode, func(t *testing.T) {
			var opts []lksdk.ConnectOption
			if mode == "single" {
				opts = append(opts, lksdk.WithSinglePeerConnection())
			}
			room := roomName(t, "ttff")
			alice := tc.Join(t, srv.Target(), room, "alice", nil)
			video, err := tc.PublishSimulcastVP8(alice.Room, files, nil)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := tc.PublishOpus(alice.Room, files, nil); err != nil {
				t.Fatal(err)
			}
			// The server receives every layer before bob comes: a watcher gets alice's video.
			watcher := tc.Join(t, srv.Target(), room, "watcher", nil)
			expectFlow(t, watcher.WaitForTrack(mediaWait, "alice", webrtc.RTPCodecTypeVideo), 30, "the watcher receives alice's video")

			tap := tc.StartSignalTap(t, srv.Target())
			bobID := "bob-" + mode
			bob := tc.Join(t, tap.Target(), room, bobID, &tc.JoinOptions{ConnectOptions: opts})
			ts := bob.WaitForTrack(mediaWait, "alice", webrtc.RTPCodecTypeVideo)
			tc.Eventually(t, mediaWait, "bob receives a keyframe of alice's video", func() (bool, string) {
				s := ts.Snapshot()
				return s.Keyframes > 0, s.String()
			})
			firstKey := ts.Snapshot().FirstKeyframeAt

			var offers, requirements []string
			for _, m := range tap.Messages() {
				if m.At.After(firstKey) {
					break
				}
				if o := m.Response.GetOffer(); o != nil {
					offers = append(offers, o.Sdp)
				}
				if m.Response.GetMediaSectionsRequirement() != nil {
					requirements = append(requirements, m.String())
				}
			}
			if mode == "dual" {
				if len(offers) != 1 {
					t.Fatalf("%d offers to bob before his first keyframe, want 1:\n%s", len(offers), tap.Transcript())
				}
				for _, m := range []string{"m=application", "m=video", "m=audio"} {
					if !strings.Contains(offers[0], m) {
						t.Errorf("the offer to bob has no %s section:\n%s", m, offers[0])
					}
				}
				assertOfferDuringJoin(t, srv.Logs(), bobID)
			} else if len(requirements) > 0 {
				t.Errorf("the server asked bob for receive sections before his first keyframe: %v", requirements)
			}
			assertTimeline(t, srv.Logs(), bobID, video.SID())
		})
	}
	serverAlive(t, srv)
}

// assertOfferDuringJoin checks, in the server's log, that the first offer on identity's
// subscriber PeerConnection was made before the signal connection logged the join as done:
// during the join, with the room's tracks, and not after a timer.
func assertOfferDuringJoin(t *testing.T, logs, identity string) {
	t.Helper()
	var steps []string
	for line := range strings.Lines(logs) {
		if !strings.Contains(line, "identity="+identity+" ") {
			continue
		}
		switch {
		case strings.Contains(line, `msg="ttff: offer sent"`) && strings.Contains(line, "pc=SUBSCRIBER") && !slices.Contains(steps, "offer sent"):
			steps = append(steps, "offer sent")
		case strings.Contains(line, `msg="participant joined"`) && strings.Contains(line, " remote="):
			steps = append(steps, "join done")
		}
	}
	want := []string{"offer sent", "join done"}
	if fmt.Sprint(steps) != fmt.Sprint(want) {
		t.Errorf("%s's first subscriber offer and the end of the join, in the server's log: %q, want %q", identity, steps, want)
	}
}

// assertTimeline checks the server's debug timeline of one subscriber's video down track:
// its first keyframe request came after the subscriber's connection was up (DTLS), was urgent
// and was sent.
func assertTimeline(t *testing.T, logs, identity, trackSID string) {
	t.Helper()
	var steps []string
	connected := false
	for line := range strings.Lines(logs) {
		if !strings.Contains(line, "identity="+identity+" ") {
			continue
		}
		switch {
		case strings.Contains(line, `msg="ttff: dtls connected"`) && !connected:
			connected = true
			steps = append(steps, "dtls connected")
		case strings.Contains(line, `msg="ttff: first keyframe requested"`) && strings.Contains(line, "track="+trackSID):
			steps = append(steps, fmt.Sprintf("keyframe requested (urgent=%v, sent=%v)",
				strings.Contains(line, "urgent=true"), strings.Contains(line, "sent=true")))
		}
	}
	want := []string{"dtls connected", "keyframe requested (urgent=true, sent=true)"}
	if fmt.Sprint(steps) != fmt.Sprint(want) {
		t.Errorf("timeline of %s's video: %q, want %q", identity, steps, want)
	}
}
