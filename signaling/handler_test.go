package signaling

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/gorilla/websocket"
	"github.com/livekit/protocol/auth"
	"github.com/livekit/protocol/livekit"

	"github.com/sanke-edu/sanke/internal/rooms"
)

// refusal is one pre-upgrade rejection scenario.
type refusal struct {
	name     string
	query    url.Values
	header   http.Header
	validate error // returned by the joiner's ValidateJoin
	drain    bool
	status   int
	body     string
}

func refusals(t *testing.T) []refusal {
	now := time.Now()
	claims := func(exp time.Time) jwt.MapClaims {
		return jwt.MapClaims{
			"iss": testKey, "sub": "alice", "nbf": now.Add(-2 * time.Hour).Unix(), "exp": exp.Unix(),
			"video": map[string]any{"roomJoin": true, "room": testRoom},
		}
	}
	tokenQuery := func(tok string) url.Values { return url.Values{"access_token": {tok}} }
	good := testToken(t, "alice")
	return []refusal{
		{name: "no token", status: 401, body: "missing access token"},
		{name: "garbage token", query: tokenQuery("not-a-jwt"), status: 401, body: "invalid authorization token"},
		{name: "expired", query: tokenQuery(rawToken(t, testSecret, claims(now.Add(-time.Hour)))),
			status: 401, body: "expired"},
		{name: "forged signature", query: tokenQuery(rawToken(t, "some-other-secret-of-enough-length", claims(now.Add(time.Hour)))),
			status: 401, body: "signature is invalid"},
		{name: "unknown key", query: tokenQuery(func() string {
			tok, _ := auth.NewAccessToken("otherkey", testSecret).SetIdentity("alice").
				SetVideoGrant(&auth.VideoGrant{RoomJoin: true, Room: testRoom}).ToJWT()
			return tok
		}()), status: 401, body: "invalid API key"},
		{name: "no roomJoin grant", query: tokenQuery(testToken(t, "alice", func(_ *auth.AccessToken, g *auth.VideoGrant) {
			g.RoomJoin = false
		})), status: 401, body: "permissions denied"},
		{name: "no room", query: tokenQuery(testToken(t, "alice", func(_ *auth.AccessToken, g *auth.VideoGrant) {
			g.Room = ""
		})), status: 401, body: "permissions denied"},
		{name: "no identity", query: tokenQuery(testToken(t, "")), status: 401, body: "no identity"},
		{name: "authorization not bearer", header: http.Header{"Authorization": {"Basic " + good}},
			status: 401, body: "invalid authorization header"},
		{name: "attributes without canUpdateOwnMetadata",
			query:  url.Values{"access_token": {good}, "attributes": {"eyJhIjoiYiJ9"}},
			status: 401, body: "canUpdateOwnMetadata"},
		{name: "bad reconnect_reason", query: url.Values{"access_token": {good}, "reconnect_reason": {"x"}},
			status: 400, body: "invalid reconnect_reason"},
		{name: "draining", query: tokenQuery(good), drain: true, status: 503, body: "server is shutting down"},
		{name: "room not found", query: tokenQuery(good), validate: fmt.Errorf("lookup: %w", rooms.ErrRoomNotFound),
			status: 404, body: "requested room does not exist"},
		{name: "room full", query: tokenQuery(good), validate: rooms.ErrRoomFull, status: 403, body: "room is full"},
		{name: "validator failure", query: tokenQuery(good), validate: errors.New("db down"),
			status: 500, body: "could not join room"},
	}
}

func TestRTCRefusedBeforeUpgrade(t *testing.T) {
	for _, tc := range refusals(t) {
		t.Run(tc.name, func(t *testing.T) {
			j := validatingJoiner{fakeJoiner: newFakeJoiner(), validateErr: tc.validate}
			srv := newTestServer(t, Config{}, j)
			if tc.drain {
				srv.h.Drain()
			}
			ws, resp, err := srv.dial(t, "/rtc", tc.query, tc.header)
			if err == nil {
				_ = ws.Close()
				t.Fatal("websocket upgraded, want an HTTP refusal")
			}
			if resp == nil || resp.StatusCode != tc.status {
				t.Fatalf("response %v, want status %d", resp, tc.status)
			}
			body := readBody(resp)
			if !strings.Contains(body, tc.body) {
				t.Errorf("body %q, want it to contain %q", body, tc.body)
			}
			if len(j.sessions) != 0 {
				t.Error("the room was joined")
			}
			srv.log.waitContains(t, "join refused")
		})
	}
}

func TestValidateRefusals(t *testing.T) {
	for _, tc := range refusals(t) {
		t.Run(tc.name, func(t *testing.T) {
			srv := newTestServer(t, Config{}, validatingJoiner{fakeJoiner: newFakeJoiner(), validateErr: tc.validate})
			if tc.drain {
				srv.h.Drain()
			}
			resp, body := srv.get(t, http.MethodGet, "/rtc/validate", tc.query, tc.header)
			if resp.StatusCode != tc.status || !strings.Contains(body, tc.body) {
				t.Errorf("got %d %q, want %d containing %q", resp.StatusCode, body, tc.status, tc.body)
			}
			if got := resp.Header.Get("Access-Control-Allow-Origin"); got != "*" {
				t.Errorf("Access-Control-Allow-Origin = %q, want *", got)
			}
		})
	}
}

func TestValidateSuccess(t *testing.T) {
	tok := testToken(t, "alice")
	tests := []struct {
		name   string
		query  url.Values
		header http.Header
	}{
		{name: "query token", query: url.Values{"access_token": {tok}, "sdk": {"js"}, "protocol": {"16"}}},
		{name: "bearer header", header: http.Header{"Authorization": {"Bearer " + tok}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := newTestServer(t, Config{}, newFakeJoiner())
			resp, body := srv.get(t, http.MethodGet, "/rtc/validate", tc.query, tc.header)
			if resp.StatusCode != http.StatusOK || body != "success" {
				t.Fatalf("got %d %q, want 200 success", resp.StatusCode, body)
			}
			if got := resp.Header.Get("Access-Control-Allow-Origin"); got != "*" {
				t.Errorf("Access-Control-Allow-Origin = %q, want *", got)
			}
		})
	}
}

func TestValidatePreflight(t *testing.T) {
	srv := newTestServer(t, Config{}, newFakeJoiner())
	resp, _ := srv.get(t, http.MethodOptions, "/rtc/validate", nil, http.Header{
		"Origin":                         {"https://app.example"},
		"Access-Control-Request-Method":  {"GET"},
		"Access-Control-Request-Headers": {"authorization"},
	})
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("status %d, want 204", resp.StatusCode)
	}
	for k, want := range map[string]string{
		"Access-Control-Allow-Origin":  "*",
		"Access-Control-Allow-Methods": "GET",
		"Access-Control-Allow-Headers": "Authorization",
	} {
		if got := resp.Header.Get(k); !strings.Contains(got, want) {
			t.Errorf("%s = %q, want it to contain %q", k, got, want)
		}
	}
}

func TestRTCWithoutUpgrade(t *testing.T) {
	srv := newTestServer(t, Config{}, newFakeJoiner())
	resp, _ := srv.get(t, http.MethodGet, "/rtc", url.Values{"access_token": {testToken(t, "alice")}}, nil)
	if resp.StatusCode != http.StatusUpgradeRequired {
		t.Fatalf("status %d, want 426", resp.StatusCode)
	}
}

// /rtc/v1 needs its join_request: without it the join is refused before the upgrade, and
// the validate answer is readable cross-origin (CORS) and is not the 404 that would make the
// JS SDK fall back to /rtc.
func TestSinglePCRequiresJoinRequest(t *testing.T) {
	srv := newTestServer(t, Config{}, newFakeJoiner())
	q := url.Values{"access_token": {testToken(t, "alice")}}
	if _, resp, err := srv.dial(t, "/rtc/v1", q, nil); err == nil || resp == nil || resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("dial /rtc/v1: err %v resp %v, want 400", err, resp)
	}
	resp, body := srv.get(t, http.MethodGet, "/rtc/v1/validate", q, nil)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "join_request") {
		t.Errorf("validate: %d %q, want 400 naming join_request", resp.StatusCode, body)
	}
	if resp.Header.Get("Access-Control-Allow-Origin") != "*" {
		t.Error("validate answer lacks CORS headers")
	}
}

func TestJoin(t *testing.T) {
	tests := []struct {
		name   string
		query  url.Values
		header bool // token in the Authorization header instead of the query
		check  func(t *testing.T, req rooms.JoinRequest)
	}{
		{name: "query token, defaults", check: func(t *testing.T, req rooms.JoinRequest) {
			if !req.AutoSubscribe || req.AdaptiveStream || req.Reconnect {
				t.Errorf("flags = %+v, want auto subscribe only", req)
			}
		}},
		{name: "bearer header", header: true},
		{name: "js query parameters", query: url.Values{
			"auto_subscribe": {"0"}, "adaptive_stream": {"1"}, "sdk": {"js"}, "version": {"2.9.0"},
			"protocol": {"16"}, "os": {"macOS"}, "browser": {"Chrome"}, "reconnect": {"1"},
			"sid": {"PA_old"}, "reconnect_reason": {"1"},
		}, check: func(t *testing.T, req rooms.JoinRequest) {
			ci := req.ClientInfo
			if req.AutoSubscribe || !req.AdaptiveStream || !req.Reconnect || req.ParticipantSID != "PA_old" ||
				req.ReconnectReason != livekit.ReconnectReason_RR_SIGNAL_DISCONNECTED {
				t.Errorf("join = %+v", req)
			}
			if ci.GetSdk() != livekit.ClientInfo_JS || ci.GetProtocol() != 16 || ci.GetBrowser() != "Chrome" ||
				ci.GetAddress() != "127.0.0.1" {
				t.Errorf("client info = %v", ci)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			j := newFakeJoiner()
			srv := newTestServer(t, Config{}, j)
			tok := testToken(t, "alice")
			q := url.Values{}
			for k, v := range tc.query {
				q[k] = v
			}
			var hdr http.Header
			if tc.header {
				hdr = http.Header{"Authorization": {"Bearer " + tok}}
			} else {
				q.Set("access_token", tok)
			}
			ws, _, err := srv.dial(t, "/rtc", q, hdr)
			if err != nil {
				t.Fatalf("dial: %v", err)
			}
			res := readResponse(t, ws)
			if res.GetJoin().GetParticipant().GetSid() != "PA_alice" {
				t.Fatalf("first message %v, want the join response", res)
			}
			s := j.nextSession(t)
			if s.req.RoomName != testRoom || s.req.Identity != "alice" || s.req.APIKey != testKey ||
				s.req.Grants == nil || s.req.TokenExpiresAt.IsZero() {
				t.Errorf("join request = %+v", s.req)
			}
			if tc.check != nil {
				tc.check(t, s.req)
			}
			srv.log.waitContains(t, "participant joined")
			srv.log.waitContains(t, "sid=PA_alice")
		})
	}
}

func TestJoinFailureSendsLeave(t *testing.T) {
	tests := []struct {
		name   string
		err    error
		reason livekit.DisconnectReason
		action livekit.LeaveRequest_Action
	}{
		{"room full", fmt.Errorf("join: %w", rooms.ErrRoomFull), livekit.DisconnectReason_JOIN_FAILURE, livekit.LeaveRequest_DISCONNECT},
		{"room closed", rooms.ErrRoomClosed, livekit.DisconnectReason_ROOM_CLOSED, livekit.LeaveRequest_DISCONNECT},
		{"resume unknown participant", rooms.ErrParticipantNotFound, livekit.DisconnectReason_STATE_MISMATCH, livekit.LeaveRequest_RECONNECT},
		{"shutting down", rooms.ErrServerShuttingDown, livekit.DisconnectReason_SERVER_SHUTDOWN, livekit.LeaveRequest_DISCONNECT},
		{"unexpected", errors.New("boom"), livekit.DisconnectReason_JOIN_FAILURE, livekit.LeaveRequest_DISCONNECT},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			j := newFakeJoiner()
			j.joinErr = tc.err
			srv := newTestServer(t, Config{}, j)
			ws, _, err := srv.dial(t, "/rtc", url.Values{"access_token": {testToken(t, "alice")}}, nil)
			if err != nil {
				t.Fatalf("dial: %v", err)
			}
			leave := readResponse(t, ws).GetLeave()
			if leave == nil || leave.GetReason() != tc.reason || leave.GetAction() != tc.action ||
				leave.GetCanReconnect() != (tc.action == livekit.LeaveRequest_RECONNECT) {
				t.Fatalf("leave = %v, want reason %v action %v", leave, tc.reason, tc.action)
			}
			if ce := readClose(t, ws); ce.Code != websocket.CloseNormalClosure {
				t.Errorf("close %v, want normal closure", ce)
			}
			waitConnections(t, srv.h, 0)
		})
	}
}

func TestDrainAndShutdown(t *testing.T) {
	j := newFakeJoiner()
	srv := newTestServer(t, Config{CloseGrace: 100 * time.Millisecond}, j)
	ws, s := srv.join(t, j, "alice")

	srv.h.Drain()
	if !srv.h.Draining() {
		t.Fatal("Draining() = false after Drain")
	}
	if _, resp, err := srv.dial(t, "/rtc", url.Values{"access_token": {testToken(t, "bob")}}, nil); err == nil ||
		resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("join while draining: %v %v, want 503", err, resp)
	}
	assertAlive(t, ws) // existing connections keep working

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- srv.h.Shutdown(ctx) }()
	if ce := readClose(t, ws); ce.Code != websocket.CloseGoingAway {
		t.Errorf("close %v, want going away", ce)
	}
	if err := <-done; !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown = %v, want deadline exceeded", err)
	}
	if r := s.waitClosed(t); !strings.Contains(r, "shutting down") {
		t.Errorf("session close reason %q", r)
	}
	if n := srv.h.Connections(); n != 0 {
		t.Errorf("Connections() = %d after Shutdown", n)
	}
}

func TestShutdownWhenIdle(t *testing.T) {
	srv := newTestServer(t, Config{}, newFakeJoiner())
	if err := srv.h.Shutdown(context.Background()); err != nil {
		t.Fatalf("Shutdown = %v", err)
	}
}

// waitConnections waits until h has n open connections.
func waitConnections(t *testing.T, h *Handler, n int) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for h.Connections() != n {
		if time.Now().After(deadline) {
			t.Fatalf("Connections() = %d, want %d", h.Connections(), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func readBody(resp *http.Response) string {
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return string(body)
}

// TestJoinsRateLimitedPerAddress checks signal.join_rate_limit: one client address gets
// JoinRateBurst joins, then 429 with Retry-After before the upgrade (red team t14 made
// 1,000 joins a second, each making PeerConnections); another address has a budget of its
// own, an IPv6 /64 is one address, and loopback clients (the recorder) are not held to it.
func TestJoinsRateLimitedPerAddress(t *testing.T) {
	const burst = 3
	j := &fakeJoiner{sessions: make(chan *fakeSession, 64)}
	srv := newTestServer(t, Config{JoinRateLimit: 0.001, JoinRateBurst: burst, TrustProxyHeaders: true}, j)
	tok := testToken(t, "alice")
	// join dials /rtc as a client at address from (loopback when empty) and returns the
	// refusal's status and body, or 0 when it joined.
	join := func(from string) (int, string) {
		t.Helper()
		hdr := http.Header{}
		if from != "" {
			hdr.Set("X-Forwarded-For", from)
		}
		ws, resp, err := srv.dial(t, "/rtc", url.Values{"access_token": {tok}}, hdr)
		if err == nil {
			if readResponse(t, ws).GetJoin() == nil {
				t.Fatal("joined without a join response")
			}
			<-j.sessions
			return 0, ""
		}
		if resp == nil {
			t.Fatalf("dial from %q: %v", from, err)
		}
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode == http.StatusTooManyRequests && resp.Header.Get("Retry-After") == "" {
			t.Errorf("429 without Retry-After")
		}
		return resp.StatusCode, string(body)
	}
	for _, addrs := range [][]string{{"203.0.113.5", "203.0.113.5"}, {"2001:db8:1:2::1", "2001:db8:1:2::ffff"}} {
		for i := range burst {
			if status, body := join(addrs[0]); status != 0 {
				t.Fatalf("join %d from %s: %d %q, want it joined", i+1, addrs[0], status, body)
			}
		}
		if status, body := join(addrs[1]); status != http.StatusTooManyRequests || !strings.Contains(body, "too many joins") {
			t.Errorf("join %d from %s: %d %q, want 429 too many joins", burst+1, addrs[1], status, body)
		}
	}
	if status, body := join("203.0.113.6"); status != 0 {
		t.Errorf("join from another address: %d %q, want it joined", status, body)
	}
	for i := range 2 * burst {
		if status, body := join(""); status != 0 {
			t.Fatalf("loopback join %d: %d %q, want it joined", i+1, status, body)
		}
	}
	srv.log.waitContains(t, "joins refused")
}
