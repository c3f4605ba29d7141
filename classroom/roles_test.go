package classroom_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/livekit/protocol/auth"
	"github.com/livekit/protocol/livekit"
	lksdk "github.com/livekit/server-sdk-go/v2"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"

	"github.com/sanke-edu/sanke/classroom/store"
	"github.com/sanke-edu/sanke/internal/config"
	"github.com/sanke-edu/sanke/test/testclient"
)

// eventually polls cond every 10 ms until it holds or d passes, and reports how long it took.
func eventually(d time.Duration, cond func() bool) (time.Duration, bool) {
	start := time.Now()
	for {
		if cond() {
			return time.Since(start), true
		}
		if time.Since(start) > d {
			return time.Since(start), false
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func hasSource(p *livekit.ParticipantPermission, s livekit.TrackSource) bool {
	return p != nil && p.CanPublish && slices.Contains(p.CanPublishSources, s)
}

// serverTracks returns the sources a participant publishes, as the server sees them.
func (ts *testServer) serverTracks(roomName, identity string) []livekit.TrackSource {
	p, err := ts.srv.Rooms().GetParticipant(context.Background(), roomName, identity)
	if err != nil {
		return nil
	}
	var out []livekit.TrackSource
	for _, t := range p.Tracks {
		out = append(out, t.Source)
	}
	return out
}

// tryPublish asks to publish a track that never sends media; the server must refuse it (the
// SDK then waits for an answer that never comes, so this runs in the background).
func tryPublish(c *client, kind string, source livekit.TrackSource) {
	codec := webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}
	if kind == "video" {
		codec = webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}
	}
	track, err := lksdk.NewLocalSampleTrack(codec)
	if err != nil {
		return
	}
	go func() {
		_, _ = c.room.LocalParticipant.PublishTrack(track, &lksdk.TrackPublicationOptions{Name: "refused", Source: source})
	}()
}

// publishRefused makes c (a tapped client) ask to publish a track of source and waits for the
// server's answer: a request_response NOT_ALLOWED for an add_track of that source.
func publishRefused(t *testing.T, c *client, kind string, source livekit.TrackSource) {
	t.Helper()
	tryPublish(c, kind, source)
	testclient.Eventually(t, 10*time.Second, c.room.LocalParticipant.Identity()+"'s "+source.String()+" refused", func() (bool, string) {
		for _, m := range c.tap.Messages() {
			rr := m.Response.GetRequestResponse()
			if rr.GetAddTrack().GetSource() == source {
				return rr.GetReason() == livekit.RequestResponse_NOT_ALLOWED, m.String()
			}
		}
		return false, "no answer to the add_track:\n" + c.tap.Transcript()
	})
}

// publishMic publishes a microphone track sending Opus silence.
func (c *client) publishMic(t *testing.T) error {
	track, err := lksdk.NewLocalSampleTrack(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2})
	if err != nil {
		return err
	}
	if _, err := c.room.LocalParticipant.PublishTrack(track, &lksdk.TrackPublicationOptions{Name: "mic", Source: livekit.TrackSource_MICROPHONE}); err != nil {
		return err
	}
	go func() {
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-c.stop:
				return
			case <-tick.C:
				_ = track.WriteSample(media.Sample{Data: []byte{0xf8, 0xff, 0xfe}, Duration: 20 * time.Millisecond}, nil)
			}
		}
	}()
	return nil
}

// TestRoleEnforcement checks, on a real server with Go SDK clients, that the roles are
// enforced by the server: a teaching point's microphone only while called on (granted
// within 1 s of the call), a hidden supervisor whose visit is audited, a viewer that cannot
// publish, and no token for a session of another school.
func TestRoleEnforcement(t *testing.T) {
	ts := startServer(t, nil, func(c *config.Config) { c.Classroom.Dataset = []string{"sample/sample.yaml"} })
	now := time.Now()
	f := func(d time.Duration) string { return now.Add(d).Format(time.RFC3339) }
	sessions := fmt.Sprintf(`sessions:
  - {id: R1, course_type: 1, pairing: P-MUSIC, start: "%s", end: "%s"}
  - {id: R2, course_type: 3, subject: 美术, master: M2, receivers: [T3], start: "%s", end: "%s"}
  - {id: R3, course_type: 1, pairing: P-MUSIC, start: "%s", end: "%s"}
`, f(-5*time.Minute), f(40*time.Minute), f(-5*time.Minute), f(40*time.Minute), f(3*time.Hour), f(4*time.Hour))
	var imp map[string]any
	if code := ts.call("POST", "/api/v1/import", adminKey, sessions, &imp); code != 200 {
		t.Fatalf("import: %d %v", code, imp)
	}

	// No token for another school's session, none too early.
	t3 := ts.login("T3", "beidouxi-tp3")
	if rt, code := ts.roomToken(t3, "R1"); code != 403 || !strings.Contains(rt.Error, "T3 does not take part in session R1") {
		t.Errorf("T3 token for R1: %d %q", code, rt.Error)
	}
	t1SignIn := ts.login("T1", "houtang-tp-1")
	// A view token (recordings, any time) for one's own session: room named, nothing else
	// granted; none for another school's session.
	var view struct{ Token, Room string }
	if code := ts.call("POST", "/api/v1/sessions/R3/view-token", t1SignIn, nil, &view); code != 200 || view.Room != "class-R3" {
		t.Fatalf("T1's view token for R3 (not started yet): %d %+v", code, view)
	}
	vt, err := auth.ParseAPIToken(view.Token)
	if err != nil {
		t.Fatal(err)
	}
	_, vg, err := vt.Verify(config.DevAPISecret)
	if err != nil {
		t.Fatal(err)
	}
	if v := vg.Video; !v.RoomJoin || v.Room != "class-R3" || !v.Hidden || v.GetCanPublish() || v.GetCanSubscribe() ||
		v.GetCanPublishData() || v.RoomAdmin || v.RoomRecord {
		t.Errorf("view token grants too much or too little: %+v", v)
	}
	if code := ts.call("POST", "/api/v1/sessions/R1/view-token", t3, nil, nil); code != 403 {
		t.Errorf("T3's view token for another school's session: HTTP %d, want 403", code)
	}
	if rt, code := ts.roomToken(t1SignIn, "R3"); code != 403 || !strings.Contains(rt.Error, "opens at") {
		t.Errorf("T1 token for R3 three hours ahead: %d %q", code, rt.Error)
	}
	if code := ts.call("POST", "/api/v1/login", "", map[string]string{"account": "T1", "password": "wrong-password"}, nil); code != 401 {
		t.Errorf("wrong password: %d", code)
	}

	type entry struct{ Name, School, Region string }
	var me struct {
		Sessions []struct {
			ID   string
			Role string
		}
		Directory struct {
			Classrooms, Schools, Regions map[string]entry
		}
	}
	if code := ts.call("GET", "/api/v1/me", t1SignIn, nil, &me); code != 200 || len(me.Sessions) != 2 ||
		me.Sessions[0].ID != "R1" || me.Sessions[0].Role != "teaching_point" || me.Sessions[1].ID != "R3" {
		t.Errorf("T1's sessions: %d %+v", code, me)
	}
	// The directory names every classroom of those sessions, its school and its regions.
	for _, id := range []string{"T1", "M1"} {
		c, ok := me.Directory.Classrooms[id]
		if !ok || c.Name == "" {
			t.Errorf("directory lacks classroom %s: %+v", id, me.Directory.Classrooms)
			continue
		}
		sc, ok := me.Directory.Schools[c.School]
		if !ok || sc.Name == "" || sc.Region == "" {
			t.Errorf("directory lacks school %q of %s: %+v", c.School, id, me.Directory.Schools)
			continue
		}
		if r, ok := me.Directory.Regions[sc.Region]; !ok || r.Name == "" {
			t.Errorf("directory lacks region %q: %+v", sc.Region, me.Directory.Regions)
		}
	}
	teacherTok, code := ts.roomToken(ts.login("M1", "music-master-1"), "R1")
	if code != 200 || teacherTok.Role != "teacher" || teacherTok.Room != "class-R1" {
		t.Fatalf("teacher token: %d %+v", code, teacherTok)
	}
	teacher := ts.connectTapped(teacherTok.Token)
	teacher.publishVideo(t)

	tpTok, code := ts.roomToken(t1SignIn, "R1")
	if code != 200 || tpTok.Role != "teaching_point" || tpTok.Identity != "T1" {
		t.Fatalf("T1 token: %d %+v", code, tpTok)
	}
	tp := ts.connectTapped(tpTok.Token)
	tp.waitVideo(t)
	if p := tp.room.LocalParticipant.Permissions(); !hasSource(p, livekit.TrackSource_CAMERA) || hasSource(p, livekit.TrackSource_MICROPHONE) {
		t.Fatalf("teaching point permission: %v", p)
	}
	// The classroom camera is allowed, the microphone is not (not called on).
	tp.publishVideo(t)
	publishRefused(t, tp, "audio", livekit.TrackSource_MICROPHONE)
	if _, ok := eventually(5*time.Second, func() bool {
		return slices.Contains(ts.serverTracks("class-R1", "T1"), livekit.TrackSource_CAMERA)
	}); !ok {
		t.Fatal("T1's camera was not published")
	}
	if srcs := ts.serverTracks("class-R1", "T1"); slices.Contains(srcs, livekit.TrackSource_MICROPHONE) {
		t.Fatalf("T1 published a microphone before being called on: %v", srcs)
	}

	// Hand raise: server-side state every client sees.
	if code := ts.call("POST", "/api/v1/rooms/class-R1/hand", tpTok.Token, map[string]bool{"raised": true}, nil); code != 200 {
		t.Fatalf("raise hand: %d", code)
	}
	remoteAttr := func(c *client, identity, key string) string {
		if rp := c.room.GetParticipantByIdentity(identity); rp != nil {
			return rp.Attributes()[key]
		}
		return ""
	}
	if _, ok := eventually(2*time.Second, func() bool { return remoteAttr(teacher, "T1", "sanke.hand") == "raised" }); !ok {
		t.Error("the teacher does not see T1's raised hand")
	}
	var state struct {
		Mode     string
		Hands    []string
		CalledOn []string `json:"called_on"`
	}
	if code := ts.call("GET", "/api/v1/rooms/class-R1/class", teacherTok.Token, nil, &state); code != 200 || state.Mode != "lecture" ||
		!slices.Equal(state.Hands, []string{"T1"}) || len(state.CalledOn) != 0 {
		t.Errorf("class state: %d %+v", code, state)
	}
	// A teaching point cannot call on (itself or anyone).
	if code := ts.call("POST", "/api/v1/rooms/class-R1/call-on", tpTok.Token, map[string]string{"identity": "T1"}, nil); code != 403 {
		t.Errorf("teaching point calling on: %d", code)
	}

	// Call on: the microphone is granted within 1 s.
	start := time.Now()
	if code := ts.call("POST", "/api/v1/rooms/class-R1/call-on", teacherTok.Token, map[string]string{"identity": "T1"}, nil); code != 200 {
		t.Fatalf("call on: %d", code)
	}
	if _, ok := eventually(time.Second-time.Since(start), func() bool {
		return hasSource(tp.room.LocalParticipant.Permissions(), livekit.TrackSource_MICROPHONE)
	}); !ok {
		t.Fatalf("T1 did not get its microphone within 1 s of the call")
	}
	t.Logf("microphone granted %s after the call-on request", time.Since(start).Round(time.Millisecond))
	if err := tp.publishMic(t); err != nil {
		t.Fatalf("publishing the microphone once called on: %v", err)
	}
	if _, ok := eventually(5*time.Second, func() bool {
		rp := teacher.room.GetParticipantByIdentity("T1")
		if rp == nil {
			return false
		}
		for _, pub := range rp.TrackPublications() {
			if pub.Source() == livekit.TrackSource_MICROPHONE {
				return true
			}
		}
		return false
	}); !ok {
		t.Error("the teacher does not see T1's microphone")
	}
	if remoteAttr(teacher, "T1", "sanke.called_on") != "true" || remoteAttr(teacher, "T1", "sanke.hand") != "" {
		t.Errorf("attributes after the call: %v", teacher.room.GetParticipantByIdentity("T1").Attributes())
	}

	// End of the call: the microphone is withdrawn and its track unpublished by the server.
	if code := ts.call("DELETE", "/api/v1/rooms/class-R1/call-on/T1", teacherTok.Token, nil, nil); code != 200 {
		t.Fatalf("end call: %d", code)
	}
	if _, ok := eventually(time.Second, func() bool {
		return !slices.Contains(ts.serverTracks("class-R1", "T1"), livekit.TrackSource_MICROPHONE)
	}); !ok {
		t.Error("T1's microphone is still published after the call ended")
	}
	if _, ok := eventually(time.Second, func() bool {
		return !hasSource(tp.room.LocalParticipant.Permissions(), livekit.TrackSource_MICROPHONE)
	}); !ok {
		t.Error("T1 keeps its microphone permission")
	}

	// Free discussion gives every teaching point its microphone; lecture takes it back.
	ts.call("PUT", "/api/v1/rooms/class-R1/mode", teacherTok.Token, map[string]string{"mode": "free"}, nil)
	if _, ok := eventually(time.Second, func() bool { return hasSource(tp.room.LocalParticipant.Permissions(), livekit.TrackSource_MICROPHONE) }); !ok {
		t.Error("free discussion: no microphone")
	}
	ts.call("PUT", "/api/v1/rooms/class-R1/mode", teacherTok.Token, map[string]string{"mode": "lecture"}, nil)
	if _, ok := eventually(time.Second, func() bool { return !hasSource(tp.room.LocalParticipant.Permissions(), livekit.TrackSource_MICROPHONE) }); !ok {
		t.Error("lecture: microphone kept")
	}

	// Supervisor (巡课): hidden, subscribe only, audited.
	supTok, code := ts.roomToken(ts.login("HH-SUP", "huaihua-supervisor"), "R1")
	if code != 200 || supTok.Role != "supervisor" {
		t.Fatalf("supervisor token: %d %+v", code, supTok)
	}
	sup := ts.connectTapped(supTok.Token)
	sup.waitVideo(t)
	// T2 joins after the supervisor: once the others see T2, everything the server told
	// them about the room before (the supervisor's arrival included) has reached them, on
	// the same ordered signaling connection.
	t2Tok, code := ts.roomToken(ts.login("T2", "shangpuxi-tp2"), "R1")
	if code != 200 {
		t.Fatalf("T2 token: %d %+v", code, t2Tok)
	}
	ts.connect(t2Tok.Token)
	for _, c := range []*client{teacher, tp} {
		if _, ok := eventually(10*time.Second, func() bool { return c.room.GetParticipantByIdentity("T2") != nil }); !ok {
			t.Fatalf("%s does not see T2", c.room.LocalParticipant.Identity())
		}
		for _, rp := range c.room.GetRemoteParticipants() {
			if strings.HasPrefix(rp.Identity(), "supervisor-") {
				t.Errorf("%s sees the supervisor", c.room.LocalParticipant.Identity())
			}
		}
		for _, m := range c.tap.Messages() {
			if !m.FromClient && strings.Contains(m.String(), "supervisor-") {
				t.Errorf("%s was told about the supervisor: %s", c.room.LocalParticipant.Identity(), m)
			}
		}
	}
	rooms, _ := ts.srv.Rooms().ListRooms(context.Background(), []string{"class-R1"})
	if len(rooms) != 1 || rooms[0].NumParticipants != 3 {
		t.Errorf("room participants (teacher, T1, T2; the supervisor is hidden): %v", rooms)
	}
	publishRefused(t, sup, "video", livekit.TrackSource_CAMERA)
	ts.disconnect(sup, "class-R1")
	var audit []store.AuditEntry
	if _, ok := eventually(5*time.Second, func() bool {
		ts.svc.Flush()
		ts.call("GET", "/api/v1/audit?action=supervisor.leave", adminKey, nil, &audit)
		return len(audit) == 1
	}); !ok {
		t.Error("no supervisor.leave in the audit log")
	}
	for _, action := range []string{"supervisor.token", "supervisor.join", "supervisor.leave"} {
		ts.call("GET", "/api/v1/audit?action="+action, adminKey, nil, &audit)
		if len(audit) != 1 || audit[0].Session != "R1" || !strings.HasPrefix(audit[0].Actor, "account:HH-SUP") && !strings.HasPrefix(audit[0].Actor, "supervisor-HH-SUP") {
			t.Errorf("audit %s: %+v", action, audit)
		}
	}
	ts.call("GET", "/api/v1/audit?action=token.refused", adminKey, nil, &audit)
	if len(audit) != 1 || audit[0].Actor != "account:T3" {
		t.Errorf("refused token not audited: %+v", audit)
	}

	// Broadcast viewer: subscribe only.
	viewerTok, code := ts.roomToken(t3, "R2")
	if code != 200 || viewerTok.Role != "viewer" {
		t.Fatalf("viewer token: %d %+v", code, viewerTok)
	}
	m2 := ts.connect(func() string { rt, _ := ts.roomToken(ts.login("M2", "art-master-22"), "R2"); return rt.Token }())
	m2.publishVideo(t)
	viewer := ts.connectTapped(viewerTok.Token)
	viewer.waitVideo(t)
	if p := viewer.room.LocalParticipant.Permissions(); p.GetCanPublish() || !p.GetCanSubscribe() {
		t.Errorf("viewer permission: %v", p)
	}
	publishRefused(t, viewer, "video", livekit.TrackSource_CAMERA)
	if srcs := ts.serverTracks("class-R2", "T3"); len(srcs) != 0 {
		t.Errorf("the viewer published %v", srcs)
	}
}
