// Package room holds rooms and their participants: lifecycle, PeerConnections, track
// publication and subscription, permissions and data relay.
package room

import (
	"errors"

	"github.com/sanke-edu/sanke/signaling"
)

// Errors returned by the room layer. Callers (signaling, roomapi) map them to protocol errors
// with errors.Is. Those a join can fail with are signaling's own values, so one value serves
// both packages.
var (
	// ErrRoomNotFound means the named room does not exist (and was not auto-created).
	ErrRoomNotFound = signaling.ErrRoomNotFound
	// ErrRoomFull means the room has reached its maximum number of participants.
	ErrRoomFull = signaling.ErrRoomFull
	// ErrRoomClosed means the room is shutting down and accepts no new participants.
	ErrRoomClosed = signaling.ErrRoomClosed
	// ErrParticipantNotFound means no participant with that identity is in the room.
	ErrParticipantNotFound = signaling.ErrParticipantNotFound
	// ErrPermissionDenied means the participant's grants do not allow the action.
	ErrPermissionDenied = signaling.ErrPermissionDenied
	// ErrServerShuttingDown means the server is draining and accepts no new joins.
	ErrServerShuttingDown = signaling.ErrServerShuttingDown
	// ErrLimitExceeded means a request carries more than the limits allow (see Limits); the
	// wrapping error says which limit.
	ErrLimitExceeded = signaling.ErrLimitExceeded
	// ErrReservedAttribute means a client asked for an attribute only the server may set
	// (roomapi.ReservedAttributePrefix).
	ErrReservedAttribute = signaling.ErrReservedAttribute
	// ErrTrackNotFound means no published track has that sid.
	ErrTrackNotFound = errors.New("track not found")
)
