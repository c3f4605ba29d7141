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
)

// Stand-ins for the room package's sentinels (roomapi must not import room).
var (
	errRoomNotFound = errors.New("room not found")
	errRoomFull     = errors.New("room is full")
	errDenied       = errors.New("permission denied")
	errShuttingDown = errors.New("server is shutting down")
)

func testCoder() ErrorCoder {
	return MapErrors(
		ErrorMapping{Err: errRoomNotFound, Code: twirp.NotFound},
		ErrorMapping{Err: errRoomFull, Code: twirp.ResourceExhausted},
		ErrorMapping{Err: errDenied, Code: twirp.PermissionDenied},
		ErrorMapping{Err: errShuttingDown, Code: twirp.Unavailable},
	)
}

func TestDefaultErrorCode(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want twirp.ErrorCode
	}{
		{"canceled", context.Canceled, twirp.Canceled},
		{"wrapped deadline", fmt.Errorf("op: %w", context.DeadlineExceeded), twirp.DeadlineExceeded},
		{"other", errors.New("boom"), twirp.Internal},
		{"sentinel", errRoomNotFound, twirp.Internal},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := DefaultErrorCode(tc.err); got != tc.want {
				t.Errorf("DefaultErrorCode(%v) = %q, want %q", tc.err, got, tc.want)
			}
		})
	}
}

func TestMapErrors(t *testing.T) {
	both := fmt.Errorf("%w and %w", errRoomFull, errRoomNotFound)
	tests := []struct {
		name string
		err  error
		want twirp.ErrorCode
	}{
		{"exact", errRoomNotFound, twirp.NotFound},
		{"wrapped", fmt.Errorf("get: %w", errRoomFull), twirp.ResourceExhausted},
		{"first mapping wins", both, twirp.NotFound},
		{"unknown", errors.New("room not found"), twirp.NoError},
		{"context", context.Canceled, twirp.NoError},
	}
	coder := testCoder()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := coder(tc.err); got != tc.want {
				t.Errorf("coder(%v) = %q, want %q", tc.err, got, tc.want)
			}
		})
	}
}

// TestErrorMapping checks the Twirp errors clients receive for room-layer failures.
func TestErrorMapping(t *testing.T) {
	tests := []struct {
		name     string
		coder    ErrorCoder // nil: no WithErrorCoder
		err      error
		nilRes   bool
		wantCode twirp.ErrorCode
		wantMsg  string
	}{
		{name: "not found", coder: testCoder(), err: errRoomNotFound,
			wantCode: twirp.NotFound, wantMsg: "room not found"},
		{name: "wrapped not found", coder: testCoder(), err: fmt.Errorf("lookup r1: %w", errRoomNotFound),
			wantCode: twirp.NotFound, wantMsg: "lookup r1: room not found"},
		{name: "full", coder: testCoder(), err: errRoomFull,
			wantCode: twirp.ResourceExhausted, wantMsg: "room is full"},
		{name: "permission denied", coder: testCoder(), err: errDenied,
			wantCode: twirp.PermissionDenied, wantMsg: "permission denied"},
		{name: "shutting down", coder: testCoder(), err: errShuttingDown,
			wantCode: twirp.Unavailable, wantMsg: "server is shutting down"},
		{name: "unknown error hides details", coder: testCoder(), err: errors.New("db password is hunter2"),
			wantCode: twirp.Internal, wantMsg: internalMessage},
		{name: "no coder", err: errRoomNotFound,
			wantCode: twirp.Internal, wantMsg: internalMessage},
		{name: "deadline", coder: testCoder(), err: fmt.Errorf("wait: %w", context.DeadlineExceeded),
			wantCode: twirp.DeadlineExceeded, wantMsg: "wait: context deadline exceeded"},
		{name: "twirp error passes through", coder: testCoder(), err: twirp.NewError(twirp.AlreadyExists, "exists"),
			wantCode: twirp.AlreadyExists, wantMsg: "exists"},
		{name: "invalid code from coder", coder: func(error) twirp.ErrorCode { return "teapot" }, err: errRoomFull,
			wantCode: twirp.Internal, wantMsg: internalMessage},
		{name: "nil result", coder: testCoder(), nilRes: true,
			wantCode: twirp.Internal, wantMsg: internalMessage},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var opts []Option
			if tc.coder != nil {
				opts = append(opts, WithErrorCoder(tc.coder))
			}
			rooms := &fakeRooms{err: tc.err, nilResults: tc.nilRes}
			url := newTestServer(t, rooms, opts...)
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
