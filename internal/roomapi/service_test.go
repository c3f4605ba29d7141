package roomapi

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/livekit/protocol/auth"
	"github.com/livekit/protocol/livekit"
	lksdk "github.com/livekit/server-sdk-go/v2"
	"github.com/twitchtv/twirp"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// equalArg compares a recorded argument with an expected one.
func equalArg(got, want any) bool {
	if g, ok := got.(proto.Message); ok {
		w, ok := want.(proto.Message)
		return ok && proto.Equal(g, w)
	}
	return reflect.DeepEqual(got, want)
}

func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestMethods drives every RoomService method through server-sdk-go's RoomServiceClient.
func TestMethods(t *testing.T) {
	topic := "chat"
	createReq := &livekit.CreateRoomRequest{Name: "r1", EmptyTimeout: 30, MaxParticipants: 5, Metadata: "m"}
	updPartReq := &livekit.UpdateParticipantRequest{
		Room: "r1", Identity: "alice", Metadata: "md", Name: "Alice",
		Attributes: map[string]string{"k": "v"},
		Permission: &livekit.ParticipantPermission{CanSubscribe: true},
	}
	subsReq := &livekit.UpdateSubscriptionsRequest{
		Room: "r1", Identity: "alice", TrackSids: []string{"TR_1", "TR_2"}, Subscribe: true,
		ParticipantTracks: []*livekit.ParticipantTracks{{ParticipantSid: "PA_2", TrackSids: []string{"TR_3"}}},
	}
	sendReq := &livekit.SendDataRequest{
		Room: "r1", Data: []byte("hello"), Kind: livekit.DataPacket_RELIABLE,
		DestinationIdentities: []string{"bob"}, Topic: &topic,
	}

	tests := []struct {
		name     string
		do       func(ctx context.Context, c *lksdk.RoomServiceClient) (proto.Message, error)
		wantCall string
		wantArgs []any
		want     proto.Message
	}{
		{
			name: "CreateRoom",
			do: func(ctx context.Context, c *lksdk.RoomServiceClient) (proto.Message, error) {
				return c.CreateRoom(ctx, createReq)
			},
			wantCall: "CreateRoom",
			wantArgs: []any{createReq},
			want:     &livekit.Room{Sid: "RM_r1", Name: "r1", Metadata: "m", MaxParticipants: 5},
		},
		{
			name: "ListRooms all",
			do: func(ctx context.Context, c *lksdk.RoomServiceClient) (proto.Message, error) {
				return c.ListRooms(ctx, &livekit.ListRoomsRequest{})
			},
			wantCall: "ListRooms",
			wantArgs: []any{[]string(nil)},
			want: &livekit.ListRoomsResponse{Rooms: []*livekit.Room{
				{Sid: "RM_a", Name: "a"}, {Sid: "RM_b", Name: "b", NumParticipants: 2},
			}},
		},
		{
			name: "ListRooms by name",
			do: func(ctx context.Context, c *lksdk.RoomServiceClient) (proto.Message, error) {
				return c.ListRooms(ctx, &livekit.ListRoomsRequest{Names: []string{"a", "b"}})
			},
			wantCall: "ListRooms",
			wantArgs: []any{[]string{"a", "b"}},
			want: &livekit.ListRoomsResponse{Rooms: []*livekit.Room{
				{Sid: "RM_a", Name: "a"}, {Sid: "RM_b", Name: "b", NumParticipants: 2},
			}},
		},
		{
			name: "DeleteRoom",
			do: func(ctx context.Context, c *lksdk.RoomServiceClient) (proto.Message, error) {
				return c.DeleteRoom(ctx, &livekit.DeleteRoomRequest{Room: "r1"})
			},
			wantCall: "DeleteRoom",
			wantArgs: []any{"r1"},
			want:     &livekit.DeleteRoomResponse{},
		},
		{
			name: "ListParticipants",
			do: func(ctx context.Context, c *lksdk.RoomServiceClient) (proto.Message, error) {
				return c.ListParticipants(ctx, &livekit.ListParticipantsRequest{Room: "r1"})
			},
			wantCall: "ListParticipants",
			wantArgs: []any{"r1"},
			want: &livekit.ListParticipantsResponse{Participants: []*livekit.ParticipantInfo{
				{Sid: "PA_1", Identity: "alice"}, {Sid: "PA_2", Identity: "bob"},
			}},
		},
		{
			name: "GetParticipant",
			do: func(ctx context.Context, c *lksdk.RoomServiceClient) (proto.Message, error) {
				return c.GetParticipant(ctx, &livekit.RoomParticipantIdentity{Room: "r1", Identity: "alice"})
			},
			wantCall: "GetParticipant",
			wantArgs: []any{"r1", "alice"},
			want:     &livekit.ParticipantInfo{Sid: "PA_alice", Identity: "alice", State: livekit.ParticipantInfo_ACTIVE},
		},
		{
			name: "RemoveParticipant",
			do: func(ctx context.Context, c *lksdk.RoomServiceClient) (proto.Message, error) {
				return c.RemoveParticipant(ctx, &livekit.RoomParticipantIdentity{Room: "r1", Identity: "alice"})
			},
			wantCall: "RemoveParticipant",
			wantArgs: []any{"r1", "alice"},
			want:     &livekit.RemoveParticipantResponse{},
		},
		{
			name: "MutePublishedTrack",
			do: func(ctx context.Context, c *lksdk.RoomServiceClient) (proto.Message, error) {
				return c.MutePublishedTrack(ctx, &livekit.MuteRoomTrackRequest{Room: "r1", Identity: "alice", TrackSid: "TR_1", Muted: true})
			},
			wantCall: "MutePublishedTrack",
			wantArgs: []any{"r1", "alice", "TR_1", true},
			want:     &livekit.MuteRoomTrackResponse{Track: &livekit.TrackInfo{Sid: "TR_1", Muted: true, Type: livekit.TrackType_AUDIO}},
		},
		{
			name: "UpdateParticipant",
			do: func(ctx context.Context, c *lksdk.RoomServiceClient) (proto.Message, error) {
				return c.UpdateParticipant(ctx, updPartReq)
			},
			wantCall: "UpdateParticipant",
			wantArgs: []any{updPartReq},
			want:     &livekit.ParticipantInfo{Identity: "alice", Name: "Alice", Metadata: "md"},
		},
		{
			name: "UpdateSubscriptions",
			do: func(ctx context.Context, c *lksdk.RoomServiceClient) (proto.Message, error) {
				return c.UpdateSubscriptions(ctx, subsReq)
			},
			wantCall: "UpdateSubscriptions",
			wantArgs: []any{subsReq},
			want:     &livekit.UpdateSubscriptionsResponse{},
		},
		{
			name: "SendData",
			do: func(ctx context.Context, c *lksdk.RoomServiceClient) (proto.Message, error) {
				// The SDK sets sendReq.Nonce before sending, so sendReq is what arrives.
				return c.SendData(ctx, sendReq)
			},
			wantCall: "SendData",
			wantArgs: []any{sendReq},
			want:     &livekit.SendDataResponse{},
		},
		{
			name: "UpdateRoomMetadata",
			do: func(ctx context.Context, c *lksdk.RoomServiceClient) (proto.Message, error) {
				return c.UpdateRoomMetadata(ctx, &livekit.UpdateRoomMetadataRequest{Room: "r1", Metadata: "new"})
			},
			wantCall: "UpdateRoomMetadata",
			wantArgs: []any{"r1", "new"},
			want:     &livekit.Room{Sid: "RM_r1", Name: "r1", Metadata: "new"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rooms := &fakeRooms{}
			url := newTestServer(t, rooms)
			client := lksdk.NewRoomServiceClient(url, testKey, testSecret)

			got, err := tc.do(testContext(t), client)
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			if !proto.Equal(got, tc.want) {
				t.Errorf("response = %v, want %v", got, tc.want)
			}
			calls := rooms.recorded()
			if len(calls) != 1 {
				t.Fatalf("room layer got %d calls, want 1: %+v", len(calls), calls)
			}
			c := calls[0]
			if c.method != tc.wantCall {
				t.Errorf("room layer method = %s, want %s", c.method, tc.wantCall)
			}
			if len(c.args) != len(tc.wantArgs) {
				t.Fatalf("args = %v, want %v", c.args, tc.wantArgs)
			}
			for i := range c.args {
				if !equalArg(c.args[i], tc.wantArgs[i]) {
					t.Errorf("arg %d = %v, want %v", i, c.args[i], tc.wantArgs[i])
				}
			}
			if !c.hasCtx || c.caller.APIKey != testKey || c.caller.Grants == nil || c.caller.Grants.Video == nil {
				t.Errorf("room layer context has caller %+v (ok=%v), want the verified token of %s", c.caller, c.hasCtx, testKey)
			}
		})
	}
}

// TestSendDataNonce checks that the SDK's de-duplication nonce reaches the room layer.
func TestSendDataNonce(t *testing.T) {
	rooms := &fakeRooms{}
	url := newTestServer(t, rooms)
	client := lksdk.NewRoomServiceClient(url, testKey, testSecret)
	if _, err := client.SendData(testContext(t), &livekit.SendDataRequest{Room: "r1", Data: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	calls := rooms.recorded()
	if len(calls) != 1 {
		t.Fatalf("got %d calls", len(calls))
	}
	if req := calls[0].args[0].(*livekit.SendDataRequest); len(req.GetNonce()) == 0 {
		t.Error("nonce not forwarded")
	}
}

// TestCloudOnly checks that Cloud-only methods answer Unimplemented to authenticated callers
// and Unauthenticated to others.
func TestCloudOnly(t *testing.T) {
	url := newTestServer(t, &fakeRooms{})
	ctx := testContext(t)
	api, err := lksdk.NewLiveKitAPI(lksdk.WithURL(url), lksdk.WithToken(adminToken(t, "r1")))
	if err != nil {
		t.Fatal(err)
	}
	anon := livekit.NewRoomServiceProtobufClient(url, http.DefaultClient)
	withHeader := func(tok string) context.Context {
		h := http.Header{}
		h.Set("Authorization", "Bearer "+tok)
		c, err := twirp.WithHTTPRequestHeaders(ctx, h)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}

	tests := []struct {
		name string
		do   func() error
		want twirp.ErrorCode
	}{
		{"ForwardParticipant", func() error {
			_, err := api.Room().ForwardParticipant(ctx, &livekit.ForwardParticipantRequest{Room: "r1", Identity: "a", DestinationRoom: "r2"})
			return err
		}, twirp.Unimplemented},
		{"MoveParticipant", func() error {
			_, err := api.Room().MoveParticipant(ctx, &livekit.MoveParticipantRequest{Room: "r1", Identity: "a", DestinationRoom: "r2"})
			return err
		}, twirp.Unimplemented},
		{"PerformRpc", func() error {
			_, err := anon.PerformRpc(withHeader(adminToken(t, "r1")), &livekit.PerformRpcRequest{Room: "r1", DestinationIdentity: "a", Method: "m"})
			return err
		}, twirp.Unimplemented},
		{"ForwardParticipant anonymous", func() error {
			_, err := anon.ForwardParticipant(ctx, &livekit.ForwardParticipantRequest{Room: "r1"})
			return err
		}, twirp.Unauthenticated},
		{"MoveParticipant anonymous", func() error {
			_, err := anon.MoveParticipant(ctx, &livekit.MoveParticipantRequest{Room: "r1"})
			return err
		}, twirp.Unauthenticated},
		{"PerformRpc anonymous", func() error {
			_, err := anon.PerformRpc(ctx, &livekit.PerformRpcRequest{Room: "r1"})
			return err
		}, twirp.Unauthenticated},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := twirpCode(t, tc.do()); got != tc.want {
				t.Errorf("code = %q, want %q", got, tc.want)
			}
		})
	}
}

// TestValidation checks that requests missing a required field fail with InvalidArgument
// without reaching the room layer.
func TestValidation(t *testing.T) {
	rooms := &fakeRooms{}
	url := newTestServer(t, rooms)
	client := lksdk.NewRoomServiceClient(url, testKey, testSecret)
	ctx := testContext(t)

	tests := []struct {
		name string
		do   func() error
	}{
		{"CreateRoom no name", func() error { _, err := client.CreateRoom(ctx, &livekit.CreateRoomRequest{}); return err }},
		{"DeleteRoom no room", func() error { _, err := client.DeleteRoom(ctx, &livekit.DeleteRoomRequest{}); return err }},
		{"ListParticipants no room", func() error {
			_, err := client.ListParticipants(ctx, &livekit.ListParticipantsRequest{})
			return err
		}},
		{"GetParticipant no room", func() error {
			_, err := client.GetParticipant(ctx, &livekit.RoomParticipantIdentity{Identity: "a"})
			return err
		}},
		{"GetParticipant no identity", func() error {
			_, err := client.GetParticipant(ctx, &livekit.RoomParticipantIdentity{Room: "r1"})
			return err
		}},
		{"RemoveParticipant no identity", func() error {
			_, err := client.RemoveParticipant(ctx, &livekit.RoomParticipantIdentity{Room: "r1"})
			return err
		}},
		{"MutePublishedTrack no track", func() error {
			_, err := client.MutePublishedTrack(ctx, &livekit.MuteRoomTrackRequest{Room: "r1", Identity: "a"})
			return err
		}},
		{"MutePublishedTrack no identity", func() error {
			_, err := client.MutePublishedTrack(ctx, &livekit.MuteRoomTrackRequest{Room: "r1", TrackSid: "TR_1"})
			return err
		}},
		{"UpdateParticipant no identity", func() error {
			_, err := client.UpdateParticipant(ctx, &livekit.UpdateParticipantRequest{Room: "r1", Metadata: "x"})
			return err
		}},
		{"UpdateSubscriptions no room", func() error {
			_, err := client.UpdateSubscriptions(ctx, &livekit.UpdateSubscriptionsRequest{Identity: "a"})
			return err
		}},
		{"SendData no room", func() error {
			_, err := client.SendData(ctx, &livekit.SendDataRequest{Data: []byte("x")})
			return err
		}},
		{"SendData unknown kind", func() error {
			_, err := client.SendData(ctx, &livekit.SendDataRequest{Room: "r1", Kind: livekit.DataPacket_Kind(42)})
			return err
		}},
		{"UpdateRoomMetadata no room", func() error {
			_, err := client.UpdateRoomMetadata(ctx, &livekit.UpdateRoomMetadataRequest{Metadata: "x"})
			return err
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := twirpCode(t, tc.do()); got != twirp.InvalidArgument {
				t.Errorf("code = %q, want %q", got, twirp.InvalidArgument)
			}
		})
	}
	if calls := rooms.recorded(); len(calls) != 0 {
		t.Errorf("invalid requests reached the room layer: %+v", calls)
	}
}

// TestJSON checks the JSON flavour of Twirp, used by livekit-server-sdk (Node): camelCase
// request fields are accepted and the response is protojson.
func TestJSON(t *testing.T) {
	rooms := &fakeRooms{}
	url := newTestServer(t, rooms)
	body := `{"name":"r1","emptyTimeout":30,"maxParticipants":7,"metadata":"m"}`
	req, err := http.NewRequestWithContext(testContext(t), http.MethodPost,
		url+livekit.RoomServicePathPrefix+"CreateRoom", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+adminToken(t, ""))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, b)
	}
	var got livekit.Room
	if err := protojson.Unmarshal(b, &got); err != nil {
		t.Fatalf("response %s: %v", b, err)
	}
	want := &livekit.Room{Sid: "RM_r1", Name: "r1", Metadata: "m", MaxParticipants: 7}
	if !proto.Equal(&got, want) {
		t.Errorf("response = %v, want %v", &got, want)
	}
	calls := rooms.recorded()
	if len(calls) != 1 || calls[0].args[0].(*livekit.CreateRoomRequest).GetEmptyTimeout() != 30 {
		t.Errorf("calls = %+v", calls)
	}
}

// TestMaxRequestBytes checks that oversized bodies are refused before reaching the room
// layer.
func TestMaxRequestBytes(t *testing.T) {
	rooms := &fakeRooms{}
	url := newTestServer(t, rooms, WithMaxRequestBytes(256))
	client := lksdk.NewRoomServiceClient(url, testKey, testSecret)
	ctx := testContext(t)

	tests := []struct {
		name     string
		metadata string
		want     twirp.ErrorCode
	}{
		{"small", "ok", twirp.NoError},
		{"too large", strings.Repeat("x", 1024), twirp.Malformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := client.UpdateRoomMetadata(ctx, &livekit.UpdateRoomMetadataRequest{Room: "r1", Metadata: tc.metadata})
			if got := twirpCode(t, err); got != tc.want {
				t.Errorf("code = %q, want %q (err %v)", got, tc.want, err)
			}
		})
	}
	if calls := rooms.recorded(); len(calls) != 1 {
		t.Errorf("room layer got %d calls, want 1", len(calls))
	}
}

// TestDirectCall checks that calling the Service without its handler is unauthenticated.
func TestDirectCall(t *testing.T) {
	rooms := &fakeRooms{}
	svc := NewService(rooms, auth.NewSimpleKeyProvider(testKey, testSecret), nil)
	_, err := svc.ListRooms(t.Context(), &livekit.ListRoomsRequest{})
	if got := twirpCode(t, err); got != twirp.Unauthenticated {
		t.Errorf("code = %q, want %q", got, twirp.Unauthenticated)
	}
	if svc.PathPrefix() != livekit.RoomServicePathPrefix {
		t.Errorf("PathPrefix = %q, want %q", svc.PathPrefix(), livekit.RoomServicePathPrefix)
	}
	if _, ok := CallerFromContext(t.Context()); ok {
		t.Error("CallerFromContext reported a caller for a bare context")
	}
	if calls := rooms.recorded(); len(calls) != 0 {
		t.Errorf("room layer got calls: %+v", calls)
	}
}

// TestBadRoute checks that paths outside the service are refused.
func TestBadRoute(t *testing.T) {
	url := newTestServer(t, &fakeRooms{})
	tests := []struct {
		name, method, path string
		wantStatus         int
	}{
		{"unknown method", http.MethodPost, livekit.RoomServicePathPrefix + "Nope", http.StatusNotFound},
		{"GET", http.MethodGet, livekit.RoomServicePathPrefix + "ListRooms", http.StatusNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequestWithContext(testContext(t), tc.method, url+tc.path, bytes.NewReader(nil))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/protobuf")
			req.Header.Set("Authorization", "Bearer "+adminToken(t, "r1"))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.wantStatus {
				t.Errorf("status = %d, want %d", resp.StatusCode, tc.wantStatus)
			}
		})
	}
}
