package classroom

import (
	"context"
	"strconv"
	"testing"
	"time"
)

// TestLoginGuardBounded checks that a flood of addresses and account+address pairs never
// grows the sign-in guard's tables past their bounds, that the guard still works once full,
// and that the pairs that signed in are not pushed out by failures.
func TestLoginGuardBounded(t *testing.T) {
	g := newLoginGuard(30, 1)
	now := time.Unix(1_700_000_000, 0)
	g.record(pairKey{"T1", "192.0.2.9"}, "T1", "192.0.2.9", true, now)
	for i := range 3 * loginMaxTracked {
		addr := "10." + strconv.Itoa(i>>16) + "." + strconv.Itoa(i>>8&255) + "." + strconv.Itoa(i&255)
		g.addrs.allow(addr, now)
		g.record(pairKey{"made-up-" + strconv.Itoa(i), addr}, "made-up-"+strconv.Itoa(i), addr, false, now)
	}
	if len(g.addrs.m) > loginMaxTracked || len(g.failures) > loginMaxTracked {
		t.Fatalf("tables grew past %d: %d addresses, %d pairs", loginMaxTracked, len(g.addrs.m), len(g.failures))
	}
	if !g.knownPair("T1", "192.0.2.9", now) {
		t.Error("a flood of failures pushed out a pair that signed in")
	}
	for range loginPairMaxFailures {
		g.record(pairKey{"T1", "192.0.2.1"}, "T1", "192.0.2.1", false, now)
	}
	if _, locked := g.locked(pairKey{"T1", "192.0.2.1"}, now); !locked {
		t.Error("a full guard no longer counts an address's failures")
	}
	if _, locked := g.locked(pairKey{"T1", "192.0.2.2"}, now); locked {
		t.Error("another address is locked")
	}
	for i := range 2 * loginMaxKnown {
		g.record(pairKey{"T1", strconv.Itoa(i)}, "T1", strconv.Itoa(i), true, now)
	}
	if n := len(g.signedIn); n > loginMaxKnown {
		t.Errorf("%d known pairs kept, want at most %d", n, loginMaxKnown)
	}
}

// TestLoginGuardFailsFast checks that password checks beyond the running and waiting ones
// are refused at once instead of queueing, and that the reserved checks are for known
// sign-ins only.
func TestLoginGuardFailsFast(t *testing.T) {
	g := newLoginGuard(30, 1) // one shared check, one reserved
	release, ok := g.acquire(context.Background(), false)
	if !ok {
		t.Fatal("the first check gets no slot")
	}
	for range cap(g.sharedWaiters) {
		g.sharedWaiters <- struct{}{} // as many unknown checks already waiting as allowed
	}
	if _, ok := g.acquire(context.Background(), false); ok {
		t.Error("an unknown check beyond the waiting ones got a slot")
	}
	relKnown, ok := g.acquire(context.Background(), true)
	if !ok {
		t.Fatal("a known check gets no reserved slot while unknown ones fill the shared ones")
	}
	for range cap(g.sharedWaiters) {
		<-g.sharedWaiters
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, ok := g.acquire(ctx, false); ok {
		t.Error("a check whose client went away got a slot")
	}
	release()
	relKnown()
	if release, ok = g.acquire(context.Background(), false); !ok {
		t.Error("no slot after a release")
	}
	release()
}
