package recorder

import (
	"log/slog"
	"sync/atomic"
	"testing"

	"github.com/livekit/protocol/logger/pionlogger"
)

// formatSpy counts how often it is formatted.
type formatSpy struct{ n *atomic.Int32 }

func (s formatSpy) String() string { s.n.Add(1); return "spy" }

// The SDK's pion logs at debug level must not even be formatted: formatting one of them
// reads a struct pion is writing on another goroutine.
func TestSDKLoggerSkipsDebugFormatting(t *testing.T) {
	var n atomic.Int32
	spy := formatSpy{&n}
	pl := pionlogger.NewLoggerFactory(sdkLogger(slog.New(slog.DiscardHandler), "r")).NewLogger("pc")
	pl.Debugf("got new track: %+v", spy)
	pl.Tracef("%v", spy)
	pl.Infof("%v", spy)
	if got := n.Load(); got != 0 {
		t.Fatalf("debug/info arguments formatted %d times", got)
	}
	pl.Warnf("%v", spy)
	if got := n.Load(); got != 1 {
		t.Fatalf("a warning formatted %d times, want 1", got)
	}
}
