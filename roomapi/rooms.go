// Package roomapi serves LiveKit's Twirp RoomService (the server API used by server-sdk-go's
// RoomServiceClient, livekit-server-sdk for Node, the livekit-cli, ...) on top of the
// [Rooms] interface, which the room layer implements.
//
// Every request must carry "Authorization: Bearer <JWT>", a LiveKit access token signed with
// one of the server's API keys. Grants are enforced like LiveKit does:
//
//   - CreateRoom, DeleteRoom: video.roomCreate
//   - ListRooms: video.roomList
//   - participant, track, data and metadata operations: video.roomAdmin, and video.room
//     equal to the request's room
//
// A missing or invalid token yields twirp.Unauthenticated, a missing grant
// twirp.PermissionDenied, a malformed request (e.g. an empty room name)
// twirp.InvalidArgument.
//
// Two rules go beyond LiveKit's grants:
//
//   - A caller whose token is a participant's (it grants roomJoin, as a teacher's does) sees
//     and acts on the participants its room shows, no more: hidden participants
//     (supervisors) and the recorder are not listed, and every method naming one answers
//     twirp.NotFound as for an identity nobody has. Server-side tokens (roomAdmin without
//     roomJoin) reach everyone.
//   - Attributes starting with [ReservedAttributePrefix] are the server's: UpdateParticipant
//     refuses them with twirp.PermissionDenied, whatever the caller's grants.
//
// Errors returned by [Rooms] are turned into Twirp errors by an [ErrorCoder]. roomapi never
// imports the room package (room depends on roomapi, not the reverse), so it does not know
// room's sentinel errors; whoever wires the two together passes a coder for them, typically
// built with [MapErrors]:
//
//	svc := roomapi.NewService(manager, keys, logger, roomapi.WithErrorCoder(roomapi.MapErrors(
//		roomapi.ErrorMapping{Err: room.ErrRoomNotFound, Code: twirp.NotFound},
//		roomapi.ErrorMapping{Err: room.ErrRoomFull, Code: twirp.ResourceExhausted},
//	)))
//	mux.Handle(svc.PathPrefix(), svc.Handler()) // "/twirp/livekit.RoomService/"
package roomapi

import (
	"context"

	"github.com/livekit/protocol/livekit"
)

// Rooms is what the Room API needs from the room layer. roomapi has already authenticated
// the caller, checked its grants and validated the required fields (room names, identities
// and track sids are non-empty) before calling it; the caller's verified token is available
// through [CallerFromContext].
//
// Errors are plain Go errors (the room package's sentinels, possibly wrapped); the
// [ErrorCoder] given to [NewService] turns them into Twirp codes. An implementation may also
// return a twirp.Error, which is passed to the client unchanged.
//
// Methods returning a single message must return a non-nil message when the error is nil.
// Implementations must be safe for concurrent use.
type Rooms interface {
	// CreateRoom creates the room req.Name with the given settings, or returns the existing
	// room of that name.
	CreateRoom(ctx context.Context, req *livekit.CreateRoomRequest) (*livekit.Room, error)
	// ListRooms returns the active rooms; when names is non-empty, only the rooms with
	// those names (unknown names are skipped, not an error).
	ListRooms(ctx context.Context, names []string) ([]*livekit.Room, error)
	// DeleteRoom closes the room and disconnects all its participants.
	DeleteRoom(ctx context.Context, name string) error
	// ListParticipants returns the participants of a room.
	ListParticipants(ctx context.Context, room string) ([]*livekit.ParticipantInfo, error)
	// GetParticipant returns one participant of a room.
	GetParticipant(ctx context.Context, room, identity string) (*livekit.ParticipantInfo, error)
	// RemoveParticipant disconnects a participant from a room.
	RemoveParticipant(ctx context.Context, room, identity string) error
	// MutePublishedTrack mutes or unmutes a track published by a participant and returns the
	// updated track.
	MutePublishedTrack(ctx context.Context, room, identity, trackSID string, muted bool) (*livekit.TrackInfo, error)
	// UpdateParticipant updates a participant's metadata, name, attributes and/or
	// permissions (unset fields are left unchanged) and returns the updated participant.
	UpdateParticipant(ctx context.Context, req *livekit.UpdateParticipantRequest) (*livekit.ParticipantInfo, error)
	// UpdateSubscriptions subscribes a participant to, or unsubscribes it from, tracks.
	UpdateSubscriptions(ctx context.Context, req *livekit.UpdateSubscriptionsRequest) error
	// SendData sends a data packet to participants of a room (all of them, or those in
	// req.DestinationIdentities / req.DestinationSids).
	SendData(ctx context.Context, req *livekit.SendDataRequest) error
	// UpdateRoomMetadata replaces a room's metadata and returns the updated room.
	UpdateRoomMetadata(ctx context.Context, room, metadata string) (*livekit.Room, error)
}
