package main

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/sanke-edu/sanke/internal/config"
)

// result is the outcome of one command run.
type result struct {
	code           int
	stdout, stderr string
}

// runApp runs the command line args with the given environment. The server is replaced by
// serverFn (nil: a server that must not be started).
func runApp(t *testing.T, env []string, serverFn func(context.Context, *config.Config, *slog.Logger) error, args ...string) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	if serverFn == nil {
		serverFn = func(context.Context, *config.Config, *slog.Logger) error {
			t.Error("server started unexpectedly")
			return errors.New("unexpected")
		}
	}
	a := &app{stdout: &stdout, stderr: &stderr, env: env, runServer: serverFn}
	code := a.run(context.Background(), args)
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

func TestRunCommands(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStdout string
		wantStderr string
	}{
		{name: "no command", args: nil, wantCode: exitUsage, wantStderr: "Usage:"},
		{name: "unknown command", args: []string{"start"}, wantCode: exitUsage, wantStderr: `unknown command "start"`},
		{name: "help", args: []string{"help"}, wantCode: exitOK, wantStdout: "sanke serve"},
		{name: "version", args: []string{"version"}, wantCode: exitOK, wantStdout: "sanke "},
		{name: "version extra argument", args: []string{"version", "x"}, wantCode: exitUsage, wantStderr: "unexpected argument"},
		{name: "serve help", args: []string{"serve", "-h"}, wantCode: exitOK, wantStderr: "SANKE_RTC_UDP_PORT"},
		{name: "token help", args: []string{"token", "--help"}, wantCode: exitOK, wantStderr: "update-metadata"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runApp(t, nil, nil, tt.args...)
			if r.code != tt.wantCode {
				t.Errorf("exit code = %d, want %d (stderr %q)", r.code, tt.wantCode, r.stderr)
			}
			if !strings.Contains(r.stdout, tt.wantStdout) {
				t.Errorf("stdout %q does not contain %q", r.stdout, tt.wantStdout)
			}
			if !strings.Contains(r.stderr, tt.wantStderr) {
				t.Errorf("stderr %q does not contain %q", r.stderr, tt.wantStderr)
			}
		})
	}
}
