package rooms

import "errors"

// Errors the room layer returns, directly or wrapped, and the front ends recognise with
// errors.Is: signaling answers a refused join with an HTTP status or a leave
// (signaling.RejectionFor), the Room API with a Twirp code.
var (
	// ErrRoomNotFound means the named room does not exist (and was not auto-created).
	ErrRoomNotFound = errors.New("room not found")
	// ErrRoomFull means the room has reached its maximum number of participants.
	ErrRoomFull = errors.New("room is full")
	// ErrRoomClosed means the room is shutting down and accepts no new participants.
	ErrRoomClosed = errors.New("room is closed")
	// ErrParticipantNotFound means no participant with that identity is in the room; for a
	// resuming client, that its session is unknown (it is told to do a full reconnect).
	ErrParticipantNotFound = errors.New("participant not found")
	// ErrTrackNotFound means no published track has that sid.
	ErrTrackNotFound = errors.New("track not found")
	// ErrPermissionDenied means the participant's grants do not allow the action.
	ErrPermissionDenied = errors.New("permission denied")
	// ErrServerShuttingDown means the server is draining and accepts no new joins.
	ErrServerShuttingDown = errors.New("server is shutting down")
	// ErrLimitExceeded means a request carries more than the limits allow: a room name,
	// identity, participant name, metadata or attributes over their limits. The wrapping
	// error's text says which limit (it is sent to the client).
	ErrLimitExceeded = errors.New("limit exceeded")
	// ErrReservedAttribute means a client asked for an attribute only the server may set
	// ([ReservedAttributePrefix]). The wrapping error's text names it (it is sent to the
	// client).
	ErrReservedAttribute = errors.New("attribute reserved for the server")
)
