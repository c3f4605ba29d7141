package roomapi

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/livekit/protocol/livekit"
	lksdk "github.com/livekit/server-sdk-go/v2"
	"github.com/twitchtv/twirp"

	"github.com/sanke-edu/sanke/internal/rooms"
)

// TestErrorCode checks the Twirp code of every error the room layer returns, wrapped or
// not.
func TestErrorCode(t *testing.T) {
	tests := []struct {
		err  error
		want twirp.ErrorCode
	}{
		{rooms.ErrRoomNotFound, twirp.NotFound},
		{rooms.ErrParticipantNotFound, twirp.NotFound},
		{fmt.Errorf("mute: %w", rooms.ErrTrackNotFound), twirp.NotFound},
		{rooms.ErrRoomFull, twirp.ResourceExhausted},
		{rooms.ErrPermissionDenied, twirp.PermissionDenied},
		{fmt.Errorf(`attribute "sanke.x": %w`, rooms.ErrReservedAttribute), twirp.PermissionDenied},
		{rooms.ErrServerShuttingDown, twirp.Unavailable},
		{rooms.ErrRoomClosed, twirp.Unavailable},
		{fmt.Errorf("metadata too long: %w", rooms.ErrLimitExceeded), twirp.InvalidArgument},
		{context.Canceled, twirp.Canceled},
		{fmt.Errorf("op: %w", context.DeadlineExceeded), twirp.DeadlineExceeded},
		{errors.New("room not found"), twirp.Internal}, // the same text is not the sentinel
		{errors.New("boom"), twirp.Internal},
	}
	for _, tc := range tests {
		if got := errorCode(tc.err); got != tc.want {
			t.Errorf("errorCode(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}

// TestErrorMapping checks the Twirp errors clients receive for room-layer failures.
func TestErrorMapping(t *testing.T) {
	tests := []struct {
		name     string
		err      error
		nilRes   bool
		wantCode twirp.ErrorCode
		wantMsg  string
	}{
		{name: "not found", err: rooms.ErrRoomNotFound,
			wantCode: twirp.NotFound, wantMsg: "room not found"},
		{name: "wrapped not found", err: fmt.Errorf("lookup r1: %w", rooms.ErrRoomNotFound),
			wantCode: twirp.NotFound, wantMsg: "lookup r1: room not found"},
		{name: "full", err: rooms.ErrRoomFull,
			wantCode: twirp.ResourceExhausted, wantMsg: "room is full"},
		{name: "permission denied", err: rooms.ErrPermissionDenied,
			wantCode: twirp.PermissionDenied, wantMsg: "permission denied"},
		{name: "shutting down", err: rooms.ErrServerShuttingDown,
			wantCode: twirp.Unavailable, wantMsg: "server is shutting down"},
		{name: "unknown error hides details", err: errors.New("db password is hunter2"),
			wantCode: twirp.Internal, wantMsg: internalMessage},
		{name: "deadline", err: fmt.Errorf("wait: %w", context.DeadlineExceeded),
			wantCode: twirp.DeadlineExceeded, wantMsg: "wait: context deadline exceeded"},
		{name: "twirp error passes through", err: twirp.NewError(twirp.AlreadyExists, "exists"),
			wantCode: twirp.AlreadyExists, wantMsg: "exists"},
		{name: "nil result", nilRes: true,
			wantCode: twirp.Internal, wantMsg: internalMessage},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			url := newTestServer(t, &fakeRooms{err: tc.err, nilResults: tc.nilRes})
			client := lksdk.NewRoomServiceClient(url, testKey, testSecret)
			ctx := testContext(t)

			// GetParticipant returns a message; RemoveParticipant returns only an error.
			_, err := client.GetParticipant(ctx, &livekit.RoomParticipantIdentity{Room: "r1", Identity: "a"})
			checkTwirpError(t, "GetParticipant", err, tc.wantCode, tc.wantMsg)
			if !tc.nilRes {
				_, err = client.RemoveParticipant(ctx, &livekit.RoomParticipantIdentity{Room: "r1", Identity: "a"})
				checkTwirpError(t, "RemoveParticipant", err, tc.wantCode, tc.wantMsg)
			}
		})
	}
}

// TestNilResults checks every single-message method against a room layer returning
// nil, nil.
func TestNilResults(t *testing.T) {
	rooms := &fakeRooms{nilResults: true}
	url := newTestServer(t, rooms)
	client := lksdk.NewRoomServiceClient(url, testKey, testSecret)
	ctx := testContext(t)
	tests := []struct {
		name string
		do   func() error
		want twirp.ErrorCode
	}{
		{"CreateRoom", func() error { _, err := client.CreateRoom(ctx, &livekit.CreateRoomRequest{Name: "r1"}); return err }, twirp.Internal},
		{"GetParticipant", func() error {
			_, err := client.GetParticipant(ctx, &livekit.RoomParticipantIdentity{Room: "r1", Identity: "a"})
			return err
		}, twirp.Internal},
		{"UpdateParticipant", func() error {
			_, err := client.UpdateParticipant(ctx, &livekit.UpdateParticipantRequest{Room: "r1", Identity: "a"})
			return err
		}, twirp.Internal},
		{"UpdateRoomMetadata", func() error {
			_, err := client.UpdateRoomMetadata(ctx, &livekit.UpdateRoomMetadataRequest{Room: "r1"})
			return err
		}, twirp.Internal},
		// A nil track is representable (an empty response), so it is not an error.
		{"MutePublishedTrack", func() error {
			_, err := client.MutePublishedTrack(ctx, &livekit.MuteRoomTrackRequest{Room: "r1", Identity: "a", TrackSid: "TR_1"})
			return err
		}, twirp.NoError},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := twirpCode(t, tc.do()); got != tc.want {
				t.Errorf("code = %q, want %q", got, tc.want)
			}
		})
	}
}

func checkTwirpError(t *testing.T, method string, err error, code twirp.ErrorCode, msg string) {
	t.Helper()
	var tw twirp.Error
	if !errors.As(err, &tw) {
		t.Fatalf("%s: error %v (%T) is not a twirp.Error", method, err, err)
	}
	if tw.Code() != code {
		t.Errorf("%s: code = %q, want %q", method, tw.Code(), code)
	}
	if tw.Msg() != msg {
		t.Errorf("%s: msg = %q, want %q", method, tw.Msg(), msg)
	}
	if strings.Contains(tw.Msg(), "hunter2") {
		t.Errorf("%s: internal details leaked: %q", method, tw.Msg())
	}
}
