package roomapi

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/livekit/protocol/auth"
	"github.com/livekit/protocol/livekit"
	"github.com/twitchtv/twirp"

	"github.com/sanke-edu/sanke/internal/rooms"
)

// classRooms is fakeRooms with a class in room r1: alice and bob, a hidden supervisor and the
// recorder (hidden, recorder).
type classRooms struct{ fakeRooms }

func (f *classRooms) class() []*livekit.ParticipantInfo {
	return []*livekit.ParticipantInfo{
		{Sid: "PA_a", Identity: "alice", Permission: &livekit.ParticipantPermission{CanPublish: true}},
		{Sid: "PA_s", Identity: "supervisor", Permission: &livekit.ParticipantPermission{CanSubscribe: true, Hidden: true}},
		{Sid: "PA_r", Identity: "recorder", Permission: &livekit.ParticipantPermission{CanSubscribe: true, Hidden: true, Recorder: true}}, //nolint:staticcheck // LiveKit protocol: the recorder grant
		{Sid: "PA_b", Identity: "bob", Permission: &livekit.ParticipantPermission{CanSubscribe: true}},
	}
}

func (f *classRooms) ListParticipants(ctx context.Context, room string) ([]*livekit.ParticipantInfo, error) {
	f.record(ctx, "ListParticipants", room)
	return f.class(), nil
}

func (f *classRooms) GetParticipant(ctx context.Context, room, identity string) (*livekit.ParticipantInfo, error) {
	f.record(ctx, "GetParticipant", room, identity)
	for _, p := range f.class() {
		if p.Identity == identity {
			return p, nil
		}
	}
	return nil, rooms.ErrParticipantNotFound
}

// TestHiddenBeyondParticipantTokens checks that a caller whose token is a participant's (a
// teacher's: roomAdmin and roomJoin for its room) can neither see nor act on hidden
// participants or the recorder through any Room API method (issue 12 #7: a teacher listed
// the supervisors and kicked the recorder): they are not listed, and every method naming
// them answers NotFound exactly as for an identity nobody has, without reaching the room
// layer's action; data addressed to them only is not sent. A server-side token (roomAdmin
// without roomJoin) sees and acts on everyone.
func TestHiddenBeyondParticipantTokens(t *testing.T) {
	class := &classRooms{}
	url := newTestServer(t, class)
	token := func(g *auth.VideoGrant) string {
		tok, err := auth.NewAccessToken(testKey, testSecret).SetIdentity("teacher").SetVideoGrant(g).ToJWT()
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	teacher := tokenClient(t, url, token(&auth.VideoGrant{RoomJoin: true, RoomAdmin: true, Room: "r1"}))
	server := tokenClient(t, url, token(&auth.VideoGrant{RoomAdmin: true, Room: "r1"}))
	ctx := testContext(t)

	list, err := teacher.ListParticipants(ctx, &livekit.ListParticipantsRequest{Room: "r1"})
	if err != nil {
		t.Fatal(err)
	}
	if got := identities(list.GetParticipants()); !slices.Equal(got, []string{"alice", "bob"}) {
		t.Errorf("the teacher lists %v, want [alice bob]", got)
	}
	list, err = server.ListParticipants(ctx, &livekit.ListParticipantsRequest{Room: "r1"})
	if err != nil || len(list.GetParticipants()) != 4 {
		t.Errorf("a server token lists %v (%v), want all 4", identities(list.GetParticipants()), err)
	}

	// What each method answers for an identity nobody has is what it must answer for the
	// hidden ones.
	calls := map[string]func(c roomClient, identity string) error{
		"GetParticipant": func(c roomClient, id string) error {
			_, err := c.GetParticipant(ctx, &livekit.RoomParticipantIdentity{Room: "r1", Identity: id})
			return err
		},
		"RemoveParticipant": func(c roomClient, id string) error {
			_, err := c.RemoveParticipant(ctx, &livekit.RoomParticipantIdentity{Room: "r1", Identity: id})
			return err
		},
		"MutePublishedTrack": func(c roomClient, id string) error {
			_, err := c.MutePublishedTrack(ctx, &livekit.MuteRoomTrackRequest{Room: "r1", Identity: id, TrackSid: "TR_1", Muted: true})
			return err
		},
		"UpdateParticipant": func(c roomClient, id string) error {
			_, err := c.UpdateParticipant(ctx, &livekit.UpdateParticipantRequest{Room: "r1", Identity: id, Metadata: "m"})
			return err
		},
		"UpdateSubscriptions": func(c roomClient, id string) error {
			_, err := c.UpdateSubscriptions(ctx, &livekit.UpdateSubscriptionsRequest{Room: "r1", Identity: id, TrackSids: []string{"TR_1"}})
			return err
		},
	}
	nobody := twirp.NewError(twirp.NotFound, rooms.ErrParticipantNotFound.Error())
	for name, call := range calls {
		for _, id := range []string{"supervisor", "recorder"} {
			before := len(class.recorded())
			err := call(teacher, id)
			var tw twirp.Error
			if !errors.As(err, &tw) || tw.Code() != nobody.Code() || tw.Msg() != nobody.Msg() {
				t.Errorf("teacher %s(%s): %v, want %v", name, id, err, nobody)
			}
			for _, c := range class.recorded()[before:] {
				if c.method != "GetParticipant" {
					t.Errorf("teacher %s(%s) reached the room layer's %s", name, id, c.method)
				}
			}
			if err := call(server, id); err != nil {
				t.Errorf("server %s(%s): %v", name, id, err)
			}
		}
		if err := call(teacher, "alice"); err != nil {
			t.Errorf("teacher %s(alice): %v", name, err)
		}
	}

	// Data for the hidden ones only goes nowhere; for alice and them, to alice only.
	before := len(class.recorded())
	if _, err := teacher.SendData(ctx, &livekit.SendDataRequest{Room: "r1", Data: []byte("x"),
		DestinationIdentities: []string{"supervisor"}, DestinationSids: []string{"PA_r"}}); err != nil { //nolint:staticcheck // LiveKit Room API: data addressed by sid
		t.Fatal(err)
	}
	if _, err := teacher.SendData(ctx, &livekit.SendDataRequest{Room: "r1", Data: []byte("x"),
		DestinationIdentities: []string{"alice", "recorder"}, DestinationSids: []string{"PA_s", "PA_b"}}); err != nil { //nolint:staticcheck // LiveKit Room API: data addressed by sid
		t.Fatal(err)
	}
	var sent []*livekit.SendDataRequest
	for _, c := range class.recorded()[before:] {
		if c.method == "SendData" {
			sent = append(sent, c.args[0].(*livekit.SendDataRequest))
		}
	}
	if len(sent) != 1 || !slices.Equal(sent[0].DestinationIdentities, []string{"alice"}) || !slices.Equal(sent[0].DestinationSids, []string{"PA_b"}) { //nolint:staticcheck // LiveKit Room API: data addressed by sid
		t.Errorf("data sent: %v, want one packet to alice and PA_b", sent)
	}
}

func identities(ps []*livekit.ParticipantInfo) []string {
	out := make([]string, 0, len(ps))
	for _, p := range ps {
		out = append(out, p.GetIdentity())
	}
	return out
}

// TestReservedAttributesRefused checks that UpdateParticipant refuses to set, change or
// delete a sanke.* attribute (any case) with PermissionDenied, whatever the token's grants,
// before reaching the room layer (issue 12 #1), and passes other attributes on.
func TestReservedAttributesRefused(t *testing.T) {
	rooms := &fakeRooms{}
	client := tokenClient(t, newTestServer(t, rooms), adminToken(t, "r1"))
	ctx := testContext(t)
	for _, attrs := range []map[string]string{
		{"sanke.account": "account:victim"},
		{"sanke.role": ""},
		{"Sanke.Role": "teacher", "note": "x"},
	} {
		_, err := client.UpdateParticipant(ctx, &livekit.UpdateParticipantRequest{Room: "r1", Identity: "a", Attributes: attrs})
		if code := twirpCode(t, err); code != twirp.PermissionDenied {
			t.Errorf("UpdateParticipant %v: %q, want %q", attrs, code, twirp.PermissionDenied)
		}
	}
	if calls := rooms.recorded(); len(calls) != 0 {
		t.Errorf("refused updates reached the room layer: %+v", calls)
	}
	if _, err := client.UpdateParticipant(ctx, &livekit.UpdateParticipantRequest{Room: "r1", Identity: "a",
		Attributes: map[string]string{"note": "x", "sankey": "y"}}); err != nil {
		t.Errorf("UpdateParticipant with ordinary attributes: %v", err)
	}
}
