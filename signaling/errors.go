package signaling

import (
	"context"
	"errors"
	"net/http"

	"github.com/livekit/protocol/livekit"
)

// Errors a RoomJoiner (or JoinValidator) returns, directly or wrapped, to refuse a join with
// a specific HTTP status and leave reason (see RejectionFor). The room package can alias
// them (var ErrRoomFull = signaling.ErrRoomFull) so that one value serves both packages.
var (
	// ErrRoomNotFound means the room does not exist and is not auto-created.
	ErrRoomNotFound = errors.New("room not found")
	// ErrRoomFull means the room has reached its maximum number of participants.
	ErrRoomFull = errors.New("room is full")
	// ErrRoomClosed means the room is shutting down and accepts no new participants.
	ErrRoomClosed = errors.New("room is closed")
	// ErrParticipantNotFound means a resuming client's session is unknown; the client is told
	// to do a full reconnect.
	ErrParticipantNotFound = errors.New("participant not found")
	// ErrPermissionDenied means the participant's grants do not allow the join.
	ErrPermissionDenied = errors.New("permission denied")
	// ErrServerShuttingDown means the server is draining and accepts no new joins.
	ErrServerShuttingDown = errors.New("server is shutting down")
	// ErrLimitExceeded means the join carries more than the server accepts: a room name,
	// identity, participant name, metadata or attributes over their limits. The wrapping
	// error's text says which (it is sent to the client).
	ErrLimitExceeded = errors.New("limit exceeded")
	// ErrReservedAttribute means the client asked for an attribute only the server may set.
	// The wrapping error's text names it (it is sent to the client).
	ErrReservedAttribute = errors.New("attribute reserved for the server")
)

// Errors returned by Sink.Send.
var (
	// ErrConnectionClosed means the connection is closing or closed; the message was dropped.
	ErrConnectionClosed = errors.New("signaling: connection closed")
	// ErrWriteQueueFull means the client could not keep up; it is being disconnected.
	ErrWriteQueueFull = errors.New("signaling: write queue full")
)

// Rejection says how a refused join is reported to the client: an HTTP status and plain-text
// message before the websocket upgrade, a leave (Reason, Action) after it.
type Rejection struct {
	// Status is the HTTP status answered before the upgrade.
	Status int
	// Message is the plain-text HTTP body, and the close reason after the upgrade.
	Message string
	// Reason and Action go into the leave sent after the upgrade.
	Reason livekit.DisconnectReason
	Action livekit.LeaveRequest_Action
}

// RejectionFor maps an error from RoomJoiner.Join or JoinValidator.ValidateJoin to how the
// client is told. Unrecognised errors are 500 "could not join room" / JOIN_FAILURE (their
// text is logged, not sent).
//
// Statuses follow what the LiveKit SDKs surface: after a failed websocket the JS SDK fetches
// /rtc/validate and reports 401/403 bodies as "not allowed", and a 404 body containing
// "requested room does not exist" likewise (any other 404 makes it fall back from /rtc/v1 to
// /rtc); other statuses become an unknown error. Hence 403 for a full room (and for a
// reserved attribute). ErrLimitExceeded and ErrReservedAttribute are answered with the
// error's own text, which says what was refused.
func RejectionFor(err error) Rejection {
	disconnect := func(status int, msg string, reason livekit.DisconnectReason) Rejection {
		return Rejection{Status: status, Message: msg, Reason: reason, Action: livekit.LeaveRequest_DISCONNECT}
	}
	switch {
	case errors.Is(err, ErrRoomNotFound):
		return disconnect(http.StatusNotFound, "requested room does not exist", livekit.DisconnectReason_JOIN_FAILURE)
	case errors.Is(err, ErrRoomFull):
		return disconnect(http.StatusForbidden, "room is full", livekit.DisconnectReason_JOIN_FAILURE)
	case errors.Is(err, ErrRoomClosed):
		return disconnect(http.StatusServiceUnavailable, "room is closed", livekit.DisconnectReason_ROOM_CLOSED)
	case errors.Is(err, ErrParticipantNotFound):
		// A resume of a session the server no longer has: the client must join afresh.
		return Rejection{Status: http.StatusConflict, Message: "participant not found, reconnect",
			Reason: livekit.DisconnectReason_STATE_MISMATCH, Action: livekit.LeaveRequest_RECONNECT}
	case errors.Is(err, ErrPermissionDenied):
		return disconnect(http.StatusUnauthorized, "permissions denied", livekit.DisconnectReason_JOIN_FAILURE)
	case errors.Is(err, ErrServerShuttingDown):
		return disconnect(http.StatusServiceUnavailable, "server is shutting down", livekit.DisconnectReason_SERVER_SHUTDOWN)
	case errors.Is(err, ErrLimitExceeded):
		// The text is the room layer's description of the limit: no secret in it.
		return disconnect(http.StatusBadRequest, err.Error(), livekit.DisconnectReason_JOIN_FAILURE)
	case errors.Is(err, ErrReservedAttribute):
		return disconnect(http.StatusForbidden, err.Error(), livekit.DisconnectReason_JOIN_FAILURE)
	case errors.Is(err, context.DeadlineExceeded):
		return disconnect(http.StatusServiceUnavailable, "timed out joining room", livekit.DisconnectReason_JOIN_FAILURE)
	default:
		return disconnect(http.StatusInternalServerError, "could not join room", livekit.DisconnectReason_JOIN_FAILURE)
	}
}
