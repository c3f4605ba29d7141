package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/livekit/protocol/auth"
	"github.com/livekit/protocol/livekit"

	tc "github.com/sanke-edu/sanke/test/testclient"
)

const classroomAdminKey = "e2e-admin-key-0123456789abcdef0123"

// TestCalledOnTokenExpires checks that a teaching point's permissions follow the class, not
// a token kept from an earlier moment (issue 12 #6: a refresh token issued while called on
// kept the microphone for 10 minutes after the call, and rejoining with it restored it).
// With the sample dataset and a delivery session R1 (teacher M1, teaching point T1):
//   - T1 joins; the teacher calls on it: T1's permission gains MICROPHONE, and a resumed
//     connection's refresh token carries it: T1 keeps that token;
//   - the teacher ends the call: a fresh refresh token without MICROPHONE (and without
//     sanke.called_on) reaches T1 at once;
//   - T1 leaves and joins again (a full join, not a resume) with the kept token: it starts
//     without MICROPHONE and without sanke.called_on, publishing a microphone is refused
//     (NOT_ALLOWED), and its new refresh token has no microphone either.
func TestCalledOnTokenExpires(t *testing.T) {
	root, err := tc.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	srv := startServer(t, tc.WithConfigYAML(fmt.Sprintf(`
recording:
  enabled: false
classroom:
  enabled: true
  admin_key: %s
  password_cost: 4
  dataset: [%q]
`, classroomAdminKey, filepath.Join(root, "classroom", "sample", "sample.yaml"))))
	target := srv.Target()
	now := time.Now()
	sessions := fmt.Sprintf("sessions:\n  - {id: R1, course_type: 1, pairing: P-MUSIC, start: %q, end: %q}\n",
		now.Add(-5*time.Minute).Format(time.RFC3339), now.Add(40*time.Minute).Format(time.RFC3339))
	classroomCall(t, srv, "POST", "/api/v1/import", classroomAdminKey, "application/yaml", sessions, nil)
	roomToken := func(account, password string) string {
		var login struct{ Token string }
		classroomCall(t, srv, "POST", "/api/v1/login", "", "application/json",
			fmt.Sprintf(`{"account":%q,"password":%q}`, account, password), &login)
		var rt struct{ Token, Room string }
		classroomCall(t, srv, "POST", "/api/v1/sessions/R1/token", login.Token, "application/json", "", &rt)
		if rt.Room != "class-R1" {
			t.Fatalf("%s's room token is for %q", account, rt.Room)
		}
		return rt.Token
	}
	teacher, tpToken := roomToken("M1", "music-master-1"), roomToken("T1", "houtang-tp-1")
	mic := func(p *livekit.ParticipantPermission) bool {
		return p.GetCanPublish() && slices.Contains(p.GetCanPublishSources(), livekit.TrackSource_MICROPHONE)
	}
	grantsMic := func(g *auth.ClaimGrants) bool { return mic(g.Video.ToPermission()) }

	tp := dialRaw(t, target, tpToken, url.Values{"auto_subscribe": {"0"}})
	tp.startReading()
	join := tp.waitJoin()
	if mic(join.GetParticipant().GetPermission()) {
		t.Fatal("T1 joins with its microphone before being called on")
	}
	classroomCall(t, srv, "POST", "/api/v1/rooms/class-R1/call-on", teacher, "application/json", `{"identity":"T1"}`, nil)
	tp.waitMessage("T1 gets its microphone", func(m *livekit.SignalResponse) bool {
		for _, p := range m.GetUpdate().GetParticipants() {
			if p.GetIdentity() == "T1" && mic(p.GetPermission()) {
				return true
			}
		}
		return false
	})

	// The token a client holds while called on: the one a resume hands out.
	resumed := dialRaw(t, target, tpToken, url.Values{"auto_subscribe": {"0"}, "reconnect": {"1"}, "sid": {join.GetParticipant().GetSid()}})
	resumed.startReading()
	var kept string
	resumed.waitMessage("a refresh token while called on", func(m *livekit.SignalResponse) bool {
		if jwt := m.GetRefreshToken(); jwt != "" && grantsMic(verifyToken(t, target, jwt)) {
			kept = jwt
			return true
		}
		return false
	})

	classroomCall(t, srv, "DELETE", "/api/v1/rooms/class-R1/call-on/T1", teacher, "application/json", "", nil)
	resumed.waitMessage("a refresh token without the microphone once the call ended", func(m *livekit.SignalResponse) bool {
		if jwt := m.GetRefreshToken(); jwt != "" {
			g := verifyToken(t, target, jwt)
			return !grantsMic(g) && g.Attributes["sanke.called_on"] == ""
		}
		return false
	})
	resumed.leave()
	_ = resumed.waitClosed(eventWait) // the leave was ours: any close will do

	again := dialRaw(t, target, kept, url.Values{"auto_subscribe": {"0"}})
	again.startReading()
	rejoin := again.waitJoin()
	if p := rejoin.GetParticipant(); mic(p.GetPermission()) || p.GetAttributes()["sanke.called_on"] != "" {
		t.Errorf("rejoined with the kept token: permission %v, attributes %v; want no microphone, not called on",
			p.GetPermission(), p.GetAttributes())
	}
	again.request(addTrack("mic", "mic", livekit.TrackType_AUDIO, livekit.TrackSource_MICROPHONE))
	rr := again.waitMessage("an answer to the microphone's add_track", func(m *livekit.SignalResponse) bool {
		return m.GetTrackPublished().GetCid() == "mic" || m.GetRequestResponse().GetAddTrack().GetCid() == "mic"
	}).GetRequestResponse()
	if rr.GetReason() != livekit.RequestResponse_NOT_ALLOWED {
		t.Errorf("publishing a microphone after rejoining with the kept token: accepted, want NOT_ALLOWED")
	}
	again.waitMessage("a refresh token after the rejoin", func(m *livekit.SignalResponse) bool { return m.GetRefreshToken() != "" })
	for _, g := range again.refreshTokens(target) {
		if grantsMic(g) {
			t.Errorf("refresh token after the rejoin grants the microphone: %v", g.Video.GetCanPublishSources())
		}
	}
	serverAlive(t, srv)
}

// classroomCall makes a classroom API request with a bearer token (none when empty),
// requires 200 and decodes the JSON answer into out (when not nil).
func classroomCall(t *testing.T, srv *tc.Server, method, path, token, contentType, body string, out any) {
	t.Helper()
	req, err := http.NewRequest(method, srv.HTTPURL+path, bytes.NewReader([]byte(body)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer func() { _ = resp.Body.Close() }()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s %s: %s %s", method, path, resp.Status, data)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			t.Fatalf("%s %s: %v in %s", method, path, err, data)
		}
	}
}
