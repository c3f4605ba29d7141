package recorder

import (
	"log/slog"

	protoLogger "github.com/livekit/protocol/logger"
	lksdk "github.com/livekit/server-sdk-go/v2"
)

// init makes the SDK's process-wide logger a zap logger too (warnings and errors): the SDK
// builds every PeerConnection's pion loggers from that one, not from the room's (see
// sdkLogger for why it must be zap). It runs before any recording connects.
func init() {
	if zl, err := protoLogger.NewZapLogger(&protoLogger.Config{Level: "warn"}); err == nil {
		lksdk.SetLogger(zl.WithValues("component", "recorder-sdk"))
	}
}

// sdkLogger is the LiveKit SDK's logger for one recording connection's own lines: warnings and errors, on
// standard error, tagged with the room. It is the SDK's own zap logger on purpose: the SDK
// hands it to pion through an adapter that skips disabled levels only for zap loggers. For
// any other logger it formats every pion debug line first, and one of them (pion printing a
// TrackRemote with %+v while another goroutine configures it) is a data race inside pion that
// the race detector caught in CI. If the zap logger cannot be built, l (warnings only) serves.
func sdkLogger(l *slog.Logger, room string) protoLogger.Logger {
	zl, err := protoLogger.NewZapLogger(&protoLogger.Config{Level: "warn"})
	if err != nil {
		l.Warn("LiveKit SDK logger", "err", err)
		return protoLogger.GetLogger()
	}
	return zl.WithValues("component", "recorder-sdk", "room", room)
}
