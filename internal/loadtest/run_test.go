package loadtest

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/sanke-edu/sanke/internal/config"
	"github.com/sanke-edu/sanke/sfu/room"
	"github.com/sanke-edu/sanke/test/testclient/inprocess"
)

// startServer runs an in-process Sanke dev server on free loopback ports and returns its URL.
func startServer(t *testing.T) string {
	t.Helper()
	return inprocess.Start(t, nil).Target.URL
}

// subscriberStats returns the subscribers' subscriptions (identities "lt-sub-*") in the
// server's stats of roomName. Call it while every participant is still connected
// (Config.OnWindowEnd), so that every subscription is there.
func subscriberStats(srv *inprocess.Server, roomName string) ([]room.SubscriptionStats, error) {
	ps, err := srv.Server.Rooms().Stats(roomName)
	if err != nil {
		return nil, err
	}
	var subs []room.SubscriptionStats
	for _, p := range ps {
		for _, s := range p.Subscriptions {
			if strings.HasPrefix(s.Subscriber, "lt-sub-") {
				subs = append(subs, s)
			}
		}
	}
	return subs, nil
}

// checkOutput asserts that the server forwarded every subscription, through the direct path
// (or pion's, when *direct is false; either when direct is nil), without write errors.
func checkOutput(t *testing.T, subs []room.SubscriptionStats, statsErr error, want int, direct *bool) {
	t.Helper()
	if statsErr != nil || len(subs) != want {
		t.Errorf("server stats: %d subscriber subscriptions (want %d), err %v", len(subs), want, statsErr)
		return
	}
	for _, s := range subs {
		if (direct != nil && s.Direct != *direct) || s.WriteErrors != 0 || s.Packets == 0 {
			t.Errorf("%s <- %s %s: direct %v (want %v), %d packets, %d write errors",
				s.Subscriber, s.Publisher, s.Kind, s.Direct, direct != nil && *direct, s.Packets, s.WriteErrors)
		}
	}
}

// checkComplete asserts what every correctness run must show: no errors, every subscriber
// (udp over UDP, tcp over ICE-TCP) received both tracks (the top video layer and the audio)
// with no loss, gap or corruption.
func checkComplete(t *testing.T, res *Result, udp, tcp int) {
	t.Helper()
	subs := udp + tcp
	if res.Errors.Total != 0 {
		t.Errorf("errors: %+v", res.Errors)
	}
	tr := res.Tracks
	if tr.PerSubscriber != 2 || tr.Expected != 2*subs || tr.Received != 2*subs || tr.SubscribersJoined != subs ||
		tr.SubscribersComplete != subs || tr.Unexpected != 0 || tr.OverUDP != udp || tr.OverTCP != tcp {
		t.Errorf("tracks: %+v", tr)
	}
	l := res.Loss
	if l.RunLost != 0 || l.RunGaps != 0 || l.Lost != 0 || l.RunCorrupt != 0 || l.Corrupt != 0 || l.Foreign != 0 || l.Misrouted != 0 {
		t.Errorf("loss: %+v", l)
	}
	if l.Expected == 0 || l.Received != l.Expected {
		t.Errorf("window accounting: %+v", l)
	}
	// With the "all" layout every subscriber gets the top video layer and the audio.
	got := map[string]int{}
	for _, r := range res.Received {
		got[r.Kind+"/"+r.Layer] = r.Streams
	}
	if got["video/f"] != subs || got["audio/-"] != subs || len(got) != 2 {
		t.Errorf("received layers: %v", got)
	}
}

// TestRunAgainstSanke is the short load test of the CI suite: correctness only (every
// subscriber receives every track, no sequence gaps on loopback, intact payloads, the table
// and the JSON are produced); no timing assertions.
func TestRunAgainstSanke(t *testing.T) {
	if testing.Short() {
		t.Skip("short mode")
	}
	srv := inprocess.Start(t, nil)
	if !srv.Config.RTC.DirectSRTP {
		t.Fatal("the dev config has the direct SRTP path off")
	}
	var subs []room.SubscriptionStats
	var statsErr error
	onWindowEnd := func() { subs, statsErr = subscriberStats(srv, "ci") }
	var progress bytes.Buffer
	res, err := Run(context.Background(), Config{
		URL: srv.Target.URL, APIKey: config.DevAPIKey, APISecret: config.DevAPISecret, Room: "ci",
		VideoPublishers: 1, AudioPublishers: 1, Subscribers: 20,
		Duration: 3 * time.Second, RampUp: 2 * time.Second,
		ServerPID: os.Getpid(), // in-process: exercises the /proc figures
		Floor:     &FloorResult{TotalUs: 1, EncryptUs: 0.5, SendUs: 0.5, PacketBytes: FloorPacketSize, Batch: FloorBatch},
		Progress:  &progress, ProgressInterval: time.Second, OnWindowEnd: onWindowEnd,
	})
	if err != nil {
		t.Fatal(err)
	}
	// UDP subscribers on the shared socket: the server's own SRTP sender takes their media.
	direct := true
	checkOutput(t, subs, statsErr, 40, &direct)
	var table, js bytes.Buffer
	if err := res.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s", table.String())
	if err := res.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}

	checkComplete(t, res, 20, 0)
	l := res.Loss
	if len(res.Latency) == 0 || res.Latency[0].Samples != l.Received {
		t.Errorf("latency: %+v", res.Latency)
	}
	if res.Join.FirstMedia.N != 20 || res.Join.AllTracks.N != 20 {
		t.Errorf("join: %+v", res.Join)
	}
	if res.Server == nil || res.Server.ForwardedPackets != l.Received || res.Server.CPUSeconds <= 0 || res.Server.Error != "" {
		t.Errorf("server: %+v", res.Server)
	}

	for _, want := range []string{"Tracks      expected 40 (2 per subscriber), received 40", "Loss        0 lost", "Latency", "Join", "Server"} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("table lacks %q", want)
		}
	}
	var back Result
	if err := json.Unmarshal(js.Bytes(), &back); err != nil {
		t.Fatalf("json: %v", err)
	}
	if back.Tracks != res.Tracks || back.Loss != res.Loss || back.Config.Subscribers != 20 {
		t.Errorf("json round trip: %+v", back.Tracks)
	}
	if !strings.Contains(progress.String(), "subscribers joined") {
		t.Errorf("no progress lines: %q", progress.String())
	}
}

// TestRunICETCP has the subscribers reach the server over ICE-TCP only (publishers on UDP):
// every subscriber receives every track complete and intact, and the server forwards to them
// through pion's write path, its direct UDP sender being unusable on a TCP pair.
func TestRunICETCP(t *testing.T) {
	if testing.Short() {
		t.Skip("short mode")
	}
	cfg := config.DevDefault()
	if cfg.RTC.TCPPort == 0 {
		cfg.RTC.TCPPort = 7881 // any non-zero port: Start replaces it with a free one
	}
	cfg.RTC.DirectSRTP = true
	srv := inprocess.Start(t, cfg)
	if srv.Config.RTC.TCPPort == 0 {
		t.Fatal("in-process server without ICE-TCP")
	}
	var subs []room.SubscriptionStats
	var statsErr error
	onWindowEnd := func() { subs, statsErr = subscriberStats(srv, "tcp") }
	res, err := Run(context.Background(), Config{
		URL: srv.Target.URL, APIKey: config.DevAPIKey, APISecret: config.DevAPISecret, Room: "tcp",
		VideoPublishers: 1, AudioPublishers: 1, Subscribers: 4, ICETransport: ICETransportTCP,
		Duration: 3 * time.Second, RampUp: time.Second, OnWindowEnd: onWindowEnd,
	})
	if err != nil {
		t.Fatal(err)
	}
	var table, js bytes.Buffer
	if err := res.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s", table.String())

	checkComplete(t, res, 0, 4)
	l := res.Loss
	// Latency to the reader only: active ICE-TCP sockets are pion's own, without arrival times.
	if len(res.Latency) == 0 || res.Latency[0].Samples != l.Received || len(res.ToSocket) != 0 {
		t.Errorf("latency: %+v, to the socket: %+v", res.Latency, res.ToSocket)
	}
	for _, e := range res.Timeline {
		if e.Timed != 0 || e.Slow != 0 || e.MaxSockMs != 0 {
			t.Errorf("timeline entry with socket times over TCP: %+v", e)
		}
	}
	for _, want := range []string{"ICE-TCP", "to the socket not measured", "Stalls      not measured"} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("table lacks %q", want)
		}
	}
	if err := res.WriteJSON(&js); err != nil || !strings.Contains(js.String(), `"ice_transport": "tcp"`) {
		t.Errorf("json: %v, ice_transport missing", err)
	}
	// Over ICE-TCP a stream goes direct (srtpout's Stream) when the connection was found
	// before its first packet, else through pion: either is right.
	checkOutput(t, subs, statsErr, 8, nil)
}

// TestRunGridLayout checks that update_track_settings reach the server: the first video
// publisher's track arrives at the top layer, the other one at the lowest.
func TestRunGridLayout(t *testing.T) {
	if testing.Short() {
		t.Skip("short mode")
	}
	url := startServer(t)
	res, err := Run(context.Background(), Config{
		URL: url, APIKey: config.DevAPIKey, APISecret: config.DevAPISecret, Room: "grid",
		VideoPublishers: 2, Subscribers: 4, Layout: LayoutGrid,
		Duration: 2 * time.Second, RampUp: 500 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	var table bytes.Buffer
	_ = res.WriteTable(&table)
	t.Logf("\n%s", table.String())
	if res.Errors.Total != 0 || res.Tracks.Received != 8 || res.Loss.RunGaps != 0 || res.Loss.RunCorrupt != 0 {
		t.Errorf("errors %+v tracks %+v loss %+v", res.Errors, res.Tracks, res.Loss)
	}
	got := map[string]int{}
	for _, r := range res.Received {
		got[r.Kind+"/"+r.Layer] = r.Streams
	}
	if got["video/f"] != 4 || got["video/q"] != 4 || len(got) != 2 {
		t.Errorf("received layers: %v, want 4 streams at f and 4 at q", got)
	}
}

func TestConfigCheck(t *testing.T) {
	base := Config{URL: "ws://127.0.0.1:7880", APIKey: "k", APISecret: "s", Room: "r", VideoPublishers: 1, Duration: time.Second}
	ok := base
	if err := ok.Check(); err != nil || ok.Layout != LayoutAll || len(ok.Layers) != 3 || ok.AudioBitrate != 32000 ||
		ok.ICETransport != ICETransportUDP {
		t.Errorf("defaults: %v %+v", err, ok)
	}
	for name, mod := range map[string]func(*Config){
		"no url":         func(c *Config) { c.URL = "" },
		"no key":         func(c *Config) { c.APISecret = "" },
		"no publishers":  func(c *Config) { c.VideoPublishers = 0 },
		"bad layout":     func(c *Config) { c.Layout = "mosaic" },
		"no duration":    func(c *Config) { c.Duration = 0 },
		"negative ramp":  func(c *Config) { c.RampUp = -time.Second },
		"negative count": func(c *Config) { c.Subscribers = -1 },
		"bad layer":      func(c *Config) { c.Layers = []LayerSpec{{RID: "q"}} },
		"bad transport":  func(c *Config) { c.ICETransport = "quic" },
	} {
		c := base
		mod(&c)
		if err := c.Check(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := rtcURL("localhost:7880", true); err == nil {
		t.Error("scheme-less url accepted")
	}
	u, err := rtcURL("https://sfu.example.org/base/", false)
	if err != nil || !strings.HasPrefix(u, "wss://sfu.example.org/base/rtc?") || !strings.Contains(u, "auto_subscribe=0") {
		t.Errorf("rtc url %q %v", u, err)
	}
}
