package rooms

import (
	"context"

	"github.com/livekit/protocol/livekit"
)

// Admin is what the Room API needs from the room layer. The Room API has already
// authenticated the caller, checked its grants and validated the required fields (room names,
// identities and track sids are non-empty) before calling it.
//
// Errors are this package's sentinels, possibly wrapped, which the Room API maps to Twirp
// codes; anything else is an internal error. An implementation may also return a
// twirp.Error, which is passed to the client unchanged.
//
// Methods returning a single message must return a non-nil message when the error is nil.
// Implementations must be safe for concurrent use.
type Admin interface {
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
