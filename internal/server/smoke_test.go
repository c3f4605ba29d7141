package server

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/livekit/protocol/livekit"
	lksdk "github.com/livekit/server-sdk-go/v2"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"

	"github.com/sanke-edu/sanke/internal/config"
	"github.com/sanke-edu/sanke/test/testclient"
)

// startTestServer runs an in-process dev server on free loopback ports and returns its URL.
func startTestServer(t *testing.T) string {
	url, _ := startTestServerWith(t)
	return url
}

// startTestServerWith is startTestServer that also returns the server.
func startTestServerWith(t *testing.T, opts ...func(*config.Config)) (string, *Server) {
	t.Helper()
	cfg := config.DevDefault()
	cfg.Port = testclient.FreePort(t, "tcp")
	cfg.RTC.UDPPort = testclient.FreePort(t, "udp")
	cfg.RTC.TCPPort = 0
	for _, o := range opts {
		o(cfg)
	}
	w := io.Discard
	if os.Getenv("SANKE_TEST_LOG") != "" {
		w = os.Stderr
	}
	logger := slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv, err := New(cfg, logger)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return "ws://127.0.0.1:" + strconv.Itoa(cfg.Port), srv
}

func TestSmokePublishSubscribe(t *testing.T) {
	for _, c := range []struct {
		mode           string
		single, direct bool
	}{{"dual", false, true}, {"single", true, true}, {"dual-pion-writes", false, false}} {
		t.Run(c.mode, func(t *testing.T) { smokePublishSubscribe(t, c.single, c.direct) })
	}
}

// publishReceive connects alice and bob to room "smoke" with opts; alice publishes VP8 and
// bob must receive at least 30 packets of it.
func publishReceive(t *testing.T, url string, opts ...lksdk.ConnectOption) {
	t.Helper()
	connect := func(identity string, cb *lksdk.RoomCallback) *lksdk.Room {
		r, err := lksdk.ConnectToRoom(url, lksdk.ConnectInfo{
			APIKey: config.DevAPIKey, APISecret: config.DevAPISecret, RoomName: "smoke", ParticipantIdentity: identity,
		}, cb, opts...)
		if err != nil {
			t.Fatalf("%s connect: %v", identity, err)
		}
		t.Cleanup(r.Disconnect)
		return r
	}
	var got atomic.Int64
	subscribed := make(chan string, 4)
	cb := lksdk.NewRoomCallback()
	cb.ParticipantCallback.OnTrackSubscribed = func(track *webrtc.TrackRemote, pub *lksdk.RemoteTrackPublication, rp *lksdk.RemoteParticipant) {
		subscribed <- pub.SID()
		go func() {
			for {
				if _, _, err := track.ReadRTP(); err != nil {
					return
				}
				got.Add(1)
			}
		}()
	}
	pubRoom := connect("alice", lksdk.NewRoomCallback())
	_ = connect("bob", cb)

	track, err := lksdk.NewLocalSampleTrack(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pubRoom.LocalParticipant.PublishTrack(track, &lksdk.TrackPublicationOptions{
		Name: "cam", Source: livekit.TrackSource_CAMERA, VideoWidth: 320, VideoHeight: 180,
	}); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		tick := time.NewTicker(33 * time.Millisecond)
		defer tick.Stop()
		// A VP8 keyframe header (320x180) followed by filler; the SFU does not decode.
		frame := append([]byte{0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0x40, 0x01, 0xb4, 0x00}, make([]byte, 900)...)
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				_ = track.WriteSample(media.Sample{Data: frame, Duration: 33 * time.Millisecond}, nil)
			}
		}
	}()
	select {
	case sid := <-subscribed:
		t.Logf("bob subscribed to %s", sid)
	case <-time.After(15 * time.Second):
		t.Fatal("bob never subscribed")
	}
	deadline := time.Now().Add(10 * time.Second)
	for got.Load() < 30 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if got.Load() < 30 {
		t.Fatalf("bob received %d packets", got.Load())
	}
	t.Logf("bob received %d packets", got.Load())
}

// smokePublishSubscribe: one Go SDK client publishes VP8, another receives it, in dual or
// single PeerConnection mode, with the direct SRTP path (rtc.direct_srtp) or pion's writer.
func smokePublishSubscribe(t *testing.T, single, direct bool) {
	url, srv := startTestServerWith(t, func(c *config.Config) { c.RTC.DirectSRTP = direct })
	var opts []lksdk.ConnectOption
	if single {
		opts = append(opts, lksdk.WithSinglePeerConnection())
	}
	publishReceive(t, url, opts...)

	// AES-GCM SRTP costs about a sixth of AES-CM per packet: it must be what is negotiated.
	stats, err := srv.Rooms().Stats("smoke")
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, p := range stats {
		for _, c := range p.SRTPCiphers {
			if c == "" {
				continue // that PeerConnection was never negotiated (bob does not publish)
			}
			checked++
			if c != "SRTP_AEAD_AES_128_GCM" {
				t.Errorf("%s negotiated SRTP profile %q, want SRTP_AEAD_AES_128_GCM", p.Info.Identity, c)
			}
		}
	}
	if checked < 2 {
		t.Errorf("only %d connected PeerConnections reported an SRTP profile", checked)
	}
	// The media bob decrypted took the path configured: direct (sfu/srtpout) or pion's.
	subs := 0
	for _, p := range stats {
		for _, s := range p.Subscriptions {
			if s.Direct != direct || s.WriteErrors != 0 {
				t.Errorf("%s <- %s: direct %v (want %v), %d write errors", s.Subscriber, s.TrackSID, s.Direct, direct, s.WriteErrors)
			}
			subs++
		}
	}
	if subs == 0 {
		t.Error("no subscription in the room stats")
	}
}

// In dev mode the server serves Go profiles for performance work.
func TestDevPprof(t *testing.T) {
	url, _ := startTestServerWith(t)
	resp, err := http.Get(strings.Replace(url, "ws://", "http://", 1) + "/debug/pprof/goroutine?debug=1")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /debug/pprof/goroutine: HTTP %d", resp.StatusCode)
	}
}

// TestHealthWarnsRecordingImpossible: a spool that cannot be written (here a path under a
// regular file, which no user, root included, can create) keeps the server serving, and
// /healthz says that nothing can be recorded.
func TestHealthWarnsRecordingImpossible(t *testing.T) {
	dir := t.TempDir()
	blocker := filepath.Join(dir, "not-a-dir")
	if err := os.WriteFile(blocker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	url, _ := startTestServerWith(t, func(c *config.Config) {
		c.DataDir = dir
		c.Recording.Enabled = true
		c.Recording.SpoolDir = filepath.Join(blocker, "spool")
	})
	resp, err := http.Get(strings.Replace(url, "ws://", "http://", 1) + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(string(body), "ok\n") ||
		!strings.Contains(string(body), "warning: recording: nothing can be recorded") {
		t.Fatalf("/healthz: %d %q; want ok and a recording warning", resp.StatusCode, body)
	}
}
