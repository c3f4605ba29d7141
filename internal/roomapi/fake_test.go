package roomapi

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/livekit/protocol/auth"
	"github.com/livekit/protocol/livekit"
	"github.com/twitchtv/twirp"

	"github.com/sanke-edu/sanke/internal/rooms"
)

const (
	testKey    = "APItestkey"
	testSecret = "test-secret-that-is-long-enough-0123456789"
	otherKey   = "APIotherkey"
	otherSec   = "other-secret-that-is-long-enough-987654321"
)

// call is one recorded call to fakeRooms.
type call struct {
	method string
	args   []any
	caller Caller
	hasCtx bool
}

// fakeRooms is a rooms.Admin that records its calls and returns canned results.
type fakeRooms struct {
	mu    sync.Mutex
	calls []call
	// err, when set, is returned by every method.
	err error
	// nilResults makes single-message methods return nil, nil.
	nilResults bool
}

var _ rooms.Admin = (*fakeRooms)(nil)

func (f *fakeRooms) record(ctx context.Context, method string, args ...any) {
	c, ok := CallerFromContext(ctx)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, call{method: method, args: args, caller: c, hasCtx: ok})
}

func (f *fakeRooms) recorded() []call {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]call(nil), f.calls...)
}

func (f *fakeRooms) CreateRoom(ctx context.Context, req *livekit.CreateRoomRequest) (*livekit.Room, error) {
	f.record(ctx, "CreateRoom", req)
	if f.err != nil || f.nilResults {
		return nil, f.err
	}
	return &livekit.Room{Sid: "RM_" + req.GetName(), Name: req.GetName(), Metadata: req.GetMetadata(), MaxParticipants: req.GetMaxParticipants()}, nil
}

func (f *fakeRooms) ListRooms(ctx context.Context, names []string) ([]*livekit.Room, error) {
	f.record(ctx, "ListRooms", names)
	if f.err != nil {
		return nil, f.err
	}
	return []*livekit.Room{{Sid: "RM_a", Name: "a"}, {Sid: "RM_b", Name: "b", NumParticipants: 2}}, nil
}

func (f *fakeRooms) DeleteRoom(ctx context.Context, name string) error {
	f.record(ctx, "DeleteRoom", name)
	return f.err
}

func (f *fakeRooms) ListParticipants(ctx context.Context, room string) ([]*livekit.ParticipantInfo, error) {
	f.record(ctx, "ListParticipants", room)
	if f.err != nil {
		return nil, f.err
	}
	return []*livekit.ParticipantInfo{{Sid: "PA_1", Identity: "alice"}, {Sid: "PA_2", Identity: "bob"}}, nil
}

func (f *fakeRooms) GetParticipant(ctx context.Context, room, identity string) (*livekit.ParticipantInfo, error) {
	f.record(ctx, "GetParticipant", room, identity)
	if f.err != nil || f.nilResults {
		return nil, f.err
	}
	return &livekit.ParticipantInfo{Sid: "PA_" + identity, Identity: identity, State: livekit.ParticipantInfo_ACTIVE}, nil
}

func (f *fakeRooms) RemoveParticipant(ctx context.Context, room, identity string) error {
	f.record(ctx, "RemoveParticipant", room, identity)
	return f.err
}

func (f *fakeRooms) MutePublishedTrack(ctx context.Context, room, identity, trackSID string, muted bool) (*livekit.TrackInfo, error) {
	f.record(ctx, "MutePublishedTrack", room, identity, trackSID, muted)
	if f.err != nil || f.nilResults {
		return nil, f.err
	}
	return &livekit.TrackInfo{Sid: trackSID, Muted: muted, Type: livekit.TrackType_AUDIO}, nil
}

func (f *fakeRooms) UpdateParticipant(ctx context.Context, req *livekit.UpdateParticipantRequest) (*livekit.ParticipantInfo, error) {
	f.record(ctx, "UpdateParticipant", req)
	if f.err != nil || f.nilResults {
		return nil, f.err
	}
	return &livekit.ParticipantInfo{Identity: req.GetIdentity(), Name: req.GetName(), Metadata: req.GetMetadata()}, nil
}

func (f *fakeRooms) UpdateSubscriptions(ctx context.Context, req *livekit.UpdateSubscriptionsRequest) error {
	f.record(ctx, "UpdateSubscriptions", req)
	return f.err
}

func (f *fakeRooms) SendData(ctx context.Context, req *livekit.SendDataRequest) error {
	f.record(ctx, "SendData", req)
	return f.err
}

func (f *fakeRooms) UpdateRoomMetadata(ctx context.Context, room, metadata string) (*livekit.Room, error) {
	f.record(ctx, "UpdateRoomMetadata", room, metadata)
	if f.err != nil || f.nilResults {
		return nil, f.err
	}
	return &livekit.Room{Sid: "RM_" + room, Name: room, Metadata: metadata}, nil
}

// testLogger returns a logger writing to the test log.
func testLogger(t *testing.T) *slog.Logger {
	t.Helper()
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(string(p))
	return len(p), nil
}

// newTestServer serves a Service over rooms the way the server package mounts it and
// returns its base URL.
func newTestServer(t *testing.T, admin rooms.Admin, opts ...Option) string {
	t.Helper()
	keys := auth.NewFileBasedKeyProviderFromMap(map[string]string{testKey: testSecret, otherKey: otherSec})
	svc := NewService(admin, keys, testLogger(t), opts...)
	mux := http.NewServeMux()
	mux.Handle(livekit.RoomServicePathPrefix, svc.Handler())
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL
}

// twirpCode returns the Twirp code of err, or twirp.NoError for nil.
func twirpCode(t *testing.T, err error) twirp.ErrorCode {
	t.Helper()
	if err == nil {
		return twirp.NoError
	}
	var tw twirp.Error
	if !errors.As(err, &tw) {
		t.Fatalf("error %v (%T) is not a twirp.Error", err, err)
	}
	return tw.Code()
}

// signJWT builds an HS256 JWT with arbitrary claims (expired, without exp, ...), which
// auth.AccessToken cannot produce.
func signJWT(t *testing.T, alg, secret string, claims map[string]any) string {
	t.Helper()
	enc := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return base64.RawURLEncoding.EncodeToString(b)
	}
	unsigned := enc(map[string]string{"alg": alg, "typ": "JWT"}) + "." + enc(claims)
	if alg == "none" {
		return unsigned + "."
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(unsigned))
	return unsigned + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// adminToken returns a valid token with every Room API grant for room.
func adminToken(t *testing.T, room string) string {
	t.Helper()
	at := auth.NewAccessToken(testKey, testSecret).SetVideoGrant(&auth.VideoGrant{
		RoomCreate: true, RoomList: true, RoomAdmin: true, Room: room,
	})
	tok, err := at.ToJWT()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}
