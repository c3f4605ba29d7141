package signaling

import (
	"context"
	"errors"
	"net/http"

	"github.com/livekit/protocol/livekit"

	"github.com/sanke-edu/sanke/internal/rooms"
)

// Errors returned by Send of the rooms.Sink this package hands to the room.
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

// RejectionFor maps an error from rooms.Joiner.Join or rooms.JoinValidator.ValidateJoin (one
// of the rooms package's sentinels, possibly wrapped) to how the client is told.
// Unrecognised errors are 500 "could not join room" / JOIN_FAILURE (their text is logged,
// not sent).
//
// Statuses follow what the LiveKit SDKs surface: after a failed websocket the JS SDK fetches
// /rtc/validate and reports 401/403 bodies as "not allowed", and a 404 body containing
// "requested room does not exist" likewise (any other 404 makes it fall back from /rtc/v1 to
// /rtc); other statuses become an unknown error. Hence 403 for a full room (and for a
// reserved attribute). rooms.ErrLimitExceeded and rooms.ErrReservedAttribute are answered
// with the error's own text, which says what was refused.
func RejectionFor(err error) Rejection {
	disconnect := func(status int, msg string, reason livekit.DisconnectReason) Rejection {
		return Rejection{Status: status, Message: msg, Reason: reason, Action: livekit.LeaveRequest_DISCONNECT}
	}
	switch {
	case errors.Is(err, rooms.ErrRoomNotFound):
		return disconnect(http.StatusNotFound, "requested room does not exist", livekit.DisconnectReason_JOIN_FAILURE)
	case errors.Is(err, rooms.ErrRoomFull):
		return disconnect(http.StatusForbidden, "room is full", livekit.DisconnectReason_JOIN_FAILURE)
	case errors.Is(err, rooms.ErrRoomClosed):
		return disconnect(http.StatusServiceUnavailable, "room is closed", livekit.DisconnectReason_ROOM_CLOSED)
	case errors.Is(err, rooms.ErrParticipantNotFound):
		// A resume of a session the server no longer has: the client must join afresh.
		return Rejection{Status: http.StatusConflict, Message: "participant not found, reconnect",
			Reason: livekit.DisconnectReason_STATE_MISMATCH, Action: livekit.LeaveRequest_RECONNECT}
	case errors.Is(err, rooms.ErrPermissionDenied):
		return disconnect(http.StatusUnauthorized, "permissions denied", livekit.DisconnectReason_JOIN_FAILURE)
	case errors.Is(err, rooms.ErrServerShuttingDown):
		return disconnect(http.StatusServiceUnavailable, "server is shutting down", livekit.DisconnectReason_SERVER_SHUTDOWN)
	case errors.Is(err, rooms.ErrLimitExceeded):
		// The text is the room layer's description of the limit: no secret in it.
		return disconnect(http.StatusBadRequest, err.Error(), livekit.DisconnectReason_JOIN_FAILURE)
	case errors.Is(err, rooms.ErrReservedAttribute):
		return disconnect(http.StatusForbidden, err.Error(), livekit.DisconnectReason_JOIN_FAILURE)
	case errors.Is(err, context.DeadlineExceeded):
		return disconnect(http.StatusServiceUnavailable, "timed out joining room", livekit.DisconnectReason_JOIN_FAILURE)
	default:
		return disconnect(http.StatusInternalServerError, "could not join room", livekit.DisconnectReason_JOIN_FAILURE)
	}
}
