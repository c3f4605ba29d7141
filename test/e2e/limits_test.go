package e2e

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/livekit/protocol/auth"
	"github.com/livekit/protocol/livekit"
	"github.com/twitchtv/twirp"

	tc "github.com/sanke-edu/sanke/test/testclient"
)

// Server defaults the limits test relies on (config.Default's limit section, and the room
// package's per-message bounds).
const (
	maxTracks         = 16    // limit.max_tracks_per_participant
	maxNameLength     = 256   // limit.max_participant_name_length (also track names)
	maxIdentityLength = 256   // limit.max_participant_identity_length
	maxRoomNameLength = 256   // limit.max_room_name_length
	maxMetadataSize   = 64000 // limit.max_metadata_size
	maxAttributes     = 64    // limit.max_attributes
	maxListLength     = 1024  // track sids, permissions, destinations in one message
	maxDataBytes      = 64 << 10
)

// TestClientStateBounded checks that every piece of state a client can make the server keep
// is bounded, with a clear error when a bound is reached (issue 12 #3: unique add_track cids
// with 1 MB names grew the server to 1.1 GiB; 40,000 made-up track sids per
// update_track_settings from a participant without grants grew its heap without end; a
// 900 KB room name was accepted):
//   - join: a room name, identity or participant name over its limit, and metadata over
//     its limit, are refused with 400 before the upgrade;
//   - add_track: a participant without publish permission is refused (NOT_ALLOWED); one
//     with it gets max_tracks_per_participant tracks, the next is LIMIT_EXCEEDED, and so are
//     over-long names and cids; a repeated cid does not count twice;
//   - update_metadata: a name, metadata or attributes over the limits are LIMIT_EXCEEDED;
//   - lists in one message (update_track_settings, subscription, subscription_permission,
//     sync_state) longer than 1024 entries are LIMIT_EXCEEDED;
//   - the Room API refuses room names, metadata, names, attributes, data payloads and lists
//     over the limits with InvalidArgument.
//
// After all of it the server is healthy and a new participant joins.
func TestClientStateBounded(t *testing.T) {
	srv := startServer(t)
	target := srv.Target()
	room := roomName(t, "limits")
	long := func(n int) string { return strings.Repeat("x", n) }

	t.Run("join", func(t *testing.T) {
		for _, c := range []struct {
			what  string
			token string
		}{
			{"room name", target.Token(t, "alice", tc.JoinGrant(long(maxRoomNameLength+1)))},
			{"identity", target.Token(t, long(maxIdentityLength+1), tc.JoinGrant(room))},
			{"participant name", target.Token(t, "alice", tc.JoinGrant(room), tc.WithName(long(maxNameLength+1)))},
			{"metadata", target.Token(t, "alice", tc.JoinGrant(room), tc.WithMetadata(long(maxMetadataSize+1)))},
		} {
			status, body := httpGet(t, rtcURL(httpTarget(target), "/rtc/validate", c.token, nil))
			if status != http.StatusBadRequest || !strings.Contains(body, c.what) {
				t.Errorf("join with a %s over its limit: %d %q, want 400 naming it", c.what, status, body)
			}
		}
		if status, body := httpGet(t, rtcURL(httpTarget(target), "/rtc/validate",
			target.Token(t, long(maxIdentityLength), tc.JoinGrant(long(maxRoomNameLength))), nil)); status != http.StatusOK {
			t.Errorf("join with a room name and identity at their limits: %d %q, want 200", status, body)
		}
	})

	t.Run("add_track", func(t *testing.T) {
		none := &auth.VideoGrant{RoomJoin: true, Room: room}
		none.SetCanPublish(false)
		none.SetCanSubscribe(false)
		none.SetCanPublishData(false)
		viewer := dialRaw(t, target, target.Token(t, "nogrants", none), url.Values{"auto_subscribe": {"0"}})
		viewer.startReading()
		viewer.waitJoin()
		viewer.request(addTrack("v-cid", "cam", livekit.TrackType_VIDEO, livekit.TrackSource_CAMERA))
		viewer.refusal(livekit.RequestResponse_NOT_ALLOWED, "publish")

		pub := dialRaw(t, target, target.Token(t, "publisher", tc.JoinGrant(room)), url.Values{"auto_subscribe": {"0"}})
		pub.startReading()
		pub.waitJoin()
		for i := range maxTracks {
			cid := fmt.Sprintf("cid-%d", i)
			pub.request(addTrack(cid, "cam", livekit.TrackType_VIDEO, livekit.TrackSource_CAMERA))
			pub.waitMessage("track_published for "+cid, func(m *livekit.SignalResponse) bool { return m.GetTrackPublished().GetCid() == cid })
		}
		// The same cid again is the same track.
		pub.request(addTrack("cid-0", "cam", livekit.TrackType_VIDEO, livekit.TrackSource_CAMERA))
		pub.waitMessage("track_published for cid-0 again", func(m *livekit.SignalResponse) bool {
			return m.GetTrackPublished().GetCid() == "cid-0" && pub.count(func(m *livekit.SignalResponse) bool { return m.GetTrackPublished().GetCid() == "cid-0" }) == 2
		})
		pub.request(addTrack("one-too-many", "cam", livekit.TrackType_VIDEO, livekit.TrackSource_CAMERA))
		if rr := pub.refusal(livekit.RequestResponse_LIMIT_EXCEEDED, "tracks"); rr.GetAddTrack().GetCid() != "one-too-many" {
			t.Errorf("LIMIT_EXCEEDED answers add_track %q, want one-too-many", rr.GetAddTrack().GetCid())
		}

		other := dialRaw(t, target, target.Token(t, "publisher2", tc.JoinGrant(room)), url.Values{"auto_subscribe": {"0"}})
		other.startReading()
		other.waitJoin()
		other.request(addTrack("c1", long(maxNameLength+1), livekit.TrackType_AUDIO, livekit.TrackSource_MICROPHONE))
		other.refusal(livekit.RequestResponse_LIMIT_EXCEEDED, "name")
		other.request(addTrack(long(300), "mic", livekit.TrackType_AUDIO, livekit.TrackSource_MICROPHONE))
		other.refusal(livekit.RequestResponse_LIMIT_EXCEEDED, "cid")
		if n := other.count(func(m *livekit.SignalResponse) bool { return m.GetTrackPublished() != nil }); n != 0 {
			t.Errorf("%d over-long tracks were accepted", n)
		}
	})

	c := dialRaw(t, target, target.Token(t, "bob", func() *auth.VideoGrant {
		g := tc.JoinGrant(room)
		g.SetCanUpdateOwnMetadata(true)
		return g
	}()), url.Values{"auto_subscribe": {"0"}})
	c.startReading()
	c.waitJoin()

	t.Run("update_metadata", func(t *testing.T) {
		many := map[string]string{}
		for i := range maxAttributes + 1 {
			many[fmt.Sprintf("k%d", i)] = "v"
		}
		for i, u := range []*livekit.UpdateParticipantMetadata{
			{Name: long(maxNameLength + 1)},
			{Metadata: long(maxMetadataSize + 1)},
			{Attributes: many},
			{Attributes: map[string]string{"big": long(maxMetadataSize + 1)}},
		} {
			u.RequestId = uint32(100 + i)
			c.request(&livekit.SignalRequest{Message: &livekit.SignalRequest_UpdateMetadata{UpdateMetadata: u}})
			if rr := c.answerTo(u.RequestId); rr.GetReason() != livekit.RequestResponse_LIMIT_EXCEEDED {
				t.Errorf("update_metadata %d: %s %q, want LIMIT_EXCEEDED", i, rr.GetReason(), rr.GetMessage())
			}
		}
	})

	t.Run("lists", func(t *testing.T) {
		sids := make([]string, maxListLength+1)
		for i := range sids {
			sids[i] = fmt.Sprintf("TR_madeup%06d", i)
		}
		perms := make([]*livekit.TrackPermission, maxListLength+1)
		for i := range perms {
			perms[i] = &livekit.TrackPermission{ParticipantIdentity: fmt.Sprintf("p%d", i), AllTracks: true}
		}
		for _, m := range []struct {
			what string
			req  *livekit.SignalRequest
		}{
			{"track settings", &livekit.SignalRequest{Message: &livekit.SignalRequest_TrackSetting{TrackSetting: &livekit.UpdateTrackSettings{TrackSids: sids}}}},
			{"subscription", &livekit.SignalRequest{Message: &livekit.SignalRequest_Subscription{Subscription: &livekit.UpdateSubscription{TrackSids: sids, Subscribe: true}}}},
			{"subscription permission", &livekit.SignalRequest{Message: &livekit.SignalRequest_SubscriptionPermission{SubscriptionPermission: &livekit.SubscriptionPermission{TrackPermissions: perms}}}},
			{"sync state", &livekit.SignalRequest{Message: &livekit.SignalRequest_SyncState{SyncState: &livekit.SyncState{Subscription: &livekit.UpdateSubscription{TrackSids: sids}}}}},
		} {
			c.request(m.req)
			c.refusal(livekit.RequestResponse_LIMIT_EXCEEDED, m.what)
		}
	})

	t.Run("room api", func(t *testing.T) {
		api := target.RoomClient()
		ctx := ctxTimeout(t)
		check := func(what string, err error) {
			t.Helper()
			if code := twirpCode(err); code != twirp.InvalidArgument {
				t.Errorf("%s: %v (code %q), want %s", what, err, code, twirp.InvalidArgument)
			}
		}
		_, err := api.CreateRoom(ctx, &livekit.CreateRoomRequest{Name: long(maxRoomNameLength + 1)})
		check("CreateRoom with a long name", err)
		_, err = api.CreateRoom(ctx, &livekit.CreateRoomRequest{Name: room + "-md", Metadata: long(maxMetadataSize + 1)})
		check("CreateRoom with long metadata", err)
		_, err = api.UpdateRoomMetadata(ctx, &livekit.UpdateRoomMetadataRequest{Room: room, Metadata: long(maxMetadataSize + 1)})
		check("UpdateRoomMetadata", err)
		for what, req := range map[string]*livekit.UpdateParticipantRequest{
			"UpdateParticipant name":       {Name: long(maxNameLength + 1)},
			"UpdateParticipant metadata":   {Metadata: long(maxMetadataSize + 1)},
			"UpdateParticipant attributes": {Attributes: map[string]string{"big": long(maxMetadataSize + 1)}},
		} {
			req.Room, req.Identity = room, "bob"
			_, err := api.UpdateParticipant(ctx, req)
			check(what, err)
		}
		_, err = api.SendData(ctx, &livekit.SendDataRequest{Room: room, Data: make([]byte, maxDataBytes+1), Kind: livekit.DataPacket_RELIABLE})
		check("SendData with a large payload", err)
		dest := make([]string, maxListLength+1)
		for i := range dest {
			dest[i] = fmt.Sprintf("p%d", i)
		}
		_, err = api.SendData(ctx, &livekit.SendDataRequest{Room: room, Data: []byte("x"), DestinationIdentities: dest})
		check("SendData to many destinations", err)
		_, err = api.UpdateSubscriptions(ctx, &livekit.UpdateSubscriptionsRequest{Room: room, Identity: "bob", TrackSids: dest, Subscribe: true})
		check("UpdateSubscriptions with many tracks", err)
	})

	probeJoin(t, target, room, "probe")
	serverAlive(t, srv)
}

// addTrack is an add_track request.
func addTrack(cid, name string, kind livekit.TrackType, source livekit.TrackSource) *livekit.SignalRequest {
	return &livekit.SignalRequest{Message: &livekit.SignalRequest_AddTrack{AddTrack: &livekit.AddTrackRequest{
		Cid: cid, Name: name, Type: kind, Source: source, Width: 640, Height: 360,
	}}}
}
