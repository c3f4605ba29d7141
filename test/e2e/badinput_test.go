package e2e

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/livekit/protocol/livekit"
	"github.com/pion/webrtc/v4"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	tc "github.com/sanke-edu/sanke/test/testclient"
	"github.com/sanke-edu/sanke/test/testmedia"
)

// Server defaults the bad-input test relies on (config.Default, signaling.Config).
const (
	maxMessageBytes = 1 << 20
	rateLimit       = 50  // messages per second
	rateBurst       = 100 // messages
)

// TestBadInput feeds one server bad input while alice publishes Opus and VP8 to a watcher
// and a well-behaved raw websocket client (the bystander) stays connected. Each bad client:
//   - expired, forged (wrong secret), unknown-key, garbage and missing tokens: /rtc/validate
//     and /rtc/v1/validate answer 401, and the websocket upgrade on /rtc and /rtc/v1 is
//     refused with 401 (the Go SDK's join fails too);
//   - a malformed protobuf frame, and a malformed JSON text frame: that connection is closed
//     with 1007 "malformed signal request...";
//   - a frame of exactly max_message_bytes (1 MiB) is accepted; one byte more closes the
//     connection with 1009 "message too large...";
//   - requests sent right after the upgrade, before reading anything (a trickle and a ping,
//     then, on another connection, an offer whose SDP is garbage): the server reads them only
//     after it has sent the join response; the trickle and ping are handled normally, the
//     garbage offer closes that connection with 1008;
//   - floods of thousands of pings, and of trickles: replies are rate-limited (burst 100,
//     50/s) and the connection is closed with 1008 "rate limit exceeded...";
//   - a flood of websocket ping frames (control frames): nobody else is affected; that it is
//     rate-limited too is skipped, blocked on a server fix (see the subtest).
//
// After every step the watcher still receives alice's media (its packet counts grow), a new
// participant can join (join response, pong, leave), the bystander still answers, and the
// server is healthy. Throughout, the watcher's audio and video never stall for more than 2 s.
// At the end a new Go SDK client joins and receives alice's media.
func TestBadInput(t *testing.T) {
	srv := startServer(t)
	target := srv.Target()
	files := testmedia.Get(t)
	room := roomName(t, "bad")

	alice := tc.Join(t, target, room, "alice", nil)
	if _, err := tc.PublishOpus(alice.Room, files, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := tc.PublishVP8(alice.Room, files.VP8[testmedia.Low], nil); err != nil {
		t.Fatal(err)
	}
	watcher := tc.Join(t, target, room, "watcher", nil)
	wAudio := watcher.WaitForTrack(mediaWait, "alice", webrtc.RTPCodecTypeAudio)
	wVideo := watcher.WaitForTrack(mediaWait, "alice", webrtc.RTPCodecTypeVideo)
	expectFlow(t, wAudio, 25, "watcher audio")
	expectFlow(t, wVideo, 15, "watcher video")

	bystander := dialRaw(t, target, target.Token(t, "bystander", tc.JoinGrant(room)), url.Values{"auto_subscribe": {"0"}})
	bystander.startReading()
	bystander.waitJoin()

	monitor := startStallMonitor(map[string]*tc.TrackStats{"audio": wAudio, "video": wVideo})
	probes := 0
	// unaffected checks, after a bad client, that nobody else noticed.
	unaffected := func(t *testing.T) {
		t.Helper()
		expectFlow(t, wAudio, 25, "watcher audio")
		expectFlow(t, wVideo, 15, "watcher video")
		probes++
		probeJoin(t, target, room, fmt.Sprintf("probe-%d", probes))
		pingPong(t, bystander)
		serverAlive(t, srv)
	}
	token := func(identity string) string { return target.Token(t, identity, tc.JoinGrant(room)) }

	t.Run("tokens", func(t *testing.T) {
		now := time.Now()
		expired, err := tc.TokenValidBetween(target.APIKey, target.APISecret, "expired", tc.JoinGrant(room),
			now.Add(-2*time.Hour), now.Add(-time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		forged := tc.MustToken(t, target.APIKey, "not-the-secret", "forged", tc.JoinGrant(room))
		unknownKey := tc.MustToken(t, "APInokey", target.APISecret, "unknown-key", tc.JoinGrant(room))
		for _, c := range []struct{ name, token string }{
			{"expired", expired},
			{"forged signature", forged},
			{"unknown API key", unknownKey},
			{"garbage", "not.a.jwt"},
			{"missing", ""},
		} {
			for _, path := range []string{"/rtc", "/rtc/v1"} {
				status, body := httpGet(t, rtcURL(httpTarget(target), path+"/validate", c.token, nil))
				if status != http.StatusUnauthorized || strings.TrimSpace(body) == "" {
					t.Errorf("%s token: GET %s/validate: %d %q, want 401 with a reason", c.name, path, status, body)
				}
				ws, resp, err := websocket.DefaultDialer.Dial(rtcURL(target, path, c.token, nil), nil)
				if err == nil {
					_ = ws.Close()
					t.Errorf("%s token: websocket %s accepted", c.name, path)
					continue
				}
				if resp == nil || resp.StatusCode != http.StatusUnauthorized {
					t.Errorf("%s token: websocket %s: %v (response %v), want HTTP 401", c.name, path, err, statusOf(resp))
				}
			}
		}
		// With an Authorization header instead of the query parameter.
		req, _ := http.NewRequest(http.MethodGet, target.HTTPURL+"/rtc/validate", nil)
		req.Header.Set("Authorization", "Bearer "+forged)
		if resp, err := http.DefaultClient.Do(req); err != nil {
			t.Error(err)
		} else {
			_ = resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("forged bearer token: /rtc/validate %s, want 401", resp.Status)
			}
		}
		// The SDK cannot join with them either.
		if c, err := tc.TryJoin(t, target, room, "expired", &tc.JoinOptions{Token: expired, Timeout: 10 * time.Second}); err == nil {
			c.Disconnect()
			t.Error("the Go SDK joined with an expired token")
		}
		unaffected(t)
	})

	t.Run("malformed protobuf", func(t *testing.T) {
		c := dialRaw(t, target, token("bad-proto"), nil)
		c.startReading()
		c.waitJoin()
		// Field 1 (offer), length-delimited, claiming 127 bytes that are not there.
		if err := c.sendRaw(websocket.BinaryMessage, []byte{0x0a, 0x7f, 0x01, 0x02}); err != nil {
			t.Fatal(err)
		}
		expectClose(t, c, websocket.CloseInvalidFramePayloadData, "malformed signal request")
		unaffected(t)
	})

	t.Run("malformed JSON", func(t *testing.T) {
		c := dialRaw(t, target, token("bad-json"), nil)
		c.startReading()
		c.waitJoin()
		if err := c.sendRaw(websocket.TextMessage, []byte(`{"offer": {"type": 7`)); err != nil {
			t.Fatal(err)
		}
		expectClose(t, c, websocket.CloseInvalidFramePayloadData, "malformed signal request")
		unaffected(t)
	})

	t.Run("frame size limit", func(t *testing.T) {
		c := dialRaw(t, target, token("big-frames"), nil)
		c.startReading()
		c.waitJoin()
		// Exactly the limit: a valid request (an unknown field the server skips) is accepted.
		if err := c.sendRaw(websocket.BinaryMessage, unknownFieldMessage(maxMessageBytes)); err != nil {
			t.Fatal(err)
		}
		pingPong(t, c)
		// One byte over: closed with 1009.
		if err := c.sendRaw(websocket.BinaryMessage, unknownFieldMessage(maxMessageBytes+1)); err != nil {
			t.Logf("writing the oversized frame: %v (the server may close while it is being written)", err)
		}
		expectClose(t, c, websocket.CloseMessageTooBig, "message too large")
		unaffected(t)
	})

	t.Run("requests before the join response", func(t *testing.T) {
		// A trickle and a ping written right after the upgrade, before reading anything.
		c := dialRaw(t, target, token("early-trickle"), nil)
		cand := `{"candidate":"candidate:1 1 udp 2130706431 127.0.0.1 9 typ host","sdpMid":"0","sdpMLineIndex":0}`
		for _, req := range []*livekit.SignalRequest{
			{Message: &livekit.SignalRequest_Trickle{Trickle: &livekit.TrickleRequest{CandidateInit: cand, Target: livekit.SignalTarget_PUBLISHER}}},
			{Message: &livekit.SignalRequest_PingReq{PingReq: &livekit.Ping{Timestamp: 42}}},
		} {
			if err := c.send(req); err != nil {
				t.Fatal(err)
			}
		}
		c.startReading()
		c.waitJoin()
		tc.Eventually(t, eventWait, "the early ping is answered", func() (bool, string) {
			n := c.count(func(m *livekit.SignalResponse) bool { return m.GetPongResp().GetLastPingTimestamp() == 42 })
			return n == 1, fmt.Sprintf("%d messages", len(c.messages()))
		})
		if first := c.messages()[0]; first.GetJoin() == nil {
			t.Errorf("first server message is %T, want the join response", first.GetMessage())
		}
		if !c.isOpen() {
			t.Errorf("connection closed after early trickle and ping: %v", c.err())
		}
		c.leave()

		// An offer with garbage SDP, also written before reading anything.
		c2 := dialRaw(t, target, token("early-offer"), nil)
		if err := c2.send(&livekit.SignalRequest{Message: &livekit.SignalRequest_Offer{Offer: &livekit.SessionDescription{
			Type: "offer", Sdp: "this is not SDP",
		}}}); err != nil {
			t.Fatal(err)
		}
		c2.startReading()
		c2.waitJoin()
		expectClose(t, c2, websocket.ClosePolicyViolation, "")
		if first := c2.messages()[0]; first.GetJoin() == nil {
			t.Errorf("first server message is %T, want the join response", first.GetMessage())
		}
		unaffected(t)
	})

	flood := func(t *testing.T, identity string, msg func(i int) *livekit.SignalRequest, isReply func(*livekit.SignalResponse) bool) {
		c := dialRaw(t, target, token(identity), nil)
		c.startReading()
		c.waitJoin()
		checkReplies := isReply != nil
		if !checkReplies {
			isReply = func(*livekit.SignalResponse) bool { return false }
		}
		before := c.count(isReply)
		const n = 5000
		start := time.Now()
		var sent atomic.Int64
		writerDone := make(chan error, 1)
		go func() {
			for i := 0; i < n; i++ {
				if err := c.send(msg(i)); err != nil {
					writerDone <- err
					return
				}
				sent.Add(1)
			}
			writerDone <- nil
		}()
		expectClose(t, c, websocket.ClosePolicyViolation, "rate limit exceeded")
		elapsed := time.Since(start)
		werr := <-writerDone
		replies := c.count(isReply) - before
		t.Logf("%s: wrote %d of %d messages (%v), got %d replies, closed after %v", identity, sent.Load(), n, werr, replies, elapsed.Round(time.Millisecond))
		if limit := rateBurst + int(rateLimit*elapsed.Seconds()) + 10; checkReplies && replies > limit {
			t.Errorf("%d replies within %v: not rate-limited (at most %d expected)", replies, elapsed, limit)
		}
		unaffected(t)
	}
	t.Run("ping flood", func(t *testing.T) {
		flood(t, "ping-flood", func(i int) *livekit.SignalRequest {
			return &livekit.SignalRequest{Message: &livekit.SignalRequest_PingReq{PingReq: &livekit.Ping{Timestamp: int64(i + 1)}}}
		}, func(m *livekit.SignalResponse) bool { return m.GetPongResp() != nil })
	})
	t.Run("trickle flood", func(t *testing.T) {
		flood(t, "trickle-flood", func(i int) *livekit.SignalRequest {
			cand := fmt.Sprintf(`{"candidate":"candidate:%d 1 udp 2130706431 127.0.0.1 %d typ host","sdpMid":"0","sdpMLineIndex":0}`, i, 10000+i)
			return &livekit.SignalRequest{Message: &livekit.SignalRequest_Trickle{Trickle: &livekit.TrickleRequest{CandidateInit: cand}}}
		}, nil)
	})

	t.Run("websocket ping frame flood", func(t *testing.T) {
		// Control frames (RFC 6455 pings) rather than SignalRequest messages: the server answers
		// each with a pong from its read loop.
		c := dialRaw(t, target, token("wsping-flood"), nil)
		var pongs atomic.Int64
		c.ws.SetPongHandler(func(string) error { pongs.Add(1); return nil })
		c.startReading()
		c.waitJoin()
		const n = 5000
		start := time.Now()
		sent := 0
		for i := 0; i < n; i++ {
			c.writeMu.Lock()
			err := c.ws.WriteControl(websocket.PingMessage, []byte("flood"), time.Now().Add(5*time.Second))
			c.writeMu.Unlock()
			if err != nil {
				break
			}
			sent++
		}
		// The server writes a ping's pong before reading the next frame, so once a later
		// request is answered every pong it sent has arrived.
		if c.isOpen() {
			if err := c.send(&livekit.SignalRequest{Message: &livekit.SignalRequest_PingReq{PingReq: &livekit.Ping{Timestamp: 7}}}); err == nil {
				tc.Eventually(t, eventWait, "ping_req after the flood answered or connection closed", func() (bool, string) {
					n := c.count(func(m *livekit.SignalResponse) bool { return m.GetPongResp().GetLastPingTimestamp() == 7 })
					return n == 1 || !c.isOpen(), fmt.Sprintf("open=%v", c.isOpen())
				})
			}
		}
		elapsed := time.Since(start)
		t.Logf("sent %d websocket pings in %v, got %d pongs; connection open=%v (%v)", sent, elapsed.Round(time.Millisecond),
			pongs.Load(), c.isOpen(), c.err())
		unaffected(t)
		limit := int64(rateBurst + int(rateLimit*elapsed.Seconds()) + 10)
		if c.isOpen() && pongs.Load() > limit {
			t.Errorf("%d websocket pings in %v got %d pongs and the connection stays open: not rate-limited", sent, elapsed, pongs.Load())
		}
	})

	worst, which := monitor.finish()
	t.Logf("longest stall of the watcher's media during the bad clients: %v (%s)", worst.Round(time.Millisecond), which)
	if worst > 2*time.Second {
		t.Errorf("the watcher's %s stalled for %v while bad clients were served", which, worst)
	}
	if !bystander.isOpen() {
		t.Errorf("the bystander's connection was closed: %v", bystander.err())
	}

	// A new SDK participant can still join and receive alice's media.
	late := tc.Join(t, target, room, "latecomer", nil)
	expectFlow(t, late.WaitForTrack(mediaWait, "alice", webrtc.RTPCodecTypeAudio), 25, "latecomer audio")
	expectFlow(t, late.WaitForTrack(mediaWait, "alice", webrtc.RTPCodecTypeVideo), 15, "latecomer video")
	serverAlive(t, srv)
}

// expectClose waits for the server to close c and checks the close code and that the reason
// contains reason.
func expectClose(t *testing.T, c *rawClient, code int, reason string) {
	t.Helper()
	ce := c.waitClosed(eventWait)
	if ce == nil {
		t.Fatalf("connection ended without a close frame (%v), want close %d %q", c.err(), code, reason)
	}
	t.Logf("server closed the connection: %d %q", ce.Code, ce.Text)
	if ce.Code != code || !strings.Contains(ce.Text, reason) {
		t.Errorf("close frame %d %q, want %d with a reason containing %q", ce.Code, ce.Text, code, reason)
	}
}

// pingPong sends a ping_req on c and waits for its pong_resp.
func pingPong(t *testing.T, c *rawClient) {
	t.Helper()
	ts := time.Now().UnixNano()
	if err := c.send(&livekit.SignalRequest{Message: &livekit.SignalRequest_PingReq{PingReq: &livekit.Ping{Timestamp: ts}}}); err != nil {
		t.Fatalf("send ping: %v", err)
	}
	tc.Eventually(t, eventWait, "pong", func() (bool, string) {
		n := c.count(func(m *livekit.SignalResponse) bool { return m.GetPongResp().GetLastPingTimestamp() == ts })
		return n == 1, fmt.Sprintf("%d messages, open=%v", len(c.messages()), c.isOpen())
	})
}

// unknownFieldMessage returns a SignalRequest of exactly size bytes made of one unknown
// length-delimited field (number 1000), which decoders skip.
func unknownFieldMessage(size int) []byte {
	const field = 1000
	for n := size; n > 0; n-- {
		b := protowire.AppendTag(nil, field, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(n))
		if len(b)+n == size {
			b = append(b, bytes.Repeat([]byte{'x'}, n)...)
			if err := proto.Unmarshal(b, &livekit.SignalRequest{}); err != nil {
				panic(err)
			}
			return b
		}
	}
	panic("size too small")
}

// httpTarget is target with its websocket URL in http form, for plain GETs of the validate
// endpoints.
func httpTarget(target tc.Target) tc.Target {
	target.URL = target.HTTPURL
	return target
}

func httpGet(t *testing.T, u string) (int, string) {
	t.Helper()
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return resp.StatusCode, string(body)
}

func statusOf(resp *http.Response) string {
	if resp == nil {
		return "none"
	}
	return resp.Status
}
