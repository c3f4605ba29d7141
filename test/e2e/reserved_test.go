package e2e

import (
	"encoding/base64"
	"encoding/json"
	"maps"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/gorilla/websocket"
	"github.com/livekit/protocol/livekit"
	"github.com/twitchtv/twirp"

	tc "github.com/sanke-edu/sanke/test/testclient"
)

// TestReservedAttributes checks that sanke.* participant attributes are the server's alone
// (issue 12 #1: a participant that could set sanke.account took over that account through
// its refresh token). tp joins with a token carrying sanke.role and sanke.classroom (the
// server or the API key holder issued them), the canUpdateOwnMetadata grant and roomAdmin of
// its room (as a teacher's token has):
//   - joining with sanke.* in the "attributes" query parameter is refused with 403, on
//     /rtc/validate and on the websocket;
//   - update_metadata setting, changing or deleting a sanke.* attribute (any case) is
//     answered NOT_ALLOWED and changes nothing; other attributes still update (OK);
//   - the Room API, called with tp's own token, refuses such attributes with
//     PermissionDenied, and a permission update cannot make tp hidden or a recorder;
//   - after all that, the refresh token of a resumed connection and the participant the
//     Room API shows carry exactly the issued sanke.* attributes plus the allowed one, and
//     tp is neither hidden nor a recorder.
func TestReservedAttributes(t *testing.T) {
	srv := startServer(t)
	target := srv.Target()
	room := roomName(t, "attrs")
	grant := tc.JoinGrant(room)
	grant.RoomAdmin = true
	grant.SetCanUpdateOwnMetadata(true)
	issued := map[string]string{"sanke.role": "teaching_point", "sanke.classroom": "T1"}
	token := target.Token(t, "tp", grant, tc.WithAttributes(issued))

	t.Run("join attributes", func(t *testing.T) {
		raw, _ := json.Marshal(map[string]string{"sanke.account": "account:victim"})
		extra := url.Values{"attributes": {base64.RawURLEncoding.EncodeToString(raw)}}
		status, body := httpGet(t, rtcURL(httpTarget(target), "/rtc/validate", token, extra))
		if status != http.StatusForbidden || !strings.Contains(body, "sanke.account") {
			t.Errorf("validate with a sanke.* attribute: %d %q, want 403 naming the attribute", status, body)
		}
		ws, resp, err := websocket.DefaultDialer.Dial(rtcURL(target, "/rtc", token, extra), nil)
		if err == nil {
			_ = ws.Close()
			t.Fatal("websocket with a sanke.* join attribute accepted")
		}
		if resp == nil || resp.StatusCode != http.StatusForbidden {
			t.Errorf("websocket with a sanke.* join attribute: %v (%s), want 403", err, statusOf(resp))
		}
	})

	c := dialRaw(t, target, token, url.Values{"auto_subscribe": {"0"}})
	c.startReading()
	join := c.waitJoin()
	if got := join.GetParticipant().GetAttributes(); !maps.Equal(got, issued) {
		t.Fatalf("joined with attributes %v, want %v", got, issued)
	}

	t.Run("update_metadata", func(t *testing.T) {
		for i, attrs := range []map[string]string{
			{"sanke.account": "account:victim"},
			{"sanke.role": "teacher"},
			{"sanke.role": ""},
			{"SANKE.Account": "account:victim"},
			{"note": "ok", "sanke.hand": "raised"},
		} {
			id := uint32(10 + i)
			c.request(&livekit.SignalRequest{Message: &livekit.SignalRequest_UpdateMetadata{UpdateMetadata: &livekit.UpdateParticipantMetadata{
				RequestId: id, Attributes: attrs,
			}}})
			if rr := c.answerTo(id); rr.GetReason() != livekit.RequestResponse_NOT_ALLOWED || !strings.Contains(strings.ToLower(rr.GetMessage()), "sanke.") {
				t.Errorf("update_metadata %v: %s %q, want NOT_ALLOWED naming the attribute", attrs, rr.GetReason(), rr.GetMessage())
			}
		}
		c.request(&livekit.SignalRequest{Message: &livekit.SignalRequest_UpdateMetadata{UpdateMetadata: &livekit.UpdateParticipantMetadata{
			RequestId: 20, Attributes: map[string]string{"note": "hello"},
		}}})
		if rr := c.answerTo(20); rr.GetReason() != livekit.RequestResponse_OK {
			t.Errorf("update_metadata of an ordinary attribute: %s %q, want OK", rr.GetReason(), rr.GetMessage())
		}
	})

	t.Run("room api with the participant's token", func(t *testing.T) {
		api, ctx := roomAPIAs(t, target, token)
		for _, attrs := range []map[string]string{{"sanke.account": "account:victim"}, {"sanke.role": ""}} {
			_, err := api.UpdateParticipant(ctx, &livekit.UpdateParticipantRequest{Room: room, Identity: "tp", Attributes: attrs})
			if code := twirpCode(err); code != twirp.PermissionDenied {
				t.Errorf("UpdateParticipant %v: %v (code %q), want %s", attrs, err, code, twirp.PermissionDenied)
			}
		}
		perm := &livekit.ParticipantPermission{CanPublish: true, CanSubscribe: true, CanPublishData: true, Hidden: true, Recorder: true} //nolint:staticcheck // LiveKit protocol: the recorder grant
		info, err := api.UpdateParticipant(ctx, &livekit.UpdateParticipantRequest{Room: room, Identity: "tp", Permission: perm})
		if err != nil {
			t.Fatalf("UpdateParticipant permission: %v", err)
		}
		if info.GetPermission().GetHidden() || info.GetPermission().GetRecorder() { //nolint:staticcheck // LiveKit protocol: the recorder grant
			t.Errorf("a permission update made tp hidden=%v recorder=%v; those come from the join token only",
				info.GetPermission().GetHidden(), info.GetPermission().GetRecorder()) //nolint:staticcheck // LiveKit protocol: the recorder grant
		}
	})

	want := maps.Clone(issued)
	want["note"] = "hello"
	info, err := target.RoomClient().GetParticipant(ctxTimeout(t), &livekit.RoomParticipantIdentity{Room: room, Identity: "tp"})
	if err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(info.GetAttributes(), want) {
		t.Errorf("participant attributes %v, want %v", info.GetAttributes(), want)
	}

	// A resume gets a refresh token with the participant's current state.
	resumed := dialRaw(t, target, token, url.Values{"auto_subscribe": {"0"}, "reconnect": {"1"}, "sid": {join.GetParticipant().GetSid()}})
	resumed.startReading()
	resumed.waitMessage("refresh token after the resume", func(m *livekit.SignalResponse) bool { return m.GetRefreshToken() != "" })
	for _, g := range append(c.refreshTokens(target), resumed.refreshTokens(target)...) {
		for k, v := range g.Attributes {
			if strings.HasPrefix(strings.ToLower(k), "sanke.") && issued[k] != v {
				t.Errorf("refresh token carries %s=%q, not issued by the server", k, v)
			}
		}
		if g.Video.Hidden || g.Video.Recorder {
			t.Errorf("refresh token grants hidden=%v recorder=%v", g.Video.Hidden, g.Video.Recorder)
		}
	}
	last := resumed.refreshTokens(target)
	if got := last[len(last)-1].Attributes; !maps.Equal(got, want) {
		t.Errorf("refresh token attributes %v, want %v", got, want)
	}
	serverAlive(t, srv)
}
