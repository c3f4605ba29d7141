package classroom_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/livekit/protocol/auth"
	"github.com/livekit/protocol/livekit"
	"google.golang.org/protobuf/proto"

	"github.com/sanke-edu/sanke/classroom/store"
	"github.com/sanke-edu/sanke/internal/config"
)

// dialSignal opens a raw signal websocket with token (no media, no auto-subscription).
func (ts *testServer) dialSignal(token string) (*websocket.Conn, *http.Response, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	q := url.Values{"access_token": {token}, "protocol": {"15"}, "sdk": {"go"}, "auto_subscribe": {"0"}}
	return websocket.DefaultDialer.DialContext(ctx, ts.ws+"/rtc?"+q.Encode(), nil)
}

// refreshTokenOf joins a room over a raw websocket with token and returns the refresh token
// the server sends right after the join response (what a client reconnects with).
func (ts *testServer) refreshTokenOf(token string) string {
	ts.t.Helper()
	ws, resp, err := ts.dialSignal(token)
	if err != nil {
		ts.t.Fatalf("websocket join: %v (%v)", err, resp)
	}
	defer func() { _ = ws.Close() }()
	_ = ws.SetReadDeadline(time.Now().Add(15 * time.Second))
	for {
		_, data, err := ws.ReadMessage()
		if err != nil {
			ts.t.Fatalf("no refresh token after the join: %v", err)
		}
		var msg livekit.SignalResponse
		if proto.Unmarshal(data, &msg) == nil && msg.GetRefreshToken() != "" {
			return msg.GetRefreshToken()
		}
	}
}

// withAttributes re-signs a token with the dev key (the key the room layer signs refresh
// tokens with) after changing its attributes, keeping everything else: what the room layer
// would refresh once a participant's attributes were changed.
func withAttributes(t *testing.T, token string, attrs map[string]string) string {
	t.Helper()
	v, err := auth.ParseAPIToken(token)
	if err != nil {
		t.Fatal(err)
	}
	_, g, err := v.Verify(config.DevAPISecret)
	if err != nil {
		t.Fatal(err)
	}
	merged := map[string]string{}
	for k, val := range g.Attributes {
		merged[k] = val
	}
	for k, val := range attrs {
		merged[k] = val
	}
	jwt, err := auth.NewAccessToken(config.DevAPIKey, config.DevAPISecret).SetIdentity(g.Identity).SetName(g.Name).
		SetMetadata(g.Metadata).SetAttributes(merged).SetKind(g.GetParticipantKind()).SetVideoGrant(g.Video).
		SetValidFor(10 * time.Minute).ToJWT()
	if err != nil {
		t.Fatal(err)
	}
	return jwt
}

// TestRoomTokenIsNeverAnAccount is the regression test of issue 12 #1: a room token, as
// the room layer refreshes it after the participant's attributes were changed to
// {"sanke.account": "<victim>"}, must not sign in as the victim: /me and the room-token
// route refuse it, nothing is issued or audited in the victim's name, and the attempt is
// audited under the real caller. Likewise sanke.role in a refreshed token decides nothing:
// a teaching point claiming to be the teacher cannot call on. Sign-in tokens (Sanke's own
// and the platform's) keep working, and Sanke's own cannot join a room.
func TestRoomTokenIsNeverAnAccount(t *testing.T) {
	ts := startClass(t, "R1")
	teacher, code := ts.roomToken(ts.login("M1", "music-master-1"), "R1")
	if code != 200 {
		t.Fatalf("teacher token: %d %+v", code, teacher)
	}
	refreshed := ts.refreshTokenOf(teacher.Token)

	for _, victim := range []string{"HH-SUP", "T1"} {
		forged := withAttributes(t, refreshed, map[string]string{"sanke.account": victim})
		var me struct {
			Account struct{ ID string }
			Error   string
		}
		if code := ts.call("GET", "/api/v1/me", forged, nil, &me); code != http.StatusForbidden || me.Account.ID != "" {
			t.Errorf("/me with M1's refreshed room token claiming %s: HTTP %d, account %q (want 403, none)", victim, code, me.Account.ID)
		}
		if rt, code := ts.roomToken(forged, "R1"); code != http.StatusForbidden || rt.Token != "" {
			t.Errorf("room token for %s from M1's refreshed room token: HTTP %d, %+v (want 403)", victim, code, rt)
		}
		if code := ts.call("POST", "/api/v1/sessions/R1/view-token", forged, nil, nil); code != http.StatusForbidden {
			t.Errorf("view token for %s from M1's refreshed room token: HTTP %d, want 403", victim, code)
		}
	}
	// The refreshed token remains what it is: the teacher's room token.
	if code := ts.call("GET", "/api/v1/rooms/class-R1/class", withAttributes(t, refreshed, map[string]string{"sanke.account": "HH-SUP"}), nil, nil); code != 200 {
		t.Errorf("class state with the teacher's refreshed token: HTTP %d", code)
	}

	// Nothing happened in the victims' names; the attempts name M1.
	var audit []store.AuditEntry
	if code := ts.call("GET", "/api/v1/audit", adminKey, nil, &audit); code != 200 {
		t.Fatalf("audit: %d", code)
	}
	refused := 0
	for _, e := range audit {
		if e.Actor == "account:HH-SUP" || e.Actor == "account:T1" || strings.HasPrefix(e.Actor, "supervisor-HH-SUP") {
			t.Errorf("audit entry in a victim's name: %+v", e)
		}
		if e.Action == "auth.account_refused" {
			refused++
			if e.Actor != "M1" || e.Room != "class-R1" {
				t.Errorf("refused account claim not audited under the real caller: %+v", e)
			}
		}
	}
	if refused == 0 {
		t.Errorf("the refused account claims are not in the audit log: %+v", audit)
	}

	// A teaching point whose refreshed token says sanke.role=teacher is still a teaching point.
	tp, code := ts.roomToken(ts.login("T1", "houtang-tp-1"), "R1")
	if code != 200 {
		t.Fatalf("T1 token: %d", code)
	}
	asTeacher := withAttributes(t, ts.refreshTokenOf(tp.Token), map[string]string{"sanke.role": "teacher"})
	if code := ts.call("POST", "/api/v1/rooms/class-R1/call-on", asTeacher, map[string]string{"identity": "T2"}, nil); code != http.StatusForbidden {
		t.Errorf("call-on by a teaching point claiming sanke.role=teacher: HTTP %d, want 403", code)
	}
	if code := ts.call("PUT", "/api/v1/rooms/class-R1/mode", asTeacher, map[string]string{"mode": "free"}, nil); code != http.StatusForbidden {
		t.Errorf("mode change by a teaching point claiming sanke.role=teacher: HTTP %d, want 403", code)
	}

	// Sign-in tokens still work: Sanke's own, and one the platform signs with an API key.
	hh := ts.login("HH-SUP", "huaihua-supervisor")
	platform := mintToken(t, "platform-hh", &auth.VideoGrant{}, map[string]string{"sanke.account": "HH-SUP"})
	for name, tok := range map[string]string{"sign-in": hh, "platform": platform} {
		var me struct{ Account struct{ ID string } }
		if code := ts.call("GET", "/api/v1/me", tok, nil, &me); code != 200 || me.Account.ID != "HH-SUP" {
			t.Errorf("/me with the %s token: HTTP %d, account %q", name, code, me.Account.ID)
		}
	}
	// A platform token that also grants a room is a room token, not an account.
	both := mintToken(t, "platform-hh", grantFor("class-R1"), map[string]string{"sanke.account": "HH-SUP"})
	if code := ts.call("GET", "/api/v1/me", both, nil, nil); code != http.StatusForbidden {
		t.Errorf("/me with a platform room token carrying sanke.account: HTTP %d, want 403", code)
	}
	// Sanke's own sign-in token is no LiveKit token: it cannot join a room.
	resp, err := http.Get(ts.http + "/rtc/validate?access_token=" + url.QueryEscape(hh))
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("/rtc/validate with a sign-in token: HTTP %d, want 401", resp.StatusCode)
	}
}
