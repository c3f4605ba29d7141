package roomapi

import (
	"context"
	"errors"

	"github.com/twitchtv/twirp"

	"github.com/sanke-edu/sanke/internal/rooms"
)

// errorCode is the Twirp code of an error returned by rooms.Admin: the code of the rooms
// sentinel it wraps, of a cancelled or timed-out context, or twirp.Internal for anything
// else.
func errorCode(err error) twirp.ErrorCode {
	switch {
	case errors.Is(err, rooms.ErrRoomNotFound),
		errors.Is(err, rooms.ErrParticipantNotFound),
		errors.Is(err, rooms.ErrTrackNotFound):
		return twirp.NotFound
	case errors.Is(err, rooms.ErrRoomFull):
		return twirp.ResourceExhausted
	case errors.Is(err, rooms.ErrPermissionDenied),
		errors.Is(err, rooms.ErrReservedAttribute):
		return twirp.PermissionDenied
	case errors.Is(err, rooms.ErrServerShuttingDown),
		errors.Is(err, rooms.ErrRoomClosed):
		return twirp.Unavailable
	case errors.Is(err, rooms.ErrLimitExceeded):
		return twirp.InvalidArgument
	case errors.Is(err, context.Canceled):
		return twirp.Canceled
	case errors.Is(err, context.DeadlineExceeded):
		return twirp.DeadlineExceeded
	default:
		return twirp.Internal
	}
}

// internalMessage is what clients see for internal errors; the details go to the log only.
const internalMessage = "internal error"

// twirpError turns an error from the room layer into the twirp.Error sent to the client.
// Internal errors are logged here at error level, with their cause, and their text is not
// sent to the client; every other failure is logged at debug level by the Twirp Error hook.
func (s *Service) twirpError(ctx context.Context, err error) error {
	var tw twirp.Error
	if errors.As(err, &tw) {
		return tw
	}
	code := errorCode(err)
	if code == twirp.Internal {
		method, _ := twirp.MethodName(ctx)
		attrs := []any{"method", method, "code", string(code), "error", err}
		if c, ok := CallerFromContext(ctx); ok {
			attrs = append(attrs, "apiKey", c.APIKey)
		}
		s.logger.ErrorContext(ctx, "room api call failed", attrs...)
		return twirp.NewError(code, internalMessage)
	}
	return twirp.WrapError(twirp.NewError(code, err.Error()), err)
}

// nilResult reports a rooms.Admin implementation that returned neither a result nor an
// error.
func (s *Service) nilResult(ctx context.Context) error {
	return s.twirpError(ctx, errors.New("roomapi: room layer returned a nil result and a nil error"))
}
