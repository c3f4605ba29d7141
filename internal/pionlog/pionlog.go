// Package pionlog writes pion's logs (WebRTC, ICE, DTLS, TURN) to a log/slog logger.
package pionlog

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

	"github.com/pion/logging"
)

// Factory is pion's LoggerFactory for every PeerConnection of the node (or another pion
// component, such as the TURN server): it hands out one logger per scope ("ice", "dtls",
// ...) that writes to the server's slog logger. pion's
// default factory builds a set of loggers for each PeerConnection, about 7 KiB per
// subscriber that logs nothing at the default level.
//
// pion's errors are logged at Warn (they concern one peer, not the server); everything else
// at Debug. Messages are formatted only when the level is enabled.
type Factory struct {
	log *slog.Logger

	mu     sync.Mutex
	scopes map[string]*pionLogger
}

// New returns a Factory writing to log.
func New(log *slog.Logger) *Factory {
	return &Factory{log: log, scopes: map[string]*pionLogger{}}
}

// NewLogger returns the logger of scope, shared by every PeerConnection.
func (f *Factory) NewLogger(scope string) logging.LeveledLogger {
	f.mu.Lock()
	defer f.mu.Unlock()
	l, ok := f.scopes[scope]
	if !ok {
		l = &pionLogger{log: f.log.With("pion", scope)}
		f.scopes[scope] = l
	}
	return l
}

// pionLogger is one scope's logging.LeveledLogger.
type pionLogger struct{ log *slog.Logger }

func (l *pionLogger) enabled(level slog.Level) bool {
	return l.log.Enabled(context.Background(), level)
}

func (l *pionLogger) emit(level slog.Level, msg string) {
	if l.enabled(level) {
		l.log.Log(context.Background(), level, msg)
	}
}

func (l *pionLogger) emitf(level slog.Level, format string, args ...any) {
	if l.enabled(level) {
		l.log.Log(context.Background(), level, fmt.Sprintf(format, args...))
	}
}

const levelTrace = slog.LevelDebug - 4

func (l *pionLogger) Trace(msg string)                  { l.emit(levelTrace, msg) }
func (l *pionLogger) Tracef(format string, args ...any) { l.emitf(levelTrace, format, args...) }
func (l *pionLogger) Debug(msg string)                  { l.emit(slog.LevelDebug, msg) }
func (l *pionLogger) Debugf(format string, args ...any) { l.emitf(slog.LevelDebug, format, args...) }
func (l *pionLogger) Info(msg string)                   { l.emit(slog.LevelDebug, msg) }
func (l *pionLogger) Infof(format string, args ...any)  { l.emitf(slog.LevelDebug, format, args...) }
func (l *pionLogger) Warn(msg string)                   { l.emit(slog.LevelDebug, msg) }
func (l *pionLogger) Warnf(format string, args ...any)  { l.emitf(slog.LevelDebug, format, args...) }
func (l *pionLogger) Error(msg string)                  { l.emit(slog.LevelWarn, msg) }
func (l *pionLogger) Errorf(format string, args ...any) { l.emitf(slog.LevelWarn, format, args...) }
