package classroom

import (
	"context"
	"strconv"
	"testing"
	"time"
)

// TestLoginGuardBounded checks that a flood of addresses, accounts and account+address
// pairs never grows the sign-in guard's tables past loginMaxTracked, and that the guard
// still works once full.
func TestLoginGuardBounded(t *testing.T) {
	g := newLoginGuard(30, 1)
	now := time.Unix(1_700_000_000, 0)
	for i := range 3 * loginMaxTracked {
		addr := "10." + strconv.Itoa(i>>16) + "." + strconv.Itoa(i>>8&255) + "." + strconv.Itoa(i&255)
		g.allowAddress(addr, now)
		g.record("made-up-"+strconv.Itoa(i), addr, false, now)
	}
	if len(g.addrs.m) > loginMaxTracked || len(g.pairs) > loginMaxTracked || len(g.accounts) > loginMaxTracked {
		t.Fatalf("tables grew past %d: %d addresses, %d pairs, %d accounts", loginMaxTracked, len(g.addrs.m), len(g.pairs), len(g.accounts))
	}
	for range loginPairMaxFailures {
		g.record("T1", "192.0.2.1", false, now)
	}
	if _, ok := g.admit("T1", "192.0.2.1", now); ok {
		t.Error("a full guard no longer counts an address's failures")
	}
	if _, ok := g.admit("T1", "192.0.2.2", now); !ok {
		t.Error("another address is refused")
	}
	for i := range 3 * loginKnownAddrs {
		g.record("T1", "198.51.100."+strconv.Itoa(i), true, now)
	}
	if n := len(g.accounts["T1"].known); n > loginKnownAddrs {
		t.Errorf("%d known addresses kept for one account, want at most %d", n, loginKnownAddrs)
	}
}

// TestLoginGuardFailsFast checks that password checks beyond the running and waiting ones
// are refused at once instead of queueing.
func TestLoginGuardFailsFast(t *testing.T) {
	g := newLoginGuard(30, 1)
	if !g.acquire(context.Background()) {
		t.Fatal("the first check gets no slot")
	}
	g.waiting.Store(g.maxWaiting) // as many checks already waiting as allowed
	if g.acquire(context.Background()) {
		t.Error("a check beyond the waiting ones got a slot")
	}
	g.waiting.Store(0)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if g.acquire(ctx) {
		t.Error("a check whose client went away got a slot")
	}
	g.release()
	if !g.acquire(context.Background()) {
		t.Error("no slot after a release")
	}
}
