package e2e

import (
	"net/url"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/livekit/protocol/livekit"
	"github.com/pion/webrtc/v4"

	tc "github.com/sanke-edu/sanke/test/testclient"
	"github.com/sanke-edu/sanke/test/testmedia"
)

// TestGracefulShutdown runs sanke as its own process with two rooms in use (alice publishing
// to bob in one, carol alone in another, and a raw websocket client), sends it SIGTERM and
// checks that:
//   - every Go SDK client is disconnected with reason SERVER_SHUTDOWN;
//   - the raw client receives a leave (reason SERVER_SHUTDOWN, action DISCONNECT) followed by
//     a normal close frame;
//   - the process exits with status 0 within 5 s of the signal;
//   - nothing listens on the port afterwards.
func TestGracefulShutdown(t *testing.T) {
	srv := startServer(t)
	target := srv.Target()
	files := testmedia.Get(t)
	room := roomName(t, "shutdown")

	alice := tc.Join(t, target, room, "alice", nil)
	if _, err := tc.PublishOpus(alice.Room, files, nil); err != nil {
		t.Fatal(err)
	}
	bob := tc.Join(t, target, room, "bob", nil)
	expectFlow(t, bob.WaitForTrack(mediaWait, "alice", webrtc.RTPCodecTypeAudio), 25, "bob receives alice's audio")
	carol := tc.Join(t, target, roomName(t, "other"), "carol", nil)
	raw := dialRaw(t, target, target.Token(t, "raw", tc.JoinGrant(room)), url.Values{"auto_subscribe": {"0"}})
	raw.startReading()
	raw.waitJoin()

	start := time.Now()
	if err := srv.Stop(); err != nil { // SIGTERM, then waits for the exit
		t.Fatalf("graceful stop: %v", err)
	}
	took := time.Since(start)
	t.Logf("sanke exited %v after SIGTERM", took.Round(time.Millisecond))
	if took > 5*time.Second {
		t.Errorf("sanke took %v to exit after SIGTERM, want under 5s", took)
	}

	// The leave says RECONNECT (a restart must not end the class): the SDK clients start
	// reconnecting, or give up and disconnect once the server is gone for good.
	for _, c := range []*tc.Client{alice, bob, carol} {
		if _, ok := waitAnyEvent(c, eventWait, tc.EventReconnecting, tc.EventDisconnected); !ok {
			t.Errorf("%s neither reconnected nor disconnected after the shutdown leave", c.Identity)
		}
	}
	ce := raw.waitClosed(eventWait)
	var leave *livekit.LeaveRequest
	for _, m := range raw.messages() {
		if l := m.GetLeave(); l != nil {
			leave = l
		}
	}
	if leave == nil || leave.Reason != livekit.DisconnectReason_SERVER_SHUTDOWN || leave.Action != livekit.LeaveRequest_RECONNECT {
		t.Errorf("raw client's leave: %v, want reason SERVER_SHUTDOWN, action RECONNECT", leave)
	}
	if ce == nil || ce.Code != websocket.CloseNormalClosure {
		t.Errorf("raw client's close frame: %v (read error %v), want %d", ce, raw.err(), websocket.CloseNormalClosure)
	}
	if ws, _, err := websocket.DefaultDialer.Dial(rtcURL(target, "/rtc", target.Token(t, "late", tc.JoinGrant(room)), nil), nil); err == nil {
		_ = ws.Close()
		t.Errorf("a websocket was accepted after the server exited")
	}
}

// waitAnyEvent waits until c has logged an event of one of the kinds.
func waitAnyEvent(c *tc.Client, timeout time.Duration, kinds ...tc.EventKind) (tc.Event, bool) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if ev, ok := c.FindEvent(func(e tc.Event) bool {
			for _, k := range kinds {
				if e.Kind == k {
					return true
				}
			}
			return false
		}); ok {
			return ev, true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return tc.Event{}, false
}
