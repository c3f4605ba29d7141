package roomapi

import (
	"context"
	"errors"

	"github.com/twitchtv/twirp"
)

// ErrorCoder chooses the Twirp error code for an error returned by [Rooms]. It returns
// twirp.NoError ("") for errors it does not recognise; those fall back to
// [DefaultErrorCode]. Errors that already are a twirp.Error never reach it.
type ErrorCoder func(err error) twirp.ErrorCode

// DefaultErrorCode is the fallback [ErrorCoder]: context.Canceled maps to twirp.Canceled,
// context.DeadlineExceeded to twirp.DeadlineExceeded, anything else to twirp.Internal.
func DefaultErrorCode(err error) twirp.ErrorCode {
	switch {
	case errors.Is(err, context.Canceled):
		return twirp.Canceled
	case errors.Is(err, context.DeadlineExceeded):
		return twirp.DeadlineExceeded
	default:
		return twirp.Internal
	}
}

// ErrorMapping pairs a sentinel error with the Twirp code it maps to.
type ErrorMapping struct {
	// Err is compared with errors.Is, so wrapped errors match too.
	Err error
	// Code is the Twirp code clients receive.
	Code twirp.ErrorCode
}

// MapErrors returns an [ErrorCoder] that tries the mappings in order and returns the Code of
// the first one whose Err matches (errors.Is), or twirp.NoError if none does.
func MapErrors(mappings ...ErrorMapping) ErrorCoder {
	m := append([]ErrorMapping(nil), mappings...)
	return func(err error) twirp.ErrorCode {
		for _, mp := range m {
			if errors.Is(err, mp.Err) {
				return mp.Code
			}
		}
		return twirp.NoError
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
	code := twirp.NoError
	if s.coder != nil {
		code = s.coder(err)
	}
	if code == twirp.NoError || !twirp.IsValidErrorCode(code) {
		code = DefaultErrorCode(err)
	}
	switch code {
	case twirp.Internal, twirp.Unknown, twirp.DataLoss:
		method, _ := twirp.MethodName(ctx)
		attrs := []any{"method", method, "code", string(code), "error", err}
		if c, ok := CallerFromContext(ctx); ok {
			attrs = append(attrs, "apiKey", c.APIKey)
		}
		s.logger.ErrorContext(ctx, "room api call failed", attrs...)
		return twirp.NewError(code, internalMessage)
	default:
		return twirp.WrapError(twirp.NewError(code, err.Error()), err)
	}
}

// nilResult reports a [Rooms] implementation that returned neither a result nor an error.
func (s *Service) nilResult(ctx context.Context) error {
	return s.twirpError(ctx, errors.New("roomapi: room layer returned a nil result and a nil error"))
}
