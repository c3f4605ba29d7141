// Package inprocess runs a Sanke server inside the test process (server.New + Run), for tests
// that want to reach into the server or avoid building the binary. It lives apart from
// testclient so that changes to the server's constructor only ever break this package.
package inprocess

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sanke-edu/sanke/internal/config"
	"github.com/sanke-edu/sanke/internal/server"
	"github.com/sanke-edu/sanke/test/testclient"
)

// Server is a Sanke server running inside the test process.
type Server struct {
	// Target is the server as a client target.
	Target testclient.Target
	// Config is the configuration it runs with (ports filled in).
	Config config.Config
	// Server is the running server, for tests that reach into it (Rooms(), Handler()...).
	Server *server.Server

	logs *lockedBuffer
}

// Logs returns the server's log output so far (the newest 4 MiB).
func (s *Server) Logs() string { return s.logs.String() }

// Start runs a server built from cfg (config.DevDefault() when nil) until the test ends.
// Whatever cfg says, the HTTP and UDP ports are free ones chosen here, the ICE-TCP port too
// unless it is 0 (disabled), BindAddresses is 127.0.0.1 when empty, Keys the dev pair when
// empty, and a relative DataDir becomes a temporary directory: parallel tests never collide.
// Server logs (slog, debug level) are kept and printed if the test fails. Cleanup cancels
// Run's context and waits up to 15 s for it to return.
func Start(tb testing.TB, cfg *config.Config) *Server {
	tb.Helper()
	return StartWith(tb, cfg, nil)
}

// StartWith is Start with setup (when not nil) called on the new server before it runs: to
// install observers or a test clock that must be in place before any traffic.
func StartWith(tb testing.TB, cfg *config.Config, setup func(*server.Server)) *Server {
	tb.Helper()
	if cfg == nil {
		cfg = config.DevDefault()
	}
	c := *cfg
	c.Port = testclient.FreePort(tb, "tcp")
	c.RTC.UDPPort = testclient.FreePort(tb, "udp")
	if c.RTC.TCPPort != 0 {
		c.RTC.TCPPort = testclient.FreePort(tb, "tcp")
	}
	if len(c.Keys) == 0 {
		c.Keys = map[string]string{testclient.DevAPIKey: testclient.DevAPISecret}
	}
	if c.DataDir == "" || !filepath.IsAbs(c.DataDir) {
		c.DataDir = tb.TempDir()
	}
	if len(c.BindAddresses) == 0 {
		c.BindAddresses = []string{"127.0.0.1"}
	}
	var key, secret string
	for k, s := range c.Keys {
		key, secret = k, s
		break
	}

	logs := &lockedBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv, err := server.New(&c, logger)
	if err != nil {
		tb.Fatalf("server.New: %v", err)
	}
	if setup != nil {
		setup(srv)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()

	httpURL := fmt.Sprintf("http://127.0.0.1:%d", c.Port)
	if err := waitHealthy(httpURL, done, 30*time.Second); err != nil {
		cancel()
		tb.Fatalf("in-process sanke: %v\n--- server log ---\n%s", err, logs.String())
	}
	tb.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil && !errors.Is(err, context.Canceled) {
				tb.Errorf("in-process sanke: Run returned %v", err)
			}
		case <-time.After(15 * time.Second):
			tb.Errorf("in-process sanke: Run did not return within 15s of cancellation")
		}
		if tb.Failed() {
			tb.Logf("in-process sanke log:\n%s", logs.String())
		}
	})
	return &Server{
		Target: testclient.Target{
			Name:      "sanke-inprocess",
			URL:       strings.Replace(httpURL, "http://", "ws://", 1),
			HTTPURL:   httpURL,
			APIKey:    key,
			APISecret: secret,
		},
		Config: c,
		Server: srv,
		logs:   logs,
	}
}

// waitHealthy polls /healthz until it answers 200, Run returns, or timeout.
func waitHealthy(httpURL string, done chan error, timeout time.Duration) error {
	return testclient.WaitHealthy(httpURL, timeout, func() error {
		select {
		case err := <-done:
			done <- err
			return fmt.Errorf("the server stopped before it was healthy: %v", err)
		default:
			return nil
		}
	})
}

// lockedBuffer is an io.Writer collecting log output, safe for concurrent use; it keeps the
// last 4 MiB.
type lockedBuffer struct {
	mu  sync.Mutex
	buf []byte
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if over := len(b.buf) - 4<<20; over > 0 {
		b.buf = b.buf[over:]
	}
	return len(p), nil
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}
