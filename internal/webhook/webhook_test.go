package webhook_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/livekit/protocol/auth"
	"github.com/livekit/protocol/livekit"
	lkwebhook "github.com/livekit/protocol/webhook"

	"github.com/sanke-edu/sanke/internal/config"
	"github.com/sanke-edu/sanke/internal/server"
	"github.com/sanke-edu/sanke/test/testclient"
	"github.com/sanke-edu/sanke/test/testclient/inprocess"
	"github.com/sanke-edu/sanke/test/testmedia"
)

// receiver verifies webhooks exactly as a LiveKit application does.
type receiver struct {
	mu     sync.Mutex
	events []*livekit.WebhookEvent
	bad    int
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ev, err := lkwebhook.ReceiveWebhookEvent(r, auth.NewSimpleKeyProvider(config.DevAPIKey, config.DevAPISecret))
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if err != nil {
		rc.bad++
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	rc.events = append(rc.events, ev)
}

func (rc *receiver) names(filter func(*livekit.WebhookEvent) bool) []string {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	var out []string
	for _, e := range rc.events {
		if filter(e) {
			out = append(out, e.Event)
		}
	}
	return out
}

// hooked is a server sending webhooks to rc, with a participant "alice" publishing a camera
// in room "hooked".
type hooked struct {
	srv   *server.Server
	rc    *receiver
	alice *testclient.Client
	pub   *testclient.Publication
}

// startHooked starts a server with webhooks to a receiver, joins alice, publishes her camera
// (a VP8 test clip, looped) and waits for its track_published.
func startHooked(t *testing.T) *hooked {
	t.Helper()
	rc := &receiver{}
	hook := httptest.NewServer(rc)
	t.Cleanup(hook.Close)

	cfg := config.DevDefault()
	cfg.RTC.TCPPort = 0
	cfg.Recording.Enabled = false
	cfg.Room.DepartureTimeout = time.Second
	cfg.Webhook.URLs = []string{hook.URL}
	is := inprocess.Start(t, cfg)
	alice := testclient.Join(t, is.Target, "hooked", "alice", &testclient.JoinOptions{NoAutoSubscribe: true})
	pub, err := testclient.PublishVP8(alice.Room, testmedia.Get(t).VP8[testmedia.Low], nil)
	if err != nil {
		t.Fatal(err)
	}
	h := &hooked{srv: is.Server, rc: rc, alice: alice, pub: pub}
	h.waitFor(t, "track_published")
	return h
}

// all selects every event.
func all(*livekit.WebhookEvent) bool { return true }

// waitFor waits until the receiver has an event named name.
func (h *hooked) waitFor(t *testing.T, name string) {
	t.Helper()
	testclient.Eventually(t, 15*time.Second, "webhook "+name, func() (bool, string) {
		got := h.rc.names(all)
		return slices.Contains(got, name), fmt.Sprint(got)
	})
}

// checkEvents checks that every webhook was verified and carries an id and a time, and
// alice's events what they describe.
func (h *hooked) checkEvents(t *testing.T) {
	t.Helper()
	h.rc.mu.Lock()
	defer h.rc.mu.Unlock()
	if h.rc.bad != 0 {
		t.Errorf("%d webhooks failed verification", h.rc.bad)
	}
	for _, e := range h.rc.events {
		if e.Id == "" || e.CreatedAt == 0 {
			t.Errorf("event without id or time: %v", e)
		}
		switch e.Event {
		case "participant_left":
			if e.Participant.GetIdentity() != "alice" || e.Participant.GetDisconnectReason() != livekit.DisconnectReason_CLIENT_INITIATED {
				t.Errorf("participant_left: %v", e.Participant)
			}
		case "track_published", "track_unpublished":
			if e.Participant.GetIdentity() != "alice" || e.Track.GetSid() != h.pub.SID() || e.Track.GetSource() != livekit.TrackSource_CAMERA {
				t.Errorf("%s: %v of %v, want alice's camera %s", e.Event, e.Track, e.Participant, h.pub.SID())
			}
		}
	}
}

// roomEvents selects the events of room "hooked".
func roomEvents(e *livekit.WebhookEvent) bool { return e.Room.GetName() == "hooked" }

// TestWebhooks joins, publishes, unpublishes and leaves with the Go SDK and checks that a
// LiveKit webhook receiver verifies and gets every event, and the recording events.
func TestWebhooks(t *testing.T) {
	h := startHooked(t)
	if err := h.pub.Unpublish(); err != nil {
		t.Fatal(err)
	}
	h.waitFor(t, "track_unpublished")
	h.alice.Disconnect()
	h.srv.Recordings().RecordingStarted(&livekit.EgressInfo{EgressId: "EG_test", RoomName: "hooked", Status: livekit.EgressStatus_EGRESS_ACTIVE})
	h.srv.Recordings().RecordingEnded(&livekit.EgressInfo{EgressId: "EG_test", RoomName: "hooked", Status: livekit.EgressStatus_EGRESS_COMPLETE})

	want := []string{"room_started", "participant_joined", "track_published", "track_unpublished", "participant_left", "room_finished"}
	recordings := func(e *livekit.WebhookEvent) bool { return e.EgressInfo.GetEgressId() == "EG_test" }
	testclient.Eventually(t, 15*time.Second, "the room's and the recording's events", func() (bool, string) {
		return slices.Equal(h.rc.names(roomEvents), want) && slices.Equal(h.rc.names(recordings), []string{"egress_started", "egress_ended"}),
			fmt.Sprintf("room events %v, want %v; recording events %v", h.rc.names(roomEvents), want, h.rc.names(recordings))
	})
	h.checkEvents(t)
}

// TestWebhooksLeaveWhilePublished leaves with the camera still published: the track's
// track_unpublished comes before the participant's participant_left, and nothing is lost
// or repeated.
func TestWebhooksLeaveWhilePublished(t *testing.T) {
	h := startHooked(t)
	h.alice.Disconnect()
	// room_finished is the room's last event: once it is in, every event before it is.
	h.waitFor(t, "room_finished")
	want := []string{"room_started", "participant_joined", "track_published", "track_unpublished", "participant_left", "room_finished"}
	if got := h.rc.names(all); !slices.Equal(got, want) {
		t.Errorf("events %v, want %v", got, want)
	}
	h.checkEvents(t)
}
