package pionlog

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

// One logger per scope, shared; pion's errors reach the server's log at Warn with their
// scope, the rest only at Debug.
func TestPionLogs(t *testing.T) {
	for _, tc := range []struct {
		level slog.Level
		want  []string
		not   []string
	}{
		{slog.LevelInfo, []string{`level=WARN msg="dtls failed: 7" pion=dtls`}, []string{"chatty", "trace"}},
		{slog.LevelDebug, []string{"dtls failed: 7", `level=DEBUG msg="chatty 1" pion=ice`}, []string{"trace"}},
	} {
		var buf bytes.Buffer
		f := New(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: tc.level})))
		if f.NewLogger("ice") != f.NewLogger("ice") || f.NewLogger("ice") == f.NewLogger("dtls") {
			t.Fatal("loggers are not one per scope")
		}
		f.NewLogger("dtls").Errorf("dtls failed: %d", 7)
		f.NewLogger("ice").Infof("chatty %d", 1)
		f.NewLogger("ice").Trace("trace")
		out := buf.String()
		for _, w := range tc.want {
			if !strings.Contains(out, w) {
				t.Errorf("level %v: %q missing from\n%s", tc.level, w, out)
			}
		}
		for _, n := range tc.not {
			if strings.Contains(out, n) {
				t.Errorf("level %v: %q logged:\n%s", tc.level, n, out)
			}
		}
	}
}
