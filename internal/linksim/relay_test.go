package linksim

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"strings"
	"testing"
	"time"

	tc "github.com/sanke-edu/sanke/test/testclient"
)

const testUser, testPassword = "pupil", "chalk-and-slate"

// startRelay starts a relay on loopback with the given link.
func startRelay(t *testing.T, up, down Impairment, opt func(*RelayConfig)) *Relay {
	t.Helper()
	cfg := RelayConfig{UDP: "127.0.0.1:0", TCP: "127.0.0.1:0", Username: testUser, Password: testPassword,
		Up: up, Down: down, Logger: slog.New(slog.DiscardHandler)}
	if opt != nil {
		opt(&cfg)
	}
	r, err := NewRelay(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return r
}

// peer is the far end of the relayed path: the SFU's socket.
func peer(t *testing.T) net.PacketConn {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pc.Close() })
	return pc
}

// sendWindowed writes n stamped datagrams to to through pc, a window at a time, each once
// settled(sent) holds for what was sent before: the relay, and the receiver, have taken
// it, so that no socket or client buffer on the way overflows on a slow machine.
func sendWindowed(t *testing.T, pc net.PacketConn, to net.Addr, n int, settled func(sent int) (bool, string)) {
	t.Helper()
	const window = 50
	for i := 0; i < n; {
		for end := min(i+window, n); i < end; i++ {
			if _, err := pc.WriteTo(stamped(i), to); err != nil {
				t.Fatal(err)
			}
		}
		tc.Eventually(t, 30*time.Second, fmt.Sprintf("the %d datagrams sent are through", i), func() (bool, string) {
			return settled(i)
		})
	}
}

// crossRelay sends n datagrams from one end of the relayed path to the other (to, at
// toAddr), checks that about wantLoss of them were lost on that direction of the link
// (stats) and that the others arrived in order and delayed, and returns the direction's
// counters.
func crossRelay(t *testing.T, name string, from, to net.PacketConn, toAddr net.Addr, stats func() Stats, n int,
	wantLoss float64, delay time.Duration) Stats {
	t.Helper()
	rcv := receive(to, delay)
	sendWindowed(t, from, toAddr, n, func(sent int) (bool, string) {
		s, got := stats(), rcv.count()
		return s.Delivered+s.Lost == uint64(sent) && uint64(got) == s.Delivered, fmt.Sprintf("%s %+v, %d received", name, s, got)
	})
	s := stats()
	if got := float64(s.Lost) / float64(n); math.Abs(got-wantLoss) > 0.03 {
		t.Errorf("%s: %v of %d lost, want %v", name, got, n, wantLoss)
	}
	rcv.expect(t, int(s.Delivered))
	return s
}

// A pion/turn client relays through it: both ways lose about what was asked and are
// delayed at least as asked.
func TestRelayImpairs(t *testing.T) {
	const n, delay = 3000, 3 * time.Millisecond
	r := startRelay(t, Impairment{Loss: 0.2, Delay: delay, Seed: 11}, Impairment{Loss: 0.1, Delay: delay, Jitter: time.Millisecond, Seed: 12}, nil)
	sfu := peer(t)
	client := tc.TURNClient(t, "udp", r.UDPAddr().String(), testUser, testPassword)
	relayed, err := client.Allocate()
	if err != nil {
		t.Fatalf("allocate: %v", err)
	}
	if n := r.Allocations(); n != 1 {
		t.Errorf("%d allocations, want 1", n)
	}

	up := crossRelay(t, "up", relayed, sfu, sfu.LocalAddr(), func() Stats { up, _ := r.Stats(); return up }, n, 0.2, delay)
	// The client's first write installed the permission for the SFU's address.
	down := crossRelay(t, "down", sfu, relayed, relayed.LocalAddr(), func() Stats { _, down := r.Stats(); return down }, n, 0.1, delay)
	t.Logf("up %+v, down %+v", up, down)
}

// TURN over TCP reaches the same impaired relay; a step change applies to the live
// allocation.
func TestRelayTCPAndSetImpairment(t *testing.T) {
	r := startRelay(t, Impairment{}, Impairment{}, nil)
	sfu := peer(t)
	client := tc.TURNClient(t, "tcp", r.TCPAddr().String(), testUser, testPassword)
	relayed, err := client.Allocate()
	if err != nil {
		t.Fatalf("allocate: %v", err)
	}
	defer func() { _ = relayed.Close() }()
	atSFU := receive(sfu, 0)
	sendWindowed(t, relayed, sfu.LocalAddr(), 100, func(sent int) (bool, string) {
		return atSFU.count() == sent, fmt.Sprintf("%d received", atSFU.count())
	})
	atSFU.expect(t, 100)

	if err := r.SetImpairment(Impairment{Loss: 1}, Impairment{}); err != nil {
		t.Fatal(err)
	}
	sendWindowed(t, relayed, sfu.LocalAddr(), 100, func(sent int) (bool, string) {
		up, _ := r.Stats()
		return up.Packets == uint64(100+sent), fmt.Sprintf("%+v", up)
	})
	if up, _ := r.Stats(); up.Lost != 100 || up.Delivered != 100 {
		t.Errorf("after the step to 100%% loss: %+v", up)
	}
	if err := r.SetImpairment(Impairment{Loss: -1}, Impairment{}); err == nil {
		t.Error("negative loss accepted")
	}
}

// Allocations are bounded, the credentials are checked, and Close leaves nothing running.
func TestRelayBoundsAndClose(t *testing.T) {
	r := startRelay(t, Impairment{Delay: time.Millisecond}, Impairment{}, func(c *RelayConfig) { c.MaxAllocations = 2 })
	addr := r.UDPAddr().String()
	for i := range 2 {
		if _, err := tc.TURNClient(t, "udp", addr, testUser, testPassword).Allocate(); err != nil {
			t.Fatalf("allocation %d: %v", i, err)
		}
	}
	if _, err := tc.TURNClient(t, "udp", addr, testUser, testPassword).Allocate(); err == nil {
		t.Error("a third allocation beyond the bound of 2")
	}
	if _, err := tc.TURNClient(t, "udp", addr, testUser, "wrong").Allocate(); err == nil {
		t.Error("allocated with a wrong password")
	}
	if _, err := tc.TURNClient(t, "udp", addr, "stranger", testPassword).Allocate(); err == nil {
		t.Error("allocated with a wrong user name")
	}
	if err := r.Close(); err != nil {
		t.Error(err)
	}
	if n := r.Allocations(); n != 0 {
		t.Errorf("%d allocations after Close", n)
	}
	checkNoLinkGoroutines(t)
}

func TestRelayICEServer(t *testing.T) {
	r := startRelay(t, Impairment{}, Impairment{}, nil)
	ice := r.ICEServer()
	want := []string{"turn:" + r.UDPAddr().String() + "?transport=udp", "turn:" + r.TCPAddr().String() + "?transport=tcp"}
	if strings.Join(ice.URLs, " ") != strings.Join(want, " ") || ice.Username != testUser || ice.Credential != testPassword {
		t.Errorf("ICE server %+v, want URLs %v", ice, want)
	}
}

func TestNewRelayErrors(t *testing.T) {
	for _, tt := range []struct {
		name string
		cfg  RelayConfig
		want string
	}{
		{"no listener", RelayConfig{Username: "u", Password: "p"}, "UDP or a TCP"},
		{"no credentials", RelayConfig{UDP: "127.0.0.1:0"}, "username"},
		{"bad loss", RelayConfig{UDP: "127.0.0.1:0", Username: "u", Password: "p", Down: Impairment{Loss: 1.5}}, "down: loss"},
		{"bad address", RelayConfig{UDP: "localhost", Username: "u", Password: "p"}, "listen address"},
		{"two hosts", RelayConfig{UDP: "127.0.0.1:0", TCP: "127.0.0.2:0", Username: "u", Password: "p"}, "share a host"},
		{"bad relay IP", RelayConfig{UDP: "127.0.0.1:0", RelayIP: "relay", Username: "u", Password: "p"}, "not an IP"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r, err := NewRelay(tt.cfg)
			if err == nil {
				_ = r.Close()
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want one about %q", err, tt.want)
			}
		})
	}
}

func TestSchedule(t *testing.T) {
	var got []int64
	s := Schedule{
		{At: 0, Up: Impairment{Rate: 3_000_000}, Down: Impairment{Rate: 3_000_000}},
		{At: time.Millisecond, Up: Impairment{Rate: 500_000}, Down: Impairment{Rate: 500_000}},
		{At: 2 * time.Millisecond, Up: Impairment{Rate: 3_000_000}, Down: Impairment{Rate: 3_000_000}},
	}
	if err := s.Play(context.Background(), func(up, _ Impairment) error { got = append(got, up.Rate); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0] != 3_000_000 || got[1] != 500_000 || got[2] != 3_000_000 {
		t.Errorf("steps applied: %v", got)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := (Schedule{{At: time.Hour}}).Play(ctx, func(_, _ Impairment) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled schedule: %v", err)
	}
	if err := (Schedule{{At: time.Second}, {At: 0}}).Validate(); err == nil {
		t.Error("steps out of order accepted")
	}
}
