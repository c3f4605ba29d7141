package testclient

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/livekit/protocol/auth"
	"github.com/livekit/protocol/livekit"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
	"google.golang.org/protobuf/proto"
)

func TestNewToken(t *testing.T) {
	tok := MustToken(t, DevAPIKey, DevAPISecret, "alice", SubscribeOnlyGrant("r1"), WithName("Alice"), WithMetadata("md"))
	v, err := auth.ParseAPIToken(tok)
	if err != nil {
		t.Fatal(err)
	}
	_, grants, err := v.Verify(DevAPISecret)
	if err != nil {
		t.Fatal(err)
	}
	if v.Identity() != "alice" || v.APIKey() != DevAPIKey || grants.Name != "Alice" || grants.Metadata != "md" {
		t.Errorf("identity %q key %q grants %+v", v.Identity(), v.APIKey(), grants)
	}
	g := grants.Video
	if g == nil || !g.RoomJoin || g.Room != "r1" || g.GetCanPublish() || !g.GetCanSubscribe() || g.GetCanPublishData() {
		t.Errorf("video grant %+v", g)
	}
	if _, _, err := v.Verify("wrong"); err == nil {
		t.Error("token verified with the wrong secret")
	}
	now := time.Now()
	for name, times := range map[string][2]time.Time{
		"expired":         {now.Add(-time.Hour), now.Add(-10 * time.Minute)},
		"not yet valid":   {now.Add(10 * time.Minute), now.Add(time.Hour)},
		"valid (control)": {now.Add(-time.Minute), now.Add(time.Hour)},
	} {
		tok, err := TokenValidBetween(DevAPIKey, DevAPISecret, "bob", JoinGrant("r1"), times[0], times[1])
		if err != nil {
			t.Fatal(err)
		}
		v2, err := auth.ParseAPIToken(tok)
		if err != nil {
			t.Fatal(err)
		}
		_, g, err := v2.Verify(DevAPISecret)
		if valid := name == "valid (control)"; (err == nil) != valid {
			t.Errorf("%s: verify error %v", name, err)
		} else if valid && (g.Video.Room != "r1" || v2.Identity() != "bob") {
			t.Errorf("%s: grants %+v", name, g)
		}
	}
}

func TestWsAndHTTP(t *testing.T) {
	for in, want := range map[string][2]string{
		"ws://127.0.0.1:7880":    {"ws://127.0.0.1:7880", "http://127.0.0.1:7880"},
		"http://127.0.0.1:7880/": {"ws://127.0.0.1:7880", "http://127.0.0.1:7880"},
		"wss://example.test":     {"wss://example.test", "https://example.test"},
	} {
		w, h := wsAndHTTP(in)
		if w != want[0] || h != want[1] {
			t.Errorf("wsAndHTTP(%q) = %q, %q", in, w, h)
		}
	}
}

// vp8Packet builds an RTP packet carrying a VP8 payload descriptor (with a 15-bit picture
// id) followed by payload.
func vp8Packet(seq uint16, ts uint32, picID uint16, start, marker bool, payload []byte) *rtp.Packet {
	desc := []byte{0x80, 0x80, 0x80 | byte(picID>>8), byte(picID)}
	if start {
		desc[0] |= 0x10
	}
	return &rtp.Packet{
		Header:  rtp.Header{Version: 2, SequenceNumber: seq, Timestamp: ts, Marker: marker, SSRC: 1},
		Payload: append(desc, payload...),
	}
}

func TestTrackStatsVP8(t *testing.T) {
	ts := &TrackStats{lastPicID: -1, done: make(chan struct{})}
	ts.s = TrackSnapshot{Kind: webrtc.RTPCodecTypeVideo, MimeType: webrtc.MimeTypeVP8, AudioLevel: -1}
	key := []byte{0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0x40, 0x01, 0xb4, 0x00, 0xaa} // 320x180
	inter := []byte{0x11, 0x02, 0x00, 0xaa}
	now := time.Now()

	// Frame 1: keyframe in two packets. Frame 2: one packet.
	ts.add(vp8Packet(65534, 1000, 7, true, false, key), now)
	ts.add(vp8Packet(65535, 1000, 7, false, true, []byte{1}), now)
	ts.add(vp8Packet(0, 4000, 8, true, true, inter), now)
	s := ts.Snapshot()
	if s.Packets != 3 || s.Gaps != 0 || s.Frames != 2 || s.Keyframes != 1 || !s.HasResolution(320, 180) || s.PictureIDJumps != 0 {
		t.Fatalf("after 2 frames: %s", s)
	}
	// Frame 3 loses its second packet (seq 2); frame 4 is fine but its picture id jumps.
	ts.add(vp8Packet(1, 7000, 9, true, false, inter), now)
	ts.add(vp8Packet(3, 7000, 9, false, true, []byte{1}), now)
	ts.add(vp8Packet(4, 10000, 20, true, true, inter), now)
	// A late retransmission of seq 2, and a packet with an older timestamp.
	ts.add(vp8Packet(2, 7000, 9, false, false, []byte{1}), now)
	ts.add(vp8Packet(5, 9000, 21, true, true, inter), now)
	s = ts.Snapshot()
	if s.Gaps != 1 || s.Missing != 1 || s.Late != 1 || s.BrokenFrames != 1 || s.Frames != 4 || s.PictureIDJumps != 1 || s.TimestampBackwards != 1 {
		t.Fatalf("after loss: %s", s)
	}
	// A 1280x720 keyframe changes the resolution.
	big := []byte{0x50, 0x2a, 0x00, 0x9d, 0x01, 0x2a, 0x00, 0x05, 0xd0, 0x02, 0xaa}
	ts.add(vp8Packet(6, 12000, 22, true, true, big), now)
	s = ts.Snapshot()
	if !s.HasResolution(1280, 720) || len(s.Resolutions) != 2 || s.Keyframes != 2 {
		t.Fatalf("after second keyframe: %s %v", s, s.Resolutions)
	}
}

func TestTrackStatsAudioLevel(t *testing.T) {
	ts := &TrackStats{lastPicID: -1, done: make(chan struct{}), levelExt: 1}
	ts.s = TrackSnapshot{Kind: webrtc.RTPCodecTypeAudio, MimeType: webrtc.MimeTypeOpus, AudioLevel: -1}
	p := &rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: 1, Timestamp: 960}, Payload: []byte{1, 2}}
	if err := p.SetExtension(1, []byte{0x80 | 25}); err != nil {
		t.Fatal(err)
	}
	ts.add(p, time.Now())
	if s := ts.Snapshot(); s.AudioLevel != 25 || !s.AudioVoice || s.AudioLevelPackets != 1 {
		t.Fatalf("%s voice=%v", s, s.AudioVoice)
	}
}

func TestLoopProvider(t *testing.T) {
	frames := [][]byte{{0}, {1}, {2}, {3}, {4}, {5}}
	isKey := []bool{true, false, false, true, false, false}
	p := newLoopProvider(frames, isKey, time.Second/30, true, true)
	ctx := context.Background()
	next := func() byte {
		t.Helper()
		s, err := p.NextSample(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(s.Data) == 0 {
			return 0xff
		}
		return s.Data[0]
	}
	if a, b := next(), next(); a != 0 || b != 1 {
		t.Fatalf("got %d %d", a, b)
	}
	p.onRTCP(&rtcp.PictureLossIndication{MediaSSRC: 42}, 42)
	p.onRTCP(&rtcp.PictureLossIndication{MediaSSRC: 7}, 42) // another SSRC: ignored
	if got := next(); got != 3 {
		t.Fatalf("after PLI got frame %d, want keyframe 3", got)
	}
	if a, b := next(), next(); a != 4 || b != 5 {
		t.Fatalf("got %d %d", a, b)
	}
	if got := next(); got != 0 { // loop
		t.Fatalf("loop got %d", got)
	}
	p.setPaused(true)
	if got := next(); got != 0xff {
		t.Fatalf("paused provider returned data %d", got)
	}
	p.setPaused(false)
	if got := next(); got != 3 {
		t.Fatalf("resume got %d, want keyframe 3", got)
	}
	st := p.snapshot()
	if st.PLIs != 1 || st.Loops != 1 || st.ForcedKeyframes != 2 || st.Paused != 1 || st.KeySamples != 4 {
		t.Fatalf("stats %+v", st)
	}
	_ = p.Close()
	if _, err := p.NextSample(ctx); err != io.EOF {
		t.Fatalf("after Close: %v", err)
	}

	once := newLoopProvider(frames[:1], isKey[:1], time.Millisecond, false, false)
	_, _ = once.NextSample(ctx)
	if _, err := once.NextSample(ctx); err != io.EOF {
		t.Fatalf("NoLoop: %v", err)
	}
}

func TestWaitFor(t *testing.T) {
	start := time.Now()
	n := 0
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := WaitFor(ctx, func() bool { n++; return n == 3 }); err != nil {
		t.Fatal(err)
	}
	ctx2, cancel2 := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel2()
	if err := WaitFor(ctx2, func() bool { return false }); err == nil {
		t.Fatal("WaitFor returned nil for a false condition")
	}
	if time.Since(start) > time.Second {
		t.Fatal("WaitFor too slow")
	}
}

// TestSignalTap relays a fake signaling exchange through the tap and checks both directions
// are decoded and forwarded, and that refusals pass through.
func TestSignalTap(t *testing.T) {
	up := websocket.Upgrader{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("access_token") == "bad" {
			http.Error(w, "invalid token", http.StatusUnauthorized)
			return
		}
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer func() { _ = c.Close() }()
		join, _ := proto.Marshal(&livekit.SignalResponse{Message: &livekit.SignalResponse_Join{Join: &livekit.JoinResponse{
			Room: &livekit.Room{Name: "r"}, Participant: &livekit.ParticipantInfo{Identity: "a"},
		}}})
		_ = c.WriteMessage(websocket.BinaryMessage, join)
		_, data, err := c.ReadMessage()
		if err != nil {
			return
		}
		_ = c.WriteMessage(websocket.BinaryMessage, data) // echo: not a SignalResponse, decodes anyway or not
	}))
	defer srv.Close()
	wsURL, httpURL := wsAndHTTP(srv.URL)
	tap := StartSignalTap(t, Target{URL: wsURL, HTTPURL: httpURL})

	c, _, err := websocket.DefaultDialer.Dial(tap.Target().URL+"/rtc?access_token=ok&protocol=16", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Close() }()
	_, data, err := c.ReadMessage()
	if err != nil {
		t.Fatal(err)
	}
	var res livekit.SignalResponse
	if err := proto.Unmarshal(data, &res); err != nil || res.GetJoin().GetRoom().GetName() != "r" {
		t.Fatalf("client got %v %v", &res, err)
	}
	ping, _ := proto.Marshal(&livekit.SignalRequest{Message: &livekit.SignalRequest_PingReq{PingReq: &livekit.Ping{Timestamp: 5}}})
	if err := c.WriteMessage(websocket.BinaryMessage, ping); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.ReadMessage(); err != nil {
		t.Fatal(err)
	}
	msgs := tap.Messages()
	if len(msgs) < 2 || msgs[0].Type() != "join" || msgs[0].FromClient || !msgs[1].FromClient || msgs[1].Type() != "ping_req" {
		t.Fatalf("transcript:\n%s", tap.Transcript())
	}
	if !strings.Contains(msgs[0].String(), `"identity":"a"`) {
		t.Errorf("rendering: %s", msgs[0])
	}
	if reqs := tap.Requests(); len(reqs) != 1 || !strings.HasPrefix(reqs[0], "GET /rtc?access_token=ok") {
		t.Errorf("requests %v", reqs)
	}

	_, resp, err := websocket.DefaultDialer.Dial(tap.Target().URL+"/rtc?access_token=bad", nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("refusal not forwarded: %v %v", err, resp)
	}
}

func TestStartRedis(t *testing.T) {
	addr := StartRedis(t)
	if err := redisPing(addr); err != nil {
		t.Fatal(err)
	}
}
