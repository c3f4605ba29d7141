package metrics_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/livekit/protocol/livekit"
	protoLogger "github.com/livekit/protocol/logger"
	lksdk "github.com/livekit/server-sdk-go/v2"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"

	"github.com/sanke-edu/sanke/classroom/outbox"
	"github.com/sanke-edu/sanke/internal/config"
	"github.com/sanke-edu/sanke/internal/metrics"
	"github.com/sanke-edu/sanke/internal/server"
	"github.com/sanke-edu/sanke/sfu"
	"github.com/sanke-edu/sanke/sfu/room"
	"github.com/sanke-edu/sanke/test/testclient"
)

type fakeSource struct {
	mu    sync.Mutex
	stats map[string][]room.ParticipantStats
}

func (f *fakeSource) RoomNames() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for n := range f.stats {
		out = append(out, n)
	}
	return out
}

func (f *fakeSource) Stats(name string) ([]room.ParticipantStats, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.stats[name], nil
}

func (f *fakeSource) DataDropped() uint64 { return 5 }

type fakeBacklog struct{}

func (fakeBacklog) Stats(context.Context) (outbox.Stats, error) {
	old := time.Now().Add(-time.Minute)
	return outbox.Stats{Pending: 3, Delivered: 7, OldestPending: &old, FailuresSinceStart: 2}, nil
}

func sub(subscriber, track string, packets, bytes uint64, loss float64) room.SubscriptionStats {
	return room.SubscriptionStats{Subscriber: subscriber, SubscriberSID: "PA_" + subscriber, TrackSID: track, Kind: livekit.TrackType_VIDEO,
		DownTrackStats: sfu.DownTrackStats{Packets: packets, Bytes: bytes, NACKs: packets / 10, FractionLost: loss, RTT: 30 * time.Millisecond,
			CurrentLayer: sfu.LayerHigh, CapLayer: sfu.LayerHigh}}
}

func scrape(t *testing.T, h http.Handler) string {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 200 {
		t.Fatalf("scrape: %d %s", rec.Code, rec.Body)
	}
	return rec.Body.String()
}

func expect(t *testing.T, body string, lines ...string) {
	t.Helper()
	for _, l := range lines {
		if !strings.Contains(body, "\n"+l+"\n") {
			t.Errorf("missing %q", l)
		}
	}
}

// TestCountersStayMonotonic: forwarded packets only grow, also when subscriptions end.
func TestCountersStayMonotonic(t *testing.T) {
	// T2's downlink carries only the middle layer.
	capped := sub("T2", "TR_a", 50, 500, 0.2)
	capped.CurrentLayer, capped.CapLayer, capped.RtxLimited = sfu.LayerMedium, sfu.LayerMedium, 4
	src := &fakeSource{stats: map[string][]room.ParticipantStats{"r": {
		{Info: &livekit.ParticipantInfo{Identity: "T1", Attributes: map[string]string{"sanke.role": "teaching_point"}},
			Subscriptions: []room.SubscriptionStats{sub("T1", "TR_a", 100, 1000, 0.01)}},
		{Info: &livekit.ParticipantInfo{Identity: "T2", Attributes: map[string]string{"sanke.role": "teaching_point"}},
			Subscriptions: []room.SubscriptionStats{capped}},
		{Info: &livekit.ParticipantInfo{Identity: "M1", Attributes: map[string]string{"sanke.role": "teacher"},
			Tracks: []*livekit.TrackInfo{{Type: livekit.TrackType_VIDEO, Source: livekit.TrackSource_CAMERA}}}},
	}}}
	c := metrics.New(src)
	c.SetBacklog(fakeBacklog{})
	h := metrics.Handler(c)
	c.RecordingStarted(&livekit.EgressInfo{EgressId: "EG_1"})
	c.RecordingStarted(&livekit.EgressInfo{EgressId: "EG_2"})
	c.RecordingEnded(&livekit.EgressInfo{EgressId: "EG_1", Status: livekit.EgressStatus_EGRESS_COMPLETE})
	body := scrape(t, h)
	expect(t, body, "sanke_rooms 1", `sanke_participants{role="teaching_point"} 2`, `sanke_participants{role="teacher"} 1`,
		`sanke_published_tracks{kind="video",source="camera"} 1`, "sanke_subscriptions 2", "sanke_forwarded_packets_total 150",
		"sanke_forwarded_bytes_total 1500", "sanke_nacks_total 15", `sanke_subscriber_loss_ratio_bucket{le="0.01"} 1`,
		`sanke_subscriber_loss_ratio_bucket{le="0.2"} 2`, "sanke_subscriber_loss_ratio_count 2", "sanke_recordings_active 1",
		"sanke_recordings_started_total 2", `sanke_recordings_ended_total{status="EGRESS_COMPLETE"} 1`, "sanke_outbox_pending 3",
		"sanke_outbox_delivered 7", `sanke_video_subscriptions{layer="high"} 1`, `sanke_video_subscriptions{layer="medium"} 1`,
		`sanke_video_subscriptions{layer="low"} 0`, "sanke_video_subscriptions_downlink_capped 1", "sanke_retransmissions_refused_total 4",
		"sanke_data_dropped_total 5")

	// T2 leaves (its counters vanish), T1's grow, a new subscription starts.
	src.mu.Lock()
	src.stats["r"] = []room.ParticipantStats{
		{Info: &livekit.ParticipantInfo{Identity: "T1"}, Subscriptions: []room.SubscriptionStats{sub("T1", "TR_a", 300, 3000, 0), sub("T1", "TR_b", 10, 100, 0)}},
	}
	src.mu.Unlock()
	body = scrape(t, h)
	expect(t, body, "sanke_forwarded_packets_total 360", "sanke_forwarded_bytes_total 3600", `sanke_participants{role="participant"} 1`)
}

// TestMetricsEndpoint scrapes /metrics of a real server while a track is forwarded.
func TestMetricsEndpoint(t *testing.T) {
	lksdk.SetLogger(protoLogger.GetDiscardLogger())
	cfg := config.DevDefault()
	cfg.Port, cfg.RTC.UDPPort, cfg.RTC.TCPPort = testclient.FreePort(t, "tcp"), testclient.FreePort(t, "udp"), 0
	cfg.DataDir = t.TempDir()
	cfg.Recording.Enabled = false
	cfg.Classroom.Enabled = true
	srv, err := server.New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Run(ctx) }()
	defer func() { cancel(); <-done }()
	base := "127.0.0.1:" + strconv.Itoa(cfg.Port)
	connect := func(identity string) *lksdk.Room {
		for i := 0; ; i++ {
			r, err := lksdk.ConnectToRoom("ws://"+base, lksdk.ConnectInfo{APIKey: config.DevAPIKey, APISecret: config.DevAPISecret,
				RoomName: "m", ParticipantIdentity: identity}, lksdk.NewRoomCallback())
			if err == nil {
				t.Cleanup(r.Disconnect)
				return r
			}
			if i > 20 {
				t.Fatal(err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	pub := connect("pub")
	connect("sub")
	track, _ := lksdk.NewLocalSampleTrack(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000})
	if _, err := pub.LocalParticipant.PublishTrack(track, &lksdk.TrackPublicationOptions{Name: "cam", Source: livekit.TrackSource_CAMERA}); err != nil {
		t.Fatal(err)
	}
	frame := append([]byte{0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0x40, 0x01, 0xb4, 0x00}, make([]byte, 300)...)
	var body string
	deadline := time.Now().Add(15 * time.Second)
	for {
		_ = track.WriteSample(media.Sample{Data: frame, Duration: 33 * time.Millisecond}, nil)
		time.Sleep(33 * time.Millisecond)
		resp, err := http.Get("http://" + base + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		body = string(b)
		if strings.Contains(body, "\nsanke_subscriptions 1\n") && !strings.Contains(body, "\nsanke_forwarded_packets_total 0\n") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no forwarding seen:\n%s", body)
		}
	}
	expect(t, body, "sanke_rooms 1", `sanke_participants{role="participant"} 2`, `sanke_published_tracks{kind="video",source="camera"} 1`,
		"sanke_outbox_pending 0")
	if !strings.Contains(body, "\ngo_goroutines ") {
		t.Error("Go runtime metrics missing")
	}
}
