//go:build unix

package main

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sanke-edu/sanke/internal/config"
	"github.com/sanke-edu/sanke/test/syncbuf"
)

// TestServeSignal sends SIGTERM to the test process while the (fake) server runs: the server's
// context must be cancelled and a graceful shutdown announced.
func TestServeSignal(t *testing.T) {
	stderr := &syncbuf.Buffer{}
	a := &app{
		stdout: &bytes.Buffer{},
		stderr: stderr,
		runServer: func(ctx context.Context, _ *config.Config, _ *slog.Logger) error {
			// The signal handler is installed before the server runs.
			if err := syscall.Kill(syscall.Getpid(), syscall.SIGTERM); err != nil {
				return err
			}
			select {
			case <-ctx.Done():
			case <-time.After(10 * time.Second):
				t.Error("context not cancelled by SIGTERM")
				return nil
			}
			return nil
		},
	}
	if code := a.serve(context.Background(), []string{"--dev"}); code != exitOK {
		t.Fatalf("exit code = %d, stderr %q", code, stderr.String())
	}
	out := stderr.String()
	for _, want := range []string{"shutting down gracefully", "terminated signal received", "server stopped"} {
		if !strings.Contains(out, want) {
			t.Errorf("stderr %q does not contain %q", out, want)
		}
	}
}
