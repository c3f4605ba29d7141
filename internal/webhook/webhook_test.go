package webhook_test

import (
	"context"
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

// TestWebhooks joins, publishes and leaves with the Go SDK and checks that a LiveKit webhook
// receiver verifies and gets every event, and the recording events.
func TestWebhooks(t *testing.T) {
	lksdk.SetLogger(protoLogger.GetDiscardLogger())
	rc := &receiver{}
	hook := httptest.NewServer(rc)
	defer hook.Close()

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
	defer func() { cancel(); <-done }()
	url := "ws://127.0.0.1:" + strconv.Itoa(cfg.Port)
	var room *lksdk.Room
	for i := 0; ; i++ {
		room, err = lksdk.ConnectToRoom(url, lksdk.ConnectInfo{APIKey: config.DevAPIKey, APISecret: config.DevAPISecret,
			RoomName: "hooked", ParticipantIdentity: "alice"}, lksdk.NewRoomCallback())
		if err == nil {
			break
		}
		if i > 20 {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	track, err := lksdk.NewLocalSampleTrack(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000})
	if err != nil {
		t.Fatal(err)
	}
	pub, err := room.LocalParticipant.PublishTrack(track, &lksdk.TrackPublicationOptions{Name: "cam", Source: livekit.TrackSource_CAMERA})
	if err != nil {
		t.Fatal(err)
	}
	frame := append([]byte{0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0x40, 0x01, 0xb4, 0x00}, make([]byte, 300)...)
	for range 30 {
		_ = track.WriteSample(media.Sample{Data: frame, Duration: 33 * time.Millisecond}, nil)
		time.Sleep(33 * time.Millisecond)
	}
	// Unpublish, then leave. (A track still published when its participant leaves gets its
	// track_unpublished only when room.removeParticipant sees it before the peer connection
	// closes it: a race in the room layer, reported to its owner.)
	if err := room.LocalParticipant.UnpublishTrack(pub.SID()); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !slices.Contains(rc.names(func(*livekit.WebhookEvent) bool { return true }), "track_unpublished") {
		if time.Now().After(deadline) {
			t.Fatalf("no track_unpublished after unpublishing: %v", rc.names(func(*livekit.WebhookEvent) bool { return true }))
		}
		time.Sleep(20 * time.Millisecond)
	}
	room.Disconnect()
	srv.Recordings().RecordingStarted(&livekit.EgressInfo{EgressId: "EG_test", RoomName: "hooked", Status: livekit.EgressStatus_EGRESS_ACTIVE})
	srv.Recordings().RecordingEnded(&livekit.EgressInfo{EgressId: "EG_test", RoomName: "hooked", Status: livekit.EgressStatus_EGRESS_COMPLETE})

	roomEvents := func(e *livekit.WebhookEvent) bool { return e.Room.GetName() == "hooked" }
	want := []string{"room_started", "participant_joined", "track_published", "track_unpublished", "participant_left", "room_finished"}
	deadline = time.Now().Add(15 * time.Second)
	for !slices.Equal(rc.names(roomEvents), want) || len(rc.names(func(e *livekit.WebhookEvent) bool { return e.EgressInfo != nil })) < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("room events %v, want %v; egress events %v", rc.names(roomEvents), want,
				rc.names(func(e *livekit.WebhookEvent) bool { return e.EgressInfo != nil }))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if eg := rc.names(func(e *livekit.WebhookEvent) bool { return e.EgressInfo.GetEgressId() == "EG_test" }); !slices.Equal(eg, []string{"egress_started", "egress_ended"}) {
		t.Errorf("recording events %v", eg)
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.bad != 0 {
		t.Errorf("%d webhooks failed verification", rc.bad)
	}
	for _, e := range rc.events {
		if e.Id == "" || e.CreatedAt == 0 {
			t.Errorf("event without id or time: %v", e)
		}
		if e.Event == "participant_left" && (e.Participant.GetIdentity() != "alice" || e.Participant.GetDisconnectReason() != livekit.DisconnectReason_CLIENT_INITIATED) {
			t.Errorf("participant_left: %v", e.Participant)
		}
		if e.Event == "track_published" && e.Track.GetSource() != livekit.TrackSource_CAMERA {
			t.Errorf("track_published: %v", e.Track)
		}
	}
}
