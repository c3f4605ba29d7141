package classroom_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/livekit/protocol/auth"
	"github.com/livekit/protocol/livekit"
	protoLogger "github.com/livekit/protocol/logger"
	lksdk "github.com/livekit/server-sdk-go/v2"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"

	"github.com/sanke-edu/sanke/classroom"
	"github.com/sanke-edu/sanke/internal/config"
	"github.com/sanke-edu/sanke/internal/server"
	"github.com/sanke-edu/sanke/test/testclient"
	"github.com/sanke-edu/sanke/test/testclient/inprocess"
)

const adminKey = "test-admin-key-0123456789abcdef"

func TestMain(m *testing.M) {
	if os.Getenv("SANKE_TEST_LOG") == "" {
		lksdk.SetLogger(protoLogger.GetDiscardLogger())
	}
	os.Exit(m.Run())
}

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// testServer is an in-process Sanke with the classroom service.
type testServer struct {
	t      *testing.T
	srv    *server.Server
	svc    *classroom.Service
	ws     string // ws://127.0.0.1:port
	http   string // http://127.0.0.1:port
	target testclient.Target
	clock  *fakeClock
}

// startServer runs a dev server on free loopback ports with classroom enabled. clock, when
// not nil, drives the classroom service (ticks are then manual).
func startServer(t *testing.T, clock *fakeClock, mutate func(*config.Config)) *testServer {
	t.Helper()
	cfg := config.DevDefault()
	cfg.RTC.TCPPort = 0
	cfg.DataDir = t.TempDir()
	cfg.Recording.Enabled = false
	cfg.Room.DepartureTimeout = 2 * time.Second
	cfg.Classroom.Enabled = true
	cfg.Classroom.AdminKey = adminKey
	cfg.Classroom.PasswordCost = 4 // bcrypt.MinCost: fast tests (production: 10)
	if mutate != nil {
		mutate(cfg)
	}
	is := inprocess.StartWith(t, cfg, func(srv *server.Server) {
		if clock != nil {
			srv.Classroom().SetClock(clock)
		}
	})
	ts := &testServer{t: t, srv: is.Server, svc: is.Server.Classroom(), ws: is.Target.URL, http: is.Target.HTTPURL, target: is.Target, clock: clock}
	return ts
}

// startClass runs a server with the sample dataset and a delivery session of pairing
// P-MUSIC (M1 teaching T1 and T2) that started five minutes ago, in room class-<session>.
func startClass(t *testing.T, session string, mutate ...func(*config.Config)) *testServer {
	t.Helper()
	ts := startServer(t, nil, func(c *config.Config) {
		c.Classroom.Dataset = []string{"sample/sample.yaml"}
		for _, m := range mutate {
			m(c)
		}
	})
	now := time.Now()
	f := func(d time.Duration) string { return now.Add(d).Format(time.RFC3339) }
	sessions := fmt.Sprintf("sessions:\n  - {id: %s, course_type: 1, pairing: P-MUSIC, start: %q, end: %q}\n", session, f(-5*time.Minute), f(40*time.Minute))
	if code := ts.call("POST", "/api/v1/import", adminKey, sessions, nil); code != 200 {
		t.Fatalf("import: %d", code)
	}
	return ts
}

// call makes an API request and decodes a JSON answer into out (when not nil).
func (ts *testServer) call(method, path, token string, body any, out any) int {
	ts.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	case string:
		rd = bytes.NewReader([]byte(b))
	default:
		data, err := json.Marshal(b)
		if err != nil {
			ts.t.Fatal(err)
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, ts.http+path, rd)
	if err != nil {
		ts.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if s, ok := body.(string); ok && len(s) > 0 && s[0] != '{' {
		req.Header.Set("Content-Type", "application/yaml")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		ts.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if out != nil {
		if raw, ok := out.(*[]byte); ok {
			*raw = data
		} else if err := json.Unmarshal(data, out); err != nil {
			ts.t.Fatalf("%s %s: %d %s: %v", method, path, resp.StatusCode, data, err)
		}
	}
	return resp.StatusCode
}

// login signs an account in and returns its sign-in token.
func (ts *testServer) login(account, password string) string {
	ts.t.Helper()
	var out struct{ Token string }
	if code := ts.call("POST", "/api/v1/login", "", map[string]string{"account": account, "password": password}, &out); code != 200 {
		ts.t.Fatalf("login %s: %d", account, code)
	}
	return out.Token
}

// roomToken asks for a session's room token with a sign-in token.
type roomTokenResp struct {
	Token    string
	Room     string
	Identity string
	Role     string
	Error    string
}

func (ts *testServer) roomToken(signIn, session string) (roomTokenResp, int) {
	ts.t.Helper()
	var out roomTokenResp
	code := ts.call("POST", "/api/v1/sessions/"+session+"/token", signIn, nil, &out)
	return out, code
}

// mintToken signs a LiveKit token with the dev key (as a platform holding an API key would).
func mintToken(t testing.TB, identity string, grant *auth.VideoGrant, attrs map[string]string) string {
	t.Helper()
	at := auth.NewAccessToken(config.DevAPIKey, config.DevAPISecret).SetIdentity(identity).SetVideoGrant(grant).
		SetAttributes(attrs).SetValidFor(time.Hour)
	tok, err := at.ToJWT()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// client is a Go SDK participant that counts the video packets it receives.
type client struct {
	room     *lksdk.Room
	received atomic.Int64
	stop     chan struct{}
	stopOnce sync.Once
	// tap, for a client made by connectTapped, records its signaling.
	tap *testclient.SignalTap
}

// connect joins with token.
func (ts *testServer) connect(token string) *client {
	ts.t.Helper()
	return ts.connectTo(ts.ws, token)
}

// connectTapped joins with token through a signal tap of its own (client.tap), so that the
// test can read what the server told this client.
func (ts *testServer) connectTapped(token string) *client {
	ts.t.Helper()
	tap := testclient.StartSignalTap(ts.t, ts.target)
	c := ts.connectTo(tap.Target().URL, token)
	c.tap = tap
	return c
}

func (ts *testServer) connectTo(url, token string) *client {
	ts.t.Helper()
	c := &client{stop: make(chan struct{})}
	cb := lksdk.NewRoomCallback()
	cb.ParticipantCallback.OnTrackSubscribed = func(track *webrtc.TrackRemote, _ *lksdk.RemoteTrackPublication, _ *lksdk.RemoteParticipant) {
		go func() {
			for {
				if _, _, err := track.ReadRTP(); err != nil {
					return
				}
				if track.Kind() == webrtc.RTPCodecTypeVideo {
					c.received.Add(1)
				}
			}
		}()
	}
	r, err := lksdk.ConnectToRoomWithToken(url, token, cb)
	if err != nil {
		ts.t.Fatalf("connect: %v", err)
	}
	c.room = r
	ts.t.Cleanup(c.leave)
	return c
}

// leave disconnects (sending leave) and stops publishing.
func (c *client) leave() {
	c.stopOnce.Do(func() {
		close(c.stop)
		c.room.Disconnect()
	})
}

// publishVideo publishes a camera track sending a VP8 keyframe header and filler at 30 fps.
func (c *client) publishVideo(t testing.TB) {
	t.Helper()
	track, err := lksdk.NewLocalSampleTrack(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.room.LocalParticipant.PublishTrack(track, &lksdk.TrackPublicationOptions{
		Name: "camera", Source: livekit.TrackSource_CAMERA, VideoWidth: 320, VideoHeight: 180,
	}); err != nil {
		t.Fatal(err)
	}
	go func() {
		tick := time.NewTicker(33 * time.Millisecond)
		defer tick.Stop()
		frame := append([]byte{0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0x40, 0x01, 0xb4, 0x00}, make([]byte, 600)...)
		for {
			select {
			case <-c.stop:
				return
			case <-tick.C:
				_ = track.WriteSample(media.Sample{Data: frame, Duration: 33 * time.Millisecond}, nil)
			}
		}
	}()
}

// waitVideo waits until the client receives video (more packets than it had).
func (c *client) waitVideo(t testing.TB) {
	t.Helper()
	start := c.received.Load()
	deadline := time.Now().Add(15 * time.Second)
	for c.received.Load() < start+5 {
		if time.Now().After(deadline) {
			t.Fatalf("%s receives no video", c.room.LocalParticipant.Identity())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitConn waits until the service has recorded identity in session as connected (open)
// or gone (!open).
func (ts *testServer) waitConn(session, identity string, open bool) {
	ts.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		ts.svc.Flush()
		conns, err := ts.svc.Store().Connections(context.Background(), session)
		if err != nil {
			ts.t.Fatal(err)
		}
		isOpen, seen := false, false
		for _, c := range conns {
			if c.Identity == identity {
				seen = true
				if c.LeftAt.IsZero() {
					isOpen = true
				}
			}
		}
		if seen && isOpen == open {
			return
		}
		if time.Now().After(deadline) {
			ts.t.Fatalf("%s in %s: open=%v wanted %v (connections %+v)", identity, session, isOpen, open, conns)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// grantFor is a plain room-join grant (publish and subscribe).
func grantFor(room string) *auth.VideoGrant { return &auth.VideoGrant{RoomJoin: true, Room: room} }

// disconnect makes a client leave and waits until the server has removed it. The SDK's leave
// message can be lost when its websocket closes first (the server then keeps the participant
// for the reconnect window); after 3 s the participant is removed as the server would.
func (ts *testServer) disconnect(c *client, roomName string) {
	ts.t.Helper()
	id := c.room.LocalParticipant.Identity()
	c.leave()
	rooms := ts.srv.Rooms()
	deadline := time.Now().Add(3 * time.Second)
	for {
		if _, err := rooms.GetParticipant(context.Background(), roomName, id); err != nil {
			return
		}
		if time.Now().After(deadline) {
			ts.t.Logf("%s: leave not seen by the server after 3 s; removing it", id)
			_ = rooms.RemoveParticipant(context.Background(), roomName, id)
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}
