package roomapi

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"time"

	"github.com/livekit/protocol/auth"
	"github.com/livekit/protocol/livekit"
	"github.com/twitchtv/twirp"

	"github.com/sanke-edu/sanke/internal/rooms"
)

// DefaultMaxRequestBytes is the default limit on the size of a Room API request body.
const DefaultMaxRequestBytes = 1 << 20

// Option configures a [Service].
type Option func(*Service)

// WithGrantsCheck makes every verified token pass check too (e.g. the classroom service
// refusing the tokens of an account whose password changed); a refused token is
// twirp.Unauthenticated.
func WithGrantsCheck(check func(*auth.ClaimGrants) error) Option {
	return func(s *Service) { s.check = check }
}

// WithMaxRequestBytes limits the size of request bodies (default [DefaultMaxRequestBytes]);
// larger requests fail with twirp.Malformed. n <= 0 removes the limit.
func WithMaxRequestBytes(n int64) Option {
	return func(s *Service) { s.maxRequestBytes = n }
}

// Service implements livekit.RoomService on top of rooms.Admin. Serve it with [Service.Handler];
// calling its methods directly (without the handler's authentication) fails with
// twirp.Unauthenticated.
type Service struct {
	rooms           rooms.Admin
	keys            auth.KeyProvider
	logger          *slog.Logger
	maxRequestBytes int64
	check           func(*auth.ClaimGrants) error // nil: every verified token is accepted
	twirp           livekit.TwirpServer
	handler         http.Handler
}

var _ livekit.RoomService = (*Service)(nil)

// NewService returns a Room API serving admin's rooms, accepting tokens signed with the
// secrets of keys. admin and keys must not be nil; a nil logger discards logs.
func NewService(admin rooms.Admin, keys auth.KeyProvider, logger *slog.Logger, opts ...Option) *Service {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Service{
		rooms:           admin,
		keys:            keys,
		logger:          logger,
		maxRequestBytes: DefaultMaxRequestBytes,
	}
	for _, opt := range opts {
		opt(s)
	}
	hooks := &twirp.ServerHooks{
		// Reject unauthenticated requests before their body is read.
		RequestRouted: func(ctx context.Context) (context.Context, error) {
			_, err := authenticate(ctx)
			return ctx, err
		},
		Error:        recordError,
		ResponseSent: s.logResponse,
	}
	s.twirp = livekit.NewRoomServiceServer(s,
		twirp.WithServerPathPrefix("/twirp"),
		twirp.WithServerJSONSkipDefaults(true),
		twirp.WithServerHooks(hooks),
	)
	s.handler = s.withAuth(s.twirp)
	return s
}

// Handler returns the HTTP handler serving the Room API under [Service.PathPrefix].
func (s *Service) Handler() http.Handler { return s.handler }

// PathPrefix is the URL path prefix the handler serves, "/twirp/livekit.RoomService/"
// (livekit.RoomServicePathPrefix); mount [Service.Handler] there.
func (s *Service) PathPrefix() string { return s.twirp.PathPrefix() }

// logResponse logs every answered request at debug level, with its error if it failed.
// (Internal errors are also logged at error level, with their cause, by twirpError.)
func (s *Service) logResponse(ctx context.Context) {
	if !s.logger.Enabled(ctx, slog.LevelDebug) {
		return
	}
	method, _ := twirp.MethodName(ctx)
	status, _ := twirp.StatusCode(ctx)
	attrs := []any{"method", method, "status", status}
	if st, ok := ctx.Value(requestStateKey{}).(*requestState); ok {
		attrs = append(attrs, "duration", time.Since(st.start))
		if st.failure != nil {
			attrs = append(attrs, "code", string(st.failure.Code()), "msg", st.failure.Msg())
		}
	}
	if c, ok := CallerFromContext(ctx); ok {
		attrs = append(attrs, "apiKey", c.APIKey)
	}
	s.logger.DebugContext(ctx, "room api request", attrs...)
}

// recordError remembers a request's error for logResponse.
func recordError(ctx context.Context, err twirp.Error) context.Context {
	if st, ok := ctx.Value(requestStateKey{}).(*requestState); ok {
		st.failure = err
	}
	return ctx
}

// field is a required request field, for validation.
type field struct{ name, value string }

// admit authenticates the caller, checks that the required fields are set, then checks the
// caller's grants.
func admit(ctx context.Context, grant func(Caller) error, fields ...field) error {
	c, err := authenticate(ctx)
	if err != nil {
		return err
	}
	for _, f := range fields {
		if f.value == "" {
			return twirp.RequiredArgumentError(f.name)
		}
	}
	return grant(c)
}

// roomAdmin returns a grant check for roomAdmin on room.
func roomAdmin(room string) func(Caller) error {
	return func(c Caller) error { return requireRoomAdmin(c, room) }
}

// CreateRoom creates a room (or returns the existing one). Requires roomCreate.
func (s *Service) CreateRoom(ctx context.Context, req *livekit.CreateRoomRequest) (*livekit.Room, error) {
	if err := admit(ctx, requireRoomCreate, field{"name", req.GetName()}); err != nil {
		return nil, err
	}
	room, err := s.rooms.CreateRoom(ctx, req)
	if err != nil {
		return nil, s.twirpError(ctx, err)
	}
	if room == nil {
		return nil, s.nilResult(ctx)
	}
	return room, nil
}

// ListRooms lists the active rooms, optionally only those named. Requires roomList.
func (s *Service) ListRooms(ctx context.Context, req *livekit.ListRoomsRequest) (*livekit.ListRoomsResponse, error) {
	if err := admit(ctx, requireRoomList); err != nil {
		return nil, err
	}
	rooms, err := s.rooms.ListRooms(ctx, req.GetNames())
	if err != nil {
		return nil, s.twirpError(ctx, err)
	}
	return &livekit.ListRoomsResponse{Rooms: rooms}, nil
}

// DeleteRoom closes a room and disconnects its participants. Requires roomCreate.
func (s *Service) DeleteRoom(ctx context.Context, req *livekit.DeleteRoomRequest) (*livekit.DeleteRoomResponse, error) {
	if err := admit(ctx, requireRoomCreate, field{"room", req.GetRoom()}); err != nil {
		return nil, err
	}
	if err := s.rooms.DeleteRoom(ctx, req.GetRoom()); err != nil {
		return nil, s.twirpError(ctx, err)
	}
	return &livekit.DeleteRoomResponse{}, nil
}

// ListParticipants lists a room's participants. Requires roomAdmin for the room.
func (s *Service) ListParticipants(ctx context.Context, req *livekit.ListParticipantsRequest) (*livekit.ListParticipantsResponse, error) {
	if err := admit(ctx, roomAdmin(req.GetRoom()), field{"room", req.GetRoom()}); err != nil {
		return nil, err
	}
	ps, err := s.rooms.ListParticipants(ctx, req.GetRoom())
	if err != nil {
		return nil, s.twirpError(ctx, err)
	}
	if participantCaller(ctx) {
		ps = slices.DeleteFunc(ps, beyondReach)
	}
	return &livekit.ListParticipantsResponse{Participants: ps}, nil
}

// GetParticipant returns one participant. Requires roomAdmin for the room.
func (s *Service) GetParticipant(ctx context.Context, req *livekit.RoomParticipantIdentity) (*livekit.ParticipantInfo, error) {
	if err := admit(ctx, roomAdmin(req.GetRoom()),
		field{"room", req.GetRoom()}, field{"identity", req.GetIdentity()}); err != nil {
		return nil, err
	}
	p, err := s.rooms.GetParticipant(ctx, req.GetRoom(), req.GetIdentity())
	if err != nil {
		return nil, s.twirpError(ctx, err)
	}
	if p == nil {
		return nil, s.nilResult(ctx)
	}
	if participantCaller(ctx) && beyondReach(p) {
		return nil, twirp.NewError(twirp.NotFound, participantNotFound)
	}
	return p, nil
}

// RemoveParticipant disconnects a participant. Requires roomAdmin for the room.
// req.RevokeTokenTs is ignored.
func (s *Service) RemoveParticipant(ctx context.Context, req *livekit.RoomParticipantIdentity) (*livekit.RemoveParticipantResponse, error) {
	if err := admit(ctx, roomAdmin(req.GetRoom()),
		field{"room", req.GetRoom()}, field{"identity", req.GetIdentity()}); err != nil {
		return nil, err
	}
	if err := s.checkReach(ctx, req.GetRoom(), req.GetIdentity()); err != nil {
		return nil, err
	}
	if err := s.rooms.RemoveParticipant(ctx, req.GetRoom(), req.GetIdentity()); err != nil {
		return nil, s.twirpError(ctx, err)
	}
	return &livekit.RemoveParticipantResponse{}, nil
}

// MutePublishedTrack mutes or unmutes a participant's published track. Requires roomAdmin
// for the room.
func (s *Service) MutePublishedTrack(ctx context.Context, req *livekit.MuteRoomTrackRequest) (*livekit.MuteRoomTrackResponse, error) {
	if err := admit(ctx, roomAdmin(req.GetRoom()),
		field{"room", req.GetRoom()}, field{"identity", req.GetIdentity()},
		field{"track_sid", req.GetTrackSid()}); err != nil {
		return nil, err
	}
	if err := s.checkReach(ctx, req.GetRoom(), req.GetIdentity()); err != nil {
		return nil, err
	}
	track, err := s.rooms.MutePublishedTrack(ctx, req.GetRoom(), req.GetIdentity(), req.GetTrackSid(), req.GetMuted())
	if err != nil {
		return nil, s.twirpError(ctx, err)
	}
	return &livekit.MuteRoomTrackResponse{Track: track}, nil
}

// UpdateParticipant updates a participant's metadata, name, attributes or permissions.
// Requires roomAdmin for the room.
func (s *Service) UpdateParticipant(ctx context.Context, req *livekit.UpdateParticipantRequest) (*livekit.ParticipantInfo, error) {
	if err := admit(ctx, roomAdmin(req.GetRoom()),
		field{"room", req.GetRoom()}, field{"identity", req.GetIdentity()}); err != nil {
		return nil, err
	}
	if k, ok := rooms.ReservedAttribute(req.GetAttributes()); ok {
		return nil, twirp.NewError(twirp.PermissionDenied, fmt.Sprintf("attribute %q is reserved for the server (%s*)", k, rooms.ReservedAttributePrefix))
	}
	if err := s.checkReach(ctx, req.GetRoom(), req.GetIdentity()); err != nil {
		return nil, err
	}
	p, err := s.rooms.UpdateParticipant(ctx, req)
	if err != nil {
		return nil, s.twirpError(ctx, err)
	}
	if p == nil {
		return nil, s.nilResult(ctx)
	}
	return p, nil
}

// UpdateSubscriptions subscribes a participant to, or unsubscribes it from, tracks.
// Requires roomAdmin for the room.
func (s *Service) UpdateSubscriptions(ctx context.Context, req *livekit.UpdateSubscriptionsRequest) (*livekit.UpdateSubscriptionsResponse, error) {
	if err := admit(ctx, roomAdmin(req.GetRoom()),
		field{"room", req.GetRoom()}, field{"identity", req.GetIdentity()}); err != nil {
		return nil, err
	}
	if err := s.checkReach(ctx, req.GetRoom(), req.GetIdentity()); err != nil {
		return nil, err
	}
	if err := s.rooms.UpdateSubscriptions(ctx, req); err != nil {
		return nil, s.twirpError(ctx, err)
	}
	return &livekit.UpdateSubscriptionsResponse{}, nil
}

// SendData sends a data packet to a room's participants. Requires roomAdmin for the room.
func (s *Service) SendData(ctx context.Context, req *livekit.SendDataRequest) (*livekit.SendDataResponse, error) {
	if err := admit(ctx, roomAdmin(req.GetRoom()), field{"room", req.GetRoom()}); err != nil {
		return nil, err
	}
	if _, ok := livekit.DataPacket_Kind_name[int32(req.GetKind())]; !ok {
		return nil, twirp.InvalidArgumentError("kind", "unknown data packet kind")
	}
	ok, err := s.reachableDestinations(ctx, req)
	if err != nil {
		return nil, err
	}
	if !ok {
		return &livekit.SendDataResponse{}, nil // addressed to nobody the caller may reach
	}
	if err := s.rooms.SendData(ctx, req); err != nil {
		return nil, s.twirpError(ctx, err)
	}
	return &livekit.SendDataResponse{}, nil
}

// UpdateRoomMetadata replaces a room's metadata. Requires roomAdmin for the room.
func (s *Service) UpdateRoomMetadata(ctx context.Context, req *livekit.UpdateRoomMetadataRequest) (*livekit.Room, error) {
	if err := admit(ctx, roomAdmin(req.GetRoom()), field{"room", req.GetRoom()}); err != nil {
		return nil, err
	}
	room, err := s.rooms.UpdateRoomMetadata(ctx, req.GetRoom(), req.GetMetadata())
	if err != nil {
		return nil, s.twirpError(ctx, err)
	}
	if room == nil {
		return nil, s.nilResult(ctx)
	}
	return room, nil
}

// ForwardParticipant is a LiveKit Cloud feature; it fails with twirp.Unimplemented.
func (s *Service) ForwardParticipant(ctx context.Context, _ *livekit.ForwardParticipantRequest) (*livekit.ForwardParticipantResponse, error) {
	return nil, unimplemented(ctx, "ForwardParticipant is a LiveKit Cloud feature, not supported by Sanke")
}

// MoveParticipant is a LiveKit Cloud feature; it fails with twirp.Unimplemented.
func (s *Service) MoveParticipant(ctx context.Context, _ *livekit.MoveParticipantRequest) (*livekit.MoveParticipantResponse, error) {
	return nil, unimplemented(ctx, "MoveParticipant is a LiveKit Cloud feature, not supported by Sanke")
}

// PerformRpc (server-initiated RPC to a participant) is not supported; it fails with
// twirp.Unimplemented.
func (s *Service) PerformRpc(ctx context.Context, _ *livekit.PerformRpcRequest) (*livekit.PerformRpcResponse, error) { //nolint:staticcheck // the name is livekit.RoomService's
	return nil, unimplemented(ctx, "PerformRpc is not supported by Sanke")
}

// unimplemented authenticates the caller, then fails with twirp.Unimplemented.
func unimplemented(ctx context.Context, msg string) error {
	if _, err := authenticate(ctx); err != nil {
		return err
	}
	return twirp.NewError(twirp.Unimplemented, msg)
}
