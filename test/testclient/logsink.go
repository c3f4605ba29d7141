package testclient

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	protoLogger "github.com/livekit/protocol/logger"
	lksdk "github.com/livekit/server-sdk-go/v2"
)

// SDKLogEnv selects how verbose the Go SDK's logs kept by clients are: "debug" keeps debug
// lines too; "off" keeps none. The default keeps info, warnings and errors.
const SDKLogEnv = "SANKE_TEST_SDK_LOG"

// maxLogLines caps the lines a logBuffer keeps (the newest win).
const maxLogLines = 2000

// logBuffer keeps log lines in memory so that a test prints them only when it fails. It is
// safe for concurrent use and stays usable after the test ended (lines are then dropped).
type logBuffer struct {
	mu      sync.Mutex
	lines   []string
	dropped int
	start   time.Time
}

func newLogBuffer() *logBuffer { return &logBuffer{start: time.Now()} }

func (b *logBuffer) add(line string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	line = fmt.Sprintf("%8.3fs %s", time.Since(b.start).Seconds(), line)
	if len(b.lines) >= maxLogLines {
		b.lines = b.lines[1:]
		b.dropped++
	}
	b.lines = append(b.lines, line)
}

// String returns the kept lines.
func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var s strings.Builder
	if b.dropped > 0 {
		fmt.Fprintf(&s, "(%d older lines dropped)\n", b.dropped)
	}
	for _, l := range b.lines {
		s.WriteString(l)
		s.WriteByte('\n')
	}
	return s.String()
}

// sdkVerbosity maps SANKE_TEST_SDK_LOG to a logr verbosity: -1 errors only, 0 info, 1 debug.
func sdkVerbosity(def int) int {
	switch strings.ToLower(os.Getenv(SDKLogEnv)) {
	case "debug":
		return 1
	case "info":
		return 0
	case "off":
		return -1
	}
	return def
}

// sdkLogger returns a LiveKit logger writing into b, with a name prefix.
func sdkLogger(b *logBuffer, name string) protoLogger.Logger {
	return protoLogger.LogRLogger(logr.New(&bufferSink{buf: b, name: name, verbosity: sdkVerbosity(0)}))
}

// init quiets the Go SDK's process-wide logger, which pion's WebRTC logs go through (a room's
// own logger only gets the SDK's lines): by default only errors reach stderr;
// SANKE_TEST_SDK_LOG=info or debug shows more. It is the SDK's zap logger: the SDK's adapter
// to pion skips disabled levels only for zap loggers, and formatting every pion debug line
// races inside pion (it prints a TrackRemote with %+v while another goroutine configures it:
// go test -race failed recorder tests on it). It runs before any test goroutine exists, so
// replacing the SDK's global is race-free.
func init() {
	level := map[int]string{-1: "error", 0: "info", 1: "debug"}[sdkVerbosity(-1)]
	if zl, err := protoLogger.NewZapLogger(&protoLogger.Config{Level: level}); err == nil {
		lksdk.SetLogger(zl.WithValues("component", "sdk"))
	}
}

// bufferSink is a logr.LogSink writing into a logBuffer, or to stderr when buf is nil.
type bufferSink struct {
	buf       *logBuffer
	name      string
	values    []any
	verbosity int
}

func (s *bufferSink) Init(logr.RuntimeInfo) {}

func (s *bufferSink) Enabled(level int) bool { return level <= s.verbosity }

func (s *bufferSink) Info(level int, msg string, kv ...any) {
	lvl := "INFO"
	if level > 0 {
		lvl = "DEBUG"
	}
	s.write(s.format(lvl, msg, kv))
}

func (s *bufferSink) write(line string) {
	if s.buf == nil {
		fmt.Fprintf(os.Stderr, "%s %s\n", time.Now().Format("15:04:05.000"), line)
		return
	}
	s.buf.add(line)
}

func (s *bufferSink) Error(err error, msg string, kv ...any) {
	if s.verbosity < 0 {
		return
	}
	s.write(s.format("ERROR", msg, append(kv, "error", err)))
}

func (s *bufferSink) WithValues(kv ...any) logr.LogSink {
	c := *s
	c.values = append(append([]any(nil), s.values...), kv...)
	return &c
}

func (s *bufferSink) WithName(name string) logr.LogSink {
	c := *s
	c.name = s.name + "." + name
	return &c
}

func (s *bufferSink) format(level, msg string, kv []any) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s [%s] %s", level, s.name, msg)
	all := append(append([]any(nil), s.values...), kv...)
	for i := 0; i+1 < len(all); i += 2 {
		fmt.Fprintf(&b, " %v=%v", all[i], all[i+1])
	}
	return b.String()
}
