package main

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sanke-edu/sanke/internal/config"
)

const testSecret = "0123456789abcdef0123456789abcdef"

func TestServeConfig(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "sanke.yaml")
	if err := os.WriteFile(file, []byte("port: 8000\nrtc:\n  node_ip: 203.0.113.9\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		env   []string
		args  []string
		check func(t *testing.T, c *config.Config)
	}{
		{
			name: "dev",
			args: []string{"--dev"},
			check: func(t *testing.T, c *config.Config) {
				if !c.Dev || c.Keys[config.DevAPIKey] != config.DevAPISecret || c.BindAddresses[0] != "127.0.0.1" {
					t.Errorf("dev config = %+v", c)
				}
			},
		},
		{
			name: "file, env and flags",
			env:  []string{"SANKE_KEYS=APIk: " + testSecret, "SANKE_PORT=8001"},
			args: []string{"--config", file, "--udp-port", "9000", "--bind", "127.0.0.1"},
			check: func(t *testing.T, c *config.Config) {
				if c.Port != 8001 || c.RTC.UDPPort != 9000 || c.RTC.NodeIP != "203.0.113.9" ||
					c.BindAddresses[0] != "127.0.0.1" || c.Keys["APIk"] != testSecret {
					t.Errorf("config = %+v", c)
				}
			},
		},
		{
			name: "config file from SANKE_CONFIG",
			env:  []string{"SANKE_CONFIG=" + file, "SANKE_DEV=true"},
			check: func(t *testing.T, c *config.Config) {
				if c.Port != 8000 {
					t.Errorf("port = %d, want 8000 from the file", c.Port)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got *config.Config
			r := runApp(t, tt.env, func(ctx context.Context, c *config.Config, logger *slog.Logger) error {
				got = c
				return nil
			}, append([]string{"serve"}, tt.args...)...)
			if r.code != exitOK {
				t.Fatalf("exit code = %d, stderr %q", r.code, r.stderr)
			}
			if got == nil {
				t.Fatal("server not started")
			}
			tt.check(t, got)
			if !strings.Contains(r.stderr, "starting sanke") {
				t.Errorf("no startup log in %q", r.stderr)
			}
			if strings.Contains(r.stderr, testSecret) {
				t.Errorf("secret logged: %q", r.stderr)
			}
		})
	}
}

func TestServeErrors(t *testing.T) {
	tests := []struct {
		name       string
		env        []string
		args       []string
		server     error // returned by the fake server; nil means it must not start
		wantCode   int
		wantStderr []string
	}{
		{
			name:       "no keys",
			wantCode:   exitError,
			wantStderr: []string{"invalid configuration", "keys", "--dev"},
		},
		{
			name:       "dev key outside dev",
			args:       []string{"--keys", "devkey: secret"},
			wantCode:   exitError,
			wantStderr: []string{"keys.devkey", "only allowed with --dev"},
		},
		{
			name:       "short secret",
			env:        []string{"SANKE_KEYS=k: short"},
			wantCode:   exitError,
			wantStderr: []string{"keys.k", "at least 32"},
		},
		{
			name:       "several problems",
			args:       []string{"--dev", "--port", "70000", "--log-level", "loud"},
			wantCode:   exitError,
			wantStderr: []string{"port: 70000", "log.level"},
		},
		{
			name:       "bad env value",
			env:        []string{"SANKE_RTC_UDP_PORT=x"},
			args:       []string{"--dev"},
			wantCode:   exitError,
			wantStderr: []string{"SANKE_RTC_UDP_PORT"},
		},
		{
			name:       "missing config file",
			args:       []string{"--dev", "--config", "/nonexistent.yaml"},
			wantCode:   exitError,
			wantStderr: []string{"nonexistent.yaml"},
		},
		{name: "bad flag value", args: []string{"--port", "x"}, wantCode: exitUsage, wantStderr: []string{"-port"}},
		{name: "unknown flag", args: []string{"--verbose"}, wantCode: exitUsage, wantStderr: []string{"-verbose"}},
		{name: "positional argument", args: []string{"--dev", "now"}, wantCode: exitUsage, wantStderr: []string{`unexpected argument "now"`}},
		{
			name:       "server fails",
			args:       []string{"--dev"},
			server:     errors.New("address already in use"),
			wantCode:   exitError,
			wantStderr: []string{"server failed", "address already in use"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var serverFn func(context.Context, *config.Config, *slog.Logger) error
			if tt.server != nil {
				serverFn = func(context.Context, *config.Config, *slog.Logger) error { return tt.server }
			}
			r := runApp(t, tt.env, serverFn, append([]string{"serve"}, tt.args...)...)
			if r.code != tt.wantCode {
				t.Errorf("exit code = %d, want %d; stderr %q", r.code, tt.wantCode, r.stderr)
			}
			for _, w := range tt.wantStderr {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("stderr %q does not contain %q", r.stderr, w)
				}
			}
		})
	}
}

// TestServeShutdown checks that cancelling the context (as a signal does) stops the server and
// that a server returning context.Canceled then counts as a clean stop.
func TestServeShutdown(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var stderr strings.Builder
	a := &app{
		stdout: &strings.Builder{},
		stderr: &stderr,
		runServer: func(ctx context.Context, _ *config.Config, _ *slog.Logger) error {
			cancel()
			<-ctx.Done()
			return ctx.Err()
		},
	}
	if code := a.serve(ctx, []string{"--dev"}); code != exitOK {
		t.Fatalf("exit code = %d, stderr %q", code, stderr.String())
	}
	if !strings.Contains(stderr.String(), "server stopped") {
		t.Errorf("stderr %q lacks the stop message", stderr.String())
	}
}

// Dev mode on a non-loopback address, and unrestricted metrics outside dev mode, are said at
// start (issue 12, finding 13); the metrics token never is.
func TestServeWarnings(t *testing.T) {
	const token = "metrics-token-0123456789"
	for _, tt := range []struct {
		name    string
		env     []string
		args    []string
		want    string
		notWant string
	}{
		{name: "dev on every interface", args: []string{"--dev", "--bind", "0.0.0.0"},
			want: "pprof and /dev/ still answer loopback clients only"},
		{name: "dev on loopback", args: []string{"--dev"}, notWant: "listening beyond loopback"},
		{name: "open metrics", env: []string{"SANKE_KEYS=APIk: " + testSecret}, want: "/metrics is open"},
		{name: "metrics token", env: []string{"SANKE_KEYS=APIk: " + testSecret, "SANKE_METRICS_BEARER_TOKEN=" + token},
			notWant: "/metrics is open"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := runApp(t, tt.env, func(context.Context, *config.Config, *slog.Logger) error { return nil },
				append([]string{"serve"}, tt.args...)...)
			if r.code != exitOK {
				t.Fatalf("exit code = %d, stderr %q", r.code, r.stderr)
			}
			if tt.want != "" && !strings.Contains(r.stderr, tt.want) {
				t.Errorf("no %q in %q", tt.want, r.stderr)
			}
			if tt.notWant != "" && strings.Contains(r.stderr, tt.notWant) {
				t.Errorf("%q in %q", tt.notWant, r.stderr)
			}
			if strings.Contains(r.stderr, token) {
				t.Errorf("metrics token logged: %q", r.stderr)
			}
		})
	}
}
