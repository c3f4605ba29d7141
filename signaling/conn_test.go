package signaling

import (
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/livekit/protocol/livekit"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

func TestPingsAnsweredBySignaling(t *testing.T) {
	tests := []struct {
		name  string
		req   *livekit.SignalRequest
		check func(t *testing.T, res *livekit.SignalResponse)
	}{
		{"ping", &livekit.SignalRequest{Message: &livekit.SignalRequest_Ping{Ping: 1234}},
			func(t *testing.T, res *livekit.SignalResponse) {
				if p, ok := res.GetMessage().(*livekit.SignalResponse_Pong); !ok || p.Pong != 1234 {
					t.Errorf("got %v, want pong 1234", res)
				}
			}},
		{"ping_req", pingReq(5678), func(t *testing.T, res *livekit.SignalResponse) {
			p := res.GetPongResp()
			if p.GetLastPingTimestamp() != 5678 || time.Since(time.UnixMilli(p.GetTimestamp())).Abs() > time.Minute {
				t.Errorf("got %v, want pong_resp for 5678 at the current time", res)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			j := newFakeJoiner()
			srv := newTestServer(t, Config{}, j)
			ws, s := srv.join(t, j, "alice")
			send(t, ws, tc.req)
			tc.check(t, readResponse(t, ws))
			// The session never sees pings: its first request is the one sent next.
			send(t, ws, trickle(1))
			if got := s.nextRequest(t); got.GetTrickle() == nil {
				t.Errorf("session got %v, want the trickle", got)
			}
		})
	}
}

func TestJSONClientGetsJSON(t *testing.T) {
	j := newFakeJoiner()
	srv := newTestServer(t, Config{}, j)
	ws, s := srv.join(t, j, "alice")

	text := func(req *livekit.SignalRequest) {
		data, err := protojson.Marshal(req)
		if err != nil {
			t.Fatal(err)
		}
		if err := ws.WriteMessage(websocket.TextMessage, data); err != nil {
			t.Fatal(err)
		}
	}
	readText := func() *livekit.SignalResponse {
		_ = ws.SetReadDeadline(time.Now().Add(waitFor))
		typ, data, err := ws.ReadMessage()
		if err != nil || typ != websocket.TextMessage {
			t.Fatalf("read: type %d err %v, want a text message", typ, err)
		}
		res := &livekit.SignalResponse{}
		if err := protojson.Unmarshal(data, res); err != nil {
			t.Fatalf("not protojson: %v: %s", err, data)
		}
		return res
	}

	text(pingReq(99))
	if got := readText().GetPongResp().GetLastPingTimestamp(); got != 99 {
		t.Errorf("pong_resp for %d, want 99", got)
	}
	text(trickle(2))
	if got := s.nextRequest(t); got.GetTrickle() == nil {
		t.Fatalf("session got %v, want the trickle", got)
	}
	// Room messages now go out as JSON too.
	if err := s.sink.Send(&livekit.SignalResponse{Message: &livekit.SignalResponse_RefreshToken{RefreshToken: "tok"}}); err != nil {
		t.Fatal(err)
	}
	if got := readText().GetRefreshToken(); got != "tok" {
		t.Errorf("refresh token %q, want tok", got)
	}
}

func TestRequestsReachSessionInOrder(t *testing.T) {
	j := newFakeJoiner()
	srv := newTestServer(t, Config{RateLimit: -1}, j)
	ws, s := srv.join(t, j, "alice")
	const n = 200
	for i := range n {
		send(t, ws, &livekit.SignalRequest{Message: &livekit.SignalRequest_Mute{
			Mute: &livekit.MuteTrackRequest{Sid: string(rune('A'+i%26)) + strings.Repeat("x", i)}}})
	}
	for i := range n {
		if got := s.nextRequest(t).GetMute().GetSid(); len(got) != i+1 {
			t.Fatalf("request %d has sid of length %d: out of order", i, len(got))
		}
	}
}

// A connection closed for its own misbehaviour must not disturb another one.
func TestProtocolViolationsCloseOnlyThatConnection(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		offend  func(t *testing.T, ws *websocket.Conn)
		code    int
		reason  string
		logLine string
	}{
		{name: "malformed protobuf", offend: func(t *testing.T, ws *websocket.Conn) {
			_ = ws.WriteMessage(websocket.BinaryMessage, []byte{0xff, 0xff, 0xff})
		}, code: websocket.CloseInvalidFramePayloadData, reason: "malformed signal request", logLine: "malformed signal request"},
		{name: "malformed json", offend: func(t *testing.T, ws *websocket.Conn) {
			_ = ws.WriteMessage(websocket.TextMessage, []byte(`{"trickle": 12`))
		}, code: websocket.CloseInvalidFramePayloadData, reason: "malformed signal request", logLine: "malformed signal request"},
		{name: "oversize frame", cfg: Config{MaxMessageBytes: 1024}, offend: func(t *testing.T, ws *websocket.Conn) {
			_ = ws.WriteMessage(websocket.BinaryMessage, make([]byte, 4096))
		}, code: websocket.CloseMessageTooBig, reason: "limit is 1024 bytes", logLine: "message too large"},
		{name: "flood", cfg: Config{RateLimit: 10, RateBurst: 5, FloodDrops: 20}, offend: func(t *testing.T, ws *websocket.Conn) {
			for i := range 100 {
				send(t, ws, trickle(i))
			}
		}, code: websocket.ClosePolicyViolation, reason: "rate limit exceeded", logLine: "message flood"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			j := newFakeJoiner()
			srv := newTestServer(t, tc.cfg, j)
			bad, badSession := srv.join(t, j, "mallory")
			good, _ := srv.join(t, j, "alice")

			tc.offend(t, bad)
			ce := readClose(t, bad)
			if ce.Code != tc.code || !strings.Contains(ce.Text, tc.reason) {
				t.Errorf("close %d %q, want %d containing %q", ce.Code, ce.Text, tc.code, tc.reason)
			}
			if r := badSession.waitClosed(t); !strings.Contains(r, tc.reason) {
				t.Errorf("session close reason %q, want it to contain %q", r, tc.reason)
			}
			srv.log.waitContains(t, tc.logLine)
			assertAlive(t, good)
			waitConnections(t, srv.h, 1)
		})
	}
}

func TestFloodDropsMessagesAboveRate(t *testing.T) {
	j := newFakeJoiner()
	srv := newTestServer(t, Config{RateLimit: 1, RateBurst: 5, FloodDrops: 1000}, j)
	ws, s := srv.join(t, j, "alice")
	for i := range 50 {
		send(t, ws, trickle(i))
	}
	time.Sleep(1100 * time.Millisecond) // earn a token for the ping
	assertAlive(t, ws)                  // still connected: not enough drops to count as a flood
	if n := len(s.requests); n > 7 {
		t.Errorf("session got %d requests, want about the burst (5)", n)
	}
}

func TestSlowClientIsDropped(t *testing.T) {
	j := newFakeJoiner()
	srv := newTestServer(t, Config{WriteQueue: 4, WriteTimeout: 300 * time.Millisecond, CloseGrace: 100 * time.Millisecond}, j)
	_, s := srv.join(t, j, "alice") // and never read again

	big := &livekit.SignalResponse{Message: &livekit.SignalResponse_Offer{Offer: &livekit.SessionDescription{
		Type: "offer", Sdp: strings.Repeat("a", 64<<10)}}}
	var err error
	for i := 0; i < 100000 && err == nil; i++ {
		err = s.sink.Send(big)
	}
	if !errors.Is(err, ErrWriteQueueFull) {
		t.Fatalf("Send = %v, want ErrWriteQueueFull", err)
	}
	if r := s.waitClosed(t); !strings.Contains(r, "write queue full") {
		t.Errorf("session close reason %q", r)
	}
	if err := s.sink.Send(big); !errors.Is(err, ErrConnectionClosed) {
		t.Errorf("Send after drop = %v, want ErrConnectionClosed", err)
	}
	srv.log.waitContains(t, "dropping slow client")
	waitConnections(t, srv.h, 0)
}

func TestClientGoneClosesSession(t *testing.T) {
	tests := []struct {
		name   string
		leave  bool // send a leave request first
		goAway func(ws *websocket.Conn)
		reason string
	}{
		{name: "close frame", leave: true, goAway: func(ws *websocket.Conn) {
			_ = ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, "bye"),
				time.Now().Add(time.Second))
		}, reason: "client closed the connection (1000): bye"},
		{name: "tcp dropped", goAway: func(ws *websocket.Conn) { _ = ws.NetConn().Close() }, reason: "connection lost"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			j := newFakeJoiner()
			srv := newTestServer(t, Config{}, j)
			ws, s := srv.join(t, j, "alice")
			if tc.leave {
				send(t, ws, &livekit.SignalRequest{Message: &livekit.SignalRequest_Leave{Leave: &livekit.LeaveRequest{}}})
			}
			tc.goAway(ws)
			if r := s.waitClosed(t); !strings.Contains(r, tc.reason) {
				t.Errorf("close reason %q, want it to contain %q", r, tc.reason)
			}
			if tc.leave {
				// The leave sent just before closing still reached the room, before Close.
				select {
				case req := <-s.requests:
					if req.GetLeave() == nil {
						t.Errorf("session got %v, want the leave", req)
					}
				default:
					t.Error("the leave sent before closing was lost")
				}
			}
			waitConnections(t, srv.h, 0)
			s.mu.Lock()
			defer s.mu.Unlock()
			if s.closes != 1 {
				t.Errorf("Session.Close called %d times, want once", s.closes)
			}
			srv.log.waitContains(t, "participant left")
		})
	}
}

func TestPingTimeout(t *testing.T) {
	cfg := Config{PingInterval: 50 * time.Millisecond, PingTimeout: 300 * time.Millisecond}

	t.Run("silent client is closed", func(t *testing.T) {
		j := newFakeJoiner()
		srv := newTestServer(t, cfg, j)
		ws, s := srv.join(t, j, "alice")
		// Not reading: the websocket pings go unanswered.
		if r := s.waitClosed(t); !strings.Contains(r, "ping timeout") {
			t.Errorf("close reason %q, want a ping timeout", r)
		}
		if ce := readClose(t, ws); ce.Code != websocket.ClosePolicyViolation {
			t.Errorf("close %v, want policy violation", ce)
		}
	})

	t.Run("client answering websocket pings stays", func(t *testing.T) {
		j := newFakeJoiner()
		srv := newTestServer(t, cfg, j)
		ws, s := srv.join(t, j, "alice")
		msgs := make(chan *livekit.SignalResponse, 16)
		go func() { // reading makes gorilla answer pings, as the Go SDK does
			for {
				_, data, err := ws.ReadMessage()
				if err != nil {
					close(msgs)
					return
				}
				res := &livekit.SignalResponse{}
				if proto.Unmarshal(data, res) == nil {
					msgs <- res
				}
			}
		}()
		time.Sleep(4 * cfg.PingTimeout)
		select {
		case r := <-s.closed:
			t.Fatalf("session closed: %s", r)
		default:
		}
		send(t, ws, pingReq(7))
		select {
		case res := <-msgs:
			if res.GetPongResp().GetLastPingTimestamp() != 7 {
				t.Errorf("got %v, want pong_resp", res)
			}
		case <-time.After(waitFor):
			t.Fatal("no pong")
		}
	})
}

func TestSinkCloseFlushesQueue(t *testing.T) {
	j := newFakeJoiner()
	srv := newTestServer(t, Config{}, j)
	ws, s := srv.join(t, j, "alice")
	for i := range 10 {
		if err := s.sink.Send(&livekit.SignalResponse{Message: &livekit.SignalResponse_Pong{Pong: int64(i)}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.sink.Send(LeaveResponse(livekit.DisconnectReason_PARTICIPANT_REMOVED, livekit.LeaveRequest_DISCONNECT)); err != nil {
		t.Fatal(err)
	}
	s.sink.Close()
	if err := s.sink.Send(&livekit.SignalResponse{}); !errors.Is(err, ErrConnectionClosed) {
		t.Errorf("Send after Close = %v, want ErrConnectionClosed", err)
	}
	for i := range 10 {
		if got := readResponse(t, ws).GetPong(); got != int64(i) {
			t.Fatalf("message %d: pong %d", i, got)
		}
	}
	if leave := readResponse(t, ws).GetLeave(); leave.GetReason() != livekit.DisconnectReason_PARTICIPANT_REMOVED {
		t.Fatalf("last message %v, want the leave", leave)
	}
	if ce := readClose(t, ws); ce.Code != websocket.CloseNormalClosure {
		t.Errorf("close %v, want normal", ce)
	}
	if r := s.waitClosed(t); r != "closed by server" {
		t.Errorf("session close reason %q", r)
	}
}

func TestHandleRequestErrorClosesConnection(t *testing.T) {
	j := newFakeJoiner()
	j.handle = func(req *livekit.SignalRequest) error {
		if req.GetOffer() != nil {
			return errors.New("invalid offer: no media")
		}
		return nil
	}
	srv := newTestServer(t, Config{}, j)
	ws, s := srv.join(t, j, "alice")
	send(t, ws, &livekit.SignalRequest{Message: &livekit.SignalRequest_Offer{Offer: &livekit.SessionDescription{Type: "offer"}}})
	if ce := readClose(t, ws); ce.Code != websocket.ClosePolicyViolation || ce.Text != "invalid offer: no media" {
		t.Errorf("close %d %q", ce.Code, ce.Text)
	}
	if r := s.waitClosed(t); r != "invalid offer: no media" {
		t.Errorf("session close reason %q", r)
	}
}

func TestTruncateReason(t *testing.T) {
	tests := []struct {
		in   string
		want int // length of the result
	}{
		{"short", 5},
		{strings.Repeat("a", 200), maxCloseReason},
		{strings.Repeat("a", 122) + "é", 122}, // é would straddle the limit
	}
	for _, tc := range tests {
		if got := truncateReason(tc.in); len(got) != tc.want {
			t.Errorf("truncateReason(%d bytes) has %d bytes, want %d", len(tc.in), len(got), tc.want)
		}
	}
}

func TestFloodCounter(t *testing.T) {
	f := floodCounter{window: time.Second}
	start := time.Now()
	for i := 1; i <= 3; i++ {
		if n := f.drop(start.Add(time.Duration(i) * time.Millisecond)); n != i {
			t.Fatalf("drop %d counted %d", i, n)
		}
	}
	if n := f.drop(start.Add(2 * time.Second)); n != 1 {
		t.Errorf("drop in a new window counted %d, want 1", n)
	}
}

func TestReadAtMost(t *testing.T) {
	tests := []struct {
		size    int
		wantErr error
	}{{0, nil}, {10, nil}, {11, errMessageTooLarge}}
	for _, tc := range tests {
		_, err := readAtMost(strings.NewReader(strings.Repeat("x", tc.size)), 10)
		if !errors.Is(err, tc.wantErr) {
			t.Errorf("size %d: err %v, want %v", tc.size, err, tc.wantErr)
		}
	}
}

// TestLeaveAfterWriteFailureReachesSession: a client that leaves sends its leave and closes
// at once; a write of ours failing on that socket before the reader got to the leave must
// not drop it (the room would keep the participant for its reconnect window). Here the write
// side of the server's socket is shut so that a write fails first, then the leave is sent.
func TestLeaveAfterWriteFailureReachesSession(t *testing.T) {
	j := newFakeJoiner()
	srv := newTestServer(t, Config{CloseGrace: time.Minute}, j)
	ws, s := srv.join(t, j, "alice")
	c := s.sink.(*conn)
	if err := c.ws.NetConn().(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	_ = s.sink.Send(&livekit.SignalResponse{Message: &livekit.SignalResponse_Pong{Pong: 1}})
	srv.log.waitContains(t, "write failed")
	send(t, ws, &livekit.SignalRequest{Message: &livekit.SignalRequest_Leave{Leave: &livekit.LeaveRequest{}}})
	if req := s.nextRequest(t); req.GetLeave() == nil {
		t.Fatalf("session got %v, want the leave", req)
	}
	_ = ws.NetConn().Close()
	s.waitClosed(t)
}
