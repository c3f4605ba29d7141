package room

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/livekit/protocol/livekit"
	"github.com/pion/webrtc/v4"

	"github.com/sanke-edu/sanke/sfu"
)

// newTestDownTrack returns a video down track of a receiver of its own.
func newTestDownTrack(t *testing.T, sid string) *sfu.DownTrack {
	t.Helper()
	r := sfu.NewReceiver(sfu.ReceiverParams{TrackID: sid, Kind: webrtc.RTPCodecTypeVideo,
		Codec: webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}}})
	d, err := sfu.NewDownTrack(sfu.DownTrackParams{Receiver: r, StreamID: "PA_pub|" + sid, TrackID: sid})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// stateLines renders a StreamStateUpdate as sorted "participant track STATE" lines.
func stateLines(m *livekit.SignalResponse) []string {
	var out []string
	for _, s := range m.GetStreamStateUpdate().GetStreamStates() {
		out = append(out, fmt.Sprintf("%s %s %s", s.ParticipantSid, s.TrackSid, s.State))
	}
	slices.Sort(out)
	return out
}

func TestStreamStatesCoalesce(t *testing.T) {
	cam, screen, gone := newTestDownTrack(t, "TR_cam"), newTestDownTrack(t, "TR_screen"), newTestDownTrack(t, "TR_gone")
	var sent []*livekit.SignalResponse
	s := newStreamStates(func(d *sfu.DownTrack) (string, string, bool) {
		if d == gone {
			return "", "", false
		}
		return "PA_teacher", d.ID(), true
	}, func(m *livekit.SignalResponse) { sent = append(sent, m) })
	s.delay = time.Hour // flushed by hand below

	flush := func(when string, want ...string) {
		t.Helper()
		sent = nil
		s.flush()
		var got []string
		if len(sent) > 1 {
			t.Fatalf("%s: %d messages, want at most one", when, len(sent))
		}
		if len(sent) == 1 {
			got = stateLines(sent[0])
		}
		if !slices.Equal(got, want) {
			t.Fatalf("%s: sent %q, want %q", when, got, want)
		}
	}

	// Two pauses in a row: one message; a track no longer subscribed is left out.
	s.note(cam, true)
	s.note(screen, true)
	s.note(gone, true)
	flush("two pauses", "PA_teacher TR_cam PAUSED", "PA_teacher TR_screen PAUSED")

	// Resumed and paused again within the delay: the client, who saw it paused, hears
	// nothing; the other resumes.
	s.note(cam, false)
	s.note(cam, true)
	s.note(screen, false)
	flush("flap", "PA_teacher TR_screen ACTIVE")
	flush("nothing new")

	// An ACTIVE for a track the client never saw paused is not sent.
	s.note(screen, false)
	flush("active twice")

	// A closed down track is forgotten: a new subscription of it starts active.
	cam.Close()
	s.flush()
	s.mu.Lock()
	_, kept := s.told[cam]
	s.mu.Unlock()
	if kept {
		t.Fatal("a closed down track's state kept")
	}

	s.close()
	s.note(screen, true)
	flush("after close")
}

// The timer sends the gathered changes without a hand flush.
func TestStreamStatesTimer(t *testing.T) {
	d := newTestDownTrack(t, "TR_cam")
	sent := make(chan *livekit.SignalResponse, 4)
	s := newStreamStates(func(d *sfu.DownTrack) (string, string, bool) { return "PA_teacher", d.ID(), true },
		func(m *livekit.SignalResponse) { sent <- m })
	s.note(d, true)
	select {
	case m := <-sent:
		if got := stateLines(m); !slices.Equal(got, []string{"PA_teacher TR_cam PAUSED"}) {
			t.Fatalf("sent %q", got)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no stream state update sent")
	}
}
