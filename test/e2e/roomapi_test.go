package e2e

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/livekit/protocol/livekit"
	lksdk "github.com/livekit/server-sdk-go/v2"
	"github.com/pion/webrtc/v4"
	"github.com/twitchtv/twirp"

	tc "github.com/sanke-edu/sanke/test/testclient"
	"github.com/sanke-edu/sanke/test/testmedia"
)

// TestRoomAPI drives the Room API with server-sdk-go's RoomServiceClient while four Go SDK
// participants are in the room (alice publishes Opus and VP8; bob, carol and dave subscribe),
// and checks that every call is observed by the clients it affects:
//   - ListRooms and ListParticipants/GetParticipant report the room, the identities, names,
//     metadata and alice's two tracks (sid, type, source, name, size); a wrong API secret is
//     refused (Unauthenticated);
//   - MutePublishedTrack mutes alice's audio: alice's own SDK sees its publication muted (the
//     server tells the publisher), bob sees it muted;
//   - UpdateParticipant changes bob's metadata (carol and bob see it), and revoking
//     canPublish from alice unpublishes her tracks for everyone (bob and carol see them
//     unpublished, alice's SDK sees its local tracks unpublished, the API lists none);
//   - SendData to [bob] reaches bob only (from the server: no sender identity), a broadcast
//     reaches bob and carol once;
//   - RemoveParticipant disconnects dave with reason PARTICIPANT_REMOVED and the others see
//     him leave;
//   - DeleteRoom disconnects everyone with reason ROOM_DELETED and the room is gone.
func TestRoomAPI(t *testing.T) {
	srv := startServer(t)
	target := srv.Target()
	files := testmedia.Get(t)
	room := roomName(t, "api")
	api := target.RoomClient()

	join := func(identity string) *tc.Client {
		return tc.Join(t, target, room, identity, &tc.JoinOptions{TokenOptions: []tc.TokenOption{
			tc.WithName(strings.ToUpper(identity[:1]) + identity[1:]),
			tc.WithMetadata(`{"role":"` + identity + `"}`),
		}})
	}
	alice := join("alice")
	audio, err := tc.PublishOpus(alice.Room, files, nil)
	if err != nil {
		t.Fatal(err)
	}
	video, err := tc.PublishVP8(alice.Room, files.VP8[testmedia.Low], nil)
	if err != nil {
		t.Fatal(err)
	}
	bob, carol, dave := join("bob"), join("carol"), join("dave")
	bobAudio := bob.WaitForTrack(mediaWait, "alice", webrtc.RTPCodecTypeAudio)
	expectFlow(t, bobAudio, 25, "bob receives alice's audio")
	carol.WaitForTrack(mediaWait, "alice", webrtc.RTPCodecTypeVideo)

	// Authentication: a token signed with the wrong secret is refused.
	bad := lksdk.NewRoomServiceClient(target.HTTPURL, target.APIKey, "not-the-secret")
	if _, err := bad.ListRooms(ctxTimeout(t), &livekit.ListRoomsRequest{}); twirpCode(err) != twirp.Unauthenticated {
		t.Errorf("ListRooms with a forged token: %v, want a twirp %s error", err, twirp.Unauthenticated)
	}

	// ListRooms.
	tc.Eventually(t, eventWait, "ListRooms reports the room with 4 participants and 1 publisher", func() (bool, string) {
		res, err := api.ListRooms(ctxTimeout(t), &livekit.ListRoomsRequest{})
		if err != nil {
			return false, err.Error()
		}
		for _, r := range res.Rooms {
			if r.Name == room {
				return r.NumParticipants == 4 && r.NumPublishers == 1 && r.Sid != "", r.String()
			}
		}
		return false, fmt.Sprintf("room not listed among %d", len(res.Rooms))
	})
	if res, err := api.ListRooms(ctxTimeout(t), &livekit.ListRoomsRequest{Names: []string{room, "no-such-room"}}); err != nil {
		t.Fatal(err)
	} else if len(res.Rooms) != 1 || res.Rooms[0].Name != room {
		t.Errorf("ListRooms(names=[%s no-such-room]) = %v, want just the room", room, res.Rooms)
	}

	// ListParticipants and GetParticipant.
	var parts []*livekit.ParticipantInfo
	tc.Eventually(t, eventWait, "ListParticipants lists everyone and alice's two tracks", func() (bool, string) {
		res, err := api.ListParticipants(ctxTimeout(t), &livekit.ListParticipantsRequest{Room: room})
		if err != nil {
			return false, err.Error()
		}
		parts = res.Participants
		a := findParticipant(parts, "alice")
		return len(parts) == 4 && a != nil && len(a.Tracks) == 2, describeParticipants(parts)
	})
	if got := identities(parts); got != "alice bob carol dave" {
		t.Errorf("ListParticipants identities: %s", got)
	}
	for _, p := range parts {
		wantName := strings.ToUpper(p.Identity[:1]) + p.Identity[1:]
		if p.Name != wantName || p.Metadata != `{"role":"`+p.Identity+`"}` || p.Sid == "" {
			t.Errorf("participant %s: name %q metadata %q sid %q", p.Identity, p.Name, p.Metadata, p.Sid)
		}
		if p.Identity != "alice" && len(p.Tracks) != 0 {
			t.Errorf("participant %s lists tracks %v", p.Identity, p.Tracks)
		}
	}
	a := findParticipant(parts, "alice")
	if a.Sid != alice.Room.LocalParticipant.SID() {
		t.Errorf("alice's sid: API %s, SDK %s", a.Sid, alice.Room.LocalParticipant.SID())
	}
	for _, tr := range a.Tracks {
		switch tr.Sid {
		case audio.SID():
			if tr.Type != livekit.TrackType_AUDIO || tr.Source != livekit.TrackSource_MICROPHONE || tr.Name != "microphone" || tr.Muted {
				t.Errorf("alice's audio track as listed: %v", tr)
			}
		case video.SID():
			if tr.Type != livekit.TrackType_VIDEO || tr.Source != livekit.TrackSource_CAMERA || tr.Name != "camera" ||
				tr.Width != 320 || tr.Height != 180 || !strings.EqualFold(tr.MimeType, webrtc.MimeTypeVP8) {
				t.Errorf("alice's video track as listed: %v", tr)
			}
		default:
			t.Errorf("alice lists unknown track %v (published %s and %s)", tr, audio.SID(), video.SID())
		}
	}
	if p, err := api.GetParticipant(ctxTimeout(t), &livekit.RoomParticipantIdentity{Room: room, Identity: "bob"}); err != nil {
		t.Errorf("GetParticipant(bob): %v", err)
	} else if p.Identity != "bob" || p.Sid != bob.Room.LocalParticipant.SID() {
		t.Errorf("GetParticipant(bob) = %v", p)
	}
	if _, err := api.GetParticipant(ctxTimeout(t), &livekit.RoomParticipantIdentity{Room: room, Identity: "nobody"}); twirpCode(err) != twirp.NotFound {
		t.Errorf("GetParticipant(nobody): %v, want a twirp %s error", err, twirp.NotFound)
	}

	// MutePublishedTrack: the publisher's SDK and the subscribers see the mute.
	res, err := api.MutePublishedTrack(ctxTimeout(t), &livekit.MuteRoomTrackRequest{Room: room, Identity: "alice", TrackSid: audio.SID(), Muted: true})
	if err != nil {
		t.Fatalf("MutePublishedTrack: %v", err)
	}
	if !res.GetTrack().GetMuted() || res.GetTrack().GetSid() != audio.SID() {
		t.Errorf("MutePublishedTrack returned %v", res.GetTrack())
	}
	waitTrackEvent(t, alice, tc.EventTrackMuted, "alice", audio.SID())
	if !audio.Pub.IsMuted() {
		t.Errorf("alice's SDK: local audio publication not muted")
	}
	waitTrackEvent(t, bob, tc.EventTrackMuted, "alice", audio.SID())
	waitTrackEvent(t, carol, tc.EventTrackMuted, "alice", audio.SID())

	// UpdateParticipant: metadata.
	info, err := api.UpdateParticipant(ctxTimeout(t), &livekit.UpdateParticipantRequest{Room: room, Identity: "bob", Metadata: "updated-by-api"})
	if err != nil {
		t.Fatalf("UpdateParticipant(metadata): %v", err)
	}
	if info.Metadata != "updated-by-api" {
		t.Errorf("UpdateParticipant returned metadata %q", info.Metadata)
	}
	tc.Eventually(t, eventWait, "carol sees bob's new metadata", func() (bool, string) {
		_, ok := carol.FindEvent(func(e tc.Event) bool {
			return e.Kind == tc.EventMetadataChanged && e.Participant == "bob" && e.Detail == "updated-by-api"
		})
		return ok, fmt.Sprintf("%d events", len(carol.Events()))
	})
	tc.Eventually(t, eventWait, "bob sees his own new metadata", func() (bool, string) {
		md := bob.Room.LocalParticipant.Metadata()
		return md == "updated-by-api", md
	})

	// UpdateParticipant: revoke alice's canPublish; her tracks are unpublished everywhere.
	info, err = api.UpdateParticipant(ctxTimeout(t), &livekit.UpdateParticipantRequest{Room: room, Identity: "alice",
		Permission: &livekit.ParticipantPermission{CanSubscribe: true, CanPublish: false, CanPublishData: true}})
	if err != nil {
		t.Fatalf("UpdateParticipant(permission): %v", err)
	}
	if info.GetPermission().GetCanPublish() {
		t.Errorf("UpdateParticipant returned permission %v", info.GetPermission())
	}
	for _, cl := range []*tc.Client{bob, carol} {
		for _, sid := range []string{audio.SID(), video.SID()} {
			waitTrackEvent(t, cl, tc.EventTrackUnpublished, "alice", sid)
		}
	}
	for _, sid := range []string{audio.SID(), video.SID()} {
		waitTrackEvent(t, alice, tc.EventLocalTrackUnpublished, "alice", sid)
	}
	tc.Eventually(t, eventWait, "the API lists alice without tracks and without canPublish", func() (bool, string) {
		p, err := api.GetParticipant(ctxTimeout(t), &livekit.RoomParticipantIdentity{Room: room, Identity: "alice"})
		if err != nil {
			return false, err.Error()
		}
		return len(p.Tracks) == 0 && !p.GetPermission().GetCanPublish(), p.String()
	})

	// SendData: to bob only, then to everyone. Server data packets travel the same ordered
	// reliable channel to each client, so when the broadcast has arrived, the addressed packet
	// has arrived too or never will.
	for _, req := range []*livekit.SendDataRequest{
		{Room: room, Data: []byte("for bob"), Kind: livekit.DataPacket_RELIABLE, Topic: ptr("api-bob"), DestinationIdentities: []string{"bob"}},
		{Room: room, Data: []byte("for all"), Kind: livekit.DataPacket_RELIABLE, Topic: ptr("api-all")},
	} {
		if _, err := api.SendData(ctxTimeout(t), req); err != nil {
			t.Fatalf("SendData(%s): %v", req.GetTopic(), err)
		}
	}
	for _, cl := range []*tc.Client{bob, carol} {
		cl.WaitForData(eventWait, func(m tc.DataMessage) bool { return m.Topic == "api-all" })
		counts := map[string]int{}
		for _, m := range cl.Data() {
			counts[m.Topic]++
			if m.From != "" || string(m.Payload) != map[string]string{"api-bob": "for bob", "api-all": "for all"}[m.Topic] {
				t.Errorf("%s: data %q from %q payload %q", cl.Identity, m.Topic, m.From, m.Payload)
			}
		}
		want := map[string]int{"api-all": 1}
		if cl == bob {
			want["api-bob"] = 1
		}
		if fmt.Sprint(counts) != fmt.Sprint(want) {
			t.Errorf("%s received data topics %v, want %v", cl.Identity, counts, want)
		}
	}

	// RemoveParticipant: dave is disconnected, the others see him go.
	if _, err := api.RemoveParticipant(ctxTimeout(t), &livekit.RoomParticipantIdentity{Room: room, Identity: "dave"}); err != nil {
		t.Fatalf("RemoveParticipant: %v", err)
	}
	waitDisconnected(t, dave, livekit.DisconnectReason_PARTICIPANT_REMOVED)
	for _, cl := range []*tc.Client{alice, bob, carol} {
		// The reason the others see is checked by TestLeaveReasonSeenByOthers.
		cl.WaitForEvent(eventWait, tc.EventParticipantDisconnected, "dave")
	}
	tc.Eventually(t, eventWait, "the API no longer lists dave", func() (bool, string) {
		res, err := api.ListParticipants(ctxTimeout(t), &livekit.ListParticipantsRequest{Room: room})
		if err != nil {
			return false, err.Error()
		}
		return findParticipant(res.Participants, "dave") == nil && len(res.Participants) == 3, describeParticipants(res.Participants)
	})

	// DeleteRoom: everyone is disconnected and the room is gone.
	if _, err := api.DeleteRoom(ctxTimeout(t), &livekit.DeleteRoomRequest{Room: room}); err != nil {
		t.Fatalf("DeleteRoom: %v", err)
	}
	for _, cl := range []*tc.Client{alice, bob, carol} {
		waitDisconnected(t, cl, livekit.DisconnectReason_ROOM_DELETED)
	}
	if res, err := api.ListRooms(ctxTimeout(t), &livekit.ListRoomsRequest{Names: []string{room}}); err != nil {
		t.Fatal(err)
	} else if len(res.Rooms) != 0 {
		t.Errorf("ListRooms after DeleteRoom: %v", res.Rooms)
	}
	if _, err := api.ListParticipants(ctxTimeout(t), &livekit.ListParticipantsRequest{Room: room}); twirpCode(err) != twirp.NotFound {
		t.Errorf("ListParticipants of the deleted room: %v, want a twirp %s error", err, twirp.NotFound)
	}
	serverAlive(t, srv)
}

// waitDisconnected waits until c's SDK reports being disconnected by the server for reason.
func waitDisconnected(t *testing.T, c *tc.Client, reason livekit.DisconnectReason) {
	t.Helper()
	ev := c.WaitForEvent(eventWait, tc.EventDisconnected, "")
	if got := c.Room.DisconnectReason(); got != reason {
		t.Errorf("%s disconnected with reason %s (%s), want %s", c.Identity, got, ev.Detail, reason)
	}
}

func findParticipant(ps []*livekit.ParticipantInfo, identity string) *livekit.ParticipantInfo {
	for _, p := range ps {
		if p.Identity == identity {
			return p
		}
	}
	return nil
}

func identities(ps []*livekit.ParticipantInfo) string {
	ids := make([]string, 0, len(ps))
	for _, p := range ps {
		ids = append(ids, p.Identity)
	}
	sort.Strings(ids)
	return strings.Join(ids, " ")
}

func describeParticipants(ps []*livekit.ParticipantInfo) string {
	var b strings.Builder
	for _, p := range ps {
		fmt.Fprintf(&b, "%s(%s, %d tracks) ", p.Identity, p.State, len(p.Tracks))
	}
	return b.String()
}

// twirpCode returns the Twirp error code of err ("" when err is nil or not a Twirp error).
func twirpCode(err error) twirp.ErrorCode {
	var te twirp.Error
	switch {
	case err == nil:
		return ""
	case errors.As(err, &te):
		return te.Code()
	default:
		return twirp.ErrorCode("not a twirp error: " + err.Error())
	}
}

func ptr[T any](v T) *T { return &v }
