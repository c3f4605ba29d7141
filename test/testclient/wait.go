package testclient

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// PollInterval is how often WaitFor and Eventually evaluate their condition.
const PollInterval = 20 * time.Millisecond

// WaitFor evaluates cond every PollInterval until it returns true (nil) or ctx is done (an
// error naming ctx's error). cond must not block.
func WaitFor(ctx context.Context, cond func() bool) error {
	t := time.NewTicker(PollInterval)
	defer t.Stop()
	for {
		if cond() {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("condition not met: %w", ctx.Err())
		case <-t.C:
		}
	}
}

// Eventually fails the test unless check reports ok within timeout. check returns, besides
// ok, a description of the state it saw; the last one is printed on failure, so write it to
// explain what was missing (for example "packets=0 width=0").
func Eventually(tb testing.TB, timeout time.Duration, what string, check func() (ok bool, state string)) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var last string
	err := WaitFor(ctx, func() bool {
		ok, state := check()
		last = state
		return ok
	})
	if err != nil {
		tb.Fatalf("%s: not true after %v; last state: %s", what, timeout, last)
	}
}
