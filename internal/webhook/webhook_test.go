package webhook_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/livekit/protocol/auth"
	"github.com/livekit/protocol/livekit"
	protoLogger "github.com/livekit/protocol/logger"
	lkwebhook "github.com/livekit/protocol/webhook"
	lksdk "github.com/livekit/server-sdk-go/v2"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"

	"github.com/sanke-edu/sanke/internal/config"
	"github.com/sanke-edu/sanke/internal/server"
	"github.com/sanke-edu/sanke/test/testclient"
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
	srv  *server.Server
	rc   *receiver
	room *lksdk.Room
	pub  *lksdk.LocalTrackPublication
}

// startHooked starts a server with webhooks to a receiver, joins alice and publishes her
// camera, sending frames until the test ends, and waits for its track_published.
func startHooked(t *testing.T) *hooked {
	t.Helper()
	lksdk.SetLogger(protoLogger.GetDiscardLogger())
	rc := &receiver{}
	hook := httptest.NewServer(rc)
	t.Cleanup(hook.Close)

	cfg := config.DevDefault()
	cfg.Port, cfg.RTC.UDPPort, cfg.RTC.TCPPort = testclient.FreePort(t, "tcp"), testclient.FreePort(t, "udp"), 0
	cfg.DataDir = t.TempDir()
	cfg.Recording.Enabled = false
	cfg.Room.DepartureTimeout = time.Second
	cfg.Webhook.URLs = []string{hook.URL}
	srv, err := server.New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	url := "ws://127.0.0.1:" + strconv.Itoa(cfg.Port)
	var room *lksdk.Room
	testclient.Eventually(t, 10*time.Second, "alice joins", func() (bool, string) {
		room, err = lksdk.ConnectToRoom(url, lksdk.ConnectInfo{APIKey: config.DevAPIKey, APISecret: config.DevAPISecret,
			RoomName: "hooked", ParticipantIdentity: "alice"}, lksdk.NewRoomCallback())
		return err == nil, fmt.Sprint(err)
	})
	t.Cleanup(room.Disconnect)
	track, err := lksdk.NewLocalSampleTrack(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000})
	if err != nil {
		t.Fatal(err)
	}
	pub, err := room.LocalParticipant.PublishTrack(track, &lksdk.TrackPublicationOptions{Name: "cam", Source: livekit.TrackSource_CAMERA})
	if err != nil {
		t.Fatal(err)
	}
	// Frames at 30 fps until the test ends: the track is published when its media arrives.
	stop := make(chan struct{})
	t.Cleanup(func() { close(stop) })
	go func() {
		frame := append([]byte{0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0x40, 0x01, 0xb4, 0x00}, make([]byte, 300)...)
		tick := time.NewTicker(33 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				_ = track.WriteSample(media.Sample{Data: frame, Duration: 33 * time.Millisecond}, nil)
			}
		}
	}()
	h := &hooked{srv: srv, rc: rc, room: room, pub: pub}
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
	if err := h.room.LocalParticipant.UnpublishTrack(h.pub.SID()); err != nil {
		t.Fatal(err)
	}
	h.waitFor(t, "track_unpublished")
	h.room.Disconnect()
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
	h.room.Disconnect()
	// room_finished is the room's last event: once it is in, every event before it is.
	h.waitFor(t, "room_finished")
	want := []string{"room_started", "participant_joined", "track_published", "track_unpublished", "participant_left", "room_finished"}
	if got := h.rc.names(all); !slices.Equal(got, want) {
		t.Errorf("events %v, want %v", got, want)
	}
	h.checkEvents(t)
}
