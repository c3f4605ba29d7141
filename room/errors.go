// Package room holds rooms and their participants: lifecycle, PeerConnections, track
// publication and subscription, permissions and data relay.
package room

import "errors"

// Errors returned by the room layer. Callers (signaling, roomapi) map them to protocol errors
// with errors.Is.
var (
	// ErrRoomNotFound means the named room does not exist (and was not auto-created).
	ErrRoomNotFound = errors.New("room not found")
	// ErrRoomFull means the room has reached its maximum number of participants.
	ErrRoomFull = errors.New("room is full")
	// ErrRoomClosed means the room is shutting down and accepts no new participants.
	ErrRoomClosed = errors.New("room is closed")
	// ErrParticipantNotFound means no participant with that identity is in the room.
	ErrParticipantNotFound = errors.New("participant not found")
	// ErrTrackNotFound means no published track has that sid.
	ErrTrackNotFound = errors.New("track not found")
	// ErrPermissionDenied means the participant's grants do not allow the action.
	ErrPermissionDenied = errors.New("permission denied")
	// ErrServerShuttingDown means the server is draining and accepts no new joins.
	ErrServerShuttingDown = errors.New("server is shutting down")
)
