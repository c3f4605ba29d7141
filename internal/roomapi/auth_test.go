package roomapi

import (
	"context"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/livekit/protocol/auth"
	"github.com/livekit/protocol/livekit"
	lksdk "github.com/livekit/server-sdk-go/v2"
	"github.com/twitchtv/twirp"
)

// roomClient is the method set shared by lksdk.RoomServiceClient and the raw Twirp client.
type roomClient interface {
	CreateRoom(context.Context, *livekit.CreateRoomRequest) (*livekit.Room, error)
	ListRooms(context.Context, *livekit.ListRoomsRequest) (*livekit.ListRoomsResponse, error)
	DeleteRoom(context.Context, *livekit.DeleteRoomRequest) (*livekit.DeleteRoomResponse, error)
	ListParticipants(context.Context, *livekit.ListParticipantsRequest) (*livekit.ListParticipantsResponse, error)
	GetParticipant(context.Context, *livekit.RoomParticipantIdentity) (*livekit.ParticipantInfo, error)
	RemoveParticipant(context.Context, *livekit.RoomParticipantIdentity) (*livekit.RemoveParticipantResponse, error)
	MutePublishedTrack(context.Context, *livekit.MuteRoomTrackRequest) (*livekit.MuteRoomTrackResponse, error)
	UpdateParticipant(context.Context, *livekit.UpdateParticipantRequest) (*livekit.ParticipantInfo, error)
	UpdateSubscriptions(context.Context, *livekit.UpdateSubscriptionsRequest) (*livekit.UpdateSubscriptionsResponse, error)
	SendData(context.Context, *livekit.SendDataRequest) (*livekit.SendDataResponse, error)
	UpdateRoomMetadata(context.Context, *livekit.UpdateRoomMetadataRequest) (*livekit.Room, error)
	ForwardParticipant(context.Context, *livekit.ForwardParticipantRequest) (*livekit.ForwardParticipantResponse, error)
	MoveParticipant(context.Context, *livekit.MoveParticipantRequest) (*livekit.MoveParticipantResponse, error)
}

// Grant kinds a method needs.
const (
	needCreate = "roomCreate"
	needList   = "roomList"
	needAdmin  = "roomAdmin(r1)"
	needCloud  = "" // any valid token; answers Unimplemented
)

// apiMethod is one RoomService method called on room "r1".
type apiMethod struct {
	name string
	need string
	call func(ctx context.Context, c roomClient) error
}

// apiMethods returns every method reachable through roomClient.
func apiMethods() []apiMethod {
	return []apiMethod{
		{"CreateRoom", needCreate, func(ctx context.Context, c roomClient) error {
			_, err := c.CreateRoom(ctx, &livekit.CreateRoomRequest{Name: "r1"})
			return err
		}},
		{"ListRooms", needList, func(ctx context.Context, c roomClient) error {
			_, err := c.ListRooms(ctx, &livekit.ListRoomsRequest{})
			return err
		}},
		{"DeleteRoom", needCreate, func(ctx context.Context, c roomClient) error {
			_, err := c.DeleteRoom(ctx, &livekit.DeleteRoomRequest{Room: "r1"})
			return err
		}},
		{"ListParticipants", needAdmin, func(ctx context.Context, c roomClient) error {
			_, err := c.ListParticipants(ctx, &livekit.ListParticipantsRequest{Room: "r1"})
			return err
		}},
		{"GetParticipant", needAdmin, func(ctx context.Context, c roomClient) error {
			_, err := c.GetParticipant(ctx, &livekit.RoomParticipantIdentity{Room: "r1", Identity: "a"})
			return err
		}},
		{"RemoveParticipant", needAdmin, func(ctx context.Context, c roomClient) error {
			_, err := c.RemoveParticipant(ctx, &livekit.RoomParticipantIdentity{Room: "r1", Identity: "a"})
			return err
		}},
		{"MutePublishedTrack", needAdmin, func(ctx context.Context, c roomClient) error {
			_, err := c.MutePublishedTrack(ctx, &livekit.MuteRoomTrackRequest{Room: "r1", Identity: "a", TrackSid: "TR_1", Muted: true})
			return err
		}},
		{"UpdateParticipant", needAdmin, func(ctx context.Context, c roomClient) error {
			_, err := c.UpdateParticipant(ctx, &livekit.UpdateParticipantRequest{Room: "r1", Identity: "a", Metadata: "m"})
			return err
		}},
		{"UpdateSubscriptions", needAdmin, func(ctx context.Context, c roomClient) error {
			_, err := c.UpdateSubscriptions(ctx, &livekit.UpdateSubscriptionsRequest{Room: "r1", Identity: "a", TrackSids: []string{"TR_1"}})
			return err
		}},
		{"SendData", needAdmin, func(ctx context.Context, c roomClient) error {
			_, err := c.SendData(ctx, &livekit.SendDataRequest{Room: "r1", Data: []byte("x")})
			return err
		}},
		{"UpdateRoomMetadata", needAdmin, func(ctx context.Context, c roomClient) error {
			_, err := c.UpdateRoomMetadata(ctx, &livekit.UpdateRoomMetadataRequest{Room: "r1", Metadata: "m"})
			return err
		}},
		{"ForwardParticipant", needCloud, func(ctx context.Context, c roomClient) error {
			_, err := c.ForwardParticipant(ctx, &livekit.ForwardParticipantRequest{Room: "r1", Identity: "a", DestinationRoom: "r2"})
			return err
		}},
		{"MoveParticipant", needCloud, func(ctx context.Context, c roomClient) error {
			_, err := c.MoveParticipant(ctx, &livekit.MoveParticipantRequest{Room: "r1", Identity: "a", DestinationRoom: "r2"})
			return err
		}},
	}
}

// tokenClient returns an SDK client sending tok verbatim.
func tokenClient(t *testing.T, url, tok string) roomClient {
	t.Helper()
	api, err := lksdk.NewLiveKitAPI(lksdk.WithURL(url), lksdk.WithToken(tok))
	if err != nil {
		t.Fatal(err)
	}
	return api.Room()
}

// TestAuthentication checks that every method refuses requests without a valid token with
// twirp.Unauthenticated, before reaching the room layer.
func TestAuthentication(t *testing.T) {
	now := time.Now()
	video := map[string]any{"roomCreate": true, "roomList": true, "roomAdmin": true, "room": "r1"}
	claims := func(mod func(map[string]any)) map[string]any {
		c := map[string]any{
			"iss": testKey, "sub": "admin", "nbf": now.Add(-time.Minute).Unix(),
			"exp": now.Add(time.Hour).Unix(), "video": video,
		}
		mod(c)
		return c
	}

	tests := []struct {
		name string
		// header is sent with the raw Twirp client when client is nil.
		header string
		client func(t *testing.T, url string) roomClient
	}{
		{name: "no token"},
		{name: "basic auth", header: "Basic " + testKey + ":" + testSecret},
		{name: "bearer without token", header: "Bearer "},
		{name: "garbage token", header: "Bearer not-a-jwt"},
		{name: "wrong secret", client: func(_ *testing.T, url string) roomClient {
			return lksdk.NewRoomServiceClient(url, testKey, "not-the-secret")
		}},
		{name: "unknown key", client: func(_ *testing.T, url string) roomClient {
			return lksdk.NewRoomServiceClient(url, "APIunknown", testSecret)
		}},
		{name: "other key's secret", client: func(_ *testing.T, url string) roomClient {
			return lksdk.NewRoomServiceClient(url, testKey, otherSec)
		}},
		{name: "expired", client: func(t *testing.T, url string) roomClient {
			return tokenClient(t, url, signJWT(t, "HS256", testSecret, claims(func(c map[string]any) {
				c["nbf"] = now.Add(-time.Hour).Unix()
				c["exp"] = now.Add(-10 * time.Minute).Unix()
			})))
		}},
		{name: "no expiry", client: func(t *testing.T, url string) roomClient {
			return tokenClient(t, url, signJWT(t, "HS256", testSecret, claims(func(c map[string]any) { delete(c, "exp") })))
		}},
		{name: "not yet valid", client: func(t *testing.T, url string) roomClient {
			return tokenClient(t, url, signJWT(t, "HS256", testSecret, claims(func(c map[string]any) {
				c["nbf"] = now.Add(10 * time.Minute).Unix()
			})))
		}},
		{name: "alg none", client: func(t *testing.T, url string) roomClient {
			return tokenClient(t, url, signJWT(t, "none", "", claims(func(map[string]any) {})))
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rooms := &fakeRooms{}
			url := newTestServer(t, rooms)
			ctx := testContext(t)
			var client roomClient
			if tc.client != nil {
				client = tc.client(t, url)
			} else {
				client = livekit.NewRoomServiceProtobufClient(url, http.DefaultClient)
				if tc.header != "" {
					h := http.Header{}
					h.Set("Authorization", tc.header)
					var err error
					if ctx, err = twirp.WithHTTPRequestHeaders(ctx, h); err != nil {
						t.Fatal(err)
					}
				}
			}
			for _, m := range apiMethods() {
				if got := twirpCode(t, m.call(ctx, client)); got != twirp.Unauthenticated {
					t.Errorf("%s: code = %q, want %q", m.name, got, twirp.Unauthenticated)
				}
			}
			if calls := rooms.recorded(); len(calls) != 0 {
				t.Errorf("unauthenticated requests reached the room layer: %+v", calls)
			}
		})
	}

	// Control: the same hand-made token, unmodified, is accepted.
	t.Run("control", func(t *testing.T) {
		url := newTestServer(t, &fakeRooms{})
		client := tokenClient(t, url, signJWT(t, "HS256", testSecret, claims(func(map[string]any) {})))
		if _, err := client.ListParticipants(testContext(t), &livekit.ListParticipantsRequest{Room: "r1"}); err != nil {
			t.Fatal(err)
		}
	})
}

// TestGrants checks every method against tokens with various grants: the method's grant
// yields success (Unimplemented for Cloud-only methods), anything else PermissionDenied.
func TestGrants(t *testing.T) {
	tests := []struct {
		name    string
		key     string
		secret  string
		video   *auth.VideoGrant // nil: no video grant
		granted []string         // needs this token satisfies
	}{
		{name: "no video grant", key: testKey, secret: testSecret},
		{name: "roomJoin only", key: testKey, secret: testSecret,
			video: &auth.VideoGrant{RoomJoin: true, Room: "r1"}},
		{name: "roomCreate", key: testKey, secret: testSecret,
			video: &auth.VideoGrant{RoomCreate: true}, granted: []string{needCreate}},
		{name: "roomList", key: testKey, secret: testSecret,
			video: &auth.VideoGrant{RoomList: true}, granted: []string{needList}},
		{name: "roomAdmin for r1", key: testKey, secret: testSecret,
			video: &auth.VideoGrant{RoomAdmin: true, Room: "r1"}, granted: []string{needAdmin}},
		{name: "roomAdmin for another room", key: testKey, secret: testSecret,
			video: &auth.VideoGrant{RoomAdmin: true, Room: "r2"}},
		{name: "roomAdmin without room", key: testKey, secret: testSecret,
			video: &auth.VideoGrant{RoomAdmin: true}},
		{name: "room r1 without roomAdmin", key: testKey, secret: testSecret,
			video: &auth.VideoGrant{RoomJoin: true, RoomCreate: true, Room: "r1"}, granted: []string{needCreate}},
		{name: "all grants for r1", key: testKey, secret: testSecret,
			video:   &auth.VideoGrant{RoomCreate: true, RoomList: true, RoomAdmin: true, Room: "r1"},
			granted: []string{needCreate, needList, needAdmin}},
		{name: "all grants, second API key", key: otherKey, secret: otherSec,
			video:   &auth.VideoGrant{RoomCreate: true, RoomList: true, RoomAdmin: true, Room: "r1"},
			granted: []string{needCreate, needList, needAdmin}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rooms := &fakeRooms{}
			url := newTestServer(t, rooms)
			at := auth.NewAccessToken(tc.key, tc.secret).SetIdentity("svc")
			if tc.video != nil {
				at.SetVideoGrant(tc.video)
			}
			tok, err := at.ToJWT()
			if err != nil {
				t.Fatal(err)
			}
			client := tokenClient(t, url, tok)
			ctx := testContext(t)
			var wantCalls int
			for _, m := range apiMethods() {
				want := twirp.PermissionDenied
				switch {
				case m.need == needCloud:
					want = twirp.Unimplemented
				case slices.Contains(tc.granted, m.need):
					want = twirp.NoError
					wantCalls++
				}
				if got := twirpCode(t, m.call(ctx, client)); got != want {
					t.Errorf("%s (needs %s): code = %q, want %q", m.name, m.need, got, want)
				}
			}
			calls := rooms.recorded()
			if len(calls) != wantCalls {
				t.Errorf("room layer got %d calls, want %d: %+v", len(calls), wantCalls, calls)
			}
			for _, c := range calls {
				if c.caller.APIKey != tc.key || c.caller.Grants.Identity != "svc" {
					t.Errorf("%s: caller = %+v, want key %s identity svc", c.method, c.caller, tc.key)
				}
			}
		})
	}
}
